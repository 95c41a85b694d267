"""The CrossGuard policy pack (policy/): each rule on the render, and the pack's wiring."""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
from pathlib import Path

import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from render_samples import find

from infra.synth import render

ROOT = Path(__file__).resolve().parent.parent


def _load_pack():
    """Import policy/__main__.py by path: defines the policies, starts no server.

    Its folder goes first on the path, as the policy host's runpy.run_path(<folder>) puts it.
    """
    import sys

    if str(ROOT / "policy") not in sys.path:
        sys.path.insert(0, str(ROOT / "policy"))
    spec = importlib.util.spec_from_file_location("mns_callback_flow_policy_pack", ROOT / "policy" / "__main__.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PACK = _load_pack()
rules = PACK.rules


@functools.cache
def _render(*overrides: str) -> dict:
    return render("dev", overrides)


def default_render(*overrides: str) -> dict:
    """The real offline render of the dev stack (a copy the test may alter)."""
    return copy.deepcopy(_render(*overrides))


def fc2_render() -> dict:
    return default_render("functionCompute=2.0")


def violations(render: dict) -> list[tuple[str, str, str]]:
    return [(v.policy, v.resource, v.message) for v in rules.check_render(render)]


def _policy_doc(res: dict) -> dict:
    return json.loads(res["inputs"]["policyDocument"])


def _set_policy_doc(res: dict, doc: dict) -> None:
    res["inputs"]["policyDocument"] = json.dumps(doc, separators=(",", ":"))


def test_default_render_has_no_violations():
    render = default_render()
    assert {r["type"] for r in render["resources"]} >= {
        rules.RAM_POLICY, rules.FNF_FLOW, rules.FC3_FUNCTION, rules.FC3_TRIGGER}
    assert violations(render) == []


def test_fc2_render_has_no_violations():
    render = fc2_render()
    assert {r["type"] for r in render["resources"]} >= {rules.FC2_FUNCTION, rules.FC2_TRIGGER}
    assert violations(render) == []


def _publish_policy(render: dict) -> dict:
    return find(render, rules.RAM_POLICY, "callback-flow-policy")


def test_wildcard_action_is_caught():
    render = default_render()
    res = _publish_policy(render)
    doc = _policy_doc(res)
    doc["Statement"][0]["Action"] = ["mns:*"]
    _set_policy_doc(res, doc)
    [(policy, name, message)] = violations(render)
    assert (policy, name) == (rules.NO_WILDCARD_RAM, res["name"])
    assert "mns:*" in message and "Fix: name each action" in message


def test_wildcard_resource_on_a_scopable_action_is_caught():
    render = default_render()
    res = _publish_policy(render)
    doc = _policy_doc(res)
    doc["Statement"][0]["Resource"] = "*"
    _set_policy_doc(res, doc)
    [(policy, _, message)] = violations(render)
    assert policy == rules.NO_WILDCARD_RAM
    assert "mns:PublishMessage" in message and "scope 'Resource'" in message


def test_wildcard_resource_is_allowed_for_the_unscopable_actions_only():
    from mns_callback_flow.policies import UNSCOPABLE_ACTIONS

    render = default_render()
    res = _publish_policy(render)
    listed = {"Action": list(UNSCOPABLE_ACTIONS), "Effect": "Allow", "Resource": "*"}
    _set_policy_doc(res, {"Statement": [listed], "Version": "1"})
    assert violations(render) == []
    listed["Action"].append("fnf:StopExecution")
    _set_policy_doc(res, {"Statement": [listed], "Version": "1"})
    [(policy, _, message)] = violations(render)
    assert policy == rules.NO_WILDCARD_RAM and "fnf:StopExecution" in message
    # The fix names exactly the documented list.
    assert ("only fnf:ReportTaskSucceeded, fnf:ReportTaskFailed, fnf:StartExecution, fnf:DescribeExecution, "
            "which support no resource scoping") in message


@pytest.mark.parametrize("action", ["fnf:StopExecution", "mns:PublishMessage", "fnf:ListExecutions"])
def test_wildcard_resource_on_an_unlisted_action_is_caught(action):
    render = default_render()
    res = _publish_policy(render)
    _set_policy_doc(res, {"Statement": [{"Action": [action], "Effect": "Allow", "Resource": "*"}], "Version": "1"})
    [(policy, name, message)] = violations(render)
    assert (policy, name) == (rules.NO_WILDCARD_RAM, res["name"])
    assert f"wildcard resource '*' for {action}" in message


def test_the_wildcard_rule_describes_the_documented_list():
    from mns_callback_flow.policies import UNSCOPABLE_ACTIONS

    [policy] = [p for p in PACK.POLICIES if p.name == rules.NO_WILDCARD_RAM]
    assert all(action in policy.description for action in UNSCOPABLE_ACTIONS)


@pytest.mark.parametrize("policy_type", ["System", "system"])
def test_a_system_policy_attachment_is_caught(policy_type):
    # The console sample's grant: a whole-service System policy, no document in the stack to check.
    render = default_render()
    attachment = find(render, rules.RAM_ATTACHMENTS[0], "callback-flow-policy-attachment")
    attachment["inputs"].update(policyName="AliyunMNSFullAccess", policyType=policy_type)
    [(policy, name, message)] = violations(render)
    assert (policy, name) == (rules.NO_WILDCARD_RAM, attachment["name"])
    assert "'AliyunMNSFullAccess'" in message and "Fix: attach a Custom policy" in message


def test_non_json_policy_document_is_caught():
    render = default_render()
    _publish_policy(render)["inputs"]["policyDocument"] = "{not json"
    [(policy, _, message)] = violations(render)
    assert policy == rules.NO_WILDCARD_RAM and "not JSON" in message


@pytest.mark.parametrize("value", ["false", "False"])
def test_anonymous_trigger_on_unverified_function_is_caught(value):
    render = default_render()
    find(render, rules.FC3_FUNCTION)["inputs"]["environmentVariables"]["MNS_VERIFY_SIGNATURE"] = value
    [(policy, name, message)] = violations(render)
    assert (policy, name) == (rules.ANONYMOUS_NEEDS_SIGNATURE, find(render, rules.FC3_TRIGGER)["name"])
    assert "MNS_VERIFY_SIGNATURE=false" in message and "Fix: turn the check back on (config verifySignature=true" in message


@pytest.mark.parametrize("render_of, function_type, trigger_type", [
    (lambda: default_render(), rules.FC3_FUNCTION, rules.FC3_TRIGGER),
    (lambda: fc2_render(), rules.FC2_FUNCTION, rules.FC2_TRIGGER),
], ids=["fc3", "fc2"])
@pytest.mark.parametrize("change", [
    {"MNS_TOPIC_OWNER": None}, {"MNS_TOPIC_NAME": None}, {"MNS_TOPIC_NAME": "  "},
], ids=["no-owner", "no-name", "blank-name"])
def test_anonymous_trigger_on_a_function_not_bound_to_its_topic_is_caught(render_of, function_type, trigger_type,
                                                                          change):
    render = render_of()
    environment = find(render, function_type)["inputs"]["environmentVariables"]
    for key, value in change.items():
        if value is None:
            del environment[key]
        else:
            environment[key] = value
    [(policy, name, message)] = violations(render)
    assert (policy, name) == (rules.ANONYMOUS_NEEDS_TOPIC_BINDING, find(render, trigger_type)["name"])
    assert "MNS_TOPIC_OWNER and MNS_TOPIC_NAME" in message and "any account can subscribe" in message


def test_the_topic_binding_validator_reports_the_trigger_urn():
    render = default_render()
    del find(render, rules.FC3_FUNCTION)["inputs"]["environmentVariables"]["MNS_TOPIC_OWNER"]
    resources = [PolicyResource(r["type"], r["inputs"], f"urn:{r['name']}", r["name"], None, None, None, [], {})
                 for r in render["resources"]]
    reported = []
    _policy(rules.ANONYMOUS_NEEDS_TOPIC_BINDING).validate(
        StackValidationArgs(resources), lambda message, urn=None: reported.append((message, urn)))
    assert [urn for _, urn in reported] == [f"urn:{find(render, rules.FC3_TRIGGER)['name']}"]


def test_trigger_on_another_function_or_with_auth_is_fine():
    render = default_render()
    fn = find(render, rules.FC3_FUNCTION)
    fn["inputs"]["environmentVariables"]["MNS_VERIFY_SIGNATURE"] = "false"
    trigger = find(render, rules.FC3_TRIGGER)
    trigger["inputs"]["functionName"] = "some-other-function"
    assert violations(render) == []
    trigger["inputs"]["functionName"] = fn["inputs"]["functionName"]
    trigger["inputs"]["triggerConfig"] = json.dumps({"authType": "function", "methods": ["POST"]})
    assert violations(render) == []


def test_trigger_whose_function_is_unknown_fails_closed():
    render = default_render()
    fn = find(render, rules.FC3_FUNCTION)
    fn["inputs"]["environmentVariables"]["MNS_VERIFY_SIGNATURE"] = "false"
    del find(render, rules.FC3_TRIGGER)["inputs"]["functionName"]
    assert [v[0] for v in violations(render)] == [rules.ANONYMOUS_NEEDS_SIGNATURE]


def test_fc2_anonymous_trigger_on_unverified_function_is_caught():
    render = fc2_render()
    find(render, rules.FC2_FUNCTION)["inputs"]["environmentVariables"]["MNS_VERIFY_SIGNATURE"] = "false"
    assert [(v[0], v[1]) for v in violations(render)] == [
        (rules.ANONYMOUS_NEEDS_SIGNATURE, find(render, rules.FC2_TRIGGER)["name"])]


def _flow_without_timeout(render: dict) -> dict:
    flow = find(render, rules.FNF_FLOW)
    flow["inputs"]["definition"] = "\n".join(
        line for line in flow["inputs"]["definition"].splitlines() if "timeoutSeconds" not in line)
    return flow


def test_wait_for_callback_without_timeout_is_caught():
    render = default_render()
    flow = _flow_without_timeout(render)
    [(policy, name, message)] = violations(render)
    assert (policy, name) == (rules.CALLBACK_TIMEOUT, flow["name"])
    assert "'mns-topic-task'" in message and "Fix: set timeoutSeconds" in message


def test_nested_wait_for_callback_without_timeout_is_caught():
    definition = (
        "version: v1\ntype: flow\nsteps:\n  - type: parallel\n    name: fan\n    branches:\n"
        "      - steps:\n          - type: task\n            name: inner\n            pattern: waitForCallback\n"
        "            resourceArn: acs:mns:::/topics/t/messages\n            timeoutSeconds: 0\n")
    msgs = rules.callback_timeouts(rules.FNF_FLOW, {"definition": definition})
    assert len(msgs) == 1 and "'inner'" in msgs[0] and "timeoutSeconds=0" in msgs[0]


# ---- both flow specs: the callback timeout and the token in the message ------------------


def test_cloudflow_render_has_no_violations():
    render = default_render("flowSpec=cloudflow")
    flow = find(render, rules.FNF_FLOW)
    assert flow["inputs"]["type"] == "DEFAULT" and "WaitForCustomCallback" in flow["inputs"]["definition"]
    assert violations(render) == []


def _edit_definition(render: dict, edit) -> dict:
    flow = find(render, rules.FNF_FLOW)
    flow["inputs"]["definition"] = edit(flow["inputs"]["definition"])
    return flow


@pytest.mark.parametrize("edit, shown", [
    (lambda text: "\n".join(line for line in text.splitlines() if "Timeout:" not in line), "Timeout=None"),
    (lambda text: text.replace("Timeout: 600", "Timeout: 0"), "Timeout=0"),
    (lambda text: text.replace("Timeout: 600", "Timeout: 604801"), "Timeout=604801"),
    (lambda text: text.replace("Timeout: 600", "Timeout.$: $Input.timeout"), "Timeout='$Input.timeout'"),
], ids=["absent", "zero", "too-long", "expression"])
def test_cloudflow_callback_state_without_a_fixed_timeout_is_caught(edit, shown):
    render = default_render("flowSpec=cloudflow")
    flow = _edit_definition(render, edit)
    [(policy, name, message)] = violations(render)
    assert (policy, name) == (rules.CALLBACK_TIMEOUT, flow["name"])
    assert "'mns-topic-task'" in message and shown in message and "Fix: set Timeout" in message


def test_cloudflow_timeout_as_a_string_of_digits_is_accepted():
    render = default_render("flowSpec=cloudflow")
    _edit_definition(render, lambda text: text.replace("Timeout: 600", "Timeout: '600'"))
    assert violations(render) == []


def test_cloudflow_message_without_the_token_is_caught():
    render = default_render("flowSpec=cloudflow")
    flow = _edit_definition(render, lambda text: "\n".join(
        line for line in text.splitlines() if "TaskToken" not in line))
    [(policy, name, message)] = violations(render)
    assert (policy, name) == (rules.CALLBACK_TOKEN, flow["name"])
    assert "taskToken.$: $Context.Current.TaskToken" in message and "Fix:" in message


def test_fdl_message_without_the_token_is_caught():
    render = default_render()
    flow = _edit_definition(render, lambda text: text.replace("source: $context.task.token", "source: $input.x"))
    [(policy, name, message)] = violations(render)
    assert (policy, name) == (rules.CALLBACK_TOKEN, flow["name"])
    assert "$context.task.token" in message and "'mns-topic-task'" in message


def test_fdl_message_that_publishes_only_a_field_is_caught():
    render = default_render()
    _edit_definition(render, lambda text: text.replace("MessageBody: $", "MessageBody: $.messageBody"))
    assert [p for p, _, _ in violations(render)] == [rules.CALLBACK_TOKEN]


INNER_CALLBACK = (
    "StartAt: inner\n{pad}States:\n{pad}  - Type: Task\n{pad}    Name: inner\n{pad}    Action: MNS:SendMessage\n"
    "{pad}    TaskMode: WaitForCustomCallback\n{pad}    Parameters:\n"
    "{pad}      resourceArn: acs:mns:cn-hangzhou:1:/topics/t/messages\n{pad}      message: {{body: x}}\n"
    "{pad}    End: true\n")
# A callback task nested in a Parallel's branch, or in a Map's sub-flow: `Processor` on
# CloudFlow's Map page, `ItemProcessor` in one translation of that page.
NESTINGS = {
    "parallel": "  - Type: Parallel\n    Name: outer\n    End: true\n    Branches:\n      - "
                + INNER_CALLBACK.format(pad="        "),
    "map-processor": "  - Type: Map\n    Name: outer\n    End: true\n    Processor:\n      "
                     + INNER_CALLBACK.format(pad="      "),
    "map-item-processor": "  - Type: Map\n    Name: outer\n    End: true\n    ItemProcessor:\n      "
                          + INNER_CALLBACK.format(pad="      "),
}


@pytest.mark.parametrize("nesting", sorted(NESTINGS))
def test_nested_cloudflow_callback_without_token_or_timeout_is_caught(nesting):
    definition = "Type: StateMachine\nSpecVersion: v1\nStartAt: outer\nStates:\n" + NESTINGS[nesting]
    inputs = {"definition": definition}
    assert len(rules.callback_timeouts(rules.FNF_FLOW, inputs)) == 1
    [token] = rules.callback_tokens(rules.FNF_FLOW, inputs)
    assert "'inner'" in token


def test_code_without_checksum_is_caught():
    render = default_render()
    fn = find(render, rules.FC3_FUNCTION)
    del fn["inputs"]["code"]["checksum"]
    [(policy, name, message)] = violations(render)
    assert (policy, name) == (rules.CHECKSUMMED_CODE, fn["name"])
    assert "code.checksum is missing" in message and "CRC-64/XZ" in message


def test_fc2_code_without_checksum_is_caught():
    render = fc2_render()
    fn = find(render, rules.FC2_FUNCTION)
    del fn["inputs"]["codeChecksum"]
    [(policy, name, message)] = violations(render)
    assert (policy, name) == (rules.CHECKSUMMED_CODE, fn["name"])
    assert "codeChecksum is missing" in message


def test_code_without_archive_is_caught():
    fn_inputs = {"code": {"checksum": "1"}}
    [message] = rules.code_checksum(rules.FC3_FUNCTION, fn_inputs)
    assert "no archive" in message
    assert rules.code_checksum(rules.FC2_FUNCTION, {"filename": "a.zip"}) == [
        ("codeChecksum is missing. Fix: set codeChecksum to the CRC-64/XZ of the zip "
        "as an unsigned decimal (mns_callback_flow/packaging.py computes it).")]


# ---- the pack itself, through pulumi_policy's own argument classes ----------


def test_pack_has_every_rule_and_each_is_mandatory():
    names = {p.name for p in PACK.POLICIES}
    assert names == {rules.NO_WILDCARD_RAM, rules.CALLBACK_TIMEOUT, rules.CALLBACK_TOKEN, rules.CHECKSUMMED_CODE,
                     rules.ANONYMOUS_NEEDS_SIGNATURE, rules.ANONYMOUS_NEEDS_TOPIC_BINDING}
    assert all(p.enforcement_level == EnforcementLevel.MANDATORY for p in PACK.POLICIES)
    assert all(len(p.description) > 20 for p in PACK.POLICIES)


def _policy(name):
    return next(p for p in PACK.POLICIES if p.name == name)


def test_resource_validators_report_through_pulumi_policy_args():
    render = default_render()
    flow = _flow_without_timeout(render)
    policy = _policy(rules.CALLBACK_TIMEOUT)
    assert isinstance(policy, ResourceValidationPolicy)
    reported = []
    args = ResourceValidationArgs(flow["type"], flow["inputs"], "urn:pulumi:dev::p::t::flow", flow["name"], None, None)
    policy.validate(args, lambda message, urn=None: reported.append((message, urn)))
    assert len(reported) == 1 and "Fix: set timeoutSeconds" in reported[0][0]
    # a clean resource reports nothing
    clean = find(default_render(), rules.FNF_FLOW)
    reported.clear()
    policy.validate(ResourceValidationArgs(clean["type"], clean["inputs"], "u", "n", None, None),
                    lambda message, urn=None: reported.append(message))
    assert reported == []


def test_stack_validator_reports_the_trigger_urn():
    render = default_render()
    find(render, rules.FC3_FUNCTION)["inputs"]["environmentVariables"]["MNS_VERIFY_SIGNATURE"] = "false"
    resources = [PolicyResource(r["type"], r["inputs"], f"urn:{r['name']}", r["name"], None, None, None, [], {})
                 for r in render["resources"]]
    policy = _policy(rules.ANONYMOUS_NEEDS_SIGNATURE)
    assert isinstance(policy, StackValidationPolicy)
    reported = []
    policy.validate(StackValidationArgs(resources), lambda message, urn=None: reported.append((message, urn)))
    assert [urn for _, urn in reported] == [f"urn:{find(render, rules.FC3_TRIGGER)['name']}"]


def test_the_policy_host_entry_point_builds_a_valid_pack(monkeypatch):
    """Run policy/ as the Pulumi policy host does (runpy on the folder, as __main__).

    PolicyPack validates its arguments, then starts the analyzer's gRPC server and
    never returns; the server start is replaced by a sentinel to stop right there.
    """
    import runpy

    import pulumi_policy.policy as policy_module

    class ServerStarted(Exception):
        pass

    def server(*args, **kwargs):
        raise ServerStarted

    monkeypatch.setattr(policy_module.grpc, "server", server)
    with pytest.raises(ServerStarted):
        runpy.run_path(str(ROOT / "policy"), run_name="__main__")


def test_verify_signature_off_in_config_is_caught_on_the_real_render():
    render = default_render("verifySignature=false")
    assert [(v[0], v[1]) for v in violations(render)] == [
        (rules.ANONYMOUS_NEEDS_SIGNATURE, find(render, rules.FC3_TRIGGER)["name"])]
