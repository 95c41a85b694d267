"""The handler served over real HTTP (FC 3.0 event and FC 2.0 WSGI), pushed to
by an MNS-like signer, reporting to an FnF-compatible endpoint that checks the
real SDK's signed requests. Nothing is mocked between the three."""

from __future__ import annotations

import base64
import json
import logging
from email.utils import formatdate
from typing import Any
from xml.sax.saxutils import escape

import pytest

from localcloud.mns_push import Message, Subscription, build_push, sign_push
from tests.handler_env import BOUND
from tests.handler_stack import SUCCESS_OUTPUT, Stack, calls_of, reports_for, send


@pytest.mark.parametrize("fmt", ["JSON", "XML", "SIMPLIFIED"])
def test_signed_push_is_reported_once(stack: Stack, fmt: str) -> None:
    token = stack.token()
    status, body = stack.push_message(stack.message(token), fmt)
    assert (status, body) == (200, {"result": "reported"})
    [report] = reports_for(stack, token)
    assert report.kind == "succeeded" and json.loads(report.output) == SUCCESS_OUTPUT
    [call] = calls_of(stack.fnf, "ReportTaskSucceeded")
    assert call.signature_valid and call.params["SecurityToken"] == stack.credentials.security_token
    assert call.params["AccessKeyId"] == stack.credentials.access_key_id


@pytest.mark.parametrize("endpoint_path", ["/", "/callback/mns", "/hook?tenant=a%20b&x=1"])
def test_endpoint_paths_and_queries_are_signed_as_sent(stack: Stack, endpoint_path: str) -> None:
    token = stack.token()
    sub = Subscription(endpoint=stack.fc.url + endpoint_path, notify_format="JSON")
    path, headers, body = build_push(stack.message(token), sub, private_key=stack.cert.identity.private_key,
                                     cert_url=stack.cert.cert_url)
    assert send(stack.fc.url, "POST", path, headers, body) == (200, {"result": "reported"})
    assert len(reports_for(stack, token)) == 1


def test_the_same_push_twice_reports_once_and_answers_2xx_twice(stack: Stack) -> None:
    token = stack.token()
    message = stack.message(token)
    first = stack.push_message(message)
    second = stack.push_message(message)
    assert first == (200, {"result": "reported"})
    assert second == (200, {"result": "already_reported"})
    assert len(reports_for(stack, token)) == 1
    assert [c.code for c in calls_of(stack.fnf, "ReportTaskSucceeded", 2)] == [None, "TaskAlreadyCompleted"]


def test_a_task_closed_otherwise_is_handled(stack: Stack) -> None:
    token = stack.token()
    stack.registry.complete(token)  # e.g. the step timed out
    assert stack.push_message(stack.message(token)) == (200, {"result": "already_reported"})
    assert reports_for(stack, token) == []


def test_an_invalid_token_is_handled_not_retried(stack: Stack) -> None:
    forged = base64.b64encode(b"v1#demo#exec#1#0000000000000000").decode()
    assert stack.push_message(stack.message(forged)) == (200, {"result": "token_invalid"})
    assert len(calls_of(stack.fnf, "ReportTaskSucceeded")) == 1
    assert stack.registry.reports == []


def test_the_certificate_is_fetched_once(stack: Stack) -> None:
    before = stack.cert.fetches
    for _ in range(3):
        assert stack.push_message(stack.message(stack.token()))[0] == 200
    assert stack.cert.fetches - before <= 1


@pytest.mark.parametrize("kind, times, status, error", [
    ("throttle", 10, 503, "throttled"),
    ("internal", 10, 502, "fnf_error"),
    ("invalid_state", 10, 502, "fnf_error"),
    ("reset", 10, 502, "fnf_error"),
])
def test_fnf_faults_that_persist_get_5xx_and_no_report(stack: Stack, kind: str, times: int,
                                                       status: int, error: str) -> None:
    stack.fnf.faults.inject(kind, times=times)
    token = stack.token()
    got_status, body = stack.push_message(stack.message(token))
    assert (got_status, body["error"]) == (status, error), body
    assert reports_for(stack, token) == []
    assert 2 <= len(calls_of(stack.fnf, "ReportTaskSucceeded", 2)) <= 4, "retried within the budget"
    stack.fnf.faults.clear()
    # MNS redelivers: now it goes through.
    assert stack.push_message(stack.message(token)) == (200, {"result": "reported"})


