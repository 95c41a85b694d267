"""The subscription's dead-letter queue, rendered by the real program under mocks."""

from __future__ import annotations

import json

import pytest

from infra.config import MAX_QUEUE_RETENTION_SECONDS, ConfigError
from infra.synth import render
from tests.mocks import COMPONENT, T_POLICY, T_QUEUE, T_ROLE, T_SUBSCRIPTION, StackRun, run_stack

CASES = {
    "fc3": {},
    "fc2": {"functionCompute": "2.0"},
    "existing-topic": {"createTopic": "false", "topicName": "orders-existing"},
}


@pytest.fixture(scope="module", params=sorted(CASES))
def run(request: pytest.FixtureRequest) -> StackRun:
    return run_stack({**CASES[request.param], "taskTimeoutSeconds": "900"})


def test_the_subscription_dead_letters_into_its_own_queue(run: StackRun) -> None:
    queue = run.one(T_QUEUE)
    assert queue.inputs == {"queueName": "mns-callback-test-dlq", "messageRetentionPeriod": 900}
    assert queue.parent == f"{COMPONENT}CallbackTopic::callback-topic"
    subscription = run.one(T_SUBSCRIPTION).inputs
    assert subscription["dlqPolicy"] == {"enabled": True, "deadLetterTargetQueue": "mns-callback-test-dlq"}
    assert run.outputs["deadLetterQueueName"] == "mns-callback-test-dlq"


def test_the_queue_is_created_for_an_existing_topic_too() -> None:
    existing = run_stack(CASES["existing-topic"])
    assert existing.outputs["topicName"] == "orders-existing"
    assert existing.one(T_QUEUE).inputs["queueName"] == "mns-callback-test-dlq"


def test_retention_is_the_task_timeout_at_least_the_providers_minimum() -> None:
    assert run_stack({"taskTimeoutSeconds": "10"}).one(T_QUEUE).inputs["messageRetentionPeriod"] == 60
    longest = run_stack({"taskTimeoutSeconds": str(MAX_QUEUE_RETENTION_SECONDS)})
    assert longest.one(T_QUEUE).inputs["messageRetentionPeriod"] == MAX_QUEUE_RETENTION_SECONDS


def test_a_task_longer_than_any_retention_is_refused_while_the_queue_is_on() -> None:
    with pytest.raises(ConfigError, match="taskTimeoutSeconds.*at most 604800 while deadLetterQueue"):
        run_stack({"taskTimeoutSeconds": str(MAX_QUEUE_RETENTION_SECONDS + 1)})
    off = run_stack({"taskTimeoutSeconds": str(MAX_QUEUE_RETENTION_SECONDS + 1), "deadLetterQueue": "false"})
    assert off.of_type(T_QUEUE) == []


@pytest.mark.parametrize("case", sorted(CASES))
def test_turned_off_there_is_no_queue_and_the_policy_says_disabled(case: str) -> None:
    off = run_stack({**CASES[case], "deadLetterQueue": "false"})
    assert off.of_type(T_QUEUE) == []
    # Said outright: an Optional+Computed dlq_policy left out would keep an earlier one.
    assert off.one(T_SUBSCRIPTION).inputs["dlqPolicy"] == {"enabled": False}
    assert off.outputs["deadLetterQueueName"] == ""


def _grants(run: StackRun) -> list[tuple[str, str]]:
    policies = sorted((r.inputs["policyName"], r.inputs["policyDocument"]) for r in run.of_type(T_POLICY))
    roles = sorted((r.inputs["roleName"], r.inputs["assumeRolePolicyDocument"]) for r in run.of_type(T_ROLE))
    return policies + roles


@pytest.mark.parametrize("case", sorted(CASES))
def test_no_role_gains_a_permission(case: str) -> None:
    on = run_stack(CASES[case])
    off = run_stack({**CASES[case], "deadLetterQueue": "false"})
    assert _grants(on) == _grants(off)
    actions = {a for _name, doc in _grants(on) if "Statement" in doc
               for s in json.loads(doc)["Statement"] for a in s["Action"]}
    assert not {a for a in actions if a.startswith("mns:") and a != "mns:PublishMessage"}


def test_the_dev_render_carries_the_queue_and_its_output() -> None:
    document = render("dev")
    queues = [r for r in document["resources"] if r["type"] == T_QUEUE]
    assert [q["inputs"] for q in queues] == [{"messageRetentionPeriod": 600, "queueName": "mns-callback-dev-dlq"}]
    assert document["outputs"]["deadLetterQueueName"] == "mns-callback-dev-dlq"
