"""Pure parts of the handler: settings, decisions, FnF error classes, logs, work, adapters."""

from __future__ import annotations

import base64
import json
import sys
import time
from http import HTTPStatus
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.handler_env import BOUND

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "function"))

import index
from mns_callback import TaskFailed, app, log, report, work
from mns_callback.credentials import Credentials, credentials_from, region_from
from mns_callback.decision import Outcome, decide, status_of
from mns_callback.errors import SettingsError
from mns_callback.settings import settings_from_env

# --------------------------------------------------------------------------- settings

def test_defaults_verify_and_use_the_regional_https_endpoint() -> None:
    settings = settings_from_env({**BOUND, "FC_REGION": "cn-shanghai"})
    assert settings.verify_signature is True
    assert settings.endpoint_for("cn-shanghai") == "https://cn-shanghai.fnf.aliyuncs.com"
    assert settings.endpoint_for("ap-southeast-1") == "https://ap-southeast-1.fnf.aliyuncs.com"
    assert settings.region == "cn-shanghai" and settings.work is None


@pytest.mark.parametrize("value, verify", [("false", False), ("FALSE", False), (" False ", False),
                                           ("true", True), ("", True), ("0", True), ("no", True),
                                           ("off", True), ("flase", True)])
def test_only_an_explicit_false_turns_verification_off(value: str, verify: bool) -> None:
    assert settings_from_env({**BOUND, "MNS_VERIFY_SIGNATURE": value}).verify_signature is verify


def test_overrides_are_read() -> None:
    settings = settings_from_env({**BOUND, "FNF_ENDPOINT": "http://127.0.0.1:8080/", "ALIBABA_CLOUD_REGION": "cn-beijing",
                                  "MNS_CERT_URL_PREFIXES": "http://127.0.0.1:9000/, https://certs.example/mns/",
                                  "CALLBACK_WORK": "mywork:run"})
    assert settings.endpoint_for("cn-beijing") == "http://127.0.0.1:8080"
    assert settings.cert_prefixes_for("cn-beijing") == ("http://127.0.0.1:9000/", "https://certs.example/mns/")
    assert settings.work == "mywork:run"


@pytest.mark.parametrize("env, words", [
    ({"FNF_ENDPOINT": "ftp://x"}, "FNF_ENDPOINT"),
    ({"FNF_ENDPOINT": "cn-hangzhou.fnf.aliyuncs.com"}, "FNF_ENDPOINT"),
    ({"MNS_CERT_URL_PREFIXES": "https://mnstest.oss-cn-hangzhou.aliyuncs.com"}, "must end with '/'"),
    ({"MNS_CERT_URL_PREFIXES": "mnstest.oss-cn-hangzhou.aliyuncs.com/"}, "MNS_CERT_URL_PREFIXES"),
    ({"MNS_CERT_URL_PREFIXES": "https://u:p@host/"}, "plain"),
    ({"CALLBACK_WORK": "module_only"}, "module:function"),
    ({"CALLBACK_WORK": "a:b:c"}, "module:function"),
])
def test_bad_settings_name_the_variable(env: dict, words: str) -> None:
    with pytest.raises(SettingsError, match=words):
        settings_from_env({**BOUND, **env})


def test_bad_settings_answer_500_and_report_nothing() -> None:
    request = app.HttpRequest("POST", "/notifications", {}, b"{}")
    answer = app.handle(request, app.Invocation(None, "cn-hangzhou"), SettingsError("FNF_ENDPOINT='x': bad"))
    assert answer.status == 500 and json.loads(answer.body) == {"error": "config_error",
                                                                "message": "FNF_ENDPOINT='x': bad"}


# --------------------------------------------------------------------------- decisions

def test_every_outcome_has_exactly_one_status_class() -> None:
    handled = {Outcome.REPORTED, Outcome.REPORTED_FAILURE, Outcome.ALREADY_REPORTED, Outcome.TOKEN_INVALID}
    refused = {Outcome.BAD_PUSH, Outcome.TOO_LARGE, Outcome.METHOD_NOT_ALLOWED, Outcome.SIGNATURE_REJECTED,
               Outcome.TOPIC_REJECTED}
    for outcome in Outcome:
        status = status_of(outcome)
        expected = 2 if outcome in handled else 4 if outcome in refused else 5
        assert status // 100 == expected, outcome


