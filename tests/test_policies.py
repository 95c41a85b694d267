"""RAM documents: exact canonical JSON, argument checks, and the wildcard checker."""

from __future__ import annotations

import json

import pytest

from mns_callback_flow.policies import (
    CALLER_ACTIONS,
    REPORT_ACTIONS,
    UNSCOPABLE_ACTIONS,
    PolicyError,
    canonical_json,
    flow_arn,
    log_write_policy,
    publish_policy,
    report_task_policy,
    start_execution_policy,
    topic_messages_arn,
    trust_policy,
    wildcard_violations,
)

REGION, ACCOUNT = "cn-hangzhou", "1234567890123456"


def test_trust_policy_exact() -> None:
    # docs/platform-facts.md gives this document for the function role, byte for byte.
    assert trust_policy("fc.aliyuncs.com") == (
        '{"Statement":[{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{"Service":["fc.aliyuncs.com"]}}],'
        '"Version":"1"}'
    )
    assert json.loads(trust_policy("fnf.aliyuncs.com"))["Statement"][0]["Principal"] == {
        "Service": ["fnf.aliyuncs.com"]}


@pytest.mark.parametrize("service", ["ecs.aliyuncs.com", "*", "FC.aliyuncs.com", ""])
def test_trust_policy_refuses_other_services(service: str) -> None:
    with pytest.raises(PolicyError, match="service="):
        trust_policy(service)


def test_report_task_policy_exact() -> None:
    assert report_task_policy() == (
        '{"Statement":[{"Action":["fnf:ReportTaskSucceeded","fnf:ReportTaskFailed"],"Effect":"Allow",'
        '"Resource":"*"}],"Version":"1"}'
    )
    assert wildcard_violations(report_task_policy()) == []


def test_publish_policy_exact() -> None:
    expected = (
        '{"Statement":[{"Action":["mns:PublishMessage"],"Effect":"Allow",'
        '"Resource":"acs:mns:cn-hangzhou:1234567890123456:/topics/demo-topic/messages"}],"Version":"1"}'
    )
    assert publish_policy(topic_messages_arn(REGION, ACCOUNT, "demo-topic")) == expected
    assert wildcard_violations(expected) == []


@pytest.mark.parametrize("args, name", [
    ((REGION, ACCOUNT, "bad_topic"), "topic_name"),
    ((REGION, ACCOUNT, "*"), "topic_name"),
    (("*", ACCOUNT, "t"), "region"),
    ((REGION, "*", "t"), "account_id"),
    ((REGION, "12ab", "t"), "account_id"),
    (("acs:mns:*:*:/topics/*/messages",), "topic_arn"),
    (("acs:mns:cn-hangzhou:123:/queues/q/messages",), "topic_arn"),
])
def test_publish_policy_refuses_wildcards_and_bad_names(args: tuple, name: str) -> None:
    with pytest.raises(PolicyError, match=name):
        publish_policy(args[0] if len(args) == 1 else topic_messages_arn(*args))


def test_log_write_policy_exact() -> None:
    assert log_write_policy(REGION, ACCOUNT, "my-logs", "callback_store") == (
        '{"Statement":[{"Action":["log:PostLogStoreLogs"],"Effect":"Allow",'
        '"Resource":"acs:log:cn-hangzhou:1234567890123456:project/my-logs/logstore/callback_store"}],"Version":"1"}'
    )
    with pytest.raises(PolicyError, match="log_store"):
        log_write_policy(REGION, ACCOUNT, "my-logs", "*")


def test_flow_arn() -> None:
    assert flow_arn(REGION, ACCOUNT, "demo-flow") == "acs:fnf:cn-hangzhou:1234567890123456:flow/demo-flow"


def test_start_execution_policy_exact() -> None:
    # Resource "*": the current API references list both actions with "All Resources".
    assert start_execution_policy() == (
        '{"Statement":[{"Action":["fnf:StartExecution","fnf:DescribeExecution"],"Effect":"Allow",'
        '"Resource":"*"}],"Version":"1"}'
    )
    assert wildcard_violations(start_execution_policy()) == []


