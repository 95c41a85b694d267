"""Properties of the push parser and the handler core, over generated inputs.

Whatever bytes and headers arrive, ``parse_push`` returns a notification or
raises ``BadPush`` naming a field; a push built the way MNS builds it (the
local signer in ``localcloud/mns_push.py``) parses back to the very message
body and token, in all three notify formats; ``app.handle`` always answers
with a JSON decision and reports a task only for a well-formed push.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from localcloud.mns_push import FORMATS, Message, SigningIdentity, Subscription, build_push
from tests.handler_env import BOUND

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "function"))

from mns_callback import app, push, report, signature
from mns_callback.credentials import Credentials
from mns_callback.decision import Decision, Outcome, decide
from mns_callback.errors import BadPush, CertificateUnavailable, SignatureRejected
from mns_callback.settings import settings_from_env

# Deterministic and short: CI replays the same examples on every run.
PROPERTY = settings(max_examples=100, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

_IDENTITY: list[SigningIdentity] = []


def identity() -> SigningIdentity:
    """One small signing key for the module (signing is not what is tested here)."""
    if not _IDENTITY:
        _IDENTITY.append(SigningIdentity(key_size=1024))
    return _IDENTITY[0]


# --------------------------------------------------------------------------- strategies

FIELD_NAMES = ("TopicOwner", "TopicName", "Subscriber", "SubscriptionName", "MessageId", "Message",
               "MessageMD5", "MessageTag", "PublishTime", "Notification", "messageBody", "taskToken")

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20),
                         st.floats(allow_nan=False, allow_infinity=False))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)
# What ReportTaskSucceeded accepts as a token: visible characters, no whitespace.
tokens = st.text(st.characters(min_codepoint=33, blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc")),
                 min_size=1, max_size=300).filter(lambda t: not any(c.isspace() for c in t))


def _task_message(token: object, body: object, extra: dict) -> str:
    return json.dumps({"taskToken": token, "messageBody": body, **extra})


task_messages = st.builds(
    _task_message,
    st.one_of(tokens, json_scalars, st.just(""), st.just(" "), st.just("a b"), st.text(max_size=5),
              # Unpaired surrogates: json.dumps writes them as \ud800 escapes, as any JSON sender may.
              st.builds(lambda a, b: a + b, tokens, st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF))),
    json_values,
    st.dictionaries(st.sampled_from(FIELD_NAMES), json_scalars, max_size=2),
)
# Messages a flow really publishes: a valid token and any JSON body.
valid_messages = st.builds(_task_message, tokens, json_values, st.just({}))
json_envelopes = st.builds(
    lambda fields: json.dumps(fields).encode(),
    st.dictionaries(st.sampled_from(FIELD_NAMES), st.one_of(json_values, task_messages), max_size=5))
valid_envelopes = st.builds(lambda message, message_id: json.dumps({"MessageId": message_id, "Message": message}).encode(),
                            valid_messages, st.text(max_size=10))


def _xml(root: str, children: list[tuple[str, str]], namespace: str, prolog: str) -> bytes:
    from xml.sax.saxutils import escape
    inner = "".join(f"<{name}>{escape(text)}</{name}>" for name, text in children)
    return f'{prolog}<{root} xmlns="{namespace}">{inner}</{root}>'.encode()


xml_names = st.sampled_from(FIELD_NAMES).map(str) | st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,8}", fullmatch=True)
xml_envelopes = st.builds(
    _xml,
    st.sampled_from(["Notification", "Message", "notification"]),
    st.lists(st.tuples(xml_names, st.one_of(task_messages, st.text(max_size=30))), max_size=5),
    st.sampled_from(["http://mns.aliyuncs.com/doc/v1/", "", "urn:other"]),
    st.sampled_from(["", '<?xml version="1.0" encoding="utf-8"?>\n', "\ufeff", '<!DOCTYPE n [<!ENTITY e "x">]>']),
)
bodies = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    task_messages.map(str.encode),
    valid_messages.map(str.encode),
    valid_envelopes,
    json_envelopes,
    xml_envelopes,
    # Valid pushes cut short or with one byte changed.
    st.tuples(st.one_of(json_envelopes, xml_envelopes, task_messages.map(str.encode)),
              st.integers(0, 400), st.integers(0, 255)).map(
        lambda t: t[0][: t[1]] + bytes([t[2]]) + t[0][t[1] + 1:]),
)
header_maps = st.dictionaries(
    st.sampled_from(["x-mns-message-id", "x-mns-topic-name", "x-mns-publish-time", "content-type", "date"])
    | st.text(max_size=10).map(str.lower),
    st.text(max_size=30), max_size=4)


# --------------------------------------------------------------------------- parse_push

@PROPERTY
@given(headers=header_maps, body=bodies)
@example(headers={}, body=b'{"taskToken":"abc","messageBody":' + b"1" * 5000 + b"}")
@example(headers={}, body=b'{"MessageId":' + b"9" * 4400 + b',"Message":"{}"}')
@example(headers={}, body=b"[" * 100_000)
@example(headers={}, body=b"<Notification>" * 5000)
@example(headers={}, body=b"\xef\xbb\xbf{}")
def test_parse_push_returns_a_task_or_names_the_bad_field(headers: dict, body: bytes) -> None:
    try:
        notification, task = push.parse_push(headers, body)
    except BadPush as exc:
        assert exc.field and isinstance(exc.field, str)
        assert exc.problem and str(exc).startswith(f"{exc.field}: ")
        assert exc.status in (400, 413)
        return
    assert notification.format in FORMATS
    assert isinstance(task.task_token, str) and task.task_token.strip() == task.task_token
    assert 0 < len(task.task_token) <= push.MAX_TOKEN_CHARS
    task.task_token.encode("utf-8")  # FnF gets it as UTF-8: no unpaired surrogate
    # The message really is JSON carrying that token: nothing was guessed.
    assert json.loads(notification.message)["taskToken"] == task.task_token


def test_a_token_with_an_unpaired_surrogate_is_a_bad_push_not_a_retry_forever() -> None:
    body = json.dumps({"taskToken": "\ud800" + "a" * 30, "messageBody": 1}).encode()
    with pytest.raises(BadPush, match="surrogate") as refused:
        push.parse_push({}, body)
    assert refused.value.field == "body.taskToken"
    answer = app.handle(app.HttpRequest("POST", "/", {}, body), app.Invocation(CREDENTIALS, "cn-hangzhou"),
                        NO_SIGNATURE, reporter_factory=FakeReporter(Outcome.REPORTED, []))
    assert (answer.status, json.loads(answer.body)["error"]) == (400, "bad_push")


def test_work_output_with_an_unpaired_surrogate_is_reported_as_invalid_output(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A work function echoing "\ud800" from the message body: deterministic, so
    # the flow is told (CallbackOutputInvalid), not MNS asked to redeliver.
    from mns_callback import work
    monkeypatch.setattr(work, "load_work", lambda reference: lambda body, notification: {"echo": body})
    calls: list = []
    body = json.dumps({"taskToken": "tok-1", "messageBody": "\udfff"}).encode()
    answer = app.handle(app.HttpRequest("POST", "/", {}, body), app.Invocation(CREDENTIALS, "cn-hangzhou"),
                        NO_SIGNATURE, reporter_factory=FakeReporter(Outcome.REPORTED_FAILURE, calls))
    assert calls[1:] == [("fail", "tok-1", "CallbackOutputInvalid")]
    assert answer.status == 200


def test_the_size_limits_are_inclusive() -> None:
    message = json.dumps({"taskToken": "t" * push.MAX_TOKEN_CHARS, "messageBody": None})
    body = message.encode() + b" " * (push.MAX_BODY_BYTES - len(message))  # JSON allows trailing blanks
    assert len(push.parse_push({}, body)[1].task_token) == push.MAX_TOKEN_CHARS
    with pytest.raises(BadPush) as refused:
        push.parse_push({}, body + b" ")
    assert (refused.value.field, refused.value.status) == ("body", 413)
    with pytest.raises(BadPush, match="at most 8192") as refused:
        push.parse_task_message(json.dumps({"taskToken": "t" * (push.MAX_TOKEN_CHARS + 1)}))
    assert refused.value.field == "Message.taskToken"


@pytest.mark.parametrize("token", ["abc\x7fdef", "abc\u3000def", "abc\u00a0def", "abc\x1fdef"])
def test_a_token_with_delete_or_unicode_blanks_is_refused(token: str) -> None:
    with pytest.raises(BadPush, match="whitespace or control"):
        push.parse_task_message(json.dumps({"taskToken": token}))


@pytest.mark.parametrize("wrap", [lambda m: json.dumps({"MessageId": "m", "Message": m}), lambda m: m,
                                  lambda m: f"<Notification><Message>{m}</Message></Notification>"])
def test_a_leading_byte_order_mark_is_tolerated_in_every_format(wrap) -> None:
    body = ("\ufeff" + wrap('{"taskToken": "tok"}')).encode()
    assert push.parse_push({}, body)[1].task_token == "tok"


def test_an_integer_too_long_for_python_is_a_bad_push_not_a_crash() -> None:
    # Python refuses to parse integers of more than 4300 digits with a plain
    # ValueError (no .msg): it is a bad body, answered 400, not retried forever.
    for body in (b'{"taskToken":"abc","messageBody":' + b"1" * 5000 + b"}",
                 b'{"MessageId":"m","Message":"{\\"taskToken\\":\\"t\\",\\"messageBody\\":' + b"7" * 4400 + b'}"}'):
        with pytest.raises(BadPush, match="not valid JSON"):
            push.parse_push({}, body)


@pytest.mark.parametrize("fmt", FORMATS)
@PROPERTY
@given(body=json_values, token=tokens, ascii_only=st.booleans(),
       tag=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=10))
def test_a_push_built_as_mns_builds_it_parses_back(fmt: str, body: object, token: str, ascii_only: bool,
                                                   tag: str) -> None:
    text = json.dumps({"messageBody": body, "taskToken": token}, ensure_ascii=ascii_only)
    if fmt == "XML" and any(ch in text for ch in "\ufffe\uffff"):
        text = json.dumps({"messageBody": body, "taskToken": token}, ensure_ascii=True)  # see the test below
    message = Message(text, tag=tag)
    subscription = Subscription("http://127.0.0.1:9/notifications", notify_format=fmt, topic_name="t-1")
    _, headers, raw = build_push(message, subscription, private_key=identity().private_key,
                                 cert_url="http://127.0.0.1:9/cert.pem")
    notification, task = push.parse_push(app.lower_headers(headers), raw)
    assert (task.task_token, task.message_body) == (token, body)
    assert (notification.format, notification.message) == (fmt, text)
    assert (notification.message_id, notification.topic_name) == (message.message_id, "t-1")
    assert notification.publish_time == str(message.publish_time_ms)


def test_an_xml_push_cannot_carry_the_two_non_characters() -> None:
    # XML 1.0 has no U+FFFE / U+FFFF (Char production), so an XML notification
    # whose message holds them raw is not well-formed: refused, never a crash.
    text = json.dumps({"messageBody": "\uffff", "taskToken": "tok"}, ensure_ascii=False)
    subscription = Subscription("http://127.0.0.1:9/", notify_format="XML")
    _, headers, raw = build_push(text, subscription, private_key=identity().private_key,
                                 cert_url="http://127.0.0.1:9/cert.pem")
    with pytest.raises(BadPush, match="not well-formed XML"):
        push.parse_push(app.lower_headers(headers), raw)


# --------------------------------------------------------------------------- app.handle

class FakeReporter:
    """Records report calls; answers with the outcome the test chose."""

    def __init__(self, outcome: Outcome, calls: list) -> None:
        self.outcome, self.calls = outcome, calls

    def __call__(self, endpoint: str, region: str, credentials: Credentials) -> FakeReporter:
        self.calls.append(("factory", endpoint, region))
        return self

    def succeed(self, token: str, output: str, deadline: float) -> report.ReportResult:
        self.calls.append(("succeed", token, output))
        return report.ReportResult(self.outcome, 1, "Code")

    def fail(self, token: str, error: str, cause: str, deadline: float) -> report.ReportResult:
        self.calls.append(("fail", token, error))
        self.cause = cause
        return report.ReportResult(self.outcome, 1, "Code")


REPORT_OUTCOMES = [Outcome.REPORTED, Outcome.ALREADY_REPORTED, Outcome.TOKEN_INVALID, Outcome.THROTTLED,
                   Outcome.TIMEOUT, Outcome.FNF_ERROR, Outcome.FNF_DENIED]
CREDENTIALS = Credentials("id", "secret", "token")
NO_SIGNATURE = settings_from_env({"MNS_VERIFY_SIGNATURE": "false"})
methods = st.one_of(st.just("POST"), st.just("POST"), st.sampled_from(["post", "Post", "GET", "PUT", "HEAD", ""]),
                    st.text(max_size=8))


def _check_decision(answer: object) -> dict:
    assert isinstance(answer, Decision)
    assert answer.status // 100 in (2, 4, 5)
    document = json.loads(answer.body)
    assert isinstance(document, dict)
    assert ("result" in document) == (answer.status < 300) and ("error" in document) == (answer.status >= 300)
    if answer.status >= 300:  # always says what went wrong, even when the cause gave no words
        assert isinstance(document["message"], str) and document["message"].strip()
    assert answer.reason  # a real HTTP status
    return document


@PROPERTY
@given(method=methods, headers=header_maps, body=bodies, outcome=st.sampled_from(REPORT_OUTCOMES))
def test_handle_answers_every_request_and_reports_only_well_formed_pushes(
        method: str, headers: dict, body: bytes, outcome: Outcome) -> None:
    calls: list = []
    request = app.HttpRequest(method, "/notifications", headers, body)
    answer = app.handle(request, app.Invocation(CREDENTIALS, "cn-hangzhou"), NO_SIGNATURE,
                        reporter_factory=FakeReporter(outcome, calls))
    document = _check_decision(answer)
    try:
        _, task = push.parse_push(headers, body)
    except BadPush as exc:
        task, refused = None, exc
    reports = [call for call in calls if call[0] != "factory"]
    if method.upper() != "POST":
        assert (answer.status, calls) == (405, [])
        assert ("Allow", "POST") in answer.headers
    elif task is None:
        assert calls == [] and answer.status in (400, 413)
        assert document["message"] == str(refused)
    else:
        # Exactly one report, with the push's own token, and its outcome decides.
        assert [call[:2] for call in reports] == [("succeed", task.task_token)]
        assert calls[0] == ("factory", "https://cn-hangzhou.fnf.aliyuncs.com", "cn-hangzhou")
        assert document.get("result", document.get("error")) == outcome.value


valid_xml_envelopes = st.builds(lambda message: _xml("Notification", [("MessageId", "m"), ("Message", message)],
                                                      "http://mns.aliyuncs.com/doc/v1/", ""), valid_messages)


@PROPERTY
@given(method=st.sampled_from(["POST", "post", "Post"]),
       body=st.one_of(valid_messages.map(str.encode), valid_envelopes, valid_xml_envelopes),
       outcome=st.sampled_from(REPORT_OUTCOMES))
def test_every_well_formed_push_is_reported_once_and_its_outcome_answers(method: str, body: bytes,
                                                                        outcome: Outcome) -> None:
    calls: list = []
    answer = app.handle(app.HttpRequest(method, "/", {}, body), app.Invocation(CREDENTIALS, "cn-hangzhou"),
                        NO_SIGNATURE, reporter_factory=FakeReporter(outcome, calls))
    document = _check_decision(answer)
    _, task = push.parse_push({}, body)
    assert calls[1:] == [("succeed", task.task_token, '{"status": "success"}')]
    assert answer.status == decide(outcome).status
    assert document.get("result", document.get("error")) == outcome.value


class NoCertificate:
    """A key cache whose certificate can never be had (no network touched)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def get(self, url: str) -> None:
        self.asked.append(url)
        raise CertificateUnavailable("no certificate here")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8", "surrogatepass")).decode()


