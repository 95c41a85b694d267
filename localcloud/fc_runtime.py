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
Python) and status ``502``, as the HTTP trigger FAQ gives it (docs/platform-facts.md
"Function Compute": FC 3.0's InvokeFunction answers such an error with 200).

FC 2.0: the WSGI callable gets a PEP 3333 environ plus ``environ['fc.context']``.

The context carries ``request_id``, ``region``, ``account_id``, ``function``
(name, handler, memory, timeout) and ``credentials`` (``access_key_id``,
``access_key_secret``, ``security_token``); with ``context_credentials=False`` it
has no ``credentials`` attribute at all, as on python3.12, and the handler must
use the ``ALIBABA_CLOUD_*`` variables every runtime sets.

With ``instance_process=True`` the function runs in a Python process of its own
(an FC instance), started from the same code directory with the same
environment: the trigger (HTTP, method and auth checks, outage, faults) stays
in this process and hands each request to the instance over a pipe, the way
FC's front end hands requests to an instance. The handler then shares no
interpreter lock with the stand-ins, and its own report goes back over real
HTTP to whatever ``FNF_ENDPOINT`` names.
"""

from __future__ import annotations

import base64
import importlib
import io
import json
import logging
import multiprocessing
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from localcloud.faults import Faults
from localcloud.loopback import LoopbackServer, RequestHandler, read_body, reset_connection

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


def top_level_names(directory: Path) -> frozenset[str]:
    """The importable top-level names a code archive's root holds (``index``, its packages,
    the vendored distributions' packages), which its runtime owns while it is installed."""
    names: set[str] = set()
    for path in directory.iterdir() if directory.is_dir() else ():
        if path.name.startswith((".", "__")) or path.name.endswith((".dist-info", ".egg-info")):
            continue
        if path.is_dir():
            names.add(path.name)
        elif path.suffix == ".py":
            names.add(path.stem)
    return frozenset(names)


def _top(module_name: str) -> str:
    return module_name.partition(".")[0]


class _Process:
    """The Python process the runtimes share, and which runtime is installed in it.

    A function instance owns its process: its code archive's modules (the
    handler's package and the vendored SDK) under their top-level names in
    ``sys.modules``, its environment in ``os.environ`` (the handler reads its
    settings from there once). Several runtimes (one per function of a render)
    take turns: invocations of the installed runtime run concurrently; another
    runtime's invocation waits until they end, then its own modules and
    environment are swapped in. A runtime waiting for its turn holds back new
    invocations of the installed one, so neither starves.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.current: FcRuntime | None = None
        self._in_flight = 0
        self._waiting: dict[int, int] = {}  # id(runtime) -> invocations waiting for their turn

    def _may_run(self, runtime: FcRuntime) -> bool:
        if self._in_flight == 0:
            return True
        return self.current is runtime and all(key == id(runtime) for key in self._waiting)

    @contextmanager
    def serving(self, runtime: FcRuntime) -> Iterator[None]:
        """Runs the block with ``runtime`` installed."""
        with self._changed:
            key = id(runtime)
            self._waiting[key] = self._waiting.get(key, 0) + 1
            try:
                while not self._may_run(runtime):
                    self._changed.wait()
            finally:
                self._waiting[key] -= 1
                if not self._waiting[key]:
                    del self._waiting[key]
            if runtime.stopped:  # a request that arrived while it stopped: never installed again
                self._changed.notify_all()
                raise RuntimeError("the function is stopped")
            if self.current is not runtime:
                if self.current is not None:
                    self.current._uninstall()
                    self.current = None
                runtime._install()  # an import error leaves nothing installed
                self.current = runtime
            self._in_flight += 1
        try:
            yield
        finally:
            with self._changed:
                self._in_flight -= 1
                self._changed.notify_all()

    def leave(self, runtime: FcRuntime) -> None:
        """Once ``runtime``'s invocations ended, put back what it replaced."""
        with self._changed:
            while self.current is runtime and self._in_flight:
                self._changed.wait()
            if self.current is runtime:
                runtime._uninstall()
                self.current = None
                self._changed.notify_all()


PROCESS = _Process()


class FcRuntime(LoopbackServer):
    """A function behind an HTTP trigger; ``with FcRuntime(...) as fc: push to fc.url``.

    ``source_dir`` (default ``function/``) is the code archive's root; the entry
    is ``index.handler`` (``fc_version="3.0"``) or ``index.wsgi_handler`` ("2.0"),
    or ``handler`` given directly (a callable, for tests without ``function/``).
    ``environment`` is set in ``os.environ`` while the runtime is installed (as FC
    sets a function's variables) together with the ``ALIBABA_CLOUD_*`` credential
    and ``FC_*`` variables, and restored afterwards; the modules of every
    top-level name in ``source_dir`` are imported fresh from there and removed
    again on exit, so settings a handler caches do not leak into other tests.
    Like a real instance, a runtime owns the process while it is installed;
    several runtimes take turns (``_Process``).

    ``methods`` / ``auth_type`` / ``url_internet_disabled`` are the trigger's
    config: a request with another method is answered 405 without running the
    function; a trigger whose ``authType`` is not ``anonymous`` answers 403 to
    every request (the local trigger checks no FC signature, and an MNS push
    carries none), and so does one whose public URL is disabled.
    """

    def __init__(self, *, source_dir: str | os.PathLike[str] = "function", fc_version: str = "3.0",
                 handler: Callable[..., Any] | None = None,
                 credentials: tuple[str, str, str] | None = None,
                 context_credentials: bool = True, region: str = "cn-hangzhou",
                 account_id: str = "1234567890123456", function: FunctionMeta | None = None,
                 environment: Mapping[str, str] | None = None, port: int = 0,
                 methods: Iterable[str] | None = None, auth_type: str = "anonymous",
                 url_internet_disabled: bool = False, instance_process: bool = False) -> None:
        if instance_process and handler is not None:
            raise ValueError("instance_process runs the code in source_dir; a handler given as a callable "
                             "cannot cross to another process")
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
        if methods is not None and not methods:
            raise ValueError("methods must name at least one HTTP method, or be None for any")
        self.methods = frozenset(m.upper() for m in methods) if methods is not None else None
        self.auth_type = auth_type
        self.url_internet_disabled = url_internet_disabled
        self._given = handler
        self._names = top_level_names(self.source_dir) if handler is None else frozenset()
        self._entry: Callable[..., Any] | None = None
        self._ours: dict[str, ModuleType] = {}  # this runtime's modules while another one is installed
        self._stashed: dict[str, ModuleType] = {}  # what they replaced while this one is installed
        self._path_added = False
        self._saved_env: dict[str, str | None] = {}
        self.stopped = False  # set by stop(): requests still in flight may not install it again
        self.instance_process = instance_process
        self.instance: InstanceProcess | None = None  # the instance process while it runs

    # -- lifecycle

    def start(self) -> FcRuntime:
        self.stopped = False
        if self.instance_process:
            return self._start_instance()
        with PROCESS.serving(self):  # installs this runtime: imports the handler
            pass
        try:
            super().start()
        except BaseException:
            self.stopped = True
            PROCESS.leave(self)
            raise
        return self

    def _start_instance(self) -> FcRuntime:
        super().start()  # first: the instance's context needs the trigger's URL
        try:
            self.instance = InstanceProcess(InstanceSpec(
                source_dir=str(self.source_dir), handler=self.function.handler,
                environment=self.function_environment(), invocation=self.invocation(),
                logging_here=handler_logging()))
        except BaseException:
            self.stopped = True
            super().stop()
            raise
        return self

    def stop(self) -> None:
        self.stopped = True
        super().stop()
        if self.instance is not None:
            self.instance.stop()
            self.instance = None
            return
        PROCESS.leave(self)

    def run(self, request: Request) -> Answer:
        """Invokes the function for ``request``: in its instance process, or in this one
        with the runtime installed (``PROCESS``)."""
        try:
            if self.instance is not None:
                return self.instance.invoke(request)
            with PROCESS.serving(self):
                return invoke(self.entry, self.invocation(), request)
        except Exception as err:  # noqa: BLE001 - a function that cannot run is FC's 502 too
            return unhandled_error(err)

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

    def _install(self) -> None:
        """Puts this runtime's environment and modules in the process (``PROCESS`` holds its lock)."""
        environment = self.function_environment()
        self._saved_env = {name: os.environ.get(name) for name in environment}
        os.environ.update(environment)
        if self._given is not None:
            return
        names = self._names
        self._stashed = {name: module for name, module in list(sys.modules.items()) if _top(name) in names}
        for name in self._stashed:
            del sys.modules[name]
        sys.modules.update(self._ours)
        self._path_added = str(self.source_dir) not in sys.path
        if self._path_added:
            sys.path.insert(0, str(self.source_dir))
        if self._entry is None:
            try:
                self._entry = self._import_entry()
            except BaseException:
                self._uninstall()
                raise

    def _import_entry(self) -> Callable[..., Any]:
        return _import_entry(self.source_dir, self.function.handler)

    def _uninstall(self) -> None:
        """Takes this runtime's modules and environment out again, putting back what they replaced."""
        if self._given is None:
            names = self._names
            self._ours = {name: module for name, module in list(sys.modules.items()) if _top(name) in names}
            for name in self._ours:
                del sys.modules[name]
            sys.modules.update(self._stashed)
            self._stashed = {}
            if self._path_added and str(self.source_dir) in sys.path:
                sys.path.remove(str(self.source_dir))
            self._path_added = False
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = {}

    # -- invocation

    def invocation(self) -> Invocation:
        """What an invocation needs of this runtime, as plain data."""
        return Invocation(self.fc_version, self.region, self.account_id, self.function, self.credentials,
                          self.context_credentials, self.url)

    def context(self, request_id: str) -> SimpleNamespace:
        return self.invocation().context(request_id)

    def refusal(self, method: str) -> tuple[int, str, str] | None:
        """What the trigger answers, before any function runs, to a request it does not take.

        The status codes and error bodies are the local run's choice: no page we
        found gives FC's (docs/platform-facts.md "The local run reads the render")."""
        if self.url_internet_disabled:  # FC answers 403 on the default public URL (HTTPTriggerConfig)
            return 403, "AccessDenied", "the trigger's disableURLInternet is true"
        if self.auth_type != "anonymous":
            return 403, "AccessDenied", f"the trigger's authType is {self.auth_type!r}; requests must be signed"
        if self.methods is not None and method.upper() not in self.methods:
            return 405, "MethodNotAllowed", f"the trigger accepts {', '.join(sorted(self.methods))} only"
        return None

    @property
    def entry(self) -> Callable[..., Any]:
        if self._given is not None:
            return self._given
        if self._entry is None:
            raise RuntimeError("the runtime is not running")
        return self._entry


def _new_request_id() -> str:
    return f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"


@dataclass(frozen=True)
class Request:
    """One HTTP request as the trigger read it: what an invocation is built from."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    request_id: str
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"


@dataclass(frozen=True)
class Invocation:
    """What a function's invocation needs of its runtime, as plain data (it crosses to an
    instance process): the FC version, the context's fields and the trigger's URL."""

    fc_version: str
    region: str
    account_id: str
    function: FunctionMeta
    credentials: FunctionCredentials | None
    context_credentials: bool
    url: str

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


Answer = tuple[int, list[tuple[str, str]], bytes]


def unhandled_error(err: BaseException) -> Answer:
    """FC's answer to a function that raised (FC docs "Error handling" for Python; 502 per the HTTP trigger FAQ)."""
    headers = [("Content-Type", "application/json"), ("x-fc-error-type", "UnhandledInvocationError")]
    data = json.dumps({"errorMessage": str(err), "errorType": type(err).__name__,
                       "stackTrace": traceback.format_exception(err)}).encode()
    return 502, headers, data


