"""The preview-style diff of two renders (infra/preview_diff.py)."""

from __future__ import annotations

import base64
import io
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from render_samples import find, sample_render

from infra import preview_diff as pd

ROOT = Path(__file__).resolve().parent.parent


def test_identical_renders_have_no_change_and_exit_0():
    diff = pd.diff_renders(sample_render(), sample_render())
    assert not diff.has_changes
    assert diff.unchanged == 4
    assert pd.exit_code(diff) == 0
    text = pd.format_diff(diff)
    assert "No changes." in text
    assert "4 unchanged" in text


def test_create_update_delete_are_named_by_type_and_name():
    base, head = sample_render(), sample_render()
    head["resources"] = [r for r in head["resources"] if r["type"] != "alicloud:fc/v3Trigger:V3Trigger"]
    head["resources"].append({
        "type": "alicloud:ram/role:Role", "name": "demo-extra-role", "parent": None,
        "inputs": {"roleName": "extra"}, "dependsOn": [],
    })
    find(head, "alicloud:fc/v3Function:V3Function")["inputs"]["environmentVariables"]["FNF_ENDPOINT"] = "http://x"
    diff = pd.diff_renders(base, head)
    ops = {(r.op, r.type, r.name) for r in diff.resources}
    assert ops == {
        ("create", "alicloud:ram/role:Role", "demo-extra-role"),
        ("delete", "alicloud:fc/v3Trigger:V3Trigger", "demo-trigger"),
        ("update", "alicloud:fc/v3Function:V3Function", "demo-function"),
    }
    update = next(r for r in diff.resources if r.op == "update")
    assert update.changes == (pd.Change(
        "inputs.environmentVariables.FNF_ENDPOINT", "https://cn-hangzhou.fnf.aliyuncs.com", "http://x"),)
    text = pd.format_diff(diff)
    assert "+ create alicloud:ram/role:Role demo-extra-role" in text
    assert "- delete alicloud:fc/v3Trigger:V3Trigger demo-trigger" in text
    assert "~ update alicloud:fc/v3Function:V3Function demo-function" in text
    assert '~ inputs.environmentVariables.FNF_ENDPOINT: "https://cn-hangzhou.fnf.aliyuncs.com" => "http://x"' in text
    assert "+ inputs.roleName: \"extra\"" in text
    assert "+ 1 to create" in text and "~ 1 to update" in text and "- 1 to delete" in text
    assert "2 unchanged" in text
    assert pd.exit_code(diff) == 2


def test_added_and_removed_input_keys_are_shown_as_such():
    base, head = sample_render(), sample_render()
    env = find(head, "alicloud:fc/v3Function:V3Function")["inputs"]["environmentVariables"]
    del env["MNS_VERIFY_SIGNATURE"]
    env["CALLBACK_WORK"] = "work:run"
    text = pd.format_diff(pd.diff_renders(base, head))
    assert '+ inputs.environmentVariables.CALLBACK_WORK: "work:run"' in text
    assert '- inputs.environmentVariables.MNS_VERIFY_SIGNATURE: "true"' in text


def test_flow_definition_is_a_unified_diff_not_one_changed_string():
    base, head = sample_render(), sample_render()
    flow = find(head, "alicloud:fnf/flow:Flow")["inputs"]
    flow["definition"] = flow["definition"].replace("timeoutSeconds: 300", "timeoutSeconds: 600")
    text = pd.format_diff(pd.diff_renders(base, head))
    lines = text.splitlines()
    assert "    ~ inputs.definition:" in lines
    assert "        -    timeoutSeconds: 300" in lines
    assert "        +    timeoutSeconds: 600" in lines
    assert "        --- before" in lines and "        +++ after" in lines
    # unchanged neighbours appear as context lines (prefix " "), not as changes
    assert "             pattern: waitForCallback" in lines
    assert any(line.startswith("        @@") for line in lines)
    assert "version: v1\\ntype" not in text


def test_policy_document_json_is_pretty_printed_before_diffing():
    base, head = sample_render(), sample_render()
    pol = find(head, "alicloud:ram/policy:Policy")["inputs"]
    doc = json.loads(pol["policyDocument"])
    doc["Statement"][0]["Action"].append("mns:DeleteMessage")
    pol["policyDocument"] = json.dumps(doc, separators=(",", ":"))
    text = pd.format_diff(pd.diff_renders(base, head))
    assert "    ~ inputs.policyDocument:" in text
    added = [line for line in text.splitlines() if line.startswith("        +") and "mns:" in line]
    assert added and all("DeleteMessage" in line or "PublishMessage" in line for line in added)
    assert any('"mns:DeleteMessage"' in line for line in added)
    # unchanged keys are context lines of their own
    assert '               "Effect": "Allow",' in text.splitlines()