@pytest.mark.parametrize("kind", ["throttle", "internal", "invalid_state", "reset", "lost_answer"])
def test_a_passing_fault_is_retried_inside_the_push(stack: Stack, kind: str) -> None:
    stack.fnf.faults.inject(kind, times=1)
    token = stack.token()
    status, body = stack.push_message(stack.message(token))
    expected = "already_reported" if kind == "lost_answer" else "reported"
    assert (status, body) == (200, {"result": expected})
    assert len(reports_for(stack, token)) == 1


def test_a_slow_fnf_gets_504_within_the_mns_window(stack: Stack) -> None:
    import time
    stack.fnf.faults.delay = 3.0
    stack.fnf.faults.inject("slow", times=10)
    slow_before = stack.fnf.faults.injected.get("slow", 0)
    token = stack.token()
    started = time.monotonic()
    status, body = stack.push_message(stack.message(token))
    elapsed = time.monotonic() - started
    stack.fnf.faults.clear()
    assert (status, body["error"]) == (504, "timeout")
    assert elapsed < 5.0, f"answered after {elapsed:.1f}s, MNS gives up at 5 s"
    assert len(stack.fnf.calls_of("ReportTaskSucceeded")) <= 1, "no call answered before the timeout"
    # The slow requests still take effect on the server; wait for all of them
    # (else their records land in the next test), then MNS redelivers.
    attempts = stack.fnf.faults.injected["slow"] - slow_before
    assert len(calls_of(stack.fnf, "ReportTaskSucceeded", attempts, wait=stack.fnf.faults.delay + 1)) == attempts
    assert stack.push_message(stack.message(token)) == (200, {"result": "already_reported"})


def test_a_work_function_failure_reports_task_failed(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types
    module = types.ModuleType("handler_test_work")

    def work(message_body: Any, notification: Any) -> dict:
        from mns_callback import TaskFailed
        if message_body == "fail":
            raise TaskFailed("Payment.Declined", "card expired")
        if message_body == "crash":
            raise RuntimeError("bug with secret " + stack.credentials.access_key_secret)
        return {"status": "done", "echo": message_body, "topic": notification.topic_name}

    module.work = work
    monkeypatch.setitem(sys.modules, "handler_test_work", module)
    monkeypatch.setenv("CALLBACK_WORK", "handler_test_work:work")
    sys.modules["mns_callback.settings"].load_settings.cache_clear()
    try:
        token = stack.token()
        assert stack.push_message(stack.message(token, "fail")) == (200, {"result": "reported_failure"})
        [report] = reports_for(stack, token)
        assert (report.kind, report.error, report.cause) == ("failed", "Payment.Declined", "card expired")
        token = stack.token()
        status, body = stack.push_message(stack.message(token, "crash"))
        assert (status, body["error"]) == (500, "work_error")
        assert "secret" not in body["message"] and reports_for(stack, token) == []
        token = stack.token()
        assert stack.push_message(stack.message(token, {"n": 1}))[0] == 200
        [report] = reports_for(stack, token)
        assert json.loads(report.output) == {"status": "done", "echo": {"n": 1}, "topic": "topic"}
    finally:
        monkeypatch.delenv("CALLBACK_WORK")
        sys.modules["mns_callback.settings"].load_settings.cache_clear()


# --------------------------------------------------------------------------- the bad-request corpus

GOOD = json.dumps({"messageBody": "x", "taskToken": "dG9rZW4tbm90LXJlYWxseQ=="})


OWNER, TOPIC = BOUND["MNS_TOPIC_OWNER"], BOUND["MNS_TOPIC_NAME"]


def notification(message: Any, **fields: Any) -> bytes:
    return json.dumps({"TopicOwner": OWNER, "TopicName": TOPIC, "MessageId": "M1", "Message": message,
                       **fields}).encode()


def xml(message: str, extra: str = "") -> bytes:
    return (f'<Notification xmlns="http://mns.aliyuncs.com/doc/v1/"><TopicOwner>{OWNER}</TopicOwner>'
            f"<TopicName>{TOPIC}</TopicName><MessageId>M1</MessageId>{extra}"
            f"<Message>{escape(message)}</Message></Notification>").encode()


BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
                  b"<Notification><Message>&b;</Message></Notification>")