def invoke(entry: Callable[..., Any], how: Invocation, request: Request) -> Answer:
    """Runs the function's entry for ``request``; any exception is FC's 502."""
    try:
        if how.fc_version == "3.0":
            return _fc3(entry, how, request)
        return _fc2(entry, how, request)
    except Exception as err:  # noqa: BLE001 - any failure of the function is FC's 502
        return unhandled_error(err)


def _fc3(entry: Callable[..., Any], how: Invocation, request: Request) -> Answer:
    event = build_event(request.method, request.path, request.headers, request.body,
                        request_id=request.request_id, account_id=how.account_id,
                        region=how.region, source_ip=request.source_ip)
    return answer_of(entry(event, how.context(request.request_id)))


def _fc2(entry: Callable[..., Any], how: Invocation, request: Request) -> Answer:
    url = urlsplit(request.path)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote(url.path).encode().decode("latin-1"),
        "QUERY_STRING": url.query,
        "REQUEST_URI": request.path,
        "CONTENT_TYPE": next((v for k, v in request.headers if k.lower() == "content-type"), ""),
        "CONTENT_LENGTH": str(len(request.body)),
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": str(urlsplit(how.url).port or ""),
        "SERVER_PROTOCOL": request.protocol,
        "REMOTE_ADDR": request.source_ip,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(request.body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "fc.context": how.context(request.request_id),
        # The whole URL the client asked for, as FC 2.0 gives it (FC docs "HTTP
        # handlers", environ fc.request_uri), so the handler must take the path out.
        "fc.request_uri": how.url + request.path,
    }
    for name, value in request.headers:
        key = "HTTP_" + name.upper().replace("-", "_")
        if key in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
            continue
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info=None):
        started["status"], started["headers"] = status, headers
        return lambda data: None

    chunks = entry(environ, start_response)
    try:
        data = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    if "status" not in started:
        raise RuntimeError("the WSGI handler returned without calling start_response")
    return int(started["status"].split(" ", 1)[0]), list(started["headers"]), data


