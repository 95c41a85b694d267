"""The FDL document: content, byte stability, output mappings, catch routes and the token check."""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.config import CatchRule, OutputMapping, RetryRule, full_key, settings_from_mapping
from mns_callback_flow.flow_definition import (
    FlowDefinitionError,
    build_flow_definition,
    flow_definition_document,
    validate_callback_step,
)
from mns_callback_flow.task import CallbackTask

# The console sample's step (docs/design.md): it keeps only `status` of the reported Output.
DESIGN_STEP = {
    "type": "task",
    "name": "mns-topic-task",
    "resourceArn": "acs:mns:::/topics/demo-topic/messages",
    "pattern": "waitForCallback",
    "timeoutSeconds": 600,
    "inputMappings": [
        {"target": "messageBody", "source": "$input.messageBody"},
        {"target": "taskToken", "source": "$context.task.token"},
    ],
    "outputMappings": [{"target": "status", "source": "$local.status"}],
    "serviceParams": {"MessageBody": "$"},
}


# What the builder emits by default: no outputMappings, so the step's output is the whole Output.
DEFAULT_STEP = {key: value for key, value in DESIGN_STEP.items() if key != "outputMappings"}


def test_plain_definition_is_the_design_step_without_output_mappings() -> None:
    text = build_flow_definition(CallbackTask(topic_name="demo-topic", timeout_seconds=600))
    assert yaml.safe_load(text) == {"version": "v1", "type": "flow", "steps": [DEFAULT_STEP]}
    assert "outputMappings" not in text


def test_exact_text() -> None:
    text = build_flow_definition(CallbackTask(topic_name="demo-topic", timeout_seconds=600))
    assert text == (
        "version: v1\n"
        "type: flow\n"
        "steps:\n"
        "  - type: task\n"
        "    name: mns-topic-task\n"
        "    resourceArn: acs:mns:::/topics/demo-topic/messages\n"
        "    pattern: waitForCallback\n"
        "    timeoutSeconds: 600\n"
        "    inputMappings:\n"
        "      - target: messageBody\n"
        "        source: $input.messageBody\n"
        "      - target: taskToken\n"
        "        source: $context.task.token\n"
        "    serviceParams:\n"
        "      MessageBody: $\n"
    )


def _settings(**project: object):
    values = {"alicloud:region": "cn-hangzhou", full_key("topicName"): "demo-topic"}
    values.update({full_key(k): v for k, v in project.items()})
    return settings_from_mapping(values)


RULES = {
    "taskTimeoutSeconds": "120",
    "taskRetry": '[{"errors": ["FC.ResourceThrottled", "FnF.ALL"], "intervalSeconds": 2, "multiplier": 1.5,'
              ' "maxIntervalSeconds": 30}]',
    "taskCatch": '[{"errors": ["FnF.TaskTimeout"], "status": "timeout"},'
              ' {"errors": ["FnF.ALL"], "fail": {"error": "CallbackFailed", "cause": "the callback failed"}},'
              ' {"errors": ["Other"], "fail": {"error": "E"}}]',
}


def test_retry_and_catch_from_settings() -> None:
    doc = yaml.safe_load(build_flow_definition((_settings(**RULES)).callback_task))
    task, timeout_step, fail_step, bare_fail = doc["steps"]
    assert task["timeoutSeconds"] == 120
    assert task["retry"] == [{"errors": ["FC.ResourceThrottled", "FnF.ALL"], "intervalSeconds": 2,
                              "maxAttempts": 3, "multiplier": 1.5, "maxIntervalSeconds": 30}]
    assert task["catch"] == [{"errors": ["FnF.TaskTimeout"], "goto": "catch-1"},
                             {"errors": ["FnF.ALL"], "goto": "catch-2"},
                             {"errors": ["Other"], "goto": "catch-3"}]
    assert task["end"] is True  # the success path must not fall into the catch steps
    assert timeout_step == {"type": "pass", "name": "catch-1",
                            "outputMappings": [{"target": "status", "source": "timeout"}], "end": True}
    assert fail_step == {"type": "fail", "name": "catch-2", "error": "CallbackFailed",
                         "cause": "the callback failed"}
    assert bare_fail == {"type": "fail", "name": "catch-3", "error": "E"}
    # Everything else of the default step is unchanged.
    for key, value in DEFAULT_STEP.items():
        if key not in ("resourceArn", "timeoutSeconds"):
            assert task[key] == value


