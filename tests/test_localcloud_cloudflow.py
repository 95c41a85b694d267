"""The CloudFlow interpreter runs exactly what mns_callback_flow/cloudflow_definition.py emits, and refuses the rest by name."""

from __future__ import annotations

import json

import pytest
import yaml

from infra.config import full_key, settings_from_mapping
from localcloud import cloudflow, fdl
from mns_callback_flow.cloudflow_definition import build_cloudflow_definition
from tests.flow_args import cloudflow_args

ACCOUNT = "1234567890123456"


def emitted(**project: str) -> str:
    values = {"alicloud:region": "cn-hangzhou", full_key("topicName"): "cb-topic",
              full_key("flowSpec"): "cloudflow", full_key("taskTimeoutSeconds"): "30"}
    values.update({full_key(k): v for k, v in project.items()})
    return build_cloudflow_definition(**cloudflow_args(settings_from_mapping(values), ACCOUNT))


CONTEXT = {"task": {"token": "T0K"}, "execution": {"name": "run-1", "flowName": "f"},
           "step": {"name": "mns-topic-task"}}


def test_the_plain_definition_parses_and_publishes_what_the_fdl_flow_publishes():
    flow = cloudflow.parse_state_machine(emitted())
    [task] = flow.steps
    assert isinstance(task, cloudflow.TaskState)
    assert (task.topic, task.timeout_seconds, task.retry, task.catch) == ("cb-topic", 30, (), ())
    assert task.resource_arn == f"acs:mns:cn-hangzhou:{ACCOUNT}:/topics/cb-topic/messages"
    body = task.message_body({"messageBody": "hello world", "extra": 1}, CONTEXT)
    assert body == '{"messageBody":"hello world","taskToken":"T0K"}'
    reported = {"status": "success", "echo": "hello world", "detail": {"n": [1, 2]}}
    assert task.output({}, reported, CONTEXT) == reported  # no OutputConstructor: the whole $Output
    assert flow.after(task) is None and flow.topics == {"cb-topic"}


def test_output_constructor_reads_output_input_and_constants():
    text = emitted(taskOutputMappings='[{"target": "status", "source": "$local.status"},'
                                      ' {"target": "code", "source": "$local.detail.code"},'
                                      ' {"target": "missing", "source": "$local.nope.deeper"},'
                                      ' {"target": "result", "source": "$local"},'
                                      ' {"target": "sent", "source": "$input.messageBody"},'
                                      ' {"target": "via", "source": "mns"}]')
    [task] = cloudflow.parse_state_machine(text).steps
    reported = {"status": "success", "detail": {"code": 7}}
    assert task.output({"messageBody": "hi"}, reported, CONTEXT) == {
        "status": "success", "code": 7, "missing": None, "result": reported, "sent": "hi", "via": "mns"}


def test_retry_and_catch_states_from_the_stack_config():
    text = emitted(
        taskRetry='[{"errors": ["FnF.TaskTimeout"], "intervalSeconds": 2, "maxAttempts": 2, "multiplier": 3,'
                  ' "maxIntervalSeconds": 5}, {"errors": ["FnF.ALL"], "maxAttempts": 1}]',
        taskCatch='[{"errors": ["FnF.TaskTimeout"], "status": "timeout"},'
                  ' {"errors": ["FnF.ALL"], "fail": {"error": "Callback.Failed", "cause": "see logs"}}]')
    flow = cloudflow.parse_state_machine(text)
    task, caught, failed = flow.steps
    used: dict[int, int] = {}
    assert [fdl.retry_delay(task, "FnF.TaskTimeout", used) for _ in range(3)] == [2, 5, None]
    assert fdl.retry_delay(task, "Work.Failed", used) == 1  # FnF.ALL rule, its own count
    assert fdl.retry_delay(task, "Work.Failed", used) is None
    assert fdl.catch_target(task, "FnF.TaskTimeout") == "catch-1"
    assert fdl.catch_target(task, "Work.Failed") == "catch-2"
    assert isinstance(caught, fdl.PassStep) and fdl.apply_mappings(caught.output_mappings, {}) == {
        "status": "timeout"}
    assert isinstance(failed, fdl.FailStep) and (failed.error, failed.cause) == ("Callback.Failed", "see logs")


def test_without_backoff_rate_the_interval_stays_constant():
    doc = yaml.safe_load(emitted(taskRetry='[{"errors": ["FnF.ALL"], "intervalSeconds": 3, "maxAttempts": 3}]'))
    del doc["States"][0]["Retry"][0]["BackoffRate"]
    [task] = cloudflow.parse_state_machine(yaml.safe_dump(doc)).steps
    used: dict[int, int] = {}
    assert [fdl.retry_delay(task, "X", used) for _ in range(4)] == [3, 3, 3, None]