def test_the_one_list_of_unscopable_actions() -> None:
    assert UNSCOPABLE_ACTIONS == ("fnf:ReportTaskSucceeded", "fnf:ReportTaskFailed",
                                  "fnf:StartExecution", "fnf:DescribeExecution")
    # Every "*" resource the builders write is for actions of that list.
    assert set(REPORT_ACTIONS) | set(CALLER_ACTIONS) == set(UNSCOPABLE_ACTIONS)


@pytest.mark.parametrize("actions", [[action] for action in UNSCOPABLE_ACTIONS] + [list(UNSCOPABLE_ACTIONS)])
def test_a_star_resource_is_accepted_for_the_listed_actions(actions: list) -> None:
    assert wildcard_violations(doc({"Effect": "Allow", "Action": actions, "Resource": "*"})) == []


@pytest.mark.parametrize("actions", [
    ["fnf:StopExecution"], ["mns:PublishMessage"], ["fnf:ListExecutions"], ["fnf:GetExecutionHistory"],
    ["log:PostLogStoreLogs"], ["fnf:startexecution"],  # case matters: judged as another action
    ["fnf:StartExecution", "fnf:StopExecution"], ["fnf:ReportTaskSucceeded", "mns:PublishMessage"],
])
def test_a_star_resource_is_refused_for_any_other_action(actions: list) -> None:
    problems = wildcard_violations(doc({"Effect": "Allow", "Action": actions, "Resource": "*"}))
    assert problems == [f"Statement[0]: wildcard resource '*' for {', '.join(actions)}"]


def test_canonical_json_is_order_independent() -> None:
    assert canonical_json({"b": 1, "a": [2, {"d": 1, "c": 2}]}) == '{"a":[2,{"c":2,"d":1}],"b":1}'


def test_every_document_is_stable() -> None:
    for make in (lambda: trust_policy("fnf.aliyuncs.com"), report_task_policy,
                 lambda: publish_policy(topic_messages_arn(REGION, ACCOUNT, "t")),
                 lambda: log_write_policy(REGION, ACCOUNT, "p-1", "s"),
                 start_execution_policy):
        text = make()
        assert make() == text
        assert canonical_json(json.loads(text)) == text


# ---- wildcard_violations --------------------------------------------------------------


def doc(*statements: dict) -> str:
    return json.dumps({"Version": "1", "Statement": list(statements)})


TOPIC = "acs:mns:cn-hangzhou:1:/topics/t/messages"