def test_configured_output_mappings_are_emitted_in_order_before_service_params() -> None:
    s = _settings(taskOutputMappings='[{"target": "result", "source": "$local"},'
                                     ' {"target": "code", "source": "$local.detail.code"},'
                                     ' {"target": "body", "source": "$input.messageBody"},'
                                     ' {"target": "via", "source": "mns"}]')
    [task] = flow_definition_document(s.callback_task)["steps"]
    assert task["outputMappings"] == [
        {"target": "result", "source": "$local"},
        {"target": "code", "source": "$local.detail.code"},
        {"target": "body", "source": "$input.messageBody"},
        {"target": "via", "source": "mns"},
    ]
    assert list(task) == ["type", "name", "resourceArn", "pattern", "timeoutSeconds", "inputMappings",
                          "outputMappings", "serviceParams"]
    validate_callback_step(flow_definition_document(s.callback_task))


def test_a_status_mapping_gives_back_the_console_samples_step() -> None:
    s = _settings(taskTimeoutSeconds="600", taskOutputMappings='[{"target": "status", "source": "$local.status"}]')
    assert flow_definition_document(s.callback_task)["steps"] == [DESIGN_STEP]
    assert build_flow_definition(s.callback_task) == build_flow_definition(CallbackTask(
        topic_name="demo-topic", timeout_seconds=600,
        output_mappings=[OutputMapping("status", "$local.status")]))


def test_catch_status_steps_keep_their_constant_output_whatever_the_task_maps() -> None:
    s = _settings(taskCatch='[{"errors": ["FnF.TaskTimeout"], "status": "timeout"}]',
                  taskOutputMappings='[{"target": "echo", "source": "$local.echo"}]')
    task, caught = flow_definition_document(s.callback_task)["steps"]
    assert task["outputMappings"] == [{"target": "echo", "source": "$local.echo"}]
    assert caught["outputMappings"] == [{"target": "status", "source": "timeout"}]


def test_status_that_looks_like_a_number_stays_a_string() -> None:
    doc = yaml.safe_load(build_flow_definition((_settings(taskCatch='[{"errors": ["FnF.ALL"], "status": "404"}]')).callback_task))
    assert doc["steps"][1]["outputMappings"][0]["source"] == "404"


def test_without_catch_there_is_no_end_and_one_step() -> None:
    doc = flow_definition_document((_settings()).callback_task)
    assert len(doc["steps"]) == 1 and "end" not in doc["steps"][0] and "catch" not in doc["steps"][0]


def test_same_input_same_bytes() -> None:
    first = build_flow_definition((_settings(**RULES)).callback_task)
    for _ in range(3):
        assert build_flow_definition((_settings(**RULES)).callback_task) == first
    assert first.encode("utf-8") == build_flow_definition((_settings(**RULES)).callback_task).encode("utf-8")


def test_the_settings_task_is_the_configured_task() -> None:
    s = _settings(**RULES)
    assert build_flow_definition(s.callback_task) == build_flow_definition(CallbackTask(
        topic_name=s.topic_name, timeout_seconds=s.task_timeout_seconds,
        retry=s.task_retry, catch=s.task_catch,
    ))
    assert build_flow_definition(s.callback_task) != build_flow_definition(CallbackTask(
        topic_name=s.topic_name, timeout_seconds=s.task_timeout_seconds, retry=s.task_retry, catch=s.task_catch,
        output_mappings=(OutputMapping("a", "$local.a"),),
    ))


def test_long_cause_is_not_wrapped() -> None:
    cause = "word " * 300
    text = build_flow_definition(CallbackTask(topic_name="t", timeout_seconds=5,
                                 catch=[CatchRule(("FnF.ALL",), fail_error="E", fail_cause=cause.strip())]))
    assert yaml.safe_load(text)["steps"][1]["cause"] == cause.strip()


@pytest.mark.parametrize("kwargs, message", [
    ({"topic_name": "", "timeout_seconds": 5}, "topic_name"),
    ({"topic_name": "t", "timeout_seconds": 0}, "timeout_seconds"),
    ({"topic_name": "t", "timeout_seconds": True}, "timeout_seconds"),
    ({"topic_name": "t", "timeout_seconds": None}, "timeout_seconds"),
])
def test_bad_builder_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(FlowDefinitionError, match=message):
        build_flow_definition(CallbackTask(**kwargs))


def test_retry_rule_defaults_are_written_out() -> None:
    doc = flow_definition_document(CallbackTask(topic_name="t", timeout_seconds=5, retry=[RetryRule(("FnF.ALL",))]))
    assert doc["steps"][0]["retry"] == [{"errors": ["FnF.ALL"], "intervalSeconds": 1, "maxAttempts": 3,
                                         "multiplier": 2}]


# ---- the token check on hand-edited documents ----------------------------------------


def _doc() -> dict:
    return {"version": "v1", "type": "flow", "steps": [copy.deepcopy(DESIGN_STEP)]}


def test_design_document_passes() -> None:
    validate_callback_step(_doc())


