"""The CloudFlow document: content, byte stability, retry/catch/output translation, the
token check, and both builders held to the documented examples (tests/fixtures)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import yaml

from infra.config import ConfigError, full_key, settings_from_mapping
from localcloud import cloudflow, fdl
from mns_callback_flow.cloudflow_definition import (
    FLOW_TYPE,
    build_cloudflow_definition,
    cloudflow_definition_document,
    validate_cloudflow_definition,
)
from mns_callback_flow.flow_definition import FlowDefinitionError, build_flow_definition, validate_callback_step
from tests.flow_args import cloudflow_args

ACCOUNT = "1234567890123456"
FIXTURES = json.loads(
    (Path(__file__).parent / "fixtures" / "flow_documented_examples.json").read_text(encoding="utf-8"))
EXAMPLES = {example["name"]: example for example in FIXTURES["examples"]}


def _settings(**project: object):
    values = {"alicloud:region": "cn-hangzhou", full_key("topicName"): "demo-topic",
              full_key("namePrefix"): "demo", full_key("flowSpec"): "cloudflow"}
    values.update({full_key(k): v for k, v in project.items()})
    return settings_from_mapping(values)


def test_exact_text_of_the_plain_definition() -> None:
    assert build_cloudflow_definition(**cloudflow_args(_settings(taskTimeoutSeconds="600"), ACCOUNT)) == (
        "Type: StateMachine\n"
        "Name: demo-flow\n"
        "SpecVersion: v1\n"
        "StartAt: mns-topic-task\n"
        "States:\n"
        "  - Type: Task\n"
        "    Name: mns-topic-task\n"
        "    Action: MNS:SendMessage\n"
        "    TaskMode: WaitForCustomCallback\n"
        "    Timeout: 600\n"
        "    Parameters:\n"
        f"      resourceArn: acs:mns:cn-hangzhou:{ACCOUNT}:/topics/demo-topic/messages\n"
        "      message:\n"
        "        messageBody.$: $Input.messageBody\n"
        "        taskToken.$: $Context.Current.TaskToken\n"
        "    End: true\n"
    )
    assert FLOW_TYPE == "DEFAULT"


RULES = {
    "taskTimeoutSeconds": "120",
    "taskRetry": '[{"errors": ["FC.ResourceThrottled", "FnF.ALL"], "intervalSeconds": 2, "multiplier": 1.5,'
                 ' "maxIntervalSeconds": 30}, {"errors": ["FnF.TaskTimeout"], "maxAttempts": 1}]',
    "taskCatch": '[{"errors": ["FnF.TaskTimeout"], "status": "timeout"},'
                 ' {"errors": ["FnF.ALL"], "fail": {"error": "CallbackFailed", "cause": "the callback failed"}},'
                 ' {"errors": ["Other"], "fail": {"error": "E"}}]',
}


def test_retry_and_catch_are_translated_to_the_specs_fields() -> None:
    doc = cloudflow_definition_document(**cloudflow_args(_settings(**RULES), ACCOUNT))
    task, timeout_state, fail_state, bare_fail = doc["States"]
    assert task["Timeout"] == 120
    assert task["Retry"] == [
        {"Errors": ["FC.ResourceThrottled", "FnF.ALL"], "Description": "taskRetry rule 1", "MaxAttempts": 3,
         "IntervalSeconds": 2, "BackoffRate": 1.5, "MaxBackoffSeconds": 30},
        # FDL's multiplier defaults to 2; CloudFlow keeps the interval constant without BackoffRate.
        {"Errors": ["FnF.TaskTimeout"], "Description": "taskRetry rule 2", "MaxAttempts": 1,
         "IntervalSeconds": 1, "BackoffRate": 2},
    ]
    assert task["Catch"] == [
        {"Errors": ["FnF.TaskTimeout"], "Description": "taskCatch rule 1", "Next": "catch-1"},
        {"Errors": ["FnF.ALL"], "Description": "taskCatch rule 2", "Next": "catch-2"},
        {"Errors": ["Other"], "Description": "taskCatch rule 3", "Next": "catch-3"},
    ]
    assert task["End"] is True and list(task)[-1] == "End"
    assert timeout_state == {"Type": "Pass", "Name": "catch-1", "InputConstructor": {"status": "timeout"},
                             "End": True}
    assert fail_state == {"Type": "Fail", "Name": "catch-2", "Code": "CallbackFailed",
                          "Detail": "the callback failed"}
    assert bare_fail == {"Type": "Fail", "Name": "catch-3", "Code": "E", "Detail": "caught by catch-3"}


def test_output_mappings_become_the_output_constructor_in_order() -> None:
    s = _settings(taskOutputMappings='[{"target": "result", "source": "$local"},'
                                     ' {"target": "code", "source": "$local.detail.code"},'
                                     ' {"target": "body", "source": "$input.messageBody"},'
                                     ' {"target": "via", "source": "mns"}]')
    [task] = cloudflow_definition_document(**cloudflow_args(s, ACCOUNT))["States"]
    assert task["OutputConstructor"] == {"result.$": "$Output", "code.$": "$Output.detail.code",
                                         "body.$": "$Input.messageBody", "via": "mns"}
    assert list(task) == ["Type", "Name", "Action", "TaskMode", "Timeout", "Parameters", "OutputConstructor",
                          "End"]


def test_without_output_mappings_there_is_no_constructor_so_the_whole_output_is_the_states() -> None:
    [task] = cloudflow_definition_document(**cloudflow_args(_settings(), ACCOUNT))["States"]
    assert "OutputConstructor" not in task and "Retry" not in task and "Catch" not in task


def test_same_input_same_bytes_and_a_change_shows() -> None:
    first = build_cloudflow_definition(**cloudflow_args(_settings(**RULES), ACCOUNT))
    assert all(build_cloudflow_definition(**cloudflow_args(_settings(**RULES), ACCOUNT)) == first for _ in range(3))
    assert build_cloudflow_definition(**cloudflow_args(_settings(**{**RULES, "taskTimeoutSeconds": "121"}), ACCOUNT)) != first


def test_the_fdl_default_is_unchanged_by_the_new_key() -> None:
    fdl_settings = _settings(flowSpec="fdl")
    assert fdl_settings.flow_spec == "fdl"
    assert build_flow_definition(fdl_settings.callback_task).startswith("version: v1\ntype: flow\n")
    assert settings_from_mapping({"alicloud:region": "cn-hangzhou"}).flow_spec == "fdl"


# ---- config rules that only hold under cloudflow ---------------------------------------


@pytest.mark.parametrize("project, key, fragment", [
    ({"flowSpec": "asl"}, "flowSpec", "must be one of fdl, cloudflow"),
    # Without the dead-letter queue, whose own retention bound would refuse it first.
    ({"taskTimeoutSeconds": "604801", "deadLetterQueue": "false"}, "taskTimeoutSeconds",
     "with flowSpec=cloudflow at most 604800"),
    ({"taskOutputMappings": '[{"target": "s", "source": "$local.status"},'
                            ' {"target": "t", "source": "$context.task.token"}]'},
     "taskOutputMappings[1].source", "$context paths are FDL's only"),
])
def test_cloudflow_config_is_refused_by_name(project, key, fragment) -> None:
    with pytest.raises(ConfigError) as caught:
        _settings(**project)
    assert caught.value.key == full_key(key) and fragment in str(caught.value)


def test_the_same_values_are_fine_under_fdl() -> None:
    s = _settings(flowSpec="fdl", taskTimeoutSeconds="604801", deadLetterQueue="false",
                  taskOutputMappings='[{"target": "t", "source": "$context.task.token"}]')
    validate_callback_step(yaml.safe_load(build_flow_definition(s.callback_task)))


# ---- the token check and the other guards ------------------------------------------------


def _edited(change) -> dict:
    doc = copy.deepcopy(cloudflow_definition_document(**cloudflow_args(_settings(**RULES), ACCOUNT)))
    change(doc)
    return doc


@pytest.mark.parametrize("change, fragment", [
    (lambda d: d["States"][0]["Parameters"]["message"].pop("taskToken.$"), "could never report the task"),
    (lambda d: d["States"][0]["Parameters"]["message"].update({"taskToken.$": "$Input.taskToken"}),
     "could never report the task"),
    (lambda d: d["States"][0]["Parameters"]["message"].update({"token.$": "$Context.Current.TaskToken"})
     or d["States"][0]["Parameters"]["message"].pop("taskToken.$"), "could never report the task"),
    (lambda d: d["States"][0]["Parameters"].update(message="hello"), "could never report the task"),
    (lambda d: d["States"][0].pop("Timeout"), "needs a fixed Timeout"),
    (lambda d: d["States"][0].update(Timeout=0), "0 never times out"),
    (lambda d: d["States"][0].update(TaskMode="RequestComplete"), "no Task state with TaskMode"),
    (lambda d: d["States"][0]["Catch"][0].update(Next="nowhere"), "Catch Next 'nowhere'"),
    (lambda d: d.update(StartAt="nowhere"), "StartAt 'nowhere'"),
    (lambda d: d.update(SpecVersion="v2"), "SpecVersion: v1"),
    (lambda d: d["States"].append(dict(d["States"][1])), "unique Name"),
])
def test_validation_refuses_a_definition_that_cannot_be_called_back(change, fragment) -> None:
    with pytest.raises(FlowDefinitionError, match=None) as caught:
        validate_cloudflow_definition(_edited(change))
    assert fragment in str(caught.value)


def test_a_timeout_as_a_string_of_digits_is_accepted_as_the_reference_types_it() -> None:
    validate_cloudflow_definition(_edited(lambda d: d["States"][0].update(Timeout="600")))


# ---- held to the documented examples ------------------------------------------------------


def test_every_fixture_names_its_source() -> None:
    assert len(EXAMPLES) >= 4
    assert all(e["source"] and ("aliyun.com" in e["source"] or "alibabacloud.com" in e["source"])
               for e in EXAMPLES.values())


def test_the_builder_uses_the_documented_smq_integration() -> None:
    example = EXAMPLES["cloudflow-smq-send-message"]
    documented = yaml.safe_load(example["definition"])
    built = cloudflow_definition_document(**cloudflow_args(_settings(), ACCOUNT))
    assert list(built) == list(documented)  # Type, Name, SpecVersion, StartAt, States, in this order
    assert (built["Type"], built["SpecVersion"]) == (documented["Type"], documented["SpecVersion"])
    [doc_task], [task] = documented["States"], built["States"]
    assert task["Action"] == doc_task["Action"] == "MNS:SendMessage"
    assert task["TaskMode"] in example["documented_task_modes"]
    assert set(task["Parameters"]) <= set(example["documented_parameters"])
    # The documented resource form, acs:mns:<region>:<account>:/<queues|topics>/<name>/messages.
    form = re.compile(r"acs:mns:[a-z0-9-]+:[0-9*]+:/(queues|topics)/[A-Za-z0-9-]+/messages")
    assert form.fullmatch(doc_task["Parameters"]["resourceArn"]).group(1) == "queues"
    assert form.fullmatch(task["Parameters"]["resourceArn"]).group(1) == "topics"
    # A structured message, as the sample's `message: {body: ok}`.
    assert isinstance(doc_task["Parameters"]["message"], dict) and isinstance(task["Parameters"]["message"], dict)


def test_the_documented_sample_as_a_callback_is_refused_until_it_carries_the_token() -> None:
    doc = yaml.safe_load(EXAMPLES["cloudflow-smq-send-message"]["definition"])
    [task] = doc["States"]
    task.update(TaskMode="WaitForCustomCallback", Timeout=30)
    task["Parameters"]["resourceArn"] = f"acs:mns:cn-hangzhou:{ACCOUNT}:/topics/demo-topic/messages"
    with pytest.raises(FlowDefinitionError, match="could never report the task"):
        validate_cloudflow_definition(doc)
    task["Parameters"]["message"]["taskToken.$"] = "$Context.Current.TaskToken"
    validate_cloudflow_definition(doc)


def test_the_documented_pass_example_runs_locally_with_the_documented_output() -> None:
    example = EXAMPLES["cloudflow-pass-inject-static-data"]
    [state] = cloudflow.parse_state_machine(example["definition"]).steps
    assert isinstance(state, fdl.PassStep)
    assert fdl.apply_mappings(state.output_mappings, {"input": example["input"]}) == example["output"]


def test_a_documented_construct_the_builder_does_not_emit_is_refused_by_name() -> None:
    with pytest.raises(fdl.UnsupportedFlow, match="'Choice' states are not supported"):
        cloudflow.parse_state_machine(EXAMPLES["cloudflow-fail-after-choice"]["definition"])


def test_the_fdl_builder_matches_the_documented_wait_for_callback_step() -> None:
    [documented] = yaml.safe_load(EXAMPLES["fdl-mns-topic-wait-for-callback"]["definition"])["steps"]
    [built] = yaml.safe_load(build_flow_definition((_settings(flowSpec="fdl")).callback_task))["steps"]
    for key in ("type", "name", "pattern"):
        assert built[key] == documented[key]
    assert built["resourceArn"] == documented["resourceArn"].replace("{topicName}", "demo-topic")
    mapped = {m["target"]: m["source"] for m in documented["inputMappings"]}
    assert all(mapped[m["target"]] == m["source"] for m in built["inputMappings"])
    assert built["serviceParams"]["MessageBody"] == documented["serviceParams"]["MessageBody"] == "$"
    # The documented step sets no timeoutSeconds, which the builder always does and the check demands.
    doc = {"version": "v1", "type": "flow", "steps": [documented]}
    with pytest.raises(FlowDefinitionError, match="timeoutSeconds"):
        validate_callback_step(doc)
    documented["timeoutSeconds"] = 60
    validate_callback_step(doc)
    documented["inputMappings"] = [m for m in documented["inputMappings"] if m["target"] != "taskToken"]
    with pytest.raises(FlowDefinitionError, match="could never"):
        validate_callback_step(doc)