def test_refusals_carry_a_short_json_error() -> None:
    answer = decide(Outcome.BAD_PUSH, "Message.taskToken: is missing")
    assert (answer.status, json.loads(answer.body)) == (400, {"error": "bad_push",
                                                              "message": "Message.taskToken: is missing"})
    assert dict(decide(Outcome.METHOD_NOT_ALLOWED).headers)["Allow"] == "POST"
    assert json.loads(decide(Outcome.REPORTED).body) == {"result": "reported"}


@pytest.mark.parametrize("code, status, outcome, retry", [
    ("TaskAlreadyCompleted", 400, Outcome.ALREADY_REPORTED, False),
    ("InvalidArgument", 400, Outcome.TOKEN_INVALID, False),
    ("ResourceThrottled", 429, Outcome.THROTTLED, True),
    ("TaskInvalidState", 409, Outcome.FNF_ERROR, True),
    ("InternalServerError", 500, Outcome.FNF_ERROR, True),
    ("ServiceUnavailable", 503, Outcome.FNF_ERROR, True),
    ("SomethingNew", 502, Outcome.FNF_ERROR, True),
    ("AccessDenied", 403, Outcome.FNF_DENIED, False),
    ("InvalidAccessKeyId.NotFound", 404, Outcome.FNF_DENIED, False),
    ("InvalidSecurityToken.Expired", 400, Outcome.FNF_DENIED, False),
    ("SignatureDoesNotMatch", 400, Outcome.FNF_DENIED, False),
    ("EntityTooLarge", 400, Outcome.FNF_ERROR, False),
    ("SignatureNonceUsed", 400, Outcome.FNF_ERROR, False),
])
def test_fnf_codes_map_to_outcomes(code: str, status: int, outcome: Outcome, retry: bool) -> None:
    assert report.classify(code, status) is outcome
    assert report.is_retryable(outcome, code, status) is retry


def test_timeouts_fit_the_mns_window() -> None:
    # MNS waits 5 s for a 2xx (docs/platform-facts.md); the report budget and one attempt must fit in it.
    assert report.REPORT_DEADLINE_SECONDS < 5.0
    assert report.CONNECT_TIMEOUT_SECONDS + report.READ_TIMEOUT_SECONDS < report.REPORT_DEADLINE_SECONDS


def test_each_report_attempt_ends_by_the_deadline() -> None:
    """Connect and read timeouts of every attempt together fit in what is left of the budget."""
    from aliyunsdkcore.acs_exception.exceptions import ServerException

    class FailingClient:
        def __init__(self) -> None:
            self.attempts: list[tuple[float, float, float]] = []

        def do_action_with_exception(self, request) -> None:  # an aliyunsdkcore request
            left = deadline - time.monotonic()
            self.attempts.append((request.get_connect_timeout(), request.get_read_timeout(), left))
            raise ServerException("InternalServerError", "please retry", 500)

    reporter = report.Reporter("http://127.0.0.1:9", "cn-hangzhou", Credentials("id", "secret", "token"),
                               sleep=lambda seconds: None)
    reporter._client = client = FailingClient()
    deadline = time.monotonic() + 1.5
    result = reporter.succeed("token", "{}", deadline)
    assert result.outcome is Outcome.FNF_ERROR and len(client.attempts) == report.MAX_ATTEMPTS
    for connect, read, left in client.attempts:
        # ``left`` is read in the call's thread, a moment after the timeouts were set.
        assert connect > 0 and read > 0 and connect + read <= left + 0.05, client.attempts
    assert report.attempt_timeouts(100.0) == (report.CONNECT_TIMEOUT_SECONDS, report.READ_TIMEOUT_SECONDS)
    assert report.attempt_timeouts(-3.0) == (0.1, 0.1)


# --------------------------------------------------------------------------- logs, work, credentials

@pytest.mark.parametrize("token, shown", [
    ("djEjZmxvdyNleGVjI3NpZ25hdHVyZTEyMzQ1Njc4", "djEjZm…Njc4(len 40)"),
    ("short", "…(len 5)"),
    (None, None),
])
def test_tokens_are_shortened(token: str | None, shown: str | None) -> None:
    assert log.shorten_token(token) == shown


def test_log_line_is_one_json_object_with_a_short_token() -> None:
    token = "A" * 30 + "TAIL"
    line = log.log_push(outcome="reported", task_token=token, status=200)
    assert "\n" not in line and token not in line
    assert json.loads(line)["task_token"] == "AAAAAA…TAIL(len 34)"


