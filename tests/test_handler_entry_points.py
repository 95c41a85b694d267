"""Nothing escapes either entry point, and every answer, the adapters' own
refusals included, goes through the one decision path with one log line."""

from __future__ import annotations

import io
import json
import logging
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "function"))

import index
from mns_callback import app, work
from mns_callback.credentials import Credentials
from mns_callback.decision import Outcome
from mns_callback.report import ReportResult
from mns_callback.settings import settings_from_env


def push_lines(caplog: pytest.LogCaptureFixture) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "mns_callback"]


def wsgi(environ: dict[str, Any]) -> tuple[str, dict]:
    """Call the FC 2.0 entry under wsgiref's validator, as a WSGI server would
    (not where the request itself breaks WSGI: the validator refuses it first)."""
    environ.setdefault("QUERY_STRING", "")
    setup_testing_defaults(environ)
    valid = str(environ.get("CONTENT_LENGTH", "")).isdigit()
    seen: dict[str, str] = {}

    def start_response(status: str, headers: list, exc_info: Any = None) -> Any:
        seen["status"] = status
        return lambda data: None

    entry = validator(index.wsgi_handler) if valid else index.wsgi_handler
    result = entry(environ, start_response)
    body = b"".join(result)
    if hasattr(result, "close"):
        result.close()
    return seen["status"], json.loads(body)


class BrokenInput:
    """A body stream whose connection breaks mid-read."""

    def read(self, *_: object) -> bytes:
        raise ConnectionResetError("peer went away")

    readline = read

    def readlines(self, *_: object) -> list:
        return []

    def __iter__(self) -> Any:
        return iter(())


class ShortInput(io.BytesIO):
    """Ends before the declared Content-Length."""


@pytest.mark.parametrize("environ, status, error, words", [
    ({"REQUEST_METHOD": "POST", "CONTENT_LENGTH": "abc", "wsgi.input": io.BytesIO(b"")}, "400", "bad_push",
     "Content-Length: expected a byte count, got 'abc'"),
    ({"REQUEST_METHOD": "POST", "CONTENT_LENGTH": "-5", "wsgi.input": io.BytesIO(b"")}, "400", "bad_push",
     "Content-Length"),
    ({"REQUEST_METHOD": "POST", "CONTENT_LENGTH": "10", "wsgi.input": BrokenInput()}, "500", "internal_error",
     "request body could not be read (ConnectionResetError)"),
    ({"REQUEST_METHOD": "POST", "CONTENT_LENGTH": "10", "wsgi.input": ShortInput(b"abc")}, "500", "internal_error",
     "ended after 3 of 10 bytes"),
], ids=["not-a-number", "negative", "read-fails", "short-body"])
def test_wsgi_adapter_refusals_are_answered_and_logged(caplog: pytest.LogCaptureFixture, environ: dict,
                                                       status: str, error: str, words: str) -> None:
    caplog.set_level(logging.INFO, logger="mns_callback")
    got_status, answer = wsgi(environ)
    assert (got_status.split()[0], answer["error"]) == (status, error) and words in answer["message"], answer
    [line] = push_lines(caplog)
    assert (line["outcome"], line["status"], line["problem"]) == (error, int(status), answer["message"])


def test_an_unexpected_error_in_either_adapter_is_a_500_not_an_exception(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mns_callback")

    def explode(*_: object, **__: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(app, "handle", explode)
    event = json.dumps({"body": "{}", "requestContext": {"http": {"method": "POST"}}}).encode()
    answer = index.handler(event, SimpleNamespace(request_id="r-1"))
    assert (answer["statusCode"], json.loads(answer["body"])) == (
        500, {"error": "internal_error", "message": "unexpected RuntimeError"})
    status, document = wsgi({"REQUEST_METHOD": "POST", "CONTENT_LENGTH": "2", "wsgi.input": io.BytesIO(b"{}")})
    assert (status.split()[0], document["error"]) == ("500", "internal_error")
    assert [line["outcome"] for line in push_lines(caplog)] == ["internal_error", "internal_error"]


def test_the_fc3_adapters_refusal_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mns_callback")
    answer = index.handler(b"not json", SimpleNamespace(request_id="r-2"))
    assert answer["statusCode"] == 400
    [line] = push_lines(caplog)
    assert (line["outcome"], line["request_id"]) == ("bad_push", "r-2")


def _handle_with_work(monkeypatch: pytest.MonkeyPatch, output: Any) -> tuple[int, dict, list]:
    failed: list[tuple[str, str]] = []

    class Reporter:
        def __init__(self, *_: object) -> None:
            pass

        def fail(self, token: str, error: str, cause: str, deadline: float) -> ReportResult:
            failed.append((error, cause))
            return ReportResult(Outcome.REPORTED_FAILURE, 1)

    monkeypatch.setattr(work, "load_work", lambda reference: lambda body, notification: output)
    settings = settings_from_env({"MNS_VERIFY_SIGNATURE": "false"})
    request = app.HttpRequest("POST", "/notifications", {}, json.dumps({"taskToken": "dG9rZW4="}).encode())
    answer = app.handle(request, app.Invocation(Credentials("id", "secret", "token"), "cn-hangzhou"), settings,
                        reporter_factory=Reporter)
    return answer.status, json.loads(answer.body), failed


def test_a_deeply_nested_work_output_is_reported_as_invalid_output_not_retried(
        monkeypatch: pytest.MonkeyPatch) -> None:
    deep: dict = {}
    for _ in range(5000):  # well under 32 KiB as JSON, far past json's recursion limit
        deep = {"a": deep}
    status, answer, failed = _handle_with_work(monkeypatch, deep)
    assert (status, answer) == (200, {"result": "reported_failure"})
    assert failed == [("CallbackOutputInvalid", "work function output is nested too deeply to write as JSON")]


def test_an_xml_push_declaring_an_unknown_encoding_is_a_bad_push() -> None:
    settings = settings_from_env({"MNS_VERIFY_SIGNATURE": "false"})
    body = b'<?xml version="1.0" encoding="x-no-such-encoding"?><Notification><Message>{}</Message></Notification>'
    answer = app.handle(app.HttpRequest("POST", "/", {}, body),
                        app.Invocation(Credentials("id", "secret"), "cn-hangzhou"), settings)
    assert (answer.status, json.loads(answer.body)["error"]) == (400, "bad_push")


def test_the_senders_metadata_is_bounded_in_the_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mns_callback")
    settings = settings_from_env({"MNS_VERIFY_SIGNATURE": "false"})
    body = json.dumps({"TopicName": "t" * 100_000, "MessageId": "m" * 100_000,
                       "Message": json.dumps({"taskToken": "dG9rZW4="})}).encode()
    app.handle(app.HttpRequest("POST", "/", {}, body), app.Invocation(None, "cn-hangzhou"), settings)
    [line] = push_lines(caplog)
    assert len(line["topic"]) == len(line["message_id"]) == 256
