"""The handler behind an FC trigger, its FnF endpoint and an MNS signer, for
tests that push to it over real HTTP (both FC generations: the ``stack``
fixture, registered in conftest.py)."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from localcloud.fc_runtime import FcRuntime
from localcloud.fnf_api import FnFEndpoint, TokenRegistry
from localcloud.mns_push import CertServer, Message, Subscription, build_push, sign_push
from tests.handler_env import BOUND

ROOT = Path(__file__).resolve().parents[1]


def calls_of(fnf: FnFEndpoint, action: str, at_least: int = 1, wait: float = 2.0) -> list:
    """Calls of ``action``, waiting up to ``wait`` s for ``at_least`` of them: a
    request still in flight on the endpoint is recorded only when it ends."""
    import time
    deadline = time.monotonic() + wait
    while len(fnf.calls_of(action)) < at_least and time.monotonic() < deadline:
        time.sleep(0.01)
    return fnf.calls_of(action)
SUCCESS_OUTPUT = {"status": "success"}


@dataclass
class Stack:
    fnf: FnFEndpoint
    registry: TokenRegistry
    cert: CertServer
    fc: FcRuntime
    credentials: Any

    def token(self) -> str:
        return self.registry.issue(flow="demo")

    def message(self, token: str, body: Any = "hello world") -> Message:
        return Message(body=json.dumps({"messageBody": body, "taskToken": token}))

    def push_message(self, message: Message, fmt: str = "JSON", **kwargs: Any) -> tuple[int, dict]:
        sub = Subscription(endpoint=self.fc.url, notify_format=fmt)
        path, headers, body = build_push(message, sub, private_key=self.cert.identity.private_key,
                                         cert_url=self.cert.cert_url, **kwargs)
        return send(self.fc.url, "POST", path, headers, body)

    def signed(self, body: bytes, *, method: str = "POST", path: str = "/notifications",
               content_type: str = "application/json;charset=utf-8", cert_url: str | None = None,
               date: str | None = None, extra: Mapping[str, str] | None = None,
               content_md5: str | None = None) -> tuple[int, dict]:
        headers = {
            "Content-Type": content_type,
            "Content-MD5": hashlib.md5(body).hexdigest().upper() if content_md5 is None else content_md5,
            "Date": date or formatdate(usegmt=True),
            "x-mns-version": "2015-06-06",
            "x-mns-request-id": secrets.token_hex(12).upper(),
            "x-mns-signing-cert-url": base64.b64encode((cert_url or self.cert.cert_url).encode()).decode(),
            **(extra or {}),
        }
        headers["Authorization"] = sign_push(self.cert.identity.private_key, method, headers, path)
        return send(self.fc.url, method, path, headers, body)


def send(url: str, method: str, path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, dict]:
    port = int(url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=dict(headers))
        response = conn.getresponse()
        data = response.read()
        assert response.getheader("x-fc-error-type") is None, f"handler raised: {data[:500]!r}"
        return response.status, json.loads(data)
    finally:
        conn.close()


@pytest.fixture(scope="module", params=["3.0", "2.0"], ids=["fc3-event", "fc2-wsgi"])
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    registry = TokenRegistry()
    with FnFEndpoint(registry) as fnf, CertServer() as cert:
        creds = fnf.issue_sts_credentials()
        env = {"FNF_ENDPOINT": fnf.url, "MNS_CERT_URL_PREFIXES": cert.url_prefix, **BOUND}
        with FcRuntime(source_dir=ROOT / "function", fc_version=request.param, credentials=creds,
                       environment=env) as fc:
            yield Stack(fnf, registry, cert, fc, creds)


@pytest.fixture(autouse=True)
def clean(request: pytest.FixtureRequest) -> Iterator[None]:
    if "stack" in request.fixturenames:
        s: Stack = request.getfixturevalue("stack")
        s.fnf.faults.clear()
        s.fnf.calls.clear()
        s.registry.reports.clear()
    yield


def reports_for(stack: Stack, token: str) -> list:
    return [r for r in stack.registry.reports if r.token == token]