def test_credentials_never_show_in_repr() -> None:
    creds = Credentials("STS.id", "the-secret", "the-token")
    assert "the-secret" not in repr(creds) and "the-token" not in repr(creds)


def test_credentials_come_from_the_context_else_the_environment() -> None:
    env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "env-id", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "env-secret",
           "ALIBABA_CLOUD_SECURITY_TOKEN": "env-token"}
    context = SimpleNamespace(credentials=SimpleNamespace(access_key_id="ctx-id", access_key_secret="ctx-secret",
                                                          security_token="ctx-token"), region="cn-beijing")
    assert credentials_from(context, env) == Credentials("ctx-id", "ctx-secret", "ctx-token")
    assert credentials_from(SimpleNamespace(), env) == Credentials("env-id", "env-secret", "env-token")
    assert credentials_from(None, {}) is None
    assert region_from(context, "cn-hangzhou") == "cn-beijing"
    assert region_from(SimpleNamespace(), "cn-hangzhou") == "cn-hangzhou"


def test_work_function_loading_and_output() -> None:
    assert work.load_work(None)(None, None) == {"status": "success"}
    assert work.load_work("json:dumps") is json.dumps
    with pytest.raises(SettingsError, match="cannot import"):
        work.load_work("no_such_module_here:run")
    with pytest.raises(SettingsError, match="has no function"):
        work.load_work("json:nothing")
    assert work.output_text({"b": 1, "a": "é"}) == '{"a": "é", "b": 1}'
    for bad in ([1], "text", {"x": float("nan")}, {"x": object()}, {"x": "y" * 40000}):
        with pytest.raises(work.BadOutput):
            work.output_text(bad)


def test_task_failed_carries_error_and_cause() -> None:
    failure = TaskFailed("Payment.Declined", "card expired")
    assert (failure.error, failure.cause) == ("Payment.Declined", "card expired")


def test_a_task_failed_with_non_text_error_is_reported_as_text(monkeypatch: pytest.MonkeyPatch) -> None:
    failed = []

    class Reporter:
        def __init__(self, *_: object) -> None:
            pass

        def fail(self, token: str, error: str, cause: str, deadline: float) -> report.ReportResult:
            failed.append((error, cause))
            return report.ReportResult(Outcome.REPORTED_FAILURE, 1)

    def work_function(body: object, notification: object) -> dict:
        raise TaskFailed(404, None)

    monkeypatch.setattr(work, "load_work", lambda reference: work_function)
    settings = settings_from_env({"MNS_VERIFY_SIGNATURE": "false"})
    request = app.HttpRequest("POST", "/notifications", {}, json.dumps({"taskToken": "dG9rZW4="}).encode())
    answer = app.handle(request, app.Invocation(Credentials("id", "secret", "token"), "cn-hangzhou"), settings,
                        reporter_factory=Reporter)
    assert (answer.status, json.loads(answer.body)) == (200, {"result": "reported_failure"})
    assert failed == [("404", "")]


# --------------------------------------------------------------------------- adapters

def test_fc3_adapter_reads_base64_bodies_and_query() -> None:
    event = {"rawPath": "/notifications", "isBase64Encoded": True,
             "body": base64.b64encode(b"hello").decode(), "queryParameters": {"b": "2", "a": "1"},
             "headers": {"X-Mns-Version": "2015-06-06"}, "requestContext": {"http": {"method": "POST"}}}
    request = index._fc3_request(json.dumps(event).encode())
    assert (request.method, request.body) == ("POST", b"hello")
    assert request.path == "/notifications?b=2&a=1" and "/notifications?a=1&b=2" in request.other_paths
    assert request.headers == {"x-mns-version": "2015-06-06"}


@pytest.mark.parametrize("event, field", [
    (b"not json", "event: is not JSON"), (b"\xff", "event: is not JSON"), (b"[]", "event: expected a JSON object"),
    ({"body": 5}, "event.body: expected a string, got int"),
    ({"body": "!!", "isBase64Encoded": True}, "event.body: is not base64"),
    ({"headers": ["X-Mns-Version"]}, "event.headers: expected a JSON object, got list"),
    ({"queryParameters": "a=1"}, "event.queryParameters: expected a JSON object, got str"),
    ({"rawPath": 7}, "event.rawPath: expected a string"),
    ({"requestContext": "x"}, "event.requestContext: expected a JSON object"),
    ({"requestContext": {"http": {"method": ["POST"]}}}, "event.requestContext.http.method: expected a string"),
])
def test_fc3_adapter_answers_400_naming_the_malformed_event_field(event: object, field: str) -> None:
    raw = event if isinstance(event, bytes) else json.dumps(event).encode()
    answer = index.handler(raw, SimpleNamespace())
    document = json.loads(answer["body"])
    assert (answer["statusCode"], document["error"]) == (400, "bad_push")
    assert document["message"].startswith(field), document


