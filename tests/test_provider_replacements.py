"""The provider's force-new table (infra/provider_replacements.py) against what the package declares."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infra import provider_replacements as pr
from infra.synth import render

ROOT = Path(__file__).resolve().parent.parent

# Every variant of the stack that declares a different set of resource types.
VARIANTS = [
    (),
    ("functionCompute=2.0",),
    ("logProject=p-abc", "logStore=s-abc"),
    ("createTopic=false", "topicName=t"),
]


@pytest.fixture(scope="module")
def declared() -> dict[str, set[str]]:
    """{type token: every input name it is given} over all variants of the dev stack."""
    types: dict[str, set[str]] = {}
    for overrides in VARIANTS:
        for resource in render("dev", overrides)["resources"]:
            types.setdefault(resource["type"], set()).update(resource["inputs"])
    return types


def test_every_declared_provider_type_has_a_replacement_rule(declared):
    missing = sorted(t for t in declared if not t.startswith(pr.COMPONENT_PREFIX) and t not in pr.REPLACEMENT_RULES)
    assert not missing, f"resource types without ForceNew fields in infra/provider_replacements.py: {missing}"


def test_the_variants_reach_both_function_compute_generations(declared):
    assert {"alicloud:fc/v3Function:V3Function", "alicloud:fc/function:Function", "alicloud:fc/service:Service",
            "alicloud:fc/trigger:Trigger"} <= set(declared)


def test_an_unknown_type_is_an_error_naming_the_table():
    with pytest.raises(KeyError, match="alicloud:oss/bucket:Bucket.*provider_replacements"):
        pr.rule_for("alicloud:oss/bucket:Bucket")


def test_identity_inputs_are_force_new_and_set_by_the_package(declared):
    for token, rule in pr.REPLACEMENT_RULES.items():
        assert set(rule.identity) <= rule.force_new, token
        if token in declared:
            assert set(rule.identity) <= declared[token], (token, declared[token])


def test_every_rule_is_listed_in_the_platform_facts_with_its_source():
    facts = (ROOT / "docs" / "platform-facts.md").read_text(encoding="utf-8")
    section = facts.split("## Provider replacements (ForceNew)", 1)[1].split("\n## ", 1)[0]
    for token, rule in pr.REPLACEMENT_RULES.items():
        row = next((line for line in section.splitlines() if f"`{token}`" in line), None)
        assert row, f"{token} missing from docs/platform-facts.md"
        assert rule.source.split("@")[0] in row and pr.TERRAFORM_PROVIDER_VERSION in section
        for field in rule.force_new:
            assert re.search(rf"`{field}`", row), (token, field)


def test_code_and_definition_changes_do_not_replace():
    # zip_file / code and definition carry no ForceNew in the provider schema
    assert pr.forcing_inputs("alicloud:fc/v3Function:V3Function", {"code", "memorySize"}) == []
    assert pr.forcing_inputs("alicloud:fnf/flow:Flow", {"definition", "roleArn"}) == []
    assert pr.forcing_inputs("alicloud:fnf/flow:Flow", {"name", "definition"}) == ["name"]


def test_replacement_order():
    flow = "alicloud:fnf/flow:Flow"
    assert pr.replacement_order(flow, {"name": "a"}, {"name": "b"}) == pr.PROVIDER_DELETES_FIRST
    topic = "alicloud:message/serviceTopic:ServiceTopic"
    assert pr.replacement_order(topic, {"topicName": "a"}, {"topicName": "b"}) == pr.CREATE_FIRST
    same = {"topicName": "a", "topicType": "x"}
    assert pr.replacement_order(topic, same, {**same, "topicType": "y"}) == pr.NAME_CANNOT_COEXIST
    role = "alicloud:ram/role:Role"
    # the deprecated `name` is auto-named by the bridge: roleName alone does not make it delete first
    assert pr.replacement_order(role, {"roleName": "a"}, {"roleName": "b"}) == pr.CREATE_FIRST
    assert pr.replacement_order(role, {"name": "a"}, {"name": "b"}) == pr.PROVIDER_DELETES_FIRST


def _snake(name: str) -> str:
    return re.sub(r"[A-Z]", lambda m: "_" + m.group(0).lower(), name)


@pytest.mark.parametrize("token", sorted(pr.REPLACEMENT_RULES))
def test_every_force_new_field_is_an_input_of_the_installed_sdk(token):
    """The table's Pulumi names are the installed pulumi-alicloud's own inputs for that type token."""
    import importlib
    import inspect

    _, module_path, class_name = token.split(":")
    cls = getattr(importlib.import_module(f"pulumi_alicloud.{module_path.split('/')[0]}"), class_name)
    source = inspect.getsource(cls)
    assert f"'{token}'" in source or f'"{token}"' in source
    params = set(inspect.signature(cls._internal_init).parameters)
    missing = sorted(f for f in pr.REPLACEMENT_RULES[token].force_new if _snake(f) not in params)
    assert not missing, (token, missing)