authorizations = st.one_of(st.text(max_size=10), st.binary(min_size=0, max_size=300).map(
    lambda b: base64.b64encode(b).decode()))
cert_urls = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["http://127.0.0.1:1/", "http://[", "https://[::1", "http://u:p@127.0.0.1:1/",
                     "http://127.0.0.1:1/a b", "ftp://127.0.0.1:1/", "http://127.0.0.1:1\\@x/"]).map(_b64),
    st.text(max_size=40).map(lambda s: _b64("http://127.0.0.1:1/" + s)),
    st.text(max_size=40).map(_b64))
dates = st.one_of(st.text(max_size=30), st.sampled_from(
    ["Thu, 26 Nov 2026 10:00:00 GMT", "Thu, 26 Nov 2026 10:00:00 +2359", "Mon, 31 Feb 2026 10:00:00 GMT",
     "Thu, 26 Nov 99999 10:00:00 GMT", "Thu, 26 Nov 2026 25:61:00 GMT", "26 Nov 2026"]))
signed_headers = st.one_of(
    # Anything at all in the three headers the check reads.
    st.fixed_dictionaries({}, optional={"authorization": authorizations, "x-mns-signing-cert-url": cert_urls,
                                        "date": dates}),
    # A push that looks signed (right length, allowed certificate, fresh Date), signed by no one.
    st.fixed_dictionaries({
        "authorization": st.binary(min_size=32, max_size=300).map(lambda b: base64.b64encode(b).decode()),
        "x-mns-signing-cert-url": st.text(max_size=40).map(lambda s: _b64("http://127.0.0.1:1/" + s)),
        "date": st.sampled_from(["Thu, 26 Nov 2026 10:00:00 GMT", "Thu, 26 Nov 2026 09:51:00 GMT"]),
    }, optional={"x-mns-version": st.text(max_size=10)}),
)