def test_reordered_json_keys_are_not_a_textual_change():
    base, head = sample_render(), sample_render()
    trig = find(head, "alicloud:fc/v3Trigger:V3Trigger")["inputs"]
    trig["triggerConfig"] = json.dumps({"methods": ["POST"], "authType": "anonymous"})
    diff = pd.diff_renders(base, head)
    # the string differs, so it is an update, but its pretty diff is empty of +/- lines
    [res] = diff.resources
    assert res.op == "update"
    body = pd.format_diff(diff).splitlines()
    assert not [ln for ln in body if ln.startswith(("        +", "        -"))]


def test_code_archive_is_summarised_by_length_and_digest():
    base, head = sample_render(), sample_render()
    code = find(head, "alicloud:fc/v3Function:V3Function")["inputs"]["code"]
    old_blob = code["zipFile"]
    from render_samples import _zip_b64

    code["zipFile"] = _zip_b64("print('bye')\n")
    code["checksum"] = "1"
    text = pd.format_diff(pd.diff_renders(base, head))
    assert old_blob not in text and code["zipFile"] not in text
    line = next(ln for ln in text.splitlines() if "inputs.code.zipFile" in ln)
    assert line.count("<base64, ") == 2 and "sha256" in line
    assert '~ inputs.code.checksum: "4270285996107335518" => "1"' in text


def test_output_changes_are_listed():
    base, head = sample_render(), sample_render()
    head["outputs"]["flowName"] = "other"
    head["outputs"]["triggerUrl"] = "https://t"
    del head["outputs"]["region"]
    diff = pd.diff_renders(base, head)
    assert not diff.resources and diff.has_changes
    text = pd.format_diff(diff)
    assert 'Outputs:' in text
    assert '~ flowName: "demo-flow" => "other"' in text
    assert '+ triggerUrl: "https://t"' in text
    assert '- region: "cn-hangzhou"' in text


def test_format_is_deterministic():
    base, head = sample_render(), sample_render()
    head["resources"].reverse()
    find(head, "alicloud:fnf/flow:Flow")["inputs"]["description"] = "x"
    assert pd.format_diff(pd.diff_renders(base, head)) == pd.format_diff(pd.diff_renders(base, head))
    assert [r.name for r in pd.diff_renders(base, head).resources] == ["demo-flow"]


@pytest.mark.parametrize("bad, field", [
    ([], "expected a JSON object"),
    ({"outputs": {}}, "'resources'"),
    ({"resources": [{"name": "x"}]}, "resources[0]: field 'type'"),
    ({"resources": [{"type": "t", "name": "x", "inputs": []}]}, "resources[0]: field 'inputs'"),
    ({"resources": [{"type": "t", "name": "x"}, {"type": "t", "name": "x"}]}, "duplicate resource t x"),
    ({"resources": [], "outputs": []}, "'outputs'"),
])
def test_bad_render_is_an_error_naming_the_field(bad, field):
    with pytest.raises(pd.RenderFileError) as exc:
        pd.diff_renders(bad, sample_render())
    assert field in str(exc.value)


def test_cli_exit_codes(tmp_path):
    base, head = tmp_path / "base.json", tmp_path / "head.json"
    base.write_text(json.dumps(sample_render()))
    head.write_text(json.dumps(sample_render()))

    def run(*args):
        return subprocess.run([sys.executable, "-m", "infra.preview_diff", *map(str, args)],
                              cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)

    same = run(base, head)
    assert same.returncode == 0, same.stderr
    assert "No changes." in same.stdout

    changed = sample_render()
    changed["outputs"]["flowName"] = "renamed"
    head.write_text(json.dumps(changed))
    diff = run(base, head)
    assert diff.returncode == 2, diff.stderr
    assert '~ flowName: "demo-flow" => "renamed"' in diff.stdout

    (tmp_path / "broken.json").write_text("{not json")
    broken = run(tmp_path / "broken.json", head)
    assert broken.returncode == 1
    assert "broken.json: not JSON" in broken.stderr
    missing = run(tmp_path / "nope.json", head)
    assert missing.returncode == 1
    assert "nope.json: cannot read render file" in missing.stderr


