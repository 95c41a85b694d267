"""An FnF-compatible RPC endpoint (API 2019-03-15) on loopback.

It accepts exactly what the real ``aliyun-python-sdk-core`` 2.16.1 client sends
for the ``aliyun-python-sdk-fnf`` 1.8.3 requests when pointed at
``http://127.0.0.1:PORT`` (see ``aliyunsdkcore/auth/composer/rpc_signature_composer.py``
and ``client.py``):

* the request is ``POST /?<query>`` (``GET`` for DescribeExecution and
  GetExecutionHistory); the query holds the common parameters (``Action``,
  ``Version``, ``Format``, ``RegionId``, ``Timestamp``, ``SignatureMethod``,
  ``SignatureType``, ``SignatureVersion``, ``SignatureNonce``, ``AccessKeyId``,
  ``SecurityToken``, ``Signature``) plus the request's query parameters
  (``TaskToken``); body parameters (``Output``, ``Error``, ``Cause``, ``Input``...)
  arrive form-encoded in the body;
* ``Signature`` is base64 HMAC-SHA1, keyed with ``secret + "&"``, of
  ``METHOD&%2F&`` + percent-encoded canonical query, where the canonical query
  is every parameter but ``Signature`` (query and body together) sorted by
  name, each name and value percent-encoded per RFC 3986 (``quote(.., safe="")``:
  space as ``%20``, ``*`` as ``%2A``, ``~`` kept).

Checks happen in the order a POP gateway documents its errors (common error
codes, help.aliyun.com 51132 and the OpenAPI error center): required common
parameters, Timestamp format and 15-minute window, AccessKeyId, STS
SecurityToken, signature, nonce replay, Action/Version, then the action's own
parameters. Business decisions are delegated to a backend (``FnFBackend``)
which raises ``FnFError``; errors are answered as
``{"RequestId","HostId","Code","Message"}`` with the documented HTTP status.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol
from urllib.parse import parse_qsl, quote, urlsplit

from localcloud.faults import Faults
from localcloud.loopback import LoopbackServer, RequestHandler, read_body, reset_connection

API_VERSION = "2019-03-15"
# POP gateways refuse a Timestamp more than 15 minutes away from their clock
# (InvalidTimeStamp.Expired, OpenAPI common error codes).
TIMESTAMP_WINDOW_SECONDS = 15 * 60
# FnF limit: event data (a step's input/output) up to 32 KiB (docs/platform-facts.md, limits).
MAX_EVENT_BYTES = 32 * 1024
MAX_ERROR_CHARS = 128
MAX_CAUSE_CHARS = 4096

_COMMON_REQUIRED = ("Action", "Version", "AccessKeyId", "Signature", "SignatureMethod",
                    "SignatureNonce", "SignatureVersion", "Timestamp")


# --------------------------------------------------------------------------- errors

class FnFError(Exception):
    """An error the endpoint answers with: HTTP status, error code, message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


# FnF's own errors (API reference of ReportTaskSucceeded / ReportTaskFailed).
def invalid_argument(message: str) -> FnFError:
    return FnFError(400, "InvalidArgument", message)


def task_already_completed(message: str = "The task has already been completed.") -> FnFError:
    return FnFError(400, "TaskAlreadyCompleted", message)


def entity_too_large(message: str) -> FnFError:
    return FnFError(400, "EntityTooLarge", message)


def task_invalid_state(message: str = "The task is in an invalid state, please retry.") -> FnFError:
    return FnFError(409, "TaskInvalidState", message)


def resource_throttled(message: str = "The request is throttled, please retry.") -> FnFError:
    return FnFError(429, "ResourceThrottled", message)


def internal_server_error(message: str = "An internal error occurred, please retry.") -> FnFError:
    return FnFError(500, "InternalServerError", message)


def flow_not_exists(name: str) -> FnFError:
    return FnFError(404, "FlowNotExists", f"Flow {name} does not exist.")