@PROPERTY
@given(headers=signed_headers, body=bodies)
@example(headers={"authorization": base64.b64encode(b"s" * 128).decode(), "x-mns-signing-cert-url": _b64("http://["),
                  "date": "Thu, 26 Nov 2026 10:00:00 GMT"}, body=b'{"taskToken":"t"}')
def test_with_signatures_on_an_unsigned_push_is_refused_never_reported(headers: dict, body: bytes) -> None:
    from datetime import UTC, datetime
    calls: list = []
    keys = NoCertificate()
    settings_ = settings_from_env({**BOUND, "MNS_CERT_URL_PREFIXES": "http://127.0.0.1:1/"})
    answer = app.handle(app.HttpRequest("POST", "/notifications", headers, body),
                        app.Invocation(CREDENTIALS, "cn-hangzhou"), settings_,
                        now=datetime(2026, 11, 26, 10, 5, tzinfo=UTC), keys=keys,
                        reporter_factory=FakeReporter(Outcome.REPORTED, calls))
    document = _check_decision(answer)
    assert calls == []
    # 403 for a push that is not MNS's, 503 only when an allowed certificate was asked for.
    assert (answer.status, document["error"]) in ((403, "signature_rejected"), (503, "cert_unavailable")), document
    assert (answer.status == 503) == bool(keys.asked)
    assert all(url.startswith("http://127.0.0.1:1/") for url in keys.asked)


