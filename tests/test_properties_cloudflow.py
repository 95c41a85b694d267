"""Properties of the CloudFlow builder, as tests/test_properties_infra.py holds the FDL one.

For any settings the config accepts under ``flowSpec: cloudflow``, the text is
byte-stable, reads back as the very document built, passes
``validate_cloudflow_definition``, is judged clean by the policy pack's flow
rules, and is run by the local interpreter (``localcloud/cloudflow.py``) with the
same topic, timeout, retry, catch routes, catch states and message.
"""

from __future__ import annotations

import json

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_properties_infra import PROPERTY, _paths, _replaced, catch_rules, retry_rules, topic_names, yaml_trees

from infra.config import MAX_CLOUDFLOW_TASK_TIMEOUT_SECONDS, full_key, settings_from_mapping
from localcloud import cloudflow, fdl
from mns_callback_flow import policies
from mns_callback_flow.cloudflow_definition import (
    FlowDefinitionError,
    build_cloudflow_definition,
    cloudflow_definition_document,
    validate_cloudflow_definition,
)
from policy import rules
from tests.flow_args import cloudflow_args

ACCOUNT = "1234567890123456"

output_mappings = st.lists(st.fixed_dictionaries({
    "target": st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True),
    "source": st.one_of(st.from_regex(r"\$(local|input)(\.[A-Za-z0-9_-]{1,8}){0,3}", fullmatch=True),
                        st.text(min_size=1, max_size=20).filter(lambda s: not s.startswith("$"))),
}), max_size=4, unique_by=lambda m: m["target"])


@st.composite
def cloudflow_config(draw: st.DrawFn) -> dict:
    values = {"alicloud:region": "cn-hangzhou", full_key("topicName"): draw(topic_names),
              full_key("flowSpec"): "cloudflow",
              full_key("taskTimeoutSeconds"): draw(st.integers(1, MAX_CLOUDFLOW_TASK_TIMEOUT_SECONDS))}
    for key, strategy in (("taskRetry", retry_rules()), ("taskCatch", catch_rules),
                          ("taskOutputMappings", output_mappings)):
        chosen = draw(st.lists(strategy, max_size=3) if key != "taskOutputMappings" else strategy)
        if chosen or draw(st.booleans()):
            values[full_key(key)] = json.dumps(chosen)
    return values


def _catching(status: str) -> dict:
    return {"alicloud:region": "cn-hangzhou", full_key("topicName"): "t", full_key("flowSpec"): "cloudflow",
            full_key("taskTimeoutSeconds"): 60, full_key("taskCatch"): [{"errors": ["FnF.ALL"], "status": status}]}


@PROPERTY
@given(values=cloudflow_config())
@example(values=_catching("\x85"))
@example(values=_catching("123"))  # a number-like status stays text
@example(values=_catching("done\u2028now\u2029"))
def test_every_accepted_setting_gives_a_stable_valid_state_machine_the_interpreter_runs(values: dict) -> None:
    settings_ = settings_from_mapping(values)
    text = build_cloudflow_definition(**cloudflow_args(settings_, ACCOUNT))
    assert build_cloudflow_definition(**cloudflow_args(settings_from_mapping(values), ACCOUNT)) == text
    document = yaml.safe_load(text)
    assert document == cloudflow_definition_document(**cloudflow_args(settings_, ACCOUNT))
    validate_cloudflow_definition(document)
    inputs = {"definition": text}
    assert rules.callback_timeouts(rules.FNF_FLOW, inputs) == rules.callback_tokens(rules.FNF_FLOW, inputs) == []

    flow = cloudflow.parse_state_machine(text)
    task = flow.steps[0]
    assert isinstance(task, cloudflow.TaskState)
    assert (task.name, task.topic, task.timeout_seconds) == (
        "mns-topic-task", settings_.topic_name, settings_.task_timeout_seconds)
    context = {"task": {"token": "T"}, "execution": {"name": "e"}}
    assert json.loads(task.message_body({"messageBody": "m"}, context)) == {"messageBody": "m", "taskToken": "T"}
    assert [(r.errors, r.interval_seconds, r.max_attempts, r.multiplier, r.max_interval_seconds)
            for r in task.retry] == [
        (rule.errors, rule.interval_seconds, rule.max_attempts, rule.multiplier, rule.max_interval_seconds)
        for rule in settings_.task_retry]
    assert len(flow.steps) == 1 + len(settings_.task_catch) and flow.after(task) is None
    for index, (route, rule) in enumerate(zip(task.catch, settings_.task_catch, strict=True), start=1):
        assert route.errors == rule.errors and route.goto == f"catch-{index}"
        state = flow.step(route.goto)
        if rule.status is not None:
            assert isinstance(state, fdl.PassStep)
            assert fdl.apply_mappings(state.output_mappings, {}) == {"status": rule.status}
        else:
            assert isinstance(state, fdl.FailStep) and state.error == rule.fail_error
            assert state.cause == (rule.fail_cause or f"caught by catch-{index}")
    # Output mappings: each target gets what the FDL flow's $local / $input / constant would give.
    reported = {"status": "ok", "a": {"b": 1}}
    output = task.output({"messageBody": "m"}, reported, context)
    if not settings_.task_output_mappings:
        assert output == reported
    for mapping in settings_.task_output_mappings:
        if mapping.source.startswith("$"):
            scope, *path = mapping.source.split(".")
            value: object = reported if scope == "$local" else {"messageBody": "m"}
            for part in path:
                value = value.get(part) if isinstance(value, dict) else None
            assert output[mapping.target] == value
        else:
            assert output[mapping.target] == mapping.source