@pytest.mark.parametrize("statement, fragment", [
    ({"Effect": "Allow", "Action": "*", "Resource": TOPIC}, "wildcard action '*'"),
    ({"Effect": "Allow", "Action": ["fnf:*"], "Resource": TOPIC}, "wildcard action 'fnf:*'"),
    ({"Effect": "Allow", "Action": "log:Post*", "Resource": TOPIC}, "wildcard action 'log:Post*'"),
    ({"Effect": "Allow", "Action": "mns:PublishMessage", "Resource": "*"}, "wildcard resource '*'"),
    ({"Effect": "Allow", "Action": ["mns:PublishMessage"], "Resource": ["acs:mns:*:*:*"]},
     "wildcard resource 'acs:mns:*:*:*'"),
    ({"Effect": "Allow", "Action": "mns:PublishMessage", "Resource": "acs:mns:cn-hangzhou:1:/*"},
     "wildcard resource"),
    ({"Effect": "Allow", "Action": ["fnf:ReportTaskSucceeded", "fnf:StopExecution"], "Resource": "*"},
     "wildcard resource '*' for fnf:ReportTaskSucceeded, fnf:StopExecution"),
    ({"Effect": "Allow", "Action": "fnf:ReportTaskFailed", "Resource": "acs:fnf:*:*:*"}, "wildcard resource"),
    # one topic's name, but in every region / account
    ({"Effect": "Allow", "Action": "mns:PublishMessage", "Resource": "acs:mns:*:1:/topics/t/messages"},
     "wildcard resource"),
    ({"Effect": "Allow", "Action": "mns:PublishMessage", "Resource": "acs:mns:cn-hangzhou:*:/topics/t/messages"},
     "wildcard resource"),
    ({"Effect": "Allow", "Action": "mns:PublishMessage", "Resource": "acs:*:cn-hangzhou:1:/topics/t/messages"},
     "wildcard resource"),
    # every topic, or every topic whose name starts alike
    ({"Effect": "Allow", "Action": "mns:PublishMessage", "Resource": "acs:mns:cn-hangzhou:1:/topics/*/messages"},
     "wildcard resource"),
    ({"Effect": "Allow", "Action": "mns:PublishMessage", "Resource": "acs:mns:cn-hangzhou:1:/topics/*"},
     "wildcard resource"),
    ({"Effect": "Allow", "Action": "fnf:StartExecution", "Resource": "acs:fnf:cn-hangzhou:1:flow/demo*"},
     "wildcard resource"),
    ({"Effect": "Allow", "Action": "fnf:DescribeExecution", "Resource": "acs:fnf:cn-hangzhou:1:flow/*/execution/*"},
     "wildcard resource"),
    ({"Effect": "Allow", "NotAction": "ram:*", "Resource": TOPIC}, "NotAction"),
    ({"Effect": "Allow", "Action": "mns:PublishMessage", "NotResource": TOPIC}, "NotResource"),
    ({"Effect": "Allow", "Resource": TOPIC}, "no Action"),
    ({"Effect": "Allow", "Action": "mns:PublishMessage"}, "no Resource"),
    # only an exact Deny is skipped: a misspelt or lower-case Effect is judged
    ({"Effect": "allow", "Action": "*", "Resource": TOPIC}, "wildcard action '*'"),
    ({"Action": "mns:*", "Resource": TOPIC}, "wildcard action 'mns:*'"),
])
def test_violations(statement: dict, fragment: str) -> None:
    problems = wildcard_violations(doc(statement))
    assert any(fragment in p for p in problems), problems
    assert all(p.startswith("Statement[0]") for p in problems)


@pytest.mark.parametrize("statement", [
    {"Effect": "Allow", "Action": "fnf:ReportTaskSucceeded", "Resource": "*"},
    {"Effect": "Allow", "Action": ["fnf:ReportTaskFailed", "fnf:ReportTaskSucceeded"], "Resource": ["*"]},
    {"Effect": "Deny", "Action": "*", "Resource": "*"},
    {"Effect": "Allow", "Action": "fnf:DescribeExecution", "Resource": "acs:fnf:cn-hangzhou:1:flow/f/execution/*"},
    {"Effect": "Allow", "Action": "mns:PublishMessage", "Resource": TOPIC},
    # RAM is global: its ARNs have an empty region
    {"Effect": "Allow", "Action": "ram:PassRole", "Resource": "acs:ram::1:role/r"},
])
def test_allowed(statement: dict) -> None:
    assert wildcard_violations(doc(statement)) == []


def test_statement_as_single_object_and_dict_input() -> None:
    policy = {"Version": "1", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}
    assert len(wildcard_violations(policy)) == 2
    assert wildcard_violations(json.dumps(policy)) == wildcard_violations(policy)


def test_the_console_samples_grants_are_caught() -> None:
    # AliyunMNSFullAccess / AliyunFnFFullAccess / AliyunLogFullAccess, as the sample grants them.
    for service in ("mns", "fnf", "log"):
        assert wildcard_violations(doc({"Effect": "Allow", "Action": f"{service}:*", "Resource": "*"}))


@pytest.mark.parametrize("text, fragment", [("{", "not JSON"), ("[]", "no Statement"), ('{"Version":"1"}', "no Statement"),
                                            ('{"Statement":[1]}', "not an object")])
def test_malformed_policies(text: str, fragment: str) -> None:
    assert any(fragment in p for p in wildcard_violations(text))