def execution_not_exists(name: str) -> FnFError:
    return FnFError(404, "ExecutionNotExists", f"Execution {name} does not exist.")


def execution_already_exists(name: str) -> FnFError:
    return FnFError(409, "ExecutionAlreadyExists", f"Execution {name} already exists.")


# POP gateway errors (OpenAPI common error codes).
def _missing(name: str) -> FnFError:
    return FnFError(400, f"Missing{name}", f"{name} is mandatory for this action.")


def _signature_mismatch(string_to_sign: str) -> FnFError:
    # The SDK splits this message on ':' and compares the tail with its own
    # string to sign to tell a wrong secret (InvalidAccessKeySecret) apart.
    return FnFError(400, "SignatureDoesNotMatch",
                    "Specified signature is not matched with our calculation. "
                    f"server string to sign is:{string_to_sign}")


# --------------------------------------------------------------------------- signing

# Every ASCII character but RFC 3986's unreserved ones, as %XX: what ``quote(.., safe="")``
# gives for ASCII text, by one regex pass instead of Python's loop per byte.
_RESERVED = re.compile(r"[^A-Za-z0-9_.~-]")
_ASCII_PERCENT = {chr(code): f"%{code:02X}" for code in range(128)}


def _percent(match: re.Match[str]) -> str:
    return _ASCII_PERCENT[match.group()]


def percent_encode(value: str) -> str:
    """RFC 3986 encoding of POP signatures: unreserved kept, everything else %XX (UTF-8)."""
    if value.isascii():
        return _RESERVED.sub(_percent, value)
    return quote(value, safe="")


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """``METHOD&%2F&enc(k1=v1&k2=v2...)`` over every parameter but ``Signature``."""
    canonical = "&".join(
        f"{percent_encode(k)}={percent_encode(v)}"
        for k, v in sorted(params.items())
        if k != "Signature"
    )
    # enc(canonical): once every name and value is encoded, only "%", "=" and "&" in it are
    # not unreserved, so encoding it again is these three replacements.
    encoded = canonical.replace("%", "%25").replace("=", "%3D").replace("&", "%26")
    return f"{method.upper()}&{percent_encode('/')}&{encoded}"


def sign(method: str, params: Mapping[str, str], secret: str) -> str:
    """Base64 HMAC-SHA1 keyed with ``secret + '&'`` (SignatureVersion 1.0)."""
    digest = hmac.new((secret + "&").encode(), string_to_sign(method, params).encode(), hashlib.sha1)
    return base64.b64encode(digest.digest()).decode()


def _parse_timestamp(text: str) -> float:
    """ISO 8601 UTC ``YYYY-MM-DDThh:mm:ssZ`` (what the SDK sends) to epoch seconds."""
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))


# --------------------------------------------------------------------------- credentials

class Credentials(NamedTuple):
    """STS-style temporary credentials: unpack as ``ak, secret, token``."""

    access_key_id: str
    access_key_secret: str
    security_token: str


@dataclass
class _Issued:
    credentials: Credentials
    expires_at: float


# --------------------------------------------------------------------------- backend

class FnFBackend(Protocol):
    """What the endpoint asks of the service behind it. Methods raise ``FnFError``."""

    def report_succeeded(self, token: str, output: str) -> None: ...

    def report_failed(self, token: str, error: str, cause: str) -> None: ...

    def start_execution(self, flow_name: str, execution_name: str | None, input_text: str | None,
                        callback_token: str | None) -> dict[str, Any]: ...

    def describe_execution(self, flow_name: str, execution_name: str,
                           wait_seconds: int) -> dict[str, Any]: ...

    def get_execution_history(self, flow_name: str, execution_name: str, limit: int | None,
                              next_token: str | None) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Report:
    """One report that changed a task's state."""

    token: str
    kind: str  # "succeeded" | "failed"
    output: str | None = None
    error: str | None = None
    cause: str | None = None