def test_start_at_decides_the_first_state():
    doc = yaml.safe_load(emitted(taskCatch='[{"errors": ["FnF.ALL"], "status": "x"}]'))
    doc["States"].reverse()
    flow = cloudflow.parse_state_machine(yaml.safe_dump(doc, sort_keys=False))
    assert flow.steps[0].name == "mns-topic-task"


def test_the_fdl_resource_form_and_a_timeout_string_are_read_too():
    doc = yaml.safe_load(emitted())
    doc["States"][0]["Parameters"]["resourceArn"] = "acs:mns:::/topics/cb-topic/messages"
    doc["States"][0]["Timeout"] = "45"
    [task] = cloudflow.parse_state_machine(json.dumps(doc)).steps
    assert (task.topic, task.timeout_seconds) == ("cb-topic", 45)


def _edited(change) -> str:
    doc = yaml.safe_load(emitted(taskCatch='[{"errors": ["FnF.ALL"], "status": "x"}]',
                                 taskRetry='[{"errors": ["FnF.ALL"]}]'))
    change(doc)
    return yaml.safe_dump(doc)


@pytest.mark.parametrize("change, expected", [
    (lambda d: d["States"].append({"Type": "Wait", "Name": "w", "Seconds": 1, "End": True}),
     "'Wait' states are not supported"),
    (lambda d: d["States"].append({"Type": "Parallel", "Name": "p", "Branches": [], "End": True}),
     "'Parallel' states are not supported"),
    (lambda d: d["States"][0].update(Action="FC:InvokeFunction"), "only MNS:SendMessage"),
    (lambda d: d["States"][0].update(TaskMode="RequestComplete"), "only WaitForCustomCallback"),
    (lambda d: d["States"][0]["Parameters"].update(
        resourceArn="acs:mns:cn-hangzhou:1:/queues/q/messages"), "only MNS topics"),
    (lambda d: d["States"][0]["Parameters"].update(priority=1), "'priority' is not supported"),
    (lambda d: d["States"][0].update(InputConstructor={"a": 1}), "'InputConstructor' is not supported"),
    (lambda d: d["States"][0].pop("Timeout"), "'Timeout' is required"),
    (lambda d: d["States"][0].update(Timeout=0), "0 never times out"),
    (lambda d: d["States"][0].update(Timeout=604801), "expected 1-604800"),
    (lambda d: d["States"][0].pop("End") and d["States"][0].update(Next="catch-1"), "'Next' is not supported"),
    (lambda d: d["States"][0]["Parameters"]["message"].update({"x.$": "$Global.x"}), "'$Global.x' is not supported"),
    (lambda d: d["States"][0]["Parameters"]["message"].update({"x.$": "$Output.status"}),
     "$Output is only available in an OutputConstructor"),
    (lambda d: d["States"][0]["Parameters"]["message"].update({"x.$": "states.JsonToString($Input)"}),
     "is not supported"),
    (lambda d: d["States"][0]["Parameters"].update(message="text"), "expected a non-empty object"),
    (lambda d: d["States"][0]["Parameters"]["message"].update({"n": {"deep": 1}}), "nested objects"),
    (lambda d: d["States"][0]["Retry"][0].pop("IntervalSeconds"), "'IntervalSeconds' is required"),
    (lambda d: d["States"][0]["Catch"][0].update(Next="nowhere"), "Catch Next 'nowhere' is not a state"),
    (lambda d: d["States"][1]["InputConstructor"].update({"s.$": "$Input.a"}), "only constants"),
    (lambda d: d.update(StartAt="nowhere"), "StartAt: 'nowhere' is not a state"),
    (lambda d: d.update(SpecVersion="v2"), "SpecVersion v1"),
    (lambda d: d.update(Timeout=10), "'Timeout' is not supported"),
])
def test_anything_else_is_a_named_error(change, expected):
    with pytest.raises(fdl.UnsupportedFlow) as caught:
        cloudflow.parse_state_machine(_edited(change))
    assert expected in str(caught.value)


def test_not_yaml_or_not_a_mapping():
    with pytest.raises(fdl.UnsupportedFlow, match="not valid YAML"):
        cloudflow.parse_state_machine("States: [")
    with pytest.raises(fdl.UnsupportedFlow, match="mapping"):
        cloudflow.parse_state_machine("- 1")
