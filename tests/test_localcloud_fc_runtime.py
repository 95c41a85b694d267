"""The FC HTTP-trigger stand-in: real HTTP in, FC 3.0 event / FC 2.0 WSGI to the handler."""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import sys
from pathlib import Path

import pytest

from localcloud.fc_runtime import FcRuntime, build_event, canonical_header
from localcloud.fnf_api import FnFEndpoint
from localcloud.mns_push import CertServer, Message, Subscription, build_push, push

ROOT = Path(__file__).resolve().parent.parent
CREDS = ("STS.testkey", "test-secret", "test-token")


def post(url: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict, bytes]:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_fc3_event_and_context_reach_the_handler():
    seen = {}

    def handler(event, context):
        assert isinstance(event, bytes)
        seen["event"] = json.loads(event)
        seen["context"] = context
        return {"statusCode": 201, "headers": {"X-Answer": "yes"}, "isBase64Encoded": True,
                "body": base64.b64encode(b"\x00ok").decode()}

    with FcRuntime(handler=handler, credentials=CREDS, region="cn-shanghai") as fc:
        status, headers, body = post(fc.url, "/invoke/a%20b?x=1&x=2&y=",
                                     b'{"Message": "hi"}',
                                     {"Content-Type": "application/json",
                                      "x-mns-signing-cert-url": "aGk="})
    assert (status, body, headers["X-Answer"]) == (201, b"\x00ok", "yes")
    event, context = seen["event"], seen["context"]
    assert event["version"] == "v1" and event["rawPath"] == "/invoke/a%20b"
    assert event["body"] == '{"Message": "hi"}' and event["isBase64Encoded"] is False
    assert event["headers"]["X-Mns-Signing-Cert-Url"] == "aGk="
    assert event["queryParameters"] == {"x": "1,2", "y": ""}
    http_ctx = event["requestContext"]["http"]
    assert (http_ctx["method"], http_ctx["path"]) == ("POST", "/invoke/a b")
    assert event["requestContext"]["requestId"] == headers["x-fc-request-id"] == context.request_id
    assert context.region == "cn-shanghai"
    assert (context.credentials.access_key_id, context.credentials.access_key_secret,
            context.credentials.security_token) == CREDS


def test_binary_body_is_base64_and_plain_returns_are_bodies():
    def handler(event, context):
        event = json.loads(event)
        return event["body"] if event["isBase64Encoded"] else "text"

    with FcRuntime(handler=handler) as fc:
        status, _, body = post(fc.url, "/", b"\xff\xfe", {"Content-Type": "application/octet-stream"})
    assert (status, base64.b64decode(body)) == (200, b"\xff\xfe")


def test_without_context_credentials_the_environment_carries_them():
    seen = {}

    def handler(event, context):
        seen["has"] = hasattr(context, "credentials")
        seen["env"] = os.environ["ALIBABA_CLOUD_SECURITY_TOKEN"]
        return {"statusCode": 204, "body": ""}

    assert "ALIBABA_CLOUD_SECURITY_TOKEN" not in os.environ
    with FcRuntime(handler=handler, credentials=CREDS, context_credentials=False,
                   environment={"FNF_ENDPOINT": "http://127.0.0.1:1"}) as fc:
        assert os.environ["FNF_ENDPOINT"] == "http://127.0.0.1:1"
        assert post(fc.url, "/", b"", {})[0] == 204
    assert seen == {"has": False, "env": "test-token"}
    assert "ALIBABA_CLOUD_SECURITY_TOKEN" not in os.environ and "FNF_ENDPOINT" not in os.environ


def test_fc2_wsgi_gets_environ_and_fc_context():
    seen = {}

    def app(environ, start_response):
        seen.update({k: environ[k] for k in ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING",
                                              "CONTENT_TYPE", "HTTP_X_MNS_REQUEST_ID", "fc.request_uri")})
        seen["body"] = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        seen["region"] = environ["fc.context"].region
        seen["token"] = environ["fc.context"].credentials.security_token
        start_response("202 Accepted", [("Content-Type", "text/plain")])
        return [b"O", b"K"]

    with FcRuntime(handler=app, fc_version="2.0", credentials=CREDS) as fc:
        status, _, body = post(fc.url, "/notifications?a=b", b"payload",
                               {"Content-Type": "text/xml", "x-mns-request-id": "R1"})
        # FC 2.0 gives the URL the client requested (FC docs "HTTP handlers":
        # fc.request_uri), not only its path.
        url = fc.url
    assert (status, body) == (202, b"OK")
    assert seen == {"REQUEST_METHOD": "POST", "PATH_INFO": "/notifications", "QUERY_STRING": "a=b",
                    "CONTENT_TYPE": "text/xml", "HTTP_X_MNS_REQUEST_ID": "R1",
                    "fc.request_uri": f"{url}/notifications?a=b",
                    "body": b"payload", "region": "cn-hangzhou", "token": "test-token"}


