"""Offline stack config: merge order, the CLI's refusals, and the repo's own files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from infra.config import PROJECT_KEYS, full_key, settings_from_mapping
from infra.stack_config import (
    PROJECT_ROOT,
    SECRET_PLACEHOLDER,
    StackConfigError,
    read_stack_config,
    stack_names,
)
from mns_callback_flow.flow_definition import build_flow_definition

PROJECT_YAML = """\
name: demo
runtime: python
config:
  size:
    type: integer
    default: 3
  label:
    type: string
    default: plain
  enabled:
    type: boolean
    default: true
  alicloud:region: cn-shanghai
  wrapped:
    value: 7
"""


def write_project(root: Path, stack_config: str | None = "config: {}\n", project: str = PROJECT_YAML) -> Path:
    (root / "Pulumi.yaml").write_text(project, encoding="utf-8")
    if stack_config is not None:
        (root / "Pulumi.test.yaml").write_text(stack_config, encoding="utf-8")
    return root


def test_schema_defaults_and_project_values(tmp_path: Path) -> None:
    assert read_stack_config("test", root=write_project(tmp_path)) == {
        "alicloud:region": "cn-shanghai",
        "demo:enabled": "true",
        "demo:label": "plain",
        "demo:size": "3",
        "demo:wrapped": "7",
    }


def test_stack_file_beats_defaults_and_overrides_beat_both(tmp_path: Path) -> None:
    root = write_project(tmp_path, "config:\n  demo:size: 5\n  demo:enabled: false\n  alicloud:region: us-west-1\n")
    values = read_stack_config("test", root=root)
    assert (values["demo:size"], values["demo:enabled"], values["alicloud:region"]) == ("5", "false", "us-west-1")
    values = read_stack_config("test", ["size=9", "alicloud:region=eu-central-1", "label=a=b"], root=root)
    assert (values["demo:size"], values["alicloud:region"], values["demo:label"]) == ("9", "eu-central-1", "a=b")


def test_key_without_namespace_in_the_stack_file_is_the_projects(tmp_path: Path) -> None:
    assert read_stack_config("test", root=write_project(tmp_path, "config:\n  label: x\n"))["demo:label"] == "x"


def test_structured_value_becomes_json_text(tmp_path: Path) -> None:
    root = write_project(tmp_path, "config:\n  demo:rules:\n    - errors: [A]\n      b: 1\n")
    assert read_stack_config("test", root=root)["demo:rules"] == '[{"b":1,"errors":["A"]}]'


def test_structured_value_for_a_string_key_is_refused(tmp_path: Path) -> None:
    root = write_project(tmp_path, "config:\n  demo:label:\n    - a\n")
    with pytest.raises(StackConfigError, match="demo:label must be of type 'string'"):
        read_stack_config("test", root=root)


def test_encrypted_value_is_a_placeholder_that_follows_the_ciphertext(tmp_path: Path) -> None:
    root = write_project(tmp_path, "config:\n  demo:label:\n    secure: v1:abc\n  alicloud:secretKey:\n    secure: v1:k\n")
    config = read_stack_config("test", root=root)
    label = config["demo:label"]
    assert re.fullmatch(r"\[secret sha256:[0-9a-f]{12}\]", label)
    assert "abc" not in label and SECRET_PLACEHOLDER.fullmatch(label)
    assert config["alicloud:secretKey"] != label
    (root / "Pulumi.test.yaml").write_text("config:\n  demo:label:\n    secure: v1:abd\n", encoding="utf-8")
    assert read_stack_config("test", root=root)["demo:label"] != label  # a new ciphertext shows as a change
    (root / "Pulumi.test.yaml").write_text("config:\n  demo:label:\n    secure: v1:abc\n", encoding="utf-8")
    assert read_stack_config("test", root=root)["demo:label"] == label  # and the same one does not


def test_an_override_beats_an_encrypted_value(tmp_path: Path) -> None:
    root = write_project(tmp_path, "config:\n  demo:size:\n    secure: v1:abc\n")
    assert read_stack_config("test", ["size=5"], root=root)["demo:size"] == "5"


def test_an_encrypted_value_of_a_typed_key_needs_an_override(tmp_path: Path) -> None:
    root = write_project(tmp_path, "config:\n  demo:size:\n    secure: v1:abc\n")
    with pytest.raises(StackConfigError, match=r"demo:size is a secret \(secure:\) of type 'integer'.*--config"):
        read_stack_config("test", root=root)


def test_an_empty_secure_value_is_refused(tmp_path: Path) -> None:
    root = write_project(tmp_path, "config:\n  demo:label:\n    secure: ''\n")
    with pytest.raises(StackConfigError, match="demo:label: `secure:` must be the ciphertext"):
        read_stack_config("test", root=root)


REQUIRED_PROJECT = PROJECT_YAML + "  token:\n    type: string\n"


@pytest.mark.parametrize("block", ["environment:\n  - org/common\n  - org/dev\n",
                                   "environment:\n  imports:\n    - org/common\n    - org/dev\n"])
def test_esc_environment_stands_in_for_required_keys_and_the_file_wins(tmp_path: Path, block: str) -> None:
    root = write_project(tmp_path, block + "config:\n  demo:label: mine\n", project=REQUIRED_PROJECT)
    config = read_stack_config("test", root=root)
    assert SECRET_PLACEHOLDER.fullmatch(config["demo:token"])
    assert config["demo:label"] == "mine" and config["demo:size"] == "3"
    assert read_stack_config("test", ["token=t"], root=root)["demo:token"] == "t"
    (root / "Pulumi.test.yaml").write_text("environment:\n  - org/prod\n", encoding="utf-8")
    assert read_stack_config("test", root=root)["demo:token"] != config["demo:token"]


def test_without_an_environment_a_required_key_is_still_missing(tmp_path: Path) -> None:
    root = write_project(tmp_path, "config: {}\n", project=REQUIRED_PROJECT)
    with pytest.raises(StackConfigError, match="missing required config: demo:token"):
        read_stack_config("test", root=root)


@pytest.mark.parametrize("block", ["environment: org/dev\n", "environment: []\n", "environment:\n  imports: {}\n"])
def test_a_malformed_environment_block_is_named(tmp_path: Path, block: str) -> None:
    root = write_project(tmp_path, block)
    with pytest.raises(StackConfigError, match="`environment` must be a list of ESC environment names"):
        read_stack_config("test", root=root)


def test_required_key_without_value_is_refused(tmp_path: Path) -> None:
    project = PROJECT_YAML + "  needed:\n    type: string\n"
    with pytest.raises(StackConfigError, match="missing required config: demo:needed"):
        read_stack_config("test", root=write_project(tmp_path, project=project))
    assert read_stack_config("test", ["needed=x"], root=tmp_path)["demo:needed"] == "x"


def test_schema_for_a_provider_key_is_refused(tmp_path: Path) -> None:
    project = PROJECT_YAML + "  aws:region:\n    type: string\n"
    with pytest.raises(StackConfigError, match="not a project key"):
        read_stack_config("test", root=write_project(tmp_path, project=project))


def test_missing_stack_file_names_the_stacks_there(tmp_path: Path) -> None:
    with pytest.raises(StackConfigError, match=r"Pulumi\.prod\.yaml.*stacks with one: test"):
        read_stack_config("prod", root=write_project(tmp_path))


@pytest.mark.parametrize("override", ["size", "=3", ":x=1"])
def test_malformed_override(tmp_path: Path, override: str) -> None:
    with pytest.raises(StackConfigError, match="KEY=VALUE|malformed"):
        read_stack_config("test", [override], root=write_project(tmp_path))


def test_bad_yaml_is_named(tmp_path: Path) -> None:
    with pytest.raises(StackConfigError, match=r"Pulumi\.test\.yaml: not valid YAML"):
        read_stack_config("test", root=write_project(tmp_path, "config: [\n"))


def test_output_is_sorted_by_key(tmp_path: Path) -> None:
    values = read_stack_config("test", ["zeta=1", "alpha=2"], root=write_project(tmp_path))
    assert list(values) == sorted(values)


# ---- the repository's own Pulumi.yaml and Pulumi.dev.yaml --------------------------


def project_file() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "Pulumi.yaml").read_text(encoding="utf-8"))


def test_project_file_basics() -> None:
    doc = project_file()
    assert doc["name"] == "mns-callback-flow"
    assert doc["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": ".venv"}}
    assert doc["description"]


def test_every_settings_key_is_typed_described_and_defaulted() -> None:
    config = project_file()["config"]
    assert sorted(config) == sorted(PROJECT_KEYS)
    for key, spec in config.items():
        assert spec["type"] in ("string", "boolean", "integer"), key
        assert spec["description"].strip(), key
        assert "default" in spec, key
        python_type = {"string": str, "boolean": bool, "integer": int}[spec["type"]]
        assert type(spec["default"]) is python_type, key  # Pulumi: the default must match the type


def test_schema_defaults_equal_the_settings_defaults() -> None:
    # A stack that sets only the region gets the same settings from the schema
    # defaults as from settings_from_mapping's own defaults.
    defaults = {full_key(k): spec["default"] for k, spec in project_file()["config"].items()}
    defaults = {k: ("true" if v is True else "false" if v is False else str(v)) for k, v in defaults.items()}
    region = {"alicloud:region": "cn-hangzhou"}
    assert settings_from_mapping(region | defaults, stack="x") == settings_from_mapping(region, stack="x")


def test_dev_stack_round_trip() -> None:
    assert "dev" in stack_names()
    values = read_stack_config("dev")
    raw = yaml.safe_load((PROJECT_ROOT / "Pulumi.dev.yaml").read_text(encoding="utf-8"))["config"]
    for key, value in raw.items():
        expected = ("true" if value else "false") if isinstance(value, bool) else str(value)
        assert values[key] == expected, key
    s = settings_from_mapping(values, stack="dev")
    assert (s.region, s.topic_name, s.task_timeout_seconds, s.notify_strategy) == (
        "cn-hangzhou", "mns-callback-dev-topic", 600, "BACKOFF_RETRY")
    assert s.task_catch and s.task_retry
    flow = yaml.safe_load(build_flow_definition(s.callback_task))
    assert flow["steps"][0]["resourceArn"] == "acs:mns:::/topics/mns-callback-dev-topic/messages"
    assert flow["steps"][1] == {"type": "pass", "name": "catch-1",
                                "outputMappings": [{"target": "status", "source": "timeout"}], "end": True}


def test_dev_stack_override_reaches_settings() -> None:
    values = read_stack_config("dev", ["functionCompute=2.0", "mns-callback-flow:memorySize=512"])
    s = settings_from_mapping(values, stack="dev")
    assert (s.function_compute, s.memory_size) == ("2.0", 512)


def test_readme_configuration_table_lists_every_key() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    documented = {key.strip(" `") for row in rows for key in row.split("|")[1].split(",")}
    assert documented == set(PROJECT_KEYS) | {"alicloud:region"}


@pytest.mark.parametrize("text", [
    (PROJECT_ROOT / "Pulumi.yaml").read_text(encoding="utf-8"),
    (PROJECT_ROOT / "Pulumi.dev.yaml").read_text(encoding="utf-8"),
    "a: 0o17\nb: 017\nc: 1_000\nd: yes\ne: ~\nf: 2026-12-01\ng: .inf\nh: '012'\ni: !!str 3\nj: [1, {k: v}]\n",
    "secure: {secure: v1:abc}\nlist:\n  - 1.5e3\n  - -0x1F\n  - 'x: y'\nmulti: |\n  one\n  two\n",
])
def test_the_fast_yaml_parser_reads_what_safe_load_reads(text: str) -> None:
    from infra.stack_config import _parse_yaml

    assert _parse_yaml(text) == yaml.safe_load(text)
    assert type(_parse_yaml(text)) is type(yaml.safe_load(text))


@pytest.mark.parametrize("text", ["a: [1, 2\n", "a: b: c\n", "\tkey: value\n", "a: !!python/object:os.system x\n"])
def test_a_bad_yaml_document_fails_with_safe_loads_own_error(text: str) -> None:
    from infra.stack_config import _parse_yaml

    with pytest.raises(yaml.YAMLError) as expected:
        yaml.safe_load(text)
    with pytest.raises(yaml.YAMLError) as got:
        _parse_yaml(text)
    assert str(got.value) == str(expected.value)
