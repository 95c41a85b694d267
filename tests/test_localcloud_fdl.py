"""The FDL interpreter runs exactly what mns_callback_flow/flow_definition.py emits, and refuses the rest."""

from __future__ import annotations

import pytest
import yaml

from infra.config import CatchRule, OutputMapping, RetryRule
from localcloud import fdl
from mns_callback_flow.flow_definition import build_flow_definition
from mns_callback_flow.task import CallbackTask


def emitted(**kwargs) -> str:
    """The FDL text the builder emits for these CallbackTask fields (defaults: cb-topic, 30 s)."""
    kwargs.setdefault("topic_name", "cb-topic")
    kwargs.setdefault("timeout_seconds", 30)
    return build_flow_definition(CallbackTask(**kwargs))


def test_the_plain_definition_parses_and_maps_like_fnf():
    flow = fdl.parse_flow(emitted())
    [task] = flow.steps
    assert isinstance(task, fdl.TaskStep)
    assert (task.topic, task.timeout_seconds, task.retry, task.catch) == ("cb-topic", 30, (), ())
    body = fdl.message_body(task, {"messageBody": "hello world", "extra": 1},
                            {"task": {"token": "T0K"}})
    assert body == '{"messageBody":"hello world","taskToken":"T0K"}'
    assert task.output_mappings == ()
    # No outputMappings: the step's output is the whole reported Output (FDL doc 122493).
    reported = {"status": "success", "echo": "hello world", "detail": {"n": [1, 2]}}
    assert fdl.task_output(task, {}, reported, {}) == reported
    assert flow.after(task) is None


def test_configured_output_mappings_pick_paths_whole_local_step_input_and_constants():
    text = emitted(output_mappings=[
        OutputMapping("status", "$local.status"), OutputMapping("code", "$local.detail.code"),
        OutputMapping("missing", "$local.nope.deeper"), OutputMapping("result", "$local"),
        OutputMapping("token", "$input.taskToken"), OutputMapping("extra", "$input.extra"),
        OutputMapping("step", "$context.step.name"), OutputMapping("via", "mns")])
    [task] = fdl.parse_flow(text).steps
    reported = {"status": "success", "detail": {"code": 7}}
    context = {"task": {"token": "T0K"}, "step": {"name": "mns-topic-task"}}
    output = fdl.task_output(task, {"messageBody": "hi", "extra": 1}, reported, context)
    assert output == {"status": "success", "code": 7, "missing": None, "result": reported,
                      # $input is the step's mapped input: the flow input's unmapped `extra` is not in it
                      "token": "T0K", "extra": None, "step": "mns-topic-task", "via": "mns"}


def test_the_console_samples_status_mapping_keeps_only_status():
    [task] = fdl.parse_flow(emitted(output_mappings=[OutputMapping("status", "$local.status")])).steps
    assert fdl.task_output(task, {}, {"status": "success", "echo": "x"}, {}) == {"status": "success"}


def test_retry_and_catch_steps_from_the_stack_config():
    text = emitted(
        retry=[RetryRule(("FnF.TaskTimeout",), interval_seconds=2, max_attempts=2, multiplier=3,
                              max_interval_seconds=5),
                    RetryRule(("FnF.ALL",), max_attempts=1)],
        catch=[CatchRule(("FnF.TaskTimeout",), status="timeout"),
                    CatchRule(("FnF.ALL",), fail_error="Callback.Failed", fail_cause="see logs")])
    flow = fdl.parse_flow(text)
    task, caught, failed = flow.steps
    assert task.end and flow.after(task) is None
    used: dict[int, int] = {}
    assert [fdl.retry_delay(task, "FnF.TaskTimeout", used) for _ in range(3)] == [2, 5, None]
    assert fdl.retry_delay(task, "Work.Failed", used) == 1  # FnF.ALL rule, its own count
    assert fdl.retry_delay(task, "Work.Failed", used) is None
    assert fdl.catch_target(task, "FnF.TaskTimeout") == "catch-1"
    assert fdl.catch_target(task, "Work.Failed") == "catch-2"
    assert isinstance(caught, fdl.PassStep) and fdl.apply_mappings(caught.output_mappings, {}) == {
        "status": "timeout"}
    assert (failed.error, failed.cause) == ("Callback.Failed", "see logs")


def test_resolve_paths_and_constants():
    scopes = {"input": {"a": {"b": 1}}, "context": {"task": {"token": "t"}}}
    assert fdl.resolve("$input.a.b", scopes) == 1
    assert fdl.resolve("$input.a", scopes) == {"b": 1}
    assert fdl.resolve("$input.missing.x", scopes) is None
    assert fdl.resolve("$context.task.token", scopes) == "t"
    assert fdl.resolve("constant", scopes) == "constant"


def _edited(change) -> str:
    doc = yaml.safe_load(emitted(catch=[CatchRule(("FnF.ALL",), status="x")]))
    change(doc)
    return yaml.safe_dump(doc)


@pytest.mark.parametrize("change, expected", [
    (lambda d: d["steps"].append({"type": "choice", "name": "c"}), "'choice' steps are not supported"),
    (lambda d: d["steps"][0].update(pattern="sync"), "only waitForCallback"),
    (lambda d: d["steps"][0].update(resourceArn="acs:fc:::services/s/functions/f"), "only MNS topics"),
    (lambda d: d["steps"][0]["serviceParams"].update(MessageTag="t"), "only {MessageBody: $}"),
    (lambda d: d["steps"][0].update(errorMappings=[]), "'errorMappings' is not supported"),
    (lambda d: d["steps"][0]["inputMappings"].append({"target": "x", "source": "$input.a[0]"}),
     "not $input/$context/$local"),
    (lambda d: d["steps"][1]["outputMappings"][0].update(source="$input.a"), "only constants"),
    (lambda d: d["steps"][0]["catch"][0].update(goto="nowhere"), "is not a step"),
    (lambda d: d["steps"][0].pop("timeoutSeconds"), "'timeoutSeconds' is required"),
    (lambda d: d.update(inputMappings=[]), "'inputMappings' is not supported"),
    (lambda d: d.update(version="v2"), "expected version v1"),
    (lambda d: d["steps"][0].update(outputMappings=[]), "outputMappings: an empty list is not supported"),
    (lambda d: d["steps"][0].update(outputMappings=[{"target": "a", "source": "$local.a"},
                                                    {"target": "a", "source": "$local.b"}]), "'a' is mapped twice"),
    (lambda d: d["steps"][0].update(outputMappings=[{"target": "a", "source": "$local[0]"}]),
     "not $input/$context/$local"),
    (lambda d: d["steps"][0].update(outputMappings=[{"target": "a.b", "source": "$local.a"}]),
     "expected a plain field name"),
    (lambda d: d["steps"][0].update(outputMappings={"target": "a", "source": "$local"}), "expected a list"),
])
def test_anything_else_is_a_named_error(change, expected):
    with pytest.raises(fdl.UnsupportedFlow, match=None) as caught:
        fdl.parse_flow(_edited(change))
    assert expected in str(caught.value)


def test_not_yaml_or_not_a_mapping():
    with pytest.raises(fdl.UnsupportedFlow, match="not valid YAML"):
        fdl.parse_flow("steps: [")
    with pytest.raises(fdl.UnsupportedFlow, match="mapping"):
        fdl.parse_flow("- 1")