# --------------------------------------------------------------------------- instance process

@dataclass(frozen=True)
class InstanceSpec:
    """How to start a function's instance process: its code, entry, environment, logging."""

    source_dir: str
    handler: str  # "module.attribute"
    environment: dict[str, str]
    invocation: Invocation
    # Where this process sends the handler's records: None, nowhere configured (the handler's
    # own default then applies); else the level, and whether any handler shows them.
    logging_here: tuple[int, bool] | None


def handler_logging(name: str = "mns_callback") -> tuple[int, bool] | None:
    """How this process treats the records of logger ``name``: None when no logging handler is
    configured on its way to the root; else its level and whether a handler would show them."""
    logger: logging.Logger | None = logging.getLogger(name)
    handlers: list[logging.Handler] = []
    while logger is not None:
        handlers.extend(logger.handlers)
        if not logger.propagate:
            break
        logger = logger.parent
    if not handlers:
        return None
    shown = any(not isinstance(handler, logging.NullHandler) for handler in handlers)
    return logging.getLogger(name).getEffectiveLevel(), shown


def _import_entry(source_dir: Path, handler: str) -> Callable[..., Any]:
    module_name, _, attr = handler.rpartition(".")
    if not (source_dir / f"{module_name}.py").is_file():
        raise FileNotFoundError(f"handler module {module_name}.py not found in {source_dir}")
    importlib.invalidate_caches()
    return getattr(importlib.import_module(module_name), attr)


