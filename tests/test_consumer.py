"""examples/consumer: a second project that reads the pattern's outputs through a StackReference."""

from __future__ import annotations

import contextvars
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

from infra.offline_cloud import RecordingMonitor, run_offline

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


class PatternCloud(pulumi.runtime.Mocks):
    """Answers the StackReference with the pattern's outputs, and RAM roles with an ARN."""

    def __init__(self, outputs: dict) -> None:
        self.outputs = outputs
        self.references: list[str] = []  # read, not registered: the monitor does not see them

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        if args.typ == "pulumi:pulumi:StackReference":
            self.references.append(args.name)
            return args.name, {"name": args.name, "outputs": self.outputs, "secretOutputNames": []}
        state = dict(args.inputs)
        if args.typ == "alicloud:ram/role:Role":
            state["arn"] = f"acs:ram::{self.outputs['accountId']}:role/{args.inputs['roleName']}"
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        raise KeyError(f"the consumer makes no invoke, got {args.token!r}")


def _as_list(value) -> list:
    return [value] if isinstance(value, str) else list(value)


def _run_program(outputs: dict, config: dict) -> tuple[RecordingMonitor, dict]:
    """Run examples/consumer/__main__.py under mocks; return what it registered and its exports.

    ``run_offline`` waits for every registration and export (their errors
    propagate); a fresh context keeps runtime state from leaking between runs.
    """
    monitor = RecordingMonitor(PatternCloud(outputs))

    def program():
        runpy.run_path(str(CONSUMER / "__main__.py"), run_name="__main__")

    _, exported, _ = contextvars.Context().run(
        run_offline, program, project=PROJECT, stack="test",
        config={f"{PROJECT}:{k}": v for k, v in config.items()}, region="cn-hangzhou", monitor=monitor,
    )
    return monitor, exported


def test_program_reads_the_stack_reference_and_grants_what_works():
    monitor, values = _run_program(PATTERN_OUTPUTS, {"patternStack": "acme/mns-callback-flow/dev"})
    assert monitor.mocks.references == ["acme/mns-callback-flow/dev"]
    role = monitor.one("alicloud:ram/role:Role")
    assert role.inputs["roleName"] == "demo-flow-caller"
    assert role.parent == "mns-callback-flow-consumer:index:FlowCaller::caller"
    trust = json.loads(role.inputs["assumeRolePolicyDocument"])
    assert trust["Statement"] == [{"Action": "sts:AssumeRole", "Effect": "Allow",
                                   "Principal": {"RAM": ["acs:ram::1234567890123456:root"]}}]
    # The current API references list StartExecution and DescribeExecution with "All
    # Resources": a flow-scoped Resource would not fit them, so the grant is on "*".
    policy = json.loads(monitor.one("alicloud:ram/policy:Policy").inputs["policyDocument"])
    assert policy == {"Statement": [{"Action": ["fnf:StartExecution", "fnf:DescribeExecution"],
                                     "Effect": "Allow", "Resource": "*"}], "Version": "1"}
    assert "no resource scoping" in monitor.one("alicloud:ram/policy:Policy").inputs["description"]
    assert role.inputs["description"] == "Starts and describes executions of flow demo-flow."
    attach = monitor.one("alicloud:ram/rolePolicyAttachment:RolePolicyAttachment")
    assert attach.inputs["roleName"] == "demo-flow-caller"
    assert attach.inputs["policyName"] == "demo-flow-caller-start"
    assert attach.inputs["policyType"] == "Custom"
    assert sorted(r.name for r in monitor.registrations if r.type.startswith("alicloud:")) == [
        "caller-attachment", "caller-policy", "caller-role"]

    assert values == {
        "flowName": "demo-flow",
        "region": "cn-hangzhou",
        "roleArn": "acs:ram::1234567890123456:role/demo-flow-caller",
        "startCommand": ("aliyun fnf StartExecution --region cn-hangzhou --FlowName demo-flow "
                         "--Input '{\"messageBody\":\"hello world\"}'"),
        "assumeRoleCommand": ("aliyun sts AssumeRole --RoleArn acs:ram::1234567890123456:role/demo-flow-caller "
                              "--RoleSessionName flow-caller"),
    }


def test_the_policy_passes_the_pattern_policy_pack_check():
    from mns_callback_flow.policies import UNSCOPABLE_ACTIONS, wildcard_violations

    monitor, _ = _run_program(PATTERN_OUTPUTS, {"patternStack": "acme/mns-callback-flow/dev"})
    document = monitor.one("alicloud:ram/policy:Policy").inputs["policyDocument"]
    assert wildcard_violations(document) == []
    # ... because every action it grants on "*" is in the one documented list.
    for statement in json.loads(document)["Statement"]:
        if statement["Resource"] == "*":
            assert set(_as_list(statement["Action"])) <= set(UNSCOPABLE_ACTIONS)


def test_configured_principal_and_role_name_are_used():
    monitor, values = _run_program(PATTERN_OUTPUTS, {
        "patternStack": "acme/mns-callback-flow/prod",
        "trustedPrincipal": "acs:ram::1234567890123456:role/ci-runner",
        "roleName": "ci-flow-caller",
    })
    role = monitor.one("alicloud:ram/role:Role")
    assert json.loads(role.inputs["assumeRolePolicyDocument"])["Statement"][0]["Principal"] == {
        "RAM": ["acs:ram::1234567890123456:role/ci-runner"]}
    assert values["roleArn"] == "acs:ram::1234567890123456:role/ci-flow-caller"


def test_missing_required_output_fails_naming_it():
    outputs = {k: v for k, v in PATTERN_OUTPUTS.items() if k != "flowName"}
    with pytest.raises(KeyError, match="flowName"):
        _run_program(outputs, {"patternStack": "acme/mns-callback-flow/dev"})


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