def test_diff_against_file_reports_bad_base_on_err(tmp_path):
    bad = tmp_path / "base.json"
    bad.write_text(json.dumps({"resources": "x"}))
    out, err = io.StringIO(), io.StringIO()
    assert pd.diff_against_file(str(bad), sample_render(), out, err) == 1
    assert out.getvalue() == ""
    assert "field 'resources' must be a list" in err.getvalue()


# ---- the real render, through python -m infra.synth --diff ---------------------------


@pytest.fixture(scope="module")
def base_render_file(tmp_path_factory):
    from infra.synth import dumps, render

    path = tmp_path_factory.mktemp("renders") / "base.json"
    path.write_text(dumps(render("dev")), encoding="utf-8")
    return path


def _synth(capsys, *argv):
    from infra import synth

    code = synth.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_synth_diff_of_the_same_config_is_no_change(capsys, base_render_file):
    code, out, err = _synth(capsys, "--diff", str(base_render_file))
    assert (code, err) == (0, "")
    assert "No changes." in out


def test_synth_diff_of_a_task_timeout_change_shows_the_fdl_line(capsys, base_render_file):
    code, out, _ = _synth(capsys, "--config", "taskTimeoutSeconds=900", "--diff", str(base_render_file))
    assert code == 2
    lines = out.splitlines()
    assert "~ update alicloud:fnf/flow:Flow callback-flow-flow" in lines
    assert "        -    timeoutSeconds: 600" in lines
    assert "        +    timeoutSeconds: 900" in lines
    assert "    ~ 2 to update" in lines
    # the dead-letter queue keeps a message as long as the task waits; nothing else changes
    assert "    ~ inputs.messageRetentionPeriod: 600 => 900" in lines
    assert [ln for ln in lines if ln and ln[0] in "+~-"] == [
        "~ update alicloud:fnf/flow:Flow callback-flow-flow",
        "~ update alicloud:message/serviceQueue:ServiceQueue callback-topic-dead-letters"]


def test_synth_diff_of_switching_flow_spec_updates_the_flow_and_its_grant_in_place(capsys, base_render_file):
    """`type` and `definition` of alicloud_fnf_flow are not ForceNew (infra/provider_replacements.py:
    only `name` is), so the switch is an update of the same flow, not a replacement."""
    from infra.provider_replacements import REPLACEMENT_RULES

    assert REPLACEMENT_RULES["alicloud:fnf/flow:Flow"].force_new == {"name"}
    code, out, _ = _synth(capsys, "--config", "flowSpec=cloudflow", "--diff", str(base_render_file))
    assert code == 2
    lines = out.splitlines()
    assert [ln for ln in lines if ln and ln[0] in "+~-"] == [
        "~ update alicloud:fnf/flow:Flow callback-flow-flow",
        "~ update alicloud:ram/policy:Policy callback-flow-policy",
    ]
    assert '    ~ inputs.type: "FDL" => "DEFAULT"' in lines
    assert "        -version: v1" in lines and "        +Type: StateMachine" in lines
    assert "        +    TaskMode: WaitForCustomCallback" in lines
    assert '    ~ inputs.description: "mns:PublishMessage on the callback topic only." => ' \
           '"mns:PublishMessage and mns:SendMessage on the callback topic only."' in lines
    assert '        +        "mns:SendMessage"' in lines
    assert not any("replace" in ln or "forces replacement" in ln for ln in lines)
    assert "    ~ 2 to update" in lines


def test_synth_diff_of_an_environment_change_names_the_input_path(capsys, base_render_file):
    code, out, _ = _synth(capsys, "--config", "verifySignature=false", "--diff", str(base_render_file))
    assert code == 2
    assert '    ~ inputs.environmentVariables.MNS_VERIFY_SIGNATURE: "true" => "false"' in out.splitlines()


def test_synth_diff_of_a_switch_to_fc2_replaces_the_function(capsys, base_render_file):
    code, out, _ = _synth(capsys, "--config", "functionCompute=2.0", "--diff", str(base_render_file))
    assert code == 2
    lines = out.splitlines()
    assert "- delete alicloud:fc/v3Function:V3Function callback-function-function" in lines
    assert "- delete alicloud:fc/v3Trigger:V3Trigger callback-function-trigger" in lines
    assert "+ create alicloud:fc/function:Function callback-function-function" in lines
    assert "+ create alicloud:fc/trigger:Trigger callback-function-trigger" in lines
    # the trigger config of the created trigger is a pretty-printed document
    assert any(ln.strip() == '+   "authType": "anonymous",' for ln in lines)
    # the subscription's endpoint moves to the FC 2.0 URL: an update, with the old and new URL
    assert any(ln.startswith("    ~ inputs.endpoint: ") and " => " in ln for ln in lines)