class TokenRegistry:
    """A minimal backend: issues task tokens and records the first report of each.

    Tokens look like FnF's (base64 of ``v1#<flow>#<execution>#<event>#<sig>``, where
    ``sig`` is an HMAC of the rest with this registry's key), so a forged or
    altered token is refused. FnF does not document which code an unknown or
    invalid token gets; this endpoint answers ``400 InvalidArgument`` (the code
    FnF gives for every malformed parameter), held in ``INVALID_TOKEN_CODE``.
    A second report for a token gets ``400 TaskAlreadyCompleted``, as does a
    report for a task that ended otherwise (``complete``, e.g. by timeout).
    """

    INVALID_TOKEN_CODE = "InvalidArgument"

    def __init__(self) -> None:
        self._key = secrets.token_bytes(16)
        self._lock = threading.Lock()
        self._open: set[str] = set()
        self._done: dict[str, Report | None] = {}
        self.reports: list[Report] = []
        self.refused: list[tuple[str, str]] = []  # (token, error code) of refused reports

    def issue(self, flow: str = "flow", execution: str | None = None, event_id: int = 1) -> str:
        execution = execution or uuid.uuid4().hex[:16]
        body = f"v1#{flow}#{execution}#{event_id}"
        sig = hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()[:16]
        token = base64.b64encode(f"{body}#{sig}".encode()).decode()
        with self._lock:
            self._open.add(token)
        return token

    def parse(self, token: str) -> tuple[str, str, int]:
        """``(flow, execution, event_id)`` of a token this registry issued, else FnFError."""
        try:
            text = base64.b64decode(token.encode(), validate=True).decode()
            version, flow, execution, event, sig = text.split("#")
            event_id = int(event)
        except (ValueError, UnicodeDecodeError):
            raise FnFError(400, self.INVALID_TOKEN_CODE, "The TaskToken is invalid.") from None
        expected = hmac.new(self._key, f"{version}#{flow}#{execution}#{event}".encode(),
                            hashlib.sha256).hexdigest()[:16]
        if version != "v1" or not hmac.compare_digest(sig, expected):
            raise FnFError(400, self.INVALID_TOKEN_CODE, "The TaskToken is invalid.")
        return flow, execution, event_id

    def complete(self, token: str) -> None:
        """Closes a task without a report (its step timed out or was stopped)."""
        with self._lock:
            self._open.discard(token)
            self._done.setdefault(token, None)

    def _close(self, token: str, report: Report) -> None:
        self.parse(token)
        with self._lock:
            if token not in self._open:
                error = (task_already_completed() if token in self._done
                         else FnFError(400, self.INVALID_TOKEN_CODE, "The TaskToken is invalid."))
                self.refused.append((token, error.code))
                raise error
            self._open.discard(token)
            self._done[token] = report
            self.reports.append(report)

    def report_of(self, token: str) -> Report | None:
        with self._lock:
            return self._done.get(token)

    def report_succeeded(self, token: str, output: str) -> None:
        self._close(token, Report(token, "succeeded", output=output))

    def report_failed(self, token: str, error: str, cause: str) -> None:
        self._close(token, Report(token, "failed", error=error, cause=cause))

    def start_execution(self, flow_name, execution_name, input_text, callback_token):
        raise flow_not_exists(flow_name)

    def describe_execution(self, flow_name, execution_name, wait_seconds):
        raise flow_not_exists(flow_name)

    def get_execution_history(self, flow_name, execution_name, limit, next_token):
        raise flow_not_exists(flow_name)


# --------------------------------------------------------------------------- faults

FAULT_KINDS = ("throttle", "internal", "invalid_state", "slow", "trickle", "reset", "lost_answer")


def fnf_faults(delay: float = 1.0) -> Faults:
    """Faults for the FnF endpoint.

    ``throttle`` (429 ResourceThrottled), ``internal`` (500 InternalServerError),
    ``invalid_state`` (409 TaskInvalidState), ``slow`` (answers normally after
    ``delay`` seconds), ``trickle`` (answers normally, but a byte at a time
    over ``delay`` seconds, so no single read waits long enough for a socket
    timeout to fire), ``reset`` (TCP reset before the request is handled),
    ``lost_answer`` (the request takes effect, then the connection is reset so
    the client never hears the answer). Faults apply only to requests that
    passed authentication, like a service fault behind the gateway.
    """
    return Faults(FAULT_KINDS, delay=delay, default_random=("throttle", "internal", "reset"))


