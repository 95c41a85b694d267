"""Serves a Python handler over real HTTP the way a Function Compute HTTP trigger does.

FC 3.0 (built-in runtime, FC docs "Use an HTTP trigger to invoke a function"):
the request becomes the event, bytes of JSON ``{"version": "v1", "rawPath",
"body", "isBase64Encoded", "headers", "queryParameters", "requestContext":
{"accountId", "domainName", "domainPrefix", "http": {"method", "path",
"protocol", "sourceIp", "userAgent"}, "requestId", "time", "timeEpoch"}}``;
header names arrive canonicalized (``X-Mns-Signing-Cert-Url``), repeated
values comma-joined; a binary body is base64 with ``isBase64Encoded`` true.
(The event fields, ``queryParameters`` included, with repeated values as
``"value1,value2"``, are those of that doc's request struct.)
The handler's ``{"statusCode", "headers", "isBase64Encoded", "body"}`` becomes
the HTTP answer; any other return value is sent as a 200 body. An exception is
answered with ``x-fc-error-type: UnhandledInvocationError`` and a JSON body
``{"errorMessage", "errorType", "stackTrace"}`` (FC docs "Error handling" for
Python); the status ``502`` is our assumption, no doc we found gives it.

FC 2.0: the WSGI callable gets a PEP 3333 environ plus ``environ['fc.context']``.

The context carries ``request_id``, ``region``, ``account_id``, ``function``
(name, handler, memory, timeout) and ``credentials`` (``access_key_id``,
``access_key_secret``, ``security_token``); with ``context_credentials=False`` it
has no ``credentials`` attribute at all, as on python3.12, and the handler must
use the ``ALIBABA_CLOUD_*`` variables every runtime sets.
"""

from __future__ import annotations

import base64
import importlib
import io
import json
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from localcloud.faults import Faults
from localcloud.loopback import LoopbackServer, read_body, reset_connection

# Content types FC passes as text; anything else is binary and goes base64.
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-www-form-urlencoded",
               "application/javascript")
FAULT_KINDS = ("lost_answer", "reset")


@dataclass(frozen=True)
class FunctionCredentials:
    """``context.credentials`` of the FC Python runtime."""

    access_key_id: str
    access_key_secret: str
    security_token: str


@dataclass(frozen=True)
class FunctionMeta:
    name: str = "callback"
    handler: str = "index.handler"
    memory: int = 512
    timeout: int = 30


def canonical_header(name: str) -> str:
    """``x-mns-signing-cert-url`` -> ``X-Mns-Signing-Cert-Url`` (Go's CanonicalMIMEHeaderKey)."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def _is_text(content_type: str) -> bool:
    return not content_type or content_type.lower().startswith(_TEXT_TYPES)


def build_event(method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes, *,
                request_id: str, account_id: str, region: str, source_ip: str = "127.0.0.1",
                now: float | None = None) -> bytes:
    """The FC 3.0 HTTP-trigger event for one request, as the bytes the handler receives."""
    url = urlsplit(raw_path)
    merged: dict[str, str] = {}
    for name, value in headers:
        key = canonical_header(name)
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    query: dict[str, str] = {}
    for name, value in parse_qsl(url.query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    text = _is_text(merged.get("Content-Type", ""))
    try:
        body_text = body.decode() if text else None
    except UnicodeDecodeError:
        body_text = None
    now = time.time() if now is None else now
    event = {
        "version": "v1",
        "rawPath": url.path,
        "body": body_text if body_text is not None else base64.b64encode(body).decode(),
        "isBase64Encoded": body_text is None,
        "headers": merged,
        "queryParameters": query,
        "requestContext": {
            "accountId": account_id,
            "domainName": f"localcloud.{region}.fcapp.run",
            "domainPrefix": "localcloud",
            "http": {
                "method": method,
                "path": unquote(url.path),
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("User-Agent", ""),
            },
            "requestId": request_id,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "timeEpoch": str(int(now * 1000)),
        },
    }
    return json.dumps(event).encode()


def answer_of(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """Maps an FC 3.0 handler's return value to (status, headers, body)."""
    if isinstance(result, dict) and "statusCode" in result:
        status = int(result["statusCode"])
        headers = []
        for name, value in (result.get("headers") or {}).items():
            for item in value if isinstance(value, list) else [value]:
                headers.append((str(name), str(item)))
        raw = result.get("body") or ""
        if result.get("isBase64Encoded"):
            body = base64.b64decode(raw)
        elif isinstance(raw, (bytes, bytearray)):
            body = bytes(raw)
        else:
            body = (raw if isinstance(raw, str) else json.dumps(raw)).encode()
        return status, headers, body
    if isinstance(result, (bytes, bytearray)):
        return 200, [], bytes(result)
    if isinstance(result, str):
        return 200, [], result.encode()
    return 200, [("Content-Type", "application/json")], json.dumps(result).encode()


