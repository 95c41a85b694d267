"""``python -m infra.synth`` as a user runs it: a subprocess printing the render JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from infra import synth

REPO = Path(__file__).resolve().parent.parent


def run_synth(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "infra.synth", *args],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.fixture(scope="module")
def fc3_stdout() -> str:
    result = run_synth()
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_default_render_is_the_dev_stack_in_the_design_shape(fc3_stdout: str) -> None:
    document = json.loads(fc3_stdout)
    assert sorted(document) == ["outputs", "project", "resources", "stack"]
    assert (document["project"], document["stack"]) == ("mns-callback-flow", "dev")
    for resource in document["resources"]:
        assert sorted(resource) == ["dependsOn", "inputs", "name", "parent", "type"]
    keys = [(r["type"], r["name"]) for r in document["resources"]]
    assert keys == sorted(keys)
    types = {r["type"] for r in document["resources"]}
    assert {"alicloud:fc/v3Function:V3Function", "alicloud:fc/v3Trigger:V3Trigger",
            "alicloud:message/serviceTopic:ServiceTopic",
            "alicloud:message/serviceSubscription:ServiceSubscription",
            "alicloud:fnf/flow:Flow", "alicloud:ram/role:Role"} <= types
    assert not any(t.startswith(("alicloud:fc/service:", "alicloud:fc/function:")) for t in types)
    assert document["outputs"]["region"] == "cn-hangzhou"


def test_output_is_sorted_canonical_json(fc3_stdout: str) -> None:
    assert fc3_stdout == json.dumps(json.loads(fc3_stdout), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_second_run_is_byte_identical(fc3_stdout: str) -> None:
    again = run_synth("--stack", "dev")
    assert again.returncode == 0, again.stderr
    assert again.stdout == fc3_stdout


def test_fc2_render_has_service_function_trigger() -> None:
    result = run_synth("--config", "functionCompute=2.0")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    types = {r["type"] for r in document["resources"]}
    assert {"alicloud:fc/service:Service", "alicloud:fc/function:Function", "alicloud:fc/trigger:Trigger"} <= types
    assert not any(t.startswith("alicloud:fc/v3") for t in types)
    function = next(r for r in document["resources"] if r["type"] == "alicloud:fc/function:Function")
    assert (REPO / function["inputs"]["filename"]).is_file()


def test_cloudflow_render_declares_a_default_type_flow_byte_identically() -> None:
    first, second = run_synth("--config", "flowSpec=cloudflow"), run_synth("--config", "flowSpec=cloudflow")
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    document = json.loads(first.stdout)
    [flow] = [r for r in document["resources"] if r["type"] == "alicloud:fnf/flow:Flow"]
    assert flow["inputs"]["type"] == "DEFAULT"
    assert flow["inputs"]["definition"].startswith("Type: StateMachine\nName: mns-callback-dev-flow\nSpecVersion: v1\n")
    # Everything but the flow and its grant renders as for FDL.
    fdl = json.loads(run_synth().stdout)
    changed = {(r["type"], r["name"]) for r in document["resources"]} ^ {(r["type"], r["name"]) for r in fdl["resources"]}
    assert changed == set()
    differing = [r["name"] for r, f in zip(document["resources"], fdl["resources"], strict=True) if r != f]
    assert differing == ["callback-flow-flow", "callback-flow-policy"]


def test_overrides_use_the_project_namespace_by_default() -> None:
    result = run_synth("--config", "notifyContentFormat=XML", "--config", "alicloud:region=ap-southeast-1")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    subscription = next(
        r for r in document["resources"] if r["type"] == "alicloud:message/serviceSubscription:ServiceSubscription"
    )
    assert subscription["inputs"]["notifyContentFormat"] == "XML"
    assert document["outputs"]["region"] == "ap-southeast-1"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--config", "functionCompute=4.0"], "mns-callback-flow:functionCompute"),
        (["--config", "memorySize=lots"], "mns-callback-flow:memorySize"),
        (["--config", "noSuchKey=1"], "mns-callback-flow:noSuchKey"),
        (["--stack", "missing"], "Pulumi.missing.yaml"),
    ],
)
def test_bad_config_exits_nonzero_naming_the_key(args: list[str], named: str) -> None:
    result = run_synth(*args)
    assert result.returncode != 0
    assert result.stdout == ""
    assert named in result.stderr
    assert "Traceback" not in result.stderr


def test_render_function_matches_the_cli(fc3_stdout: str) -> None:
    assert synth.dumps(synth.render("dev")) == fc3_stdout


def test_main_returns_an_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert synth.main(["--config", "runtime=python2.7"]) == 1
    captured = capsys.readouterr()
    assert "mns-callback-flow:runtime" in captured.err and captured.out == ""


def test_a_stack_with_secrets_and_an_esc_environment_renders_offline(tmp_path: Path) -> None:
    """Real stacks carry encrypted provider keys and import ESC environments: both render, neither leaks."""
    (tmp_path / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    dev = (REPO / "Pulumi.dev.yaml").read_text(encoding="utf-8")
    ciphertext = "v1:c2VjcmV0LWNpcGhlcnRleHQ="
    (tmp_path / "Pulumi.prod.yaml").write_text(
        "environment:\n  - mns/common\n" + dev.replace(
            "config:\n", f"config:\n  alicloud:secretKey:\n    secure: {ciphertext}\n", 1),
        encoding="utf-8",
    )
    document = synth.render("prod", root=tmp_path)
    text = synth.dumps(document)
    assert ciphertext not in text
    assert [r["inputs"] for r in document["resources"]] == [r["inputs"] for r in synth.render("dev")["resources"]]


def test_a_render_does_not_import_the_crc_oracle() -> None:
    """The ``crc`` library only defines CRC-64/XZ for the tests; a render checksums with fastcrc."""
    probe = ("import sys, runpy; sys.argv = ['infra.synth']; sys.stdout = open('/dev/null', 'w')\n"
             "try:\n    runpy.run_module('infra.synth', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "sys.stderr.write(str(sorted(m for m in sys.modules if m == 'crc' or m.startswith('crc.'))))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True, timeout=120)
    assert done.stderr.strip().endswith("[]"), done.stderr