SAMPLE = cloudflow_definition_document(**cloudflow_args(settings_from_mapping({
    "alicloud:region": "cn-hangzhou", full_key("topicName"): "orders", full_key("taskTimeoutSeconds"): 60,
    full_key("flowSpec"): "cloudflow",
    full_key("taskRetry"): [{"errors": ["FnF.TaskTimeout"], "maxIntervalSeconds": 9}],
    full_key("taskCatch"): [{"errors": ["A"], "status": "gave up"}, {"errors": ["FnF.ALL"], "fail": {"error": "E"}}],
    full_key("taskOutputMappings"): [{"target": "s", "source": "$local.status"}],
}), ACCOUNT))


@settings(PROPERTY, max_examples=150)
@given(where=st.sampled_from(_paths(SAMPLE)), value=yaml_trees)
@example(where=("States", 0, "Catch"), value=5)
@example(where=("States", 0, "Retry"), value=[5])
@example(where=("States", 0, "Parameters", "message"), value=None)
@example(where=("States",), value={"x": None})
def test_a_hand_edited_state_machine_is_accepted_or_refused_with_a_reason(where: tuple, value: object) -> None:
    document = _replaced(SAMPLE, where, value)
    try:
        validate_cloudflow_definition(document)
    except FlowDefinitionError as exc:
        assert str(exc)
    try:
        cloudflow.parse_state_machine(yaml.safe_dump(document))
    except fdl.UnsupportedFlow as exc:
        assert str(exc)
    text = yaml.safe_dump(document)
    for rule in (rules.callback_timeouts, rules.callback_tokens):
        assert all(isinstance(m, str) and m for m in rule(rules.FNF_FLOW, {"definition": text}))


@PROPERTY
@given(region=st.from_regex(r"[a-z]{2}(-[a-z]{1,10}){1,2}(-[0-9]{1,2})?", fullmatch=True),
       account=st.from_regex(r"[0-9]{1,32}", fullmatch=True), topic=topic_names)
def test_the_cloudflow_grant_is_the_two_send_actions_on_one_topic_and_never_flagged(
        region: str, account: str, topic: str) -> None:
    arn = policies.topic_messages_arn(region, account, topic)
    text = policies.cloudflow_publish_policy(arn)
    assert json.loads(text) == {"Statement": [{"Action": ["mns:PublishMessage", "mns:SendMessage"],
                                               "Effect": "Allow", "Resource": arn}], "Version": "1"}
    assert policies.wildcard_violations(text) == [] and policies.canonical_json(json.loads(text)) == text


def test_the_cloudflow_grant_refuses_anything_but_a_topics_messages_arn() -> None:
    for arn in ("*", "acs:mns:cn-hangzhou:1:/queues/q/messages", "acs:mns:*:*:/topics/t/messages",
                "acs:mns:::/topics/t/messages"):
        with pytest.raises(policies.PolicyError, match="topic_arn"):
            policies.cloudflow_publish_policy(arn)