def test_fc3_query_spellings_are_tried_only_when_there_is_a_query() -> None:
    assert app.signed_path_spellings("/notifications", {}) == ["/notifications"]
    spellings = app.signed_path_spellings("/hook", {"x": "1", "tenant": "a b/c"})
    assert spellings[0] == "/hook?x=1&tenant=a%20b%2Fc"
    assert {"/hook?x=1&tenant=a+b%2Fc", "/hook?x=1&tenant=a b/c", "/hook?tenant=a%20b%2Fc&x=1",
            "/hook?tenant=a+b%2Fc&x=1", "/hook?tenant=a b/c&x=1"} == set(spellings[1:])


def test_wsgi_adapter_refuses_oversized_content_length_before_reading() -> None:
    class Exploding:
        def read(self, *_: object) -> bytes:
            raise AssertionError("body must not be read")

    seen: dict = {}
    body = index.wsgi_handler({"REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(10 ** 9), "wsgi.input": Exploding()},
                              lambda status, headers: seen.update(status=status))
    assert seen["status"] == f"413 {HTTPStatus(413).phrase}"  # the phrase varies by Python version
    assert json.loads(b"".join(body))["error"] == "too_large"
    index.wsgi_handler({"REQUEST_METHOD": "POST", "CONTENT_LENGTH": "abc", "wsgi.input": Exploding()},
                       lambda status, headers: seen.update(status=status))
    assert seen["status"] == "400 Bad Request"


# --------------------------------------------------------------------------- FC runtimes

PROBE = """
import json, sys
sys.path.insert(0, "function")
import index
from mns_callback import push, report, settings, signature
assert index.handler(b"x", None)["statusCode"] == 400
_, task = push.parse_push({}, json.dumps({"Message": json.dumps({"taskToken": "abc"}), "MessageId": "1"}).encode())
assert task.task_token == "abc"
assert settings.settings_from_env({"MNS_TOPIC_OWNER": "1", "MNS_TOPIC_NAME": "t"}).verify_signature
assert report.classify("TaskAlreadyCompleted", 400).value == "already_reported"
print("ok")
"""


@pytest.mark.parametrize("version", ["3.9", "3.10", "3.12"])
def test_the_function_runs_on_the_fc_python_runtimes(version: str) -> None:
    """FC offers python3.9, 3.10 (default) and 3.12: the core uses nothing newer."""
    import shutil
    import subprocess
    interpreter = shutil.which(f"python{version}")
    if interpreter is None:
        pytest.skip(f"python{version} is not installed")
    ran = subprocess.run([interpreter, "-c", PROBE], check=False, cwd=ROOT, capture_output=True, text=True)
    if ran.returncode != 0 and "command not found" in ran.stderr + ran.stdout:
        pytest.skip(f"python{version} is a shim without an interpreter")
    assert ran.stdout.strip() == "ok", ran.stderr


def test_nothing_escapes_the_core() -> None:
    class Exploding:
        def __init__(self, *_: object) -> None:
            raise RuntimeError("boom with secret")

    settings = settings_from_env({"MNS_VERIFY_SIGNATURE": "false"})
    body = json.dumps({"taskToken": "dG9rZW4tdG9rZW4tdG9rZW4="}).encode()
    request = app.HttpRequest("POST", "/notifications", {}, body)
    invocation = app.Invocation(Credentials("id", "secret", "token"), "cn-hangzhou")
    answer = app.handle(request, invocation, settings, reporter_factory=Exploding)
    assert (answer.status, json.loads(answer.body)) == (500, {"error": "internal_error",
                                                              "message": "unexpected RuntimeError"})

    def missing(*_: object) -> None:
        raise ImportError("no module", name="aliyunsdkfnf")

    answer = app.handle(request, invocation, settings, reporter_factory=missing)
    assert json.loads(answer.body) == {"error": "config_error", "message": "cannot import aliyunsdkfnf"}