# Signed properly, so each reaches the parser: (id, body, status, words in the message)
BAD_SIGNED_BODIES = [
    ("empty", b"", 400, "empty"),
    ("not-json", b"hello world", 400, "expected an MNS notification"),
    ("binary", b"\x89PNG\r\n\x1a\n", 400, "UTF-8"),
    ("json-array", b"[1,2,3]", 400, "expected an MNS notification"),
    ("json-number", b"42", 400, "expected an MNS notification"),
    ("json-broken", b'{"Message": ', 400, "not valid JSON"),
    ("json-deep", b"{\"a\":" * 50000, 400, "JSON"),
    ("message-number", notification(7), 400, "Message"),
    ("message-object", notification({"taskToken": "t"}), 400, "Message"),
    ("message-null", notification(None), 400, "Message"),
    ("message-not-json", notification("hello world"), 400, "Message: is not valid JSON"),
    ("message-array", notification("[]"), 400, "JSON object with taskToken"),
    ("message-string", notification('"taskToken"'), 400, "JSON object with taskToken"),
    ("token-missing", notification(json.dumps({"messageBody": "x"})), 400, "Message.taskToken: is missing"),
    ("token-number", notification(json.dumps({"taskToken": 5})), 400, "Message.taskToken: expected a string"),
    ("token-null", notification(json.dumps({"taskToken": None})), 400, "Message.taskToken: expected a string"),
    ("token-list", notification(json.dumps({"taskToken": ["a"]})), 400, "expected a string, got list"),
    ("token-object", notification(json.dumps({"taskToken": {"a": 1}})), 400, "expected a string, got dict"),
    ("token-bool", notification(json.dumps({"taskToken": True})), 400, "expected a string, got bool"),
    ("token-empty", notification(json.dumps({"taskToken": ""})), 400, "is empty"),
    ("token-blank", notification(json.dumps({"taskToken": "   "})), 400, "is empty"),
    ("token-space", notification(json.dumps({"taskToken": "abc def"})), 400, "whitespace or control"),
    ("token-control", notification(json.dumps({"taskToken": "abc\u0000def"})), 400, "whitespace or control"),
    ("token-huge", notification(json.dumps({"taskToken": "A" * 10000})), 400, "at most"),
    ("simplified-no-token", json.dumps({"messageBody": "x"}).encode(), 400, "body.taskToken: is missing"),
    ("simplified-token-number", json.dumps({"taskToken": 1}).encode(), 400, "body.taskToken"),
    ("xml-message-not-json", xml("hello"), 400, "Message: is not valid JSON"),
    ("xml-no-token", xml(json.dumps({"messageBody": 1})), 400, "Message.taskToken"),
    ("xml-no-message", b"<Notification><MessageId>1</MessageId></Notification>", 400, "Message: is missing"),
    ("xml-wrong-root", b"<Foo><Message>x</Message></Foo>", 400, "<Notification> root"),
    ("xml-nested", b"<Notification><Message><a/></Message></Notification>", 400, "nested element"),
    ("xml-broken", b"<Notification><Message>x</Notification>", 400, "not well-formed XML"),
    ("xml-entities", BILLION_LAUGHS, 400, "DOCTYPE is refused"),
    ("xml-external", b'<!DOCTYPE n SYSTEM "http://127.0.0.1:9/x.dtd"><Notification/>', 400, "DOCTYPE is refused"),
    ("xml-undefined-entity", b"<Notification><Message>&x;</Message></Notification>", 400, "not well-formed"),
    ("xml-duplicate", b"<Notification><Message>a</Message><Message>b</Message></Notification>", 400,
     "more than once"),
    ("huge-body", b"{" + b" " * (300 * 1024) + b"}", 413, "larger than"),
]


@pytest.mark.parametrize("case", BAD_SIGNED_BODIES, ids=[c[0] for c in BAD_SIGNED_BODIES])
def test_bad_bodies_are_refused_with_4xx(stack: Stack, case: tuple) -> None:
    _, body, status, words = case
    got_status, answer = stack.signed(body)
    assert got_status == status, answer
    assert set(answer) == {"error", "message"} and words in answer["message"], answer
    assert stack.fnf.calls == [] and stack.registry.reports == []


def _unsigned(stack: Stack, headers: dict[str, str], body: bytes = b"", method: str = "POST") -> tuple[int, dict]:
    return send(stack.fc.url, method, "/notifications", headers, body)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_wrong_method_is_405(stack: Stack, method: str) -> None:
    status, answer = stack.signed(b"" if method == "GET" else notification(GOOD), method=method)
    assert (status, answer["error"]) == (405, "method_not_allowed")
    assert stack.fnf.calls == []


