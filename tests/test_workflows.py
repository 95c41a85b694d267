"""The GitHub workflows: valid against the published workflow schema, actions pinned, wired as promised."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
# owner/repo[/path]@<40-hex commit SHA>: a tag or branch can be moved under us
# (marocchino/sticky-pull-request-comment's `v3` is a branch, not a tag).
PINNED = re.compile(r"[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}")
# ... followed on its line by the release it is, for the reader and for Dependabot.
USES_LINE = re.compile(r"^\s*(?:- )?uses: (\S+)(.*)$")
RELEASE_COMMENT = re.compile(r"\s+# v\d+\.\d+\.\d+")


def load(name: str) -> dict:
    doc = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    # YAML 1.1 reads the key `on` as True.
    doc["on"] = doc.pop(True, doc.get("on"))
    return doc


def steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def uses(doc: dict) -> list[str]:
    return [s["uses"] for job in doc["jobs"].values() for s in steps(job) if "uses" in s]


def test_the_two_workflows_exist():
    assert [f.name for f in FILES] == ["deploy.yml", "preview.yml"]


def test_workflows_validate_against_the_github_workflow_schema():
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", *map(str, FILES)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  build:\n    steps:\n      - run: make test\n")  # no runs-on
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(broken)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 1


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_with_its_release_named(path):
    lines = [m for m in map(USES_LINE.match, path.read_text(encoding="utf-8").splitlines()) if m]
    assert [m.group(1) for m in lines] == uses(load(path.name))  # every `uses:` is on one line
    for match in lines:
        ref, rest = match.groups()
        assert PINNED.fullmatch(ref), f"{path.name}: {ref!r} is not pinned to a commit SHA"
        assert RELEASE_COMMENT.fullmatch(rest), f"{path.name}: {ref!r} lacks its `# vX.Y.Z` comment"


def test_pin_rule_rejects_tags_and_branches():
    assert not PINNED.fullmatch("actions/checkout@main")
    assert not PINNED.fullmatch("actions/checkout")
    assert not PINNED.fullmatch("actions/checkout@v7")
    assert not PINNED.fullmatch("marocchino/sticky-pull-request-comment@v3")
    assert PINNED.fullmatch("pulumi/actions@" + "a" * 40)
    assert not RELEASE_COMMENT.fullmatch("")


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_checkouts_leave_no_token_for_the_code_they_run(path):
    for job in load(path.name)["jobs"].values():
        for step in steps(job):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False, step


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_the_pulumi_cli_matches_the_pinned_sdk(path):
    sdk = re.search(r"^pulumi==(\S+)$", (ROOT / "requirements.txt").read_text(), re.MULTILINE).group(1)
    pulumi = [s for job in load(path.name)["jobs"].values() for s in steps(job)
              if s.get("uses", "").startswith("pulumi/actions@")]
    assert pulumi and all(step["with"]["pulumi-version"] == sdk for step in pulumi)


def test_preview_runs_the_tests_renders_offline_and_posts_one_sticky_comment():
    doc = load("preview.yml")
    assert list(doc["on"]) == ["pull_request"]
    offline = doc["jobs"]["offline-preview"]
    runs = "\n".join(s.get("run", "") for s in steps(offline))
    assert "make test" in runs
    assert '-m infra.synth --stack "$PULUMI_STACK" --diff' in runs
    assert 'python" -m infra.synth --stack "$PULUMI_STACK")' in runs  # the base branch's own render
    sticky = [s for s in steps(offline) if s.get("uses", "").startswith("marocchino/sticky-pull-request-comment@")]
    assert len(sticky) == 1 and sticky[0]["with"]["header"] == "offline-preview"
    assert doc["permissions"]["pull-requests"] == "write"


def test_offline_preview_renders_the_stack_the_real_preview_previews():
    doc = load("preview.yml")
    offline, real = doc["jobs"]["offline-preview"], doc["jobs"]["pulumi-preview"]
    [pulumi] = [s for s in steps(real) if s.get("uses", "").startswith("pulumi/actions@")]
    assert offline["env"]["PULUMI_STACK"] == pulumi["with"]["stack-name"] == "${{ vars.PULUMI_STACK || 'dev' }}"
    runs = [s.get("run", "") for s in steps(offline)]
    renders = [line for run in runs for line in run.splitlines() if "-m infra.synth" in line and "echo" not in line]
    assert len(renders) == 2 and all('--stack "$PULUMI_STACK"' in line for line in renders), renders
    assert not any("stack \\`dev\\`" in run or '"stack": "dev"' in run for run in runs)


def test_real_preview_runs_only_when_the_secrets_exist():
    job = load("preview.yml")["jobs"]["pulumi-preview"]
    assert job["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"
    [pulumi] = [s for s in steps(job) if s.get("uses", "").startswith("pulumi/actions@")]
    assert "env.PULUMI_ACCESS_TOKEN != ''" in pulumi["if"]
    assert "env.ALIBABA_CLOUD_ACCESS_KEY_ID != ''" in pulumi["if"]
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["comment-on-pr"] is True and pulumi["with"]["diff"] is True
    assert pulumi["with"]["policyPacks"] == "policy"
    # every step that needs the cloud is guarded the same way
    for step in steps(job):
        if "uses" in step or "make setup" in step.get("run", ""):
            assert step.get("if") == pulumi["if"], step


def test_deploy_runs_pulumi_up_on_main_behind_the_production_environment():
    doc = load("deploy.yml")
    assert doc["on"]["push"]["branches"] == ["main"]
    up = doc["jobs"]["up"]
    assert up["environment"] == "production"
    assert up["needs"] == "test"
    assert "make test" in "\n".join(s.get("run", "") for s in steps(doc["jobs"]["test"]))
    [pulumi] = [s for s in steps(up) if s.get("uses", "").startswith("pulumi/actions@")]
    assert pulumi["with"]["command"] == "up"
    assert pulumi["with"]["policyPacks"] == "policy"
    assert doc["concurrency"]["cancel-in-progress"] is False
    # workflow_dispatch may run on any branch; only main deploys
    assert up["if"] == "github.ref == 'refs/heads/main'"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_expression_is_spliced_into_a_shell_script(path):
    """`${{ github.event.* }}` inside `run:` is script injection; pass values through env."""
    doc = load(path.name)
    for job_name, job in doc["jobs"].items():
        for step in steps(job):
            assert "${{" not in step.get("run", ""), f"{path.name}: job {job_name}: {step.get('name')}"
