"""The provider's own schema rules (ValidateFunc), one accepted and one refused edge each."""

from __future__ import annotations

import pytest

from mns_callback_flow import provider_limits
from mns_callback_flow.provider_limits import refusals

V3 = "alicloud:fc/v3Function:V3Function"


@pytest.mark.parametrize(("token", "input_", "accepted", "refused", "argument"), [
    (V3, "functionName", "a_B-9", "a.b", "alicloud_fcv3_function.function_name"),
    (V3, "functionName", "x", "", "alicloud_fcv3_function.function_name"),
    (V3, "runtime", "python3.12", "python3.11", "alicloud_fcv3_function.runtime"),
    (V3, "cpu", 0.05, 0.04, "alicloud_fcv3_function.cpu"),
    (V3, "cpu", 16, 16.01, "alicloud_fcv3_function.cpu"),
    (V3, "memorySize", 64, 63, "alicloud_fcv3_function.memory_size"),
    (V3, "memorySize", 32768, 32769, "alicloud_fcv3_function.memory_size"),
    (V3, "timeout", 0, -1, "alicloud_fcv3_function.timeout"),
    (V3, "timeout", 86400, 86401, "alicloud_fcv3_function.timeout"),
    ("alicloud:fc/service:Service", "name", "s" * 128, "s" * 129, "alicloud_fc_service.name"),
    ("alicloud:fc/function:Function", "name", "f", "", "alicloud_fc_function.name"),
    ("alicloud:fc/function:Function", "memorySize", 128, 127, "alicloud_fc_function.memory_size"),
    ("alicloud:fc/trigger:Trigger", "name", "t" * 128, "t" * 129, "alicloud_fc_trigger.name"),
    ("alicloud:fc/trigger:Trigger", "type", "http", "HTTP", "alicloud_fc_trigger.type"),
    ("alicloud:fc/trigger:Trigger", "config", '{"authType":"anonymous"}', "{authType}", "alicloud_fc_trigger.config"),
    ("alicloud:fnf/flow:Flow", "type", "FDL", "fdl", "alicloud_fnf_flow.type"),
    ("alicloud:ram/role:Role", "assumeRolePolicyDocument", "{}", "{", "alicloud_ram_role.assume_role_policy_document"),
    ("alicloud:ram/policy:Policy", "policyDocument", '{"Version":"1"}', "", "alicloud_ram_policy.policy_document"),
    ("alicloud:ram/rolePolicyAttachment:RolePolicyAttachment", "policyType", "Custom", "custom",
     "alicloud_ram_role_policy_attachment.policy_type"),
])
def test_rule_edges(token: str, input_: str, accepted: object, refused: object, argument: str) -> None:
    assert refusals(token, {input_: accepted}) == []
    [message] = refusals(token, {input_: refused})
    assert message.startswith(f"{input_}={refused!r}: ")
    assert argument in message and provider_limits.PROVIDER_VERSION in message


@pytest.mark.parametrize("value", [True, "256", float("inf")])
def test_a_number_rule_refuses_what_is_not_a_number(value: object) -> None:
    assert len(refusals(V3, {"memorySize": value})) == 1


def test_unset_inputs_are_not_checked() -> None:
    assert refusals(V3, {"memorySize": None, "cpu": None}) == []


def test_resources_without_rules_and_unknown_types() -> None:
    assert refusals("alicloud:message/serviceTopic:ServiceTopic", {"topicName": "_anything"}) == []
    with pytest.raises(KeyError, match="no provider rules"):
        refusals("alicloud:oss/bucket:Bucket", {})


def test_every_rule_names_its_source_file() -> None:
    for rules in provider_limits.RULES_BY_TYPE.values():
        for rule in rules:
            assert provider_limits.source(rule.resource).endswith(f"resource_alicloud_{rule.resource}.go")
            assert rule.expected