# An FC instance runs this many invocations at once at most (FC 3.0's instanceConcurrency
# goes up to 200: docs/platform-facts.md "Local run throughput"); more wait for a thread.
INSTANCE_THREADS = 200


def _instance_main(connection: Any, spec: InstanceSpec) -> None:
    """The instance process: imports the entry from the code directory, then runs every
    request it is sent, each in a thread of its own, and sends back its answer."""
    os.environ.update(spec.environment)
    sys.path.insert(0, spec.source_dir)
    if spec.logging_here is not None:
        level, shown = spec.logging_here
        handler: logging.Handler = logging.StreamHandler(sys.stderr) if shown else logging.NullHandler()
        logging.basicConfig(level=level, handlers=[handler], force=True)
    try:
        entry = _import_entry(Path(spec.source_dir), spec.handler)
    except BaseException as err:  # noqa: BLE001 - told to the runtime, which raises it
        connection.send(("error", f"{type(err).__name__}: {err}"))
        return
    connection.send(("ready", os.getpid()))
    sending = threading.Lock()

    def run(number: int, request: Request) -> None:
        answer = invoke(entry, spec.invocation, request)
        with sending:
            connection.send((number, answer))

    with ThreadPoolExecutor(max_workers=INSTANCE_THREADS, thread_name_prefix="invocation") as pool:
        while True:
            try:
                message = connection.recv()
            except (EOFError, OSError):
                break
            if message is None:
                break
            pool.submit(run, *message)


