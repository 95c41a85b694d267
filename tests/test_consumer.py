"""examples/consumer: a second project that reads the pattern's outputs through a StackReference."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pulumi
import pytest

ROOT = Path(__file__).resolve().parent.parent
CONSUMER = ROOT / "examples" / "consumer"
sys.path.insert(0, str(CONSUMER))

import caller_access as access

PROJECT = "mns-callback-flow-consumer"
PATTERN_OUTPUTS = {
    "region": "cn-hangzhou",
    "accountId": "1234567890123456",
    "topicName": "demo-topic",
    "flowName": "demo-flow",
    "functionName": "demo-callback",
    "triggerUrl": "https://demo.cn-hangzhou.fcapp.run",
    "flowRoleArn": "acs:ram::1234567890123456:role/demo-flow",
    "functionRoleArn": "acs:ram::1234567890123456:role/demo-fn",
}


class Mocks(pulumi.runtime.Mocks):
    """Answers the StackReference with the pattern's outputs; records every resource."""

    def __init__(self, outputs: dict) -> None:
        self.outputs = outputs
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.resources.append(args)
        if args.typ == "pulumi:pulumi:StackReference":
            return args.name, {"name": args.name, "outputs": self.outputs, "secretOutputNames": []}
        state = dict(args.inputs)
        if args.typ == "alicloud:ram/role:Role":
            state["arn"] = f"acs:ram::{self.outputs['accountId']}:role/{args.inputs['roleName']}"
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


def _as_list(value) -> list:
    return [value] if isinstance(value, str) else list(value)


def _run_program(outputs: dict, config: dict) -> tuple[Mocks, dict, dict]:
    """Run examples/consumer/__main__.py under mocks; return the mocks and its exports."""
    mocks = Mocks(outputs)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack="test", preview=False)
    pulumi.runtime.set_all_config({f"{PROJECT}:{k}": v for k, v in config.items()})
    exported: dict = {}
    real_export = pulumi.export

    def export(name, value):
        exported[name] = value
        real_export(name, value)

    pulumi.export = export
    try:
        namespace = runpy.run_path(str(CONSUMER / "__main__.py"), run_name="__main__")
    finally:
        pulumi.export = real_export
    return mocks, namespace, exported


def _resolve(outputs: dict) -> dict:
    """Wait for every export's value; fails if any apply never ran."""
    seen: dict = {}

    @pulumi.runtime.test
    def collect():
        keys = sorted(outputs)
        return pulumi.Output.all(*[outputs[k] for k in keys]).apply(lambda vals: seen.update(zip(keys, vals)))

    collect()
    assert sorted(seen) == sorted(outputs), "not every export resolved"
    return seen


@pytest.fixture(autouse=True)
def _reset_config():
    yield
    pulumi.runtime.set_all_config({})


def test_program_reads_the_stack_reference_and_scopes_the_role_to_the_flow():
    mocks, _namespace, exported = _run_program(PATTERN_OUTPUTS, {"patternStack": "acme/mns-callback-flow/dev"})
    values = _resolve(exported)
    refs = [r for r in mocks.resources if r.typ == "pulumi:pulumi:StackReference"]
    assert [r.name for r in refs] == ["acme/mns-callback-flow/dev"]
    by_type = {r.typ: r for r in mocks.resources}
    role = by_type["alicloud:ram/role:Role"]
    assert role.inputs["roleName"] == "demo-flow-caller"
    trust = json.loads(role.inputs["assumeRolePolicyDocument"])
    assert trust["Statement"] == [{"Action": "sts:AssumeRole", "Effect": "Allow",
                                   "Principal": {"RAM": ["acs:ram::1234567890123456:root"]}}]
    policy = json.loads(by_type["alicloud:ram/policy:Policy"].inputs["policyDocument"])
    actions = sorted({a for s in policy["Statement"] for a in _as_list(s["Action"])})
    assert actions == ["fnf:DescribeExecution", "fnf:StartExecution"]
    resources = {r for s in policy["Statement"] for r in _as_list(s["Resource"])}
    assert resources and all(r.startswith("acs:fnf:cn-hangzhou:1234567890123456:flow/demo-flow") for r in resources)
    assert "*" not in resources
    attach = by_type["alicloud:ram/rolePolicyAttachment:RolePolicyAttachment"]
    assert attach.inputs["roleName"] == "demo-flow-caller"
    assert attach.inputs["policyType"] == "Custom"
    for r in mocks.resources:
        if r.typ.startswith("alicloud:"):
            assert r.name.startswith("caller-"), r.name

    assert values["flowName"] == "demo-flow"
    assert values["region"] == "cn-hangzhou"
    assert values["roleArn"] == "acs:ram::1234567890123456:role/demo-flow-caller"
    assert values["startCommand"] == (
        "aliyun fnf StartExecution --region cn-hangzhou --FlowName demo-flow "
        "--Input '{\"messageBody\":\"hello world\"}'")
    assert values["assumeRoleCommand"] == (
        "aliyun sts AssumeRole --RoleArn acs:ram::1234567890123456:role/demo-flow-caller "
        "--RoleSessionName flow-caller")


def test_configured_principal_and_role_name_are_used():
    mocks, _, exported = _run_program(PATTERN_OUTPUTS, {
        "patternStack": "acme/mns-callback-flow/prod",
        "trustedPrincipal": "acs:ram::1234567890123456:role/ci-runner",
        "roleName": "ci-flow-caller",
    })
    values = _resolve(exported)
    role = next(r for r in mocks.resources if r.typ == "alicloud:ram/role:Role")
    assert json.loads(role.inputs["assumeRolePolicyDocument"])["Statement"][0]["Principal"] == {
        "RAM": ["acs:ram::1234567890123456:role/ci-runner"]}
    assert values["roleArn"].endswith(":role/ci-flow-caller")


def test_missing_required_output_fails_naming_it():
    outputs = {k: v for k, v in PATTERN_OUTPUTS.items() if k != "flowName"}
    _, _, exported = _run_program(outputs, {"patternStack": "acme/mns-callback-flow/dev"})
    with pytest.raises(Exception, match="flowName"):
        _resolve(exported)


def test_bad_stack_name_is_a_clear_config_error():
    with pytest.raises(access.ConsumerConfigError, match=r"patternStack='dev'.*<org>/<project>/<stack>"):
        _run_program(PATTERN_OUTPUTS, {"patternStack": "dev"})


def test_pure_helpers_validate_their_input():
    with pytest.raises(access.ConsumerConfigError, match="trustedPrincipal"):
        access.trust_policy("*")
    with pytest.raises(access.ConsumerConfigError, match="roleName"):
        access.caller_role_name("f", "bad name!")
    with pytest.raises(access.ConsumerConfigError, match="accountId"):
        access.account_root("12ab")
    long_name = access.caller_role_name("f_" + "x" * 80)
    assert len(long_name) == 64 and "_" not in long_name
    assert long_name != access.caller_role_name("f_" + "x" * 81)