@PROPERTY
@given(encoded=st.one_of(st.text(max_size=40), st.text(max_size=40).map(_b64),
                         st.sampled_from(["http://[", "https://[::1]:99999/", "http://127.0.0.1:1/[x"]).map(_b64)))
def test_certificate_url_accepts_or_rejects_never_crashes(encoded: str) -> None:
    try:
        url = signature.certificate_url({"x-mns-signing-cert-url": encoded}, ("http://127.0.0.1:1/",))
    except SignatureRejected as exc:
        assert exc.problem.startswith(("x-mns-signing-cert-url", "signing certificate host"))
    else:
        assert url.startswith("http://127.0.0.1:1/") and base64.b64decode(encoded).decode() == url


any_text = st.text(st.characters(), max_size=40) | st.builds(
    lambda a, s: a + s, st.text(max_size=5), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF))


@PROPERTY
@given(error=st.one_of(any_text, st.integers(), st.none()), cause=st.one_of(any_text, st.none(), st.integers()))
def test_whatever_a_work_function_fails_with_reaches_fnf_as_utf8(error: object, cause: object) -> None:
    from unittest import mock

    from mns_callback import TaskFailed, work

    def failing(body: object, notification: object) -> dict:
        raise TaskFailed(error, cause)

    calls: list = []
    reporter = FakeReporter(Outcome.REPORTED_FAILURE, calls)
    body = json.dumps({"taskToken": "tok-1", "messageBody": None}).encode()
    with mock.patch.object(work, "load_work", lambda reference: failing):
        answer = app.handle(app.HttpRequest("POST", "/", {}, body), app.Invocation(CREDENTIALS, "cn-hangzhou"),
                            NO_SIGNATURE, reporter_factory=reporter)
    assert answer.status == 200 and [call[:2] for call in calls[1:]] == [("fail", "tok-1")]
    sent_error = calls[1][2]
    sent_error.encode("utf-8")
    reporter.cause.encode("utf-8")
    if "\\" not in str(error):  # the escape is visible, and nothing else changes
        assert sent_error == str(error).encode("utf-8", "backslashreplace").decode()


def test_a_task_failed_with_a_surrogate_keeps_it_visible_and_sendable() -> None:
    from mns_callback import TaskFailed
    failed = TaskFailed("Bad\ud800", "cause \udfff here")
    assert (failed.error, failed.cause) == ("Bad\\ud800", "cause \\udfff here")