@dataclass
class _Loaded:
    """What loading the handler changed in this process, so that stop() can undo
    exactly that and the next runtime imports ``source_dir`` afresh."""

    entry: Callable[..., Any] | None
    ours: dict[str, ModuleType] = field(default_factory=dict)  # imported from source_dir
    saved: dict[str, ModuleType] = field(default_factory=dict)  # same names held before, put back
    path_added: bool = False  # source_dir was put on sys.path by us


def _modules_under(directory: Path) -> dict[str, ModuleType]:
    found = {}
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None)
        if origin and Path(origin).resolve().is_relative_to(directory):
            found[name] = module
    return found


class FcRuntime(LoopbackServer):
    """A function behind an HTTP trigger; ``with FcRuntime(...) as fc: push to fc.url``.

    ``source_dir`` (default ``function/``) is the code archive's root; the entry
    is ``index.handler`` (``fc_version="3.0"``) or ``index.wsgi_handler`` ("2.0"),
    or ``handler`` given directly (a callable, for tests without ``function/``).
    ``environment`` is set in ``os.environ`` while the runtime runs (as FC sets a
    function's variables) together with the ``ALIBABA_CLOUD_*`` credential and
    ``FC_*`` variables, and restored afterwards; the handler's modules are
    imported fresh from ``source_dir`` and removed again on exit, so settings a
    handler caches do not leak into other tests. One runtime per process at a
    time: like a real instance, it owns the process environment.
    """

    def __init__(self, *, source_dir: str | os.PathLike[str] = "function", fc_version: str = "3.0",
                 handler: Callable[..., Any] | None = None,
                 credentials: tuple[str, str, str] | None = None,
                 context_credentials: bool = True, region: str = "cn-hangzhou",
                 account_id: str = "1234567890123456", function: FunctionMeta | None = None,
                 environment: Mapping[str, str] | None = None, port: int = 0) -> None:
        if fc_version not in ("3.0", "2.0"):
            raise ValueError(f"fc_version must be '3.0' or '2.0', got {fc_version!r}")
        super().__init__(_FcHandler, port)
        self.source_dir = Path(source_dir).resolve()
        self.fc_version = fc_version
        self.credentials = FunctionCredentials(*credentials) if credentials else None
        self.context_credentials = context_credentials
        self.region = region
        self.account_id = account_id
        self.function = function or FunctionMeta(
            handler="index.handler" if fc_version == "3.0" else "index.wsgi_handler")
        self.environment = dict(environment or {})
        self.faults = Faults(FAULT_KINDS)
        # time.monotonic() until which the trigger answers 503 without running the function.
        self.unavailable_until = 0.0
        self.invocations = 0
        self._count_lock = threading.Lock()
        self._given = handler
        self._loaded: _Loaded | None = None
        self._saved_env: dict[str, str | None] = {}

    # -- lifecycle

    def start(self) -> FcRuntime:
        self._apply_environment()
        try:
            self._loaded = self._load()
            super().start()
        except BaseException:
            self._unload()
            self._restore_environment()
            raise
        return self

    def stop(self) -> None:
        super().stop()
        self._unload()
        self._restore_environment()

    def function_environment(self) -> dict[str, str]:
        """Variables FC sets for the function, plus the function's own."""
        env = {
            "FC_REGION": self.region,
            "ALIBABA_CLOUD_REGION": self.region,
            "FC_ACCOUNT_ID": self.account_id,
            "FC_FUNCTION_NAME": self.function.name,
            "FC_FUNCTION_HANDLER": self.function.handler,
            "FC_FUNCTION_MEMORY_SIZE": str(self.function.memory),
        }
        if self.credentials:
            env.update({
                "ALIBABA_CLOUD_ACCESS_KEY_ID": self.credentials.access_key_id,
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET": self.credentials.access_key_secret,
                "ALIBABA_CLOUD_SECURITY_TOKEN": self.credentials.security_token,
            })
        env.update(self.environment)
        return env

    def _apply_environment(self) -> None:
        for name, value in self.function_environment().items():
            self._saved_env[name] = os.environ.get(name)
            os.environ[name] = value

    def _restore_environment(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = {}

    def _load(self) -> _Loaded:
        if self._given is not None:
            return _Loaded(self._given)
        module_name, _, attr = self.function.handler.rpartition(".")
        if not (self.source_dir / f"{module_name}.py").is_file():
            raise FileNotFoundError(f"handler module {module_name}.py not found in {self.source_dir}")
        saved = _modules_under(self.source_dir)
        if module_name in sys.modules:
            saved[module_name] = sys.modules[module_name]
        for name in saved:
            del sys.modules[name]
        path_added = str(self.source_dir) not in sys.path
        if path_added:
            sys.path.insert(0, str(self.source_dir))
        try:
            importlib.invalidate_caches()
            entry = getattr(importlib.import_module(module_name), attr)
        finally:
            # Recorded even when the import fails, so that stop() can undo it.
            self._loaded = _Loaded(None, _modules_under(self.source_dir), saved, path_added)
        return _Loaded(entry, self._loaded.ours, saved, path_added)

    def _unload(self) -> None:
        loaded, self._loaded = self._loaded, None
        if loaded is None or self._given is not None:
            return
        for name, module in loaded.ours.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
        sys.modules.update(loaded.saved)
        if loaded.path_added and str(self.source_dir) in sys.path:
            sys.path.remove(str(self.source_dir))

    # -- invocation

    def context(self, request_id: str) -> SimpleNamespace:
        ctx = SimpleNamespace(
            request_id=request_id,
            region=self.region,
            account_id=self.account_id,
            function=SimpleNamespace(name=self.function.name, handler=self.function.handler,
                                     memory=self.function.memory, timeout=self.function.timeout),
            service=SimpleNamespace(name="", log_project="", log_store="", qualifier="LATEST",
                                    version_id=""),
        )
        if self.context_credentials:
            ctx.credentials = self.credentials
        return ctx

    @property
    def entry(self) -> Callable[..., Any]:
        if self._loaded is None or self._loaded.entry is None:
            raise RuntimeError("the runtime is not running")
        return self._loaded.entry


def _new_request_id() -> str:
    return f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"


class _FcHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "localcloud-fc"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._invoke()

    def do_POST(self) -> None:
        self._invoke()

    def do_PUT(self) -> None:
        self._invoke()

    def do_DELETE(self) -> None:
        self._invoke()

    def _invoke(self) -> None:
        runtime: FcRuntime = self.server.owner  # type: ignore[attr-defined]
        request_id = _new_request_id()
        try:
            body = read_body(self)
        except ValueError as err:
            # FC's front end refuses a request it cannot read before any function
            # runs (its exact error body is not modelled here).
            self.close_connection = True
            self.send_error(400, f"Content-Length: {err}")
            return
        if time.monotonic() < runtime.unavailable_until:
            # An outage: FC answers, the function does not run (the exact FC error body
            # is not modelled; MNS only sees a non-2xx status and retries).
            data = json.dumps({"errorCode": "ServiceUnavailable", "errorMessage": "local outage"}).encode()
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        fault = runtime.faults.next_for(self.command)
        if fault == "reset":
            reset_connection(self)
            return
        with runtime._count_lock:
            runtime.invocations += 1
        try:
            if runtime.fc_version == "3.0":
                status, headers, data = self._fc3(runtime, request_id, body)
            else:
                status, headers, data = self._fc2(runtime, request_id, body)
        except Exception as err:  # noqa: BLE001 - any failure of the function is FC's 502
            status = 502
            headers = [("Content-Type", "application/json"),
                       ("x-fc-error-type", "UnhandledInvocationError")]
            data = json.dumps({"errorMessage": str(err), "errorType": type(err).__name__,
                               "stackTrace": traceback.format_exception(err)}).encode()
        if fault == "lost_answer":  # the function ran, its answer never arrives
            reset_connection(self)
            return
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("x-fc-request-id", request_id)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _fc3(self, runtime: FcRuntime, request_id: str, body: bytes):
        event = build_event(self.command, self.path, list(self.headers.items()), body,
                            request_id=request_id, account_id=runtime.account_id,
                            region=runtime.region, source_ip=self.client_address[0])
        return answer_of(runtime.entry(event, runtime.context(request_id)))

    def _fc2(self, runtime: FcRuntime, request_id: str, body: bytes):
        url = urlsplit(self.path)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(url.path).encode().decode("latin-1"),
            "QUERY_STRING": url.query,
            "REQUEST_URI": self.path,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": str(runtime.port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "fc.context": runtime.context(request_id),
            # The whole URL the client asked for, as FC 2.0 gives it (FC docs "HTTP
            # handlers", environ fc.request_uri), so the handler must take the path out.
            "fc.request_uri": runtime.url + self.path,
        }
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                continue
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        started: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info=None):
            started["status"], started["headers"] = status, headers
            return lambda data: None

        chunks = runtime.entry(environ, start_response)
        try:
            data = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        if "status" not in started:
            raise RuntimeError("the WSGI handler returned without calling start_response")
        return int(started["status"].split(" ", 1)[0]), list(started["headers"]), data