def test_handler_exception_is_an_unhandled_invocation_error_and_faults_lose_answers():
    calls = []

    def handler(event, context):
        calls.append(1)
        raise KeyError("boom")

    with FcRuntime(handler=handler) as fc:
        status, headers, body = post(fc.url, "/", b"{}", {})
        assert status == 502 and headers["x-fc-error-type"] == "UnhandledInvocationError"
        assert json.loads(body)["errorType"] == "KeyError"
        fc.faults.inject("lost_answer")
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            post(fc.url, "/", b"{}", {})
        assert len(calls) == 2  # the function ran; only its answer was lost


@pytest.mark.parametrize("length", ["-1", "ten"])
def test_an_unreadable_content_length_is_400_and_the_function_never_runs(length):
    calls = []
    with (FcRuntime(handler=lambda event, context: calls.append(event)) as fc,
          socket.create_connection(("127.0.0.1", fc.port), timeout=5) as conn):
        conn.sendall(f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode())
        answer = conn.makefile("rb").readline()
    assert answer.startswith(b"HTTP/1.1 400 ") and calls == [] and fc.invocations == 0


def test_source_dir_modules_are_loaded_fresh_and_removed(tmp_path):
    (tmp_path / "index.py").write_text(
        "import os\nimport helperpkg\nSEEN = os.environ['GREETING']\n"
        "def handler(event, context):\n"
        "    return {'statusCode': 200, 'body': SEEN + helperpkg.SUFFIX}\n")
    (tmp_path / "helperpkg").mkdir()
    (tmp_path / "helperpkg" / "__init__.py").write_text("SUFFIX = '!'\n")
    for greeting in ("hello", "bonjour"):  # a second runtime does not see the first's modules
        with FcRuntime(source_dir=tmp_path, environment={"GREETING": greeting}) as fc:
            assert post(fc.url, "/", b"", {})[2] == f"{greeting}!".encode()
        assert "helperpkg" not in sys.modules and str(tmp_path) not in sys.path
    with pytest.raises(FileNotFoundError, match="index.py"):
        FcRuntime(source_dir=tmp_path / "nowhere").start()
    assert "GREETING" not in os.environ


def test_event_builder_is_pure():
    event = json.loads(build_event("POST", "/p", [("content-type", "text/plain"), ("X-A", "1"),
                                                  ("x-a", "2")], b"hi", request_id="r",
                                   account_id="1", region="cn-hangzhou", now=0))
    assert event["headers"] == {"Content-Type": "text/plain", "X-A": "1,2"}
    assert event["requestContext"]["timeEpoch"] == "0"
    assert canonical_header("x-mns-signing-cert-url") == "X-Mns-Signing-Cert-Url"
    with pytest.raises(ValueError, match="fc_version"):
        FcRuntime(fc_version="1.0")


@pytest.mark.parametrize("fc_version, fmt, context_credentials", [
    ("3.0", "JSON", True), ("2.0", "XML", True), ("3.0", "SIMPLIFIED", False)])
def test_real_handler_reports_a_signed_push_to_the_local_fnf(fc_version, fmt, context_credentials):
    """function/index.py through real sockets: MNS push in, ReportTaskSucceeded out."""
    with FnFEndpoint() as fnf, CertServer() as certs:
        creds = fnf.issue_sts_credentials()
        token = fnf.backend.issue("flow", "exec-1")
        env = {"FNF_ENDPOINT": fnf.url, "MNS_CERT_URL_PREFIXES": certs.url_prefix,
               **Subscription("http://127.0.0.1/").binding_environment()}
        with FcRuntime(source_dir=ROOT / "function", fc_version=fc_version, credentials=creds,
                       context_credentials=context_credentials, environment=env) as fc:
            message = Message(json.dumps({"messageBody": "hello world", "taskToken": token}))
            path, headers, body = build_push(message, Subscription(fc.url, notify_format=fmt),
                                             private_key=certs.identity.private_key,
                                             cert_url=certs.cert_url)
            assert 200 <= push(fc.url, path, headers, body) < 300
            headers["x-mns-request-id"] = "0" * 24  # tampered: refused, nothing reported
            assert push(fc.url, path, headers, body) >= 400
        report = fnf.backend.report_of(token)
        assert report.kind == "succeeded" and json.loads(report.output) == {"status": "success"}
        assert [c.signature_valid for c in fnf.calls_of("ReportTaskSucceeded")] == [True]