def _forge(stack: Stack, change: str) -> tuple[int, dict]:
    token = stack.token()
    body = notification(json.dumps({"messageBody": "x", "taskToken": token}))
    if change == "unsigned":
        return _unsigned(stack, {"Content-Type": "application/json"}, body)
    if change == "stale-date":
        return stack.signed(body, date=formatdate(usegmt=True, timeval=__import__("time").time() - 3600))
    if change == "future-date":
        return stack.signed(body, date=formatdate(usegmt=True, timeval=__import__("time").time() + 3600))
    if change == "unknown-cert-host":
        return stack.signed(body, cert_url="https://evil.example/x509_public_certificate.pem")
    if change == "http-cert-on-aliyun-host":
        return stack.signed(body, cert_url="http://mnstest.oss-cn-hangzhou.aliyuncs.com/x.pem")
    if change == "cert-host-suffix-trick":
        return stack.signed(body, cert_url=stack.cert.url + ".evil.example/x509_public_certificate.pem")
    sub = Subscription(endpoint=stack.fc.url)
    path, headers, good = build_push(Message(body=json.dumps({"taskToken": token})), sub,
                                     private_key=stack.cert.identity.private_key, cert_url=stack.cert.cert_url)
    if change == "tampered-body":
        headers["Content-MD5"] = "0" * 32
    elif change == "tampered-header":
        headers["x-mns-request-id"] = "FORGED"
    elif change == "added-mns-header":
        headers["x-mns-extra"] = "1"
    elif change == "signature-not-base64":
        headers["Authorization"] = "%%% not base64"
    elif change == "signature-short":
        headers["Authorization"] = "QUJD"
    elif change == "signature-other-key":
        from cryptography.hazmat.primitives.asymmetric import rsa
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        del headers["Authorization"]
        headers["Authorization"] = sign_push(other, "POST", headers, path)
    elif change == "cert-url-not-base64":
        headers["x-mns-signing-cert-url"] = "not base64 !"
    elif change == "cert-url-missing":
        del headers["x-mns-signing-cert-url"]
    elif change == "date-missing":
        del headers["Date"]
    elif change == "date-garbage":
        headers["Date"] = "soon"
    elif change == "wrong-path":
        path = "/other"
    return send(stack.fc.url, "POST", path, headers, good)


FORGERIES = ["unsigned", "stale-date", "future-date", "unknown-cert-host", "http-cert-on-aliyun-host",
             "cert-host-suffix-trick", "tampered-body", "tampered-header", "added-mns-header",
             "signature-not-base64", "signature-short", "signature-other-key", "cert-url-not-base64",
             "cert-url-missing", "date-missing", "date-garbage", "wrong-path"]


@pytest.mark.parametrize("change", FORGERIES)
def test_forged_pushes_are_403_with_no_report(stack: Stack, change: str) -> None:
    status, answer = _forge(stack, change)
    assert (status, answer["error"]) == (403, "signature_rejected"), answer
    assert answer["message"]
    assert stack.fnf.calls == [] and stack.registry.reports == []


def test_corpus_is_large_enough() -> None:
    assert len(BAD_SIGNED_BODIES) + len(FORGERIES) + 3 >= 40


def test_logs_hold_no_whole_token_or_credential(stack: Stack, caplog: pytest.LogCaptureFixture,
                                                 capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    token = stack.token()
    stack.fnf.faults.inject("throttle", times=1)
    assert stack.push_message(stack.message(token))[0] == 200
    assert stack.push_message(stack.message(token))[0] == 200
    stack.signed(notification(json.dumps({"taskToken": token + "x"})), cert_url="https://evil.example/c.pem")
    out, err = capfd.readouterr()
    text = caplog.text + out + err
    lines = [r.getMessage() for r in caplog.records if r.name == "mns_callback"]
    assert len(lines) == 3, lines
    first = json.loads(lines[0])
    assert first["outcome"] == "reported" and first["attempts"] == 2 and first["latency_ms"] > 0
    assert first["message_id"] and first["task_token"].startswith(token[:6])
    for secret in (token, stack.credentials.access_key_secret, stack.credentials.security_token):
        assert secret not in text
    assert stack.credentials.access_key_id not in text
