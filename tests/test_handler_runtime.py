"""The handler's environment over real HTTP: python3.12 credentials, the
signature switch, default certificate hosts, missing credentials, FnF down."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from test_handler_http import calls_of

from localcloud.fc_runtime import FcRuntime
from localcloud.fnf_api import FnFEndpoint, TokenRegistry
from localcloud.mns_push import CertServer, Message, Subscription, build_push

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def running(env: dict[str, str] | None = None, **runtime: Any) -> Iterator[SimpleNamespace]:
    registry = TokenRegistry()
    with FnFEndpoint(registry) as fnf, CertServer() as cert:
        creds = fnf.issue_sts_credentials()
        environment = {"FNF_ENDPOINT": fnf.url, "MNS_CERT_URL_PREFIXES": cert.url_prefix,
                       **Subscription("http://127.0.0.1/").binding_environment(), **(env or {})}
        runtime.setdefault("credentials", creds)
        with FcRuntime(source_dir=ROOT / "function", environment=environment, **runtime) as fc:
            yield SimpleNamespace(fnf=fnf, registry=registry, cert=cert, fc=fc, creds=creds)


def post(fc: FcRuntime, cert: CertServer, token: str, *, signed: bool = True) -> tuple[int, dict]:
    import http.client
    message = Message(body=json.dumps({"messageBody": "hello world", "taskToken": token}))
    path, headers, body = build_push(message, Subscription(endpoint=fc.url),
                                     private_key=cert.identity.private_key, cert_url=cert.cert_url)
    if not signed:
        headers = {"Content-Type": headers["Content-Type"]}
    conn = http.client.HTTPConnection("127.0.0.1", fc.port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@pytest.mark.parametrize("fc_version", ["3.0", "2.0"])
def test_without_context_credentials_the_environment_is_used(fc_version: str) -> None:
    with running(fc_version=fc_version, context_credentials=False) as run:
        token = run.registry.issue()
        assert post(run.fc, run.cert, token) == (200, {"result": "reported"})
        [call] = calls_of(run.fnf, "ReportTaskSucceeded")
        assert call.params["AccessKeyId"] == run.creds.access_key_id and call.signature_valid


def test_the_pusher_delivers_through_the_handler() -> None:
    with running(fc_version="2.0") as run:
        from localcloud.mns_push import Pusher
        token = run.registry.issue()
        pusher = Pusher(Subscription(endpoint=run.fc.url, notify_format="XML"), private_key=run.cert.identity.private_key,
                        cert_url=run.cert.cert_url, time_scale=0.001)
        delivery = pusher.deliver(Message(body=json.dumps({"messageBody": 1, "taskToken": token})))
        assert delivery.delivered and delivery.attempts == 1
        assert [r.token for r in run.registry.reports] == [token]


def test_signature_check_off_only_when_explicitly_false() -> None:
    with running(env={"MNS_VERIFY_SIGNATURE": "false"}) as run:
        token = run.registry.issue()
        assert post(run.fc, run.cert, token, signed=False) == (200, {"result": "reported"})
    with running(env={"MNS_VERIFY_SIGNATURE": "0"}) as run:
        status, answer = post(run.fc, run.cert, run.registry.issue(), signed=False)
        assert (status, answer["error"]) == (403, "signature_rejected") and run.registry.reports == []


def test_default_certificate_hosts_refuse_a_local_certificate_without_fetching_it() -> None:
    registry = TokenRegistry()
    with FnFEndpoint(registry) as fnf, CertServer() as cert:
        with FcRuntime(source_dir=ROOT / "function", credentials=fnf.issue_sts_credentials(),
                       environment={"FNF_ENDPOINT": fnf.url,
                                    **Subscription("http://127.0.0.1/").binding_environment()}) as fc:
            status, answer = post(fc, cert, registry.issue())
        assert (status, answer["error"]) == (403, "signature_rejected")
        assert "not an allowed MNS certificate URL" in answer["message"]
        assert cert.fetches == 0 and fnf.calls == []


def test_no_credentials_is_a_500_not_a_crash() -> None:
    with running(credentials=None) as run:
        status, answer = post(run.fc, run.cert, run.registry.issue())
        assert (status, answer["error"]) == (500, "config_error") and run.fnf.calls == []


def test_fnf_unreachable_is_a_5xx_quickly() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with running(env={"FNF_ENDPOINT": f"http://127.0.0.1:{closed_port}"}) as run:
        status, answer = post(run.fc, run.cert, run.registry.issue())
        assert status in (502, 504) and answer["error"] in ("fnf_error", "timeout")


def test_fc2_proxy_path_is_verified_from_fc_request_uri() -> None:
    """FC 2.0 triggers live under /2016-08-15/proxy/<service>/<function>/; MNS signs
    that path, while PATH_INFO holds only what follows it."""
    import io
    from types import SimpleNamespace as NS
    with running(fc_version="2.0") as run:
        token = run.registry.issue()
        proxy = "/2016-08-15/proxy/svc/callback/"
        sub = Subscription(endpoint=f"https://1234.cn-hangzhou.fc.aliyuncs.com{proxy}")
        path, headers, body = build_push(Message(body=json.dumps({"taskToken": token})),
                                         sub, private_key=run.cert.identity.private_key, cert_url=run.cert.cert_url)
        assert path == proxy
        environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/", "QUERY_STRING": "", "SCRIPT_NAME": "",
                   "CONTENT_TYPE": headers.pop("Content-Type"), "CONTENT_LENGTH": str(len(body)),
                   "wsgi.input": io.BytesIO(body), "fc.request_uri": f"https://1234.cn-hangzhou.fc.aliyuncs.com{proxy}",
                   "fc.context": NS(request_id="r1", region="cn-hangzhou", credentials=run.fc.credentials)}
        environ.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()})
        seen = {}
        answer = b"".join(run.fc.entry(environ, lambda status, hdrs: seen.update(status=status)))
        assert (seen["status"], json.loads(answer)) == ("200 OK", {"result": "reported"})
        assert [r.token for r in run.registry.reports] == [token]
        # Without fc.request_uri, the bare PATH_INFO cannot match what MNS signed.
        environ.pop("fc.request_uri")
        environ["wsgi.input"] = io.BytesIO(body)
        answer = b"".join(run.fc.entry(environ, lambda status, hdrs: seen.update(status=status)))
        assert seen["status"] == "403 Forbidden"