def test_synth_diff_with_a_bad_base_exits_1(capsys, tmp_path):
    bad = tmp_path / "base.json"
    bad.write_text('{"resources": {}}')
    code, out, err = _synth(capsys, "--diff", str(bad))
    assert (code, out) == (1, "")
    assert "field 'resources' must be a list" in err


def test_synth_diff_shows_a_code_change_as_a_digest_not_the_archive(capsys, base_render_file, tmp_path):
    base = json.loads(base_render_file.read_text())
    fn = find(base, "alicloud:fc/v3Function:V3Function")
    archive = fn["inputs"]["code"]["zipFile"]
    fn["inputs"]["code"]["zipFile"] = base64.b64encode(b"PK-an-older-archive" * 20).decode()
    fn["inputs"]["code"]["checksum"] = "1"
    older = tmp_path / "older.json"
    older.write_text(json.dumps(base))
    code, out, _ = _synth(capsys, "--diff", str(older))
    assert code == 2
    assert archive not in out
    line = next(ln for ln in out.splitlines() if "inputs.code.zipFile" in ln)
    assert "<base64, 380 bytes, sha256 " in line and " => <base64, " in line


def test_readme_example_is_the_real_output(capsys, base_render_file):
    """README's "Reviewing changes" example must be what the command prints today."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- preview-diff-example: (.*?) -->\n```diff\n(.*?)```", readme, re.DOTALL)
    assert match, "README.md lost its preview-diff-example block"
    argv = shlex.split(match.group(1))
    code, out, _ = _synth(capsys, *argv, "--diff", str(base_render_file))
    assert code == 2
    assert out == match.group(2), "README's example differs from python -m infra.synth " + match.group(1)


@pytest.mark.parametrize("args", [
    ("infra.preview_diff", "only-one.json"),
    ("infra.preview_diff", "a.json", "b.json", "--unknown"),
    ("infra.synth", "--diff"),
])
def test_a_usage_error_exits_1_not_the_changes_code(args):
    """argparse exits 2 on a usage error, which these CLIs reserve for "changes"."""
    ran = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, check=False)
    assert ran.returncode == 1, (ran.returncode, ran.stderr)
    assert "usage:" in ran.stderr and "error:" in ran.stderr


# ---- replacements, dependsOn, parents and secrets -------------------------------------


def test_a_force_new_change_is_a_replacement_marked_with_its_order(capsys, base_render_file):
    code, out, _ = _synth(capsys, "--config", "namePrefix=renamed", "--diff", str(base_render_file))
    assert code == 2
    lines = out.splitlines()
    assert "+- replace alicloud:fnf/flow:Flow callback-flow-flow" in lines
    flow = lines.index("+- replace alicloud:fnf/flow:Flow callback-flow-flow")
    assert lines[flow + 1].startswith("    ! delete before create: the provider deletes the old one first")
    assert '    ~ inputs.name: "mns-callback-dev-flow" => "renamed-flow" (forces replacement)' in lines
    # a renamed FC 3.0 function gets a new name: created first, no delete-before-create mark
    fn = lines.index("+- replace alicloud:fc/v3Function:V3Function callback-function-function")
    assert not lines[fn + 1].startswith("    !")
    assert not any(ln.startswith("~ update ") for ln in lines)
    assert "    +- 11 to replace" in lines


def test_a_change_the_provider_updates_in_place_stays_an_update():
    base, head = sample_render(), sample_render()
    find(head, "alicloud:fnf/flow:Flow")["inputs"]["definition"] += "# more\n"
    [change] = pd.diff_renders(base, head).resources
    assert (change.op, change.forced_by) == ("update", ())


def test_a_replacement_that_keeps_the_name_must_delete_first():
    base, head = sample_render(), sample_render()
    for render in (base, head):
        find(render, "alicloud:fc/v3Trigger:V3Trigger")["inputs"]["triggerName"] = "http"
    find(head, "alicloud:fc/v3Trigger:V3Trigger")["inputs"]["qualifier"] = "PROD"
    diff = pd.diff_renders(base, head)
    [change] = diff.resources
    assert (change.op, change.forced_by, change.order) == ("replace", ("qualifier",), "name-cannot-coexist")
    text = pd.format_diff(diff)
    assert "+- replace alicloud:fc/v3Trigger:V3Trigger demo-trigger\n    ! delete before create needed" in text
    assert "(unverified)" in text and "deleteBeforeReplace" in text
    assert "+- 1 to replace" in text and pd.exit_code(diff) == 2


def test_a_nested_change_is_judged_by_its_top_level_input():
    base, head = sample_render(), sample_render()
    find(head, "alicloud:fc/v3Function:V3Function")["inputs"]["code"]["checksum"] = "42"
    [change] = pd.diff_renders(base, head).resources
    assert change.op == "update"  # code is not ForceNew in alicloud_fcv3_function


def test_a_dependson_only_change_is_not_an_update():
    base, head = sample_render(), sample_render()
    find(head, "alicloud:fnf/flow:Flow")["dependsOn"] = ["alicloud:ram/role:Role::x"]
    diff = pd.diff_renders(base, head)
    assert not diff.has_changes and pd.exit_code(diff) == 0
    text = pd.format_diff(diff)
    assert "No changes." in text and "note: alicloud:fnf/flow:Flow demo-flow: dependsOn changed only" in text
    assert "4 unchanged" in text


def test_a_parent_of_another_type_is_a_new_urn_not_an_update():
    base, head = sample_render(), sample_render()
    find(head, "alicloud:fnf/flow:Flow")["parent"] = "mns-callback-flow:index:Other::x"
    find(head, "alicloud:fnf/flow:Flow")["inputs"]["description"] = "moved"
    diff = pd.diff_renders(base, head)
    assert diff.has_changes and not diff.resources and pd.exit_code(diff) == 2
    text = pd.format_diff(diff)
    assert "~ reparent alicloud:fnf/flow:Flow demo-flow\n    ! the URN changes with the parent's type" in text
    assert '    ~ parent: "mns-callback-flow:index:CallbackPattern::demo" => "mns-callback-flow:index:Other::x"' in text
    assert '    ~ inputs.description: ' in text
    assert "~ 1 to reparent" in text and "3 unchanged" in text


def test_a_parent_renamed_within_its_type_keeps_the_urn():
    base, head = sample_render(), sample_render()
    find(head, "alicloud:fnf/flow:Flow")["parent"] = "mns-callback-flow:index:CallbackPattern::other"
    diff = pd.diff_renders(base, head)
    assert not diff.has_changes
    assert "(same parent type: the URN stays)" in pd.format_diff(diff)


SECRET_A = "[secret sha256:0123456789ab]"
SECRET_B = "[secret sha256:ba9876543210]"


def test_a_secret_change_prints_neither_value():
    base, head = sample_render(), sample_render()
    env = find(base, "alicloud:fc/v3Function:V3Function")["inputs"]["environmentVariables"]
    env["API_KEY"] = SECRET_A
    find(head, "alicloud:fc/v3Function:V3Function")["inputs"]["environmentVariables"]["API_KEY"] = SECRET_B
    find(head, "alicloud:fnf/flow:Flow")["inputs"]["description"] = f"key {SECRET_B}"
    text = pd.format_diff(pd.diff_renders(base, head))
    assert "    ~ inputs.environmentVariables.API_KEY: (secret changed)" in text
    assert "    ~ inputs.description: (secret changed)" in text
    assert SECRET_A not in text and SECRET_B not in text


def test_an_added_secret_is_shown_as_a_secret():
    base, head = sample_render(), sample_render()
    find(head, "alicloud:fc/v3Function:V3Function")["inputs"]["environmentVariables"]["API_KEY"] = "[secret]"
    text = pd.format_diff(pd.diff_renders(base, head))
    assert "    + inputs.environmentVariables.API_KEY: (secret)" in text and "[secret]" not in text


def test_a_type_without_force_new_fields_is_an_update_that_says_so():
    base, head = sample_render(), sample_render()
    for render in (base, head):
        render["resources"].append({"type": "alicloud:oss/bucket:Bucket", "name": "b", "parent": None,
                                    "inputs": {"bucket": "x"}, "dependsOn": []})
    find(head, "alicloud:oss/bucket:Bucket")["inputs"]["bucket"] = "y"
    diff = pd.diff_renders(base, head)
    [change] = diff.resources
    assert change.op == "update"
    assert "    ! no ForceNew fields known for this type" in pd.format_diff(diff)