@dataclass
class _Waiting:
    done: threading.Event
    answer: Answer | None = None


class InstanceProcess:
    """A function's instance in a process of its own; ``invoke(request)`` from any thread."""

    def __init__(self, spec: InstanceSpec, start_timeout: float = 60.0) -> None:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked threads
        self._connection, child = context.Pipe()
        self._process = context.Process(target=_instance_main, args=(child, spec), daemon=True,
                                        name=f"fc-instance-{spec.invocation.function.name}")
        self._process.start()
        child.close()
        self._sending = threading.Lock()
        self._waiting: dict[int, _Waiting] = {}
        self._numbers = iter(range(1, 1 << 62))
        self._ended = False
        if not self._connection.poll(start_timeout):
            self._kill()
            raise RuntimeError(f"the instance of {spec.invocation.function.name} did not start "
                               f"within {start_timeout:g} s")
        try:
            kind, detail = self._connection.recv()
        except EOFError:
            self._kill()
            raise RuntimeError(f"the instance of {spec.invocation.function.name} ended while it started") from None
        if kind != "ready":
            self._kill()
            raise RuntimeError(f"the instance of {spec.invocation.function.name} could not import its "
                               f"handler: {detail}")
        self.pid: int = detail
        self._reader = threading.Thread(target=self._read, name=f"fc-instance-{self.pid}", daemon=True)
        self._reader.start()

    def invoke(self, request: Request) -> Answer:
        waiting = _Waiting(threading.Event())
        with self._sending:
            if self._ended:
                raise RuntimeError("the function's instance process has ended")
            number = next(self._numbers)
            self._waiting[number] = waiting
            self._connection.send((number, request))
        waiting.done.wait()
        if waiting.answer is None:
            raise RuntimeError("the function's instance process ended during the invocation")
        return waiting.answer

    def _read(self) -> None:
        try:
            while True:
                try:
                    number, answer = self._connection.recv()
                except (EOFError, OSError):
                    return
                with self._sending:
                    waiting = self._waiting.pop(number, None)
                if waiting is not None:
                    waiting.answer = answer
                    waiting.done.set()
        finally:
            with self._sending:
                self._ended = True
                left, self._waiting = list(self._waiting.values()), {}
            for waiting in left:
                waiting.done.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Lets the invocations in flight end, then ends the process."""
        with self._sending:
            if not self._ended:
                try:
                    self._connection.send(None)
                except OSError:
                    pass
        self._process.join(timeout)
        self._kill()
        self._reader.join(timeout)
        self._connection.close()

    def _kill(self) -> None:
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)


class _FcHandler(RequestHandler):
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
            # is not modelled; MNS only sees a failed status and retries).
            self._answer_error(503, "ServiceUnavailable", "local outage")
            return
        refusal = runtime.refusal(self.command)
        if refusal is not None:
            status, code, message = refusal
            self._answer_error(status, code, message)
            return
        fault = runtime.faults.next_for(self.command)
        if fault == "reset":
            reset_connection(self)
            return
        with runtime._count_lock:
            runtime.invocations += 1
        request = Request(self.command, self.path, list(self.headers.items()), body, request_id,
                          self.client_address[0], self.request_version)
        status, headers, data = runtime.run(request)
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

    def _answer_error(self, status: int, code: str, message: str) -> None:
        data = json.dumps({"errorCode": code, "errorMessage": message}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