# --------------------------------------------------------------------------- server

@dataclass(frozen=True)
class Call:
    """One request the endpoint answered (or reset), for tests to inspect."""

    action: str
    params: dict[str, str]
    status: int  # 0 when the connection was reset
    code: str | None
    signature_valid: bool


class FnFEndpoint(LoopbackServer):
    """The endpoint; use as ``with FnFEndpoint(backend) as fnf: ... fnf.url ...``.

    ``issue_sts_credentials()`` gives credentials the endpoint accepts;
    ``faults`` injects misbehaviour; ``calls`` lists what was answered.
    """

    def __init__(self, backend: FnFBackend | None = None, *, port: int = 0,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(_FnFHandler, port)
        self.backend: FnFBackend = backend if backend is not None else TokenRegistry()
        self.faults = fnf_faults()
        self.clock = clock
        self.calls: list[Call] = []
        self._issued: dict[str, _Issued] = {}
        # Nonces seen, and the same in the order they expire (every one lives the same
        # span from its arrival), so expiry drops from the front instead of scanning all.
        self._nonces: dict[str, float] = {}
        self._nonce_expiry: deque[tuple[float, str]] = deque()
        self._lock = threading.Lock()

    def issue_sts_credentials(self, ttl_seconds: float = 3600.0) -> Credentials:
        """Temporary credentials like AssumeRole's: ``STS.``-prefixed key, secret, token."""
        creds = Credentials(
            access_key_id="STS." + secrets.token_hex(12),
            access_key_secret=secrets.token_urlsafe(30),
            security_token="CAIS" + base64.b64encode(secrets.token_bytes(96)).decode(),
        )
        with self._lock:
            self._issued[creds.access_key_id] = _Issued(creds, self.clock() + ttl_seconds)
        return creds

    def issue_access_key(self) -> Credentials:
        """A long-term AccessKey pair (no security token), as a RAM user's: for clients
        that are given only ``accessKeyId`` and ``accessKeySecret``."""
        creds = Credentials(access_key_id="LTAI" + secrets.token_hex(10),
                            access_key_secret=secrets.token_urlsafe(22), security_token="")
        with self._lock:
            self._issued[creds.access_key_id] = _Issued(creds, float("inf"))
        return creds

    def calls_of(self, action: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.action == action]

    # -- verification, pure apart from the nonce and credential tables

    def authenticate(self, method: str, params: Mapping[str, str]) -> None:
        """Raises the gateway's FnFError for any request the real gateway would refuse."""
        for name in _COMMON_REQUIRED:
            if not params.get(name):
                raise _missing(name)
        try:
            stamp = _parse_timestamp(params["Timestamp"])
        except ValueError:
            raise FnFError(400, "InvalidTimeStamp.Format",
                           "Specified time stamp or date value is not well formatted.") from None
        now = self.clock()
        if abs(now - stamp) > TIMESTAMP_WINDOW_SECONDS:
            raise FnFError(400, "InvalidTimeStamp.Expired",
                           "Specified time stamp or date value is expired.")
        if params["SignatureMethod"] != "HMAC-SHA1":
            raise FnFError(400, "InvalidSignatureMethod", "Specified signature method is not valid.")
        if params["SignatureVersion"] != "1.0":
            raise FnFError(400, "InvalidSignatureVersion", "Specified signature version is not valid.")
        with self._lock:
            issued = self._issued.get(params["AccessKeyId"])
        if issued is None:
            raise FnFError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        token = params.get("SecurityToken")
        if not issued.credentials.security_token:
            if token:  # a long-term key takes no token
                raise FnFError(400, "InvalidSecurityToken.MismatchWithAccessKey",
                               "Specified SecurityToken mismatch with the AccessKey.")
        elif not token:
            raise FnFError(400, "MissingSecurityToken", "SecurityToken is mandatory for this action.")
        elif not hmac.compare_digest(token, issued.credentials.security_token):
            raise FnFError(400, "InvalidSecurityToken.MismatchWithAccessKey",
                           "Specified SecurityToken mismatch with the AccessKey.")
        if now > issued.expires_at:
            raise FnFError(400, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired.")
        expected = sign(method, params, issued.credentials.access_key_secret)
        if not hmac.compare_digest(expected, params["Signature"]):
            raise _signature_mismatch(string_to_sign(method, params))
        with self._lock:
            expiry = self._nonce_expiry
            while expiry and expiry[0][0] < now:
                _until, nonce = expiry.popleft()
                if self._nonces.get(nonce, now) < now:
                    del self._nonces[nonce]
            if params["SignatureNonce"] in self._nonces:
                raise FnFError(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
            until = now + 2 * TIMESTAMP_WINDOW_SECONDS
            self._nonces[params["SignatureNonce"]] = until
            expiry.append((until, params["SignatureNonce"]))
        if params["Version"] != API_VERSION or params["Action"] not in _ACTIONS:
            raise FnFError(404, "InvalidApi.NotFound",
                           "Specified api is not found, please check your url and method.")

    def dispatch(self, params: Mapping[str, str]) -> dict[str, Any]:
        """Validates the action's parameters and calls the backend; returns the JSON answer."""
        return _ACTIONS[params["Action"]](self.backend, params)

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)


# --------------------------------------------------------------------------- actions

def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise _missing(name)
    return value


def _json_object_text(name: str, text: str) -> None:
    if len(text.encode()) > MAX_EVENT_BYTES:
        raise entity_too_large(f"{name} is {len(text.encode())} bytes, more than {MAX_EVENT_BYTES}.")
    try:
        value = json.loads(text)
    except ValueError:
        raise invalid_argument(f"{name} must be a JSON object text.") from None
    if not isinstance(value, dict):
        raise invalid_argument(f"{name} must be a JSON object text, got {type(value).__name__}.")


def _int_param(params: Mapping[str, str], name: str) -> int | None:
    if name not in params or params[name] == "":
        return None
    try:
        return int(params[name])
    except ValueError:
        raise invalid_argument(f"{name} must be an integer, got {params[name]!r}.") from None


def _report_succeeded(backend: FnFBackend, params: Mapping[str, str]) -> dict[str, Any]:
    token = _required(params, "TaskToken")
    output = _required(params, "Output")
    _json_object_text("Output", output)
    backend.report_succeeded(token, output)
    return {}


def _report_failed(backend: FnFBackend, params: Mapping[str, str]) -> dict[str, Any]:
    token = _required(params, "TaskToken")
    error = _required(params, "Error")
    cause = params.get("Cause", "")
    if len(error) > MAX_ERROR_CHARS:
        raise invalid_argument(f"Error must be 1 to {MAX_ERROR_CHARS} characters, got {len(error)}.")
    if len(cause) > MAX_CAUSE_CHARS:
        raise invalid_argument(f"Cause must be at most {MAX_CAUSE_CHARS} characters, got {len(cause)}.")
    backend.report_failed(token, error, cause)
    return {}


def _start_execution(backend: FnFBackend, params: Mapping[str, str]) -> dict[str, Any]:
    flow = _required(params, "FlowName")
    input_text = params.get("Input") or None
    if input_text is not None:
        _json_object_text("Input", input_text)
    return backend.start_execution(flow, params.get("ExecutionName") or None, input_text,
                                   params.get("CallbackFnFTaskToken") or None)


def _describe_execution(backend: FnFBackend, params: Mapping[str, str]) -> dict[str, Any]:
    wait = _int_param(params, "WaitTimeSeconds") or 0
    if not 0 <= wait <= 60:
        raise invalid_argument(f"WaitTimeSeconds must be within 0..60, got {wait}.")
    return backend.describe_execution(_required(params, "FlowName"),
                                      _required(params, "ExecutionName"), wait)


def _get_execution_history(backend: FnFBackend, params: Mapping[str, str]) -> dict[str, Any]:
    limit = _int_param(params, "Limit")
    if limit is not None and not 1 <= limit <= 1000:
        raise invalid_argument(f"Limit must be within 1..1000, got {limit}.")
    return backend.get_execution_history(_required(params, "FlowName"),
                                         _required(params, "ExecutionName"), limit,
                                         params.get("NextToken") or None)


_ACTIONS: dict[str, Callable[[FnFBackend, Mapping[str, str]], dict[str, Any]]] = {
    "ReportTaskSucceeded": _report_succeeded,
    "ReportTaskFailed": _report_failed,
    "StartExecution": _start_execution,
    "DescribeExecution": _describe_execution,
    "GetExecutionHistory": _get_execution_history,
}


# --------------------------------------------------------------------------- HTTP

class _FnFHandler(RequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "localcloud-fnf"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        endpoint: FnFEndpoint = self.server.owner  # type: ignore[attr-defined]
        request_id = str(uuid.uuid4()).upper()
        params: dict[str, str] = {}
        action = ""
        signature_valid = False
        try:
            body = read_body(self)
            url = urlsplit(self.path)
            if url.path not in ("", "/"):
                raise FnFError(404, "InvalidApi.NotFound",
                               "Specified api is not found, please check your url and method.")
            params = dict(parse_qsl(url.query, keep_blank_values=True))
            content_type = self.headers.get("Content-Type", "")
            if body and content_type.startswith("application/x-www-form-urlencoded"):
                params.update(parse_qsl(body.decode(), keep_blank_values=True))
            action = params.get("Action", "")
            endpoint.authenticate(self.command, params)
            signature_valid = True
            fault = endpoint.faults.next_for(action, params)
            if fault == "reset":
                endpoint._record(Call(action, params, 0, "reset", True))
                reset_connection(self)
                return
            if fault == "slow":
                time.sleep(endpoint.faults.delay)
            elif fault == "throttle":
                raise resource_throttled()
            elif fault == "internal":
                raise internal_server_error()
            elif fault == "invalid_state":
                raise task_invalid_state()
            answer = endpoint.dispatch(params)
            if fault == "lost_answer":
                endpoint._record(Call(action, params, 0, "lost_answer", True))
                reset_connection(self)
                return
            # Recorded before answering, so a client that has its answer sees the record.
            endpoint._record(Call(action, params, 200, None, True))
            self._answer(200, {"RequestId": request_id, **answer}, request_id,
                         trickle=endpoint.faults.delay if fault == "trickle" else 0.0)
        except FnFError as err:
            endpoint._record(Call(action, params, err.status, err.code, signature_valid))
            self._answer(err.status, {"RequestId": request_id,
                                      "HostId": self.headers.get("Host", "127.0.0.1"),
                                      "Code": err.code, "Message": err.message}, request_id)
        except ValueError as err:  # a body that is not what it says it is
            endpoint._record(Call(action, params, 400, "InvalidArgument", signature_valid))
            self._answer(400, {"RequestId": request_id, "HostId": self.headers.get("Host", ""),
                               "Code": "InvalidArgument", "Message": str(err)}, request_id)

    def _answer(self, status: int, document: dict[str, Any], request_id: str, trickle: float = 0.0) -> None:
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-acs-request-id", request_id)
        if not trickle:
            self.end_headers()
            self.wfile.write(data)
            return
        # The whole answer, status line first, a byte at a time (wfile is unbuffered).
        self._headers_buffer.append(b"\r\n")
        raw = b"".join(self._headers_buffer) + data
        self._headers_buffer = []
        for index in range(len(raw)):
            try:
                self.wfile.write(raw[index:index + 1])
            except OSError:  # the client gave up
                return
            time.sleep(trickle / len(raw))
