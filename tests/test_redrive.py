"""Redrive: the dead letters of the subscription pushed again, over aliyun-mns-sdk against
the local MNS endpoint; and the outage the dead-letter queue exists for."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections import Counter

import pytest

from infra.redrive import FAILED, PUBLISHED, SKIPPED, main, original_message, redrive
from localcloud.mns_api import LocalQueue, MnsEndpoint, MnsError, Published
from localcloud.run import LocalStack, run_many
from tests.local_render import rendered
from tests.mns_sdk import require_mns_sdk

CALLBACK = json.dumps({"messageBody": "hello", "taskToken": "dG9rZW4="})
DEMO = json.dumps({"messageBody": "hello world"})


# ---- pure: which bodies carry a callback message ------------------------------------------


def test_a_callback_message_is_found_in_every_plausible_dead_letter_form() -> None:
    notification_json = json.dumps({"TopicName": "t", "Message": CALLBACK, "MessageId": "1"})
    notification_xml = ('<?xml version="1.0" encoding="utf-8"?><Notification xmlns="http://mns.aliyuncs.com/doc/v1/">'
                        f"<TopicName>t</TopicName><Message>{CALLBACK.replace('&', '&amp;')}</Message></Notification>")
    for body in (CALLBACK, notification_json, notification_xml,
                 base64.b64encode(CALLBACK.encode()).decode(),
                 base64.b64encode(notification_json.encode()).decode()):
        assert original_message(body) == CALLBACK, body


@pytest.mark.parametrize("body", [
    "", "hello", "[]", json.dumps({"messageBody": "no token"}), json.dumps({"taskToken": 7}),
    json.dumps({"taskToken": ""}), json.dumps({"Message": "not json"}),
    '<!DOCTYPE x [<!ENTITY e "e">]><Notification><Message>&e;</Message></Notification>', "<broken",
])
def test_anything_else_is_not_a_callback_message(body: str) -> None:
    assert original_message(body) is None


# ---- against the local endpoint, through the SDK ---------------------------------------------


@pytest.fixture
def mns():
    require_mns_sdk()
    from mns.account import Account

    with MnsEndpoint(account_id="1234567890123456", region="cn-hangzhou") as ep:
        ep.queues["dlq"] = LocalQueue("dlq")
        ep.published = []
        lock = threading.Lock()

        def publish(body: str) -> Published:
            time.sleep(0.01)  # long enough for two runs to interleave
            with lock:
                ep.published.append(body)
            return Published(f"{len(ep.published):032X}", hashlib.md5(body.encode()).hexdigest().upper())

        ep.topics["topic"] = publish
        key = ep.issue_access_key()
        # One client per run: an SDK client holds one HTTP connection, not for sharing across threads.
        ep.new_account = lambda: Account(ep.url, *key)
        ep.account = ep.new_account()
        yield ep


def _run(ep: MnsEndpoint, **kwargs):
    account = ep.new_account()
    return redrive(account.get_queue("dlq"), account.get_topic("topic"), **kwargs)


def test_each_dead_letter_is_published_then_deleted(mns: MnsEndpoint) -> None:
    bodies = [json.dumps({"messageBody": i, "taskToken": f"token-{i}"}) for i in range(5)]
    for body in bodies:
        mns.queues["dlq"].send(body)
    outcomes = _run(mns)
    assert [o.result for o in outcomes] == [PUBLISHED] * 5
    assert sorted(mns.published) == sorted(bodies)
    assert len(mns.queues["dlq"]) == 0
    assert all(o.published_message_id for o in outcomes)


def test_a_body_that_is_not_a_callback_message_is_left_and_reported(mns: MnsEndpoint) -> None:
    mns.queues["dlq"].send("not a callback")
    mns.queues["dlq"].send(CALLBACK)
    outcomes = _run(mns)
    assert sorted(o.result for o in outcomes) == [PUBLISHED, SKIPPED]
    skipped = next(o for o in outcomes if o.result == SKIPPED)
    assert "not a callback message" in skipped.detail
    assert mns.published == [CALLBACK]
    assert len(mns.queues["dlq"]) == 1  # the skipped one stays for a person to look at


def test_a_publish_that_fails_leaves_the_message_in_the_queue(mns: MnsEndpoint) -> None:
    def refuse(_body: str) -> None:
        raise MnsError(500, "InternalError", "Interal error.")

    mns.publish_fault = refuse
    mns.queues["dlq"].send(CALLBACK)
    outcomes = _run(mns)
    assert [(o.result, "publish failed" in o.detail, "InternalError" in o.detail) for o in outcomes] == [
        (FAILED, True, True)]
    assert mns.published == []
    assert len(mns.queues["dlq"]) == 1
    mns.publish_fault = None  # once the topic takes messages again, the next run publishes it
    mns.queues["dlq"] = LocalQueue("dlq")
    mns.queues["dlq"].send(CALLBACK)
    assert [o.result for o in _run(mns)] == [PUBLISHED]


def test_two_redrives_at_once_publish_no_message_twice(mns: MnsEndpoint) -> None:
    bodies = [json.dumps({"messageBody": i, "taskToken": f"token-{i}"}) for i in range(40)]
    for body in bodies:
        mns.queues["dlq"].send(body)
    results: list[list] = [[], []]

    def run(index: int) -> None:
        results[index] = _run(mns)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert Counter(mns.published) == Counter(bodies)  # every one exactly once
    assert all(results), "both runs took part"
    assert len(mns.queues["dlq"]) == 0


class _SlowAfterReceive:
    """A queue whose first received message is held past its visibility timeout."""

    def __init__(self, queue, pause: float) -> None:
        self._queue, self._pause, self._first = queue, pause, True

    def __getattr__(self, name: str):
        return getattr(self._queue, name)

    def receive_message(self, *args):
        message = self._queue.receive_message(*args)
        if self._first:
            self._first = False
            time.sleep(self._pause)
        return message


def test_a_message_another_run_took_over_is_not_published_again(mns: MnsEndpoint) -> None:
    mns.queues["dlq"] = LocalQueue("dlq", visibility_timeout=1)
    mns.queues["dlq"].send(CALLBACK)
    account = mns.new_account()
    slow = _SlowAfterReceive(account.get_queue("dlq"), pause=1.5)
    late: list = []
    thread = threading.Thread(target=lambda: late.extend(redrive(slow, account.get_topic("topic"))))
    thread.start()
    time.sleep(1.1)  # the message is visible again: a second run takes it
    prompt = _run(mns)
    thread.join(30)
    assert [o.result for o in prompt] == [PUBLISHED]
    assert [o.result for o in late] == [FAILED] and "not held any more" in late[0].detail
    assert mns.published == [CALLBACK]


def test_the_command_reports_each_message_and_exits_by_the_outcome(mns: MnsEndpoint, monkeypatch, capsys) -> None:
    key_id, secret = next(iter(mns.credentials.items()))
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret)
    mns.queues["mns-callback-dev-dlq"] = queue = LocalQueue("mns-callback-dev-dlq")
    mns.topics["mns-callback-dev-topic"] = mns.topics["topic"]
    queue.send(CALLBACK)
    queue.send("junk")
    code = main(["--stack", "dev", "--endpoint", mns.url, "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 1  # one was skipped
    assert (document[PUBLISHED], document[SKIPPED], document[FAILED]) == (1, 1, 0)
    assert document["queue"] == "mns-callback-dev-dlq"
    time.sleep(1.1)  # a skipped message is visible again after 1 s
    assert main(["--stack", "dev", "--endpoint", mns.url]) == 1  # the junk is still there
    assert "skipped (not a callback message" in capsys.readouterr().out


def test_the_command_refuses_what_it_cannot_run(monkeypatch, capsys) -> None:
    monkeypatch.delenv("ALIBABA_CLOUD_ACCESS_KEY_ID", raising=False)
    assert main(["--stack", "dev", "--endpoint", "http://127.0.0.1:9"]) == 2
    assert "ALIBABA_CLOUD_ACCESS_KEY_ID" in capsys.readouterr().err
    assert main(["--stack", "dev", "--config", "deadLetterQueue=false", "--endpoint", "http://127.0.0.1:9"]) == 2
    assert "deadLetterQueue: false" in capsys.readouterr().err
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "s")
    assert main(["--stack", "dev"]) == 2
    assert "--account-id" in capsys.readouterr().err


# ---- the outage -------------------------------------------------------------------------------


def _render(*overrides: str):
    return rendered(*overrides)


def test_an_outage_past_the_retries_dead_letters_and_a_redrive_loses_nothing() -> None:
    require_mns_sdk()
    # BACKOFF_RETRY: 3 retries 10-20 s apart, at most 60 cloud s; the outage lasts 300 s,
    # the task waits 3000 s: at time scale 0.01, 0.6 s, 3 s and 30 s (room for a slow start).
    with LocalStack.from_render(_render("taskTimeoutSeconds=3000"), outage_seconds=300, time_scale=0.01) as stack:
        summary = run_many(stack, DEMO, 50, redrive=True)
    assert (summary["succeeded"], summary["all_callbacks_arrived"]) == (50, True)
    assert (summary["dead_lettered"], summary["redriven"]) == (50, 50)
    assert (summary["reports"], summary["duplicate_reports"]) == (50, 0)
    assert len(stack.dead_letters) == 0


def test_without_a_redrive_the_dead_letters_wait_and_the_executions_time_out() -> None:
    # The outage (10 s here) outlasts the task's wait (2 s): no push can succeed.
    config = _render("taskTimeoutSeconds=200", "taskRetry=[]", "taskCatch=[]")
    with LocalStack.from_render(config, outage_seconds=1000, time_scale=0.01) as stack:
        summary = run_many(stack, DEMO, 10)
        left = len(stack.dead_letters)
    assert (summary["dead_lettered"], summary["redriven"], summary["timed_out"]) == (10, 0, 10)
    assert summary["messages_undelivered"] == 10 and summary["reports"] == 0
    assert left == 10


def test_without_a_queue_a_failed_push_is_discarded() -> None:
    config = _render("taskTimeoutSeconds=200", "taskRetry=[]", "taskCatch=[]", "deadLetterQueue=false")
    with LocalStack.from_render(config, outage_seconds=1000, time_scale=0.01) as stack:
        summary = run_many(stack, DEMO, 3)
    assert stack.dead_letters is None
    assert (summary["dead_lettered"], summary["messages_undelivered"], summary["timed_out"]) == (0, 3, 3)


def test_the_local_run_command_redrives_and_refuses_a_redrive_without_a_queue(capsys) -> None:
    require_mns_sdk()
    from localcloud.__main__ import main as localcloud_main

    code = localcloud_main(["run", "--input", DEMO, "--executions", "5", "--outage", "300", "--redrive", "--json",
                            "--config", "taskTimeoutSeconds=3000"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (summary["succeeded"], summary["dead_lettered"], summary["redriven"], summary["outage_seconds"]) == (
        5, 5, 5, 300)
    assert localcloud_main(["run", "--input", DEMO, "--redrive", "--config", "deadLetterQueue=false"]) == 2
    assert "deadLetterQueue: false" in capsys.readouterr().err
    assert localcloud_main(["run", "--input", DEMO, "--outage", "-1"]) == 2
    assert "--outage must be within" in capsys.readouterr().err