def test_missing_token_mapping_is_refused() -> None:
    doc = _doc()
    doc["steps"][0]["inputMappings"] = [{"target": "messageBody", "source": "$input.messageBody"}]
    with pytest.raises(FlowDefinitionError, match=r"mns-topic-task.*\$context\.task\.token"):
        validate_callback_step(doc)


def test_token_under_another_name_is_refused() -> None:
    doc = _doc()
    doc["steps"][0]["inputMappings"][1]["target"] = "token"
    with pytest.raises(FlowDefinitionError, match="taskToken"):
        validate_callback_step(doc)


def test_message_body_that_drops_the_token_is_refused() -> None:
    doc = _doc()
    doc["steps"][0]["serviceParams"] = {"MessageBody": "$input.messageBody"}
    with pytest.raises(FlowDefinitionError, match="MessageBody"):
        validate_callback_step(doc)
    del doc["steps"][0]["serviceParams"]
    with pytest.raises(FlowDefinitionError, match="MessageBody"):
        validate_callback_step(doc)


def test_missing_timeout_is_refused() -> None:
    doc = _doc()
    del doc["steps"][0]["timeoutSeconds"]
    with pytest.raises(FlowDefinitionError, match="timeoutSeconds"):
        validate_callback_step(doc)


def test_no_callback_step_is_refused() -> None:
    doc = _doc()
    doc["steps"][0]["pattern"] = "requestResponse"
    with pytest.raises(FlowDefinitionError, match="no task step with pattern waitForCallback"):
        validate_callback_step(doc)


def test_nested_callback_step_is_checked() -> None:
    inner = copy.deepcopy(DESIGN_STEP)
    del inner["inputMappings"][1]
    doc = {"version": "v1", "type": "flow",
           "steps": [{"type": "parallel", "name": "p", "branches": [{"steps": [inner]}]}]}
    with pytest.raises(FlowDefinitionError, match="taskToken"):
        validate_callback_step(doc)


def test_catch_goto_must_name_a_sibling() -> None:
    doc = _doc()
    doc["steps"][0]["catch"] = [{"errors": ["FnF.ALL"], "goto": "nowhere"}]
    with pytest.raises(FlowDefinitionError, match="nowhere"):
        validate_callback_step(doc)


@pytest.mark.parametrize("doc, message", [
    ([], "mapping"),
    ({"version": "v2", "type": "flow", "steps": []}, "version: v1"),
    ({"version": "v1", "type": "flow", "steps": []}, "non-empty"),
    ({"version": "v1", "type": "flow", "steps": [DESIGN_STEP, DESIGN_STEP]}, "unique name"),
])
def test_malformed_documents(doc: object, message: str) -> None:
    with pytest.raises(FlowDefinitionError, match=message):
        validate_callback_step(doc)  # type: ignore[arg-type]


def test_callback_step_inside_a_choice_counts_and_is_checked() -> None:
    good = copy.deepcopy(DESIGN_STEP)
    doc = {"version": "v1", "type": "flow", "steps": [
        {"type": "choice", "name": "c", "choices": [{"condition": "$.x == 1", "steps": [good]}],
         "default": {"goto": "end"}},
        {"type": "pass", "name": "end"},
    ]}
    validate_callback_step(doc)
    bad = copy.deepcopy(DESIGN_STEP)
    bad["serviceParams"]["MessageBody"] = "$input"
    doc["steps"][0]["default"] = {"steps": [bad]}
    with pytest.raises(FlowDefinitionError, match="MessageBody"):
        validate_callback_step(doc)


# ---- any accepted taskOutputMappings: the text says it, the interpreter runs it ------------

_field = st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True)
_constant = st.text(st.characters() | st.sampled_from("\x85\u2028\u2029\r\n'\"#:- ~"), min_size=1, max_size=40)
_source = st.one_of(
    st.builds(lambda scope, path: "$" + scope + "".join(f".{p}" for p in path),
              st.sampled_from(["local", "input", "context"]), st.lists(_field, max_size=3)),
    _constant.filter(lambda text: not text.startswith("$")),
)


@settings(max_examples=60, derandomize=True, database=None, deadline=None)
@given(targets=st.lists(_field, unique=True, max_size=4), data=st.data())
def test_any_accepted_output_mappings_read_back_and_run_locally(targets: list, data: st.DataObject) -> None:
    from localcloud import fdl

    raw = [{"target": target, "source": data.draw(_source)} for target in targets]
    s = _settings(taskOutputMappings=json.dumps(raw))
    text = build_flow_definition(s.callback_task)
    [task] = yaml.safe_load(text)["steps"]
    assert task.get("outputMappings", []) == raw
    parsed = fdl.parse_flow(text).steps[0]
    assert [(m.target, m.source) for m in parsed.output_mappings] == [(m["target"], m["source"]) for m in raw]
