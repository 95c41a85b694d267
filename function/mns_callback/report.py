"""Reporting the task to FnF with aliyun-python-sdk-fnf, inside MNS's 5 s.

The SDK defaults (connect 5 s + read 10 s, plain HTTP, endpoint resolved to
``fnf.<region>.aliyuncs.com`` outside four regions, no retries for fnf) do not
fit an MNS push, which must be answered within 5 s (docs/platform-facts.md). So the endpoint
and https are set explicitly, timeouts are short, and throttling / server
errors are retried here within a fixed budget.

FnF error codes relied on (FnF API reference, ReportTaskSucceeded and
ReportTaskFailed, API 2019-03-15, "Error codes"; help doc 131878 / 131879):

* 400 ``TaskAlreadyCompleted`` -> already reported: handled (2xx).
* 400 ``InvalidArgument`` -> the token is not (or no longer) valid: our own
  arguments are checked before the call (Output a JSON object within 32 KiB,
  Error 1-128 and Cause <= 4096 characters), so only the token is left; a
  redelivery could never succeed: handled (2xx).
* 409 ``TaskInvalidState`` ("please retry"), 429 ``ResourceThrottled``,
  500 ``InternalServerError`` and any 5xx -> retried here, then retry (5xx).
* 403 ``AccessDenied`` and the signing/credential errors -> the function's
  role or key is wrong; answered 5xx so that MNS keeps the message until fixed.
* ``ClientException`` ``SDK.HttpError`` (connect/read timeout, reset) -> retry.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .credentials import Credentials
from .deadline import PUSH_DEADLINE_SECONDS, DeadlineExceeded, call_before
from .decision import Outcome
from .deferred_imports import defer_vendored_chardet

CONNECT_TIMEOUT_SECONDS = 1.0
READ_TIMEOUT_SECONDS = 2.0
# Whole budget for reporting, counted from the start of the push (the one
# push deadline, shared with the certificate fetch: deadline.py).
REPORT_DEADLINE_SECONDS = PUSH_DEADLINE_SECONDS
MIN_ATTEMPT_SECONDS = 0.4
BACKOFF_SECONDS = 0.1
MAX_ATTEMPTS = 4

ALREADY_REPORTED_CODES = frozenset({"TaskAlreadyCompleted"})
TOKEN_INVALID_CODES = frozenset({"InvalidArgument"})
RETRY_CODES = frozenset({"TaskInvalidState", "ResourceThrottled", "Throttling",
                         "Throttling.User", "InternalServerError", "ServiceUnavailable"})
THROTTLE_CODES = frozenset({"ResourceThrottled", "Throttling", "Throttling.User"})
DENIED_STATUSES = frozenset({401, 403})
DENIED_CODE_PREFIXES = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidSecurityToken",
                        "AccessDenied", "Forbidden", "InvalidAccessKeySecret", "IncompleteSignature")

# FnF limits on ReportTaskFailed (API reference): Error 1-128, Cause <= 4096.
MAX_ERROR_CHARS = 128
MAX_CAUSE_CHARS = 4096


@dataclass(frozen=True)
class ReportResult:
    outcome: Outcome
    attempts: int
    code: str | None = None
    http_status: int | None = None
    message: str = ""


def classify(code: str | None, http_status: int | None) -> Outcome:
    """Pure: the outcome of one failed FnF call."""
    if code in ALREADY_REPORTED_CODES:
        return Outcome.ALREADY_REPORTED
    if code in TOKEN_INVALID_CODES:
        return Outcome.TOKEN_INVALID
    if code in THROTTLE_CODES or http_status == 429:
        return Outcome.THROTTLED
    if code in RETRY_CODES or (http_status is not None and http_status >= 500):
        return Outcome.FNF_ERROR
    if http_status in DENIED_STATUSES or (code or "").startswith(DENIED_CODE_PREFIXES):
        return Outcome.FNF_DENIED
    return Outcome.FNF_ERROR


def is_retryable(outcome: Outcome, code: str | None, http_status: int | None = None) -> bool:
    """Worth another attempt within the budget: throttling, timeouts, FnF's
    "please retry" and server errors, transport failures; never a rejection."""
    if outcome in (Outcome.THROTTLED, Outcome.TIMEOUT):
        return True
    if outcome is not Outcome.FNF_ERROR:
        return False
    return code in RETRY_CODES or code == "SDK.HttpError" or (http_status or 0) >= 500


def attempt_timeouts(remaining: float) -> tuple[float, float]:
    """Pure: (connect, read) timeouts of one attempt with ``remaining`` seconds left.

    Their sum stays within what is left, so an attempt whose connect and read
    both run out still ends by the deadline and MNS hears an answer inside its
    5 s; each timeout capping at ``remaining`` alone would let the attempt run
    up to twice that. The split keeps the 1:2 ratio of the full timeouts; 0.1 s
    is the floor for an attempt started at or past the deadline.
    """
    full = CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS
    connect = min(CONNECT_TIMEOUT_SECONDS, remaining * CONNECT_TIMEOUT_SECONDS / full)
    read = min(READ_TIMEOUT_SECONDS, remaining - connect)
    return max(0.1, connect), max(0.1, read)


def _silence_sdk_logs() -> None:
    """The SDK logs failing requests (its message can echo the signed string,
    which holds the task token and STS token); keep those out of the logs."""
    for name in ("aliyunsdkcore", "aliyunsdkcore.client", "aliyunsdkcore.http.http_response"):
        sdk_logger = logging.getLogger(name)
        sdk_logger.disabled = True
        sdk_logger.propagate = False


class Reporter:
    """ReportTaskSucceeded / ReportTaskFailed against one endpoint."""

    def __init__(self, endpoint_url: str, region: str, credentials: Credentials,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        defer_vendored_chardet()  # before the SDK's first import: a report never uses chardet
        from aliyunsdkcore.auth.credentials import (
            AccessKeyCredential,
            StsTokenCredential,
        )
        from aliyunsdkcore.client import AcsClient
        from aliyunsdkcore.http import protocol_type

        _silence_sdk_logs()
        parts = urlsplit(endpoint_url)
        self._https = parts.scheme == "https"
        self._protocol = protocol_type.HTTPS if self._https else protocol_type.HTTP
        self._host = parts.hostname or ""
        port = parts.port or (443 if self._https else 80)
        if credentials.security_token:
            credential: Any = StsTokenCredential(
                credentials.access_key_id, credentials.access_key_secret, credentials.security_token)
        else:
            credential = AccessKeyCredential(credentials.access_key_id, credentials.access_key_secret)
        self._client = AcsClient(
            region_id=region, credential=credential, auto_retry=False, port=port,
            connect_timeout=CONNECT_TIMEOUT_SECONDS, timeout=READ_TIMEOUT_SECONDS)
        self._sleep = sleep

    def succeed(self, token: str, output: str, deadline: float) -> ReportResult:
        from aliyunsdkfnf.request.v20190315.ReportTaskSucceededRequest import (
            ReportTaskSucceededRequest,
        )

        def build() -> Any:
            request = ReportTaskSucceededRequest()
            request.set_TaskToken(token)
            request.set_Output(output)
            return request
        return self._call(build, deadline, Outcome.REPORTED)

    def fail(self, token: str, error: str, cause: str, deadline: float) -> ReportResult:
        from aliyunsdkfnf.request.v20190315.ReportTaskFailedRequest import (
            ReportTaskFailedRequest,
        )

        error = (error or "TaskFailed")[:MAX_ERROR_CHARS]
        cause = (cause or "")[:MAX_CAUSE_CHARS]

        def build() -> Any:
            request = ReportTaskFailedRequest()
            request.set_TaskToken(token)
            request.set_Error(error)
            if cause:
                request.set_Cause(cause)
            return request
        return self._call(build, deadline, Outcome.REPORTED_FAILURE)

    def _call(self, build: Callable[[], Any], deadline: float, success: Outcome) -> ReportResult:
        from aliyunsdkcore.acs_exception.exceptions import (
            ClientException,
            ServerException,
        )

        attempts = 0
        while True:
            remaining = deadline - time.monotonic()
            request = build()
            request.set_endpoint(self._host)
            request.set_protocol_type(self._protocol)
            connect_timeout, read_timeout = attempt_timeouts(remaining)
            request.set_connect_timeout(connect_timeout)
            request.set_read_timeout(read_timeout)
            attempts += 1
            try:
                # Bounded as a whole, not per socket read: a trickling answer
                # cannot keep the push past its deadline (deadline.py).
                call_before(deadline, lambda r=request: self._client.do_action_with_exception(r))
                return ReportResult(success, attempts)
            except DeadlineExceeded:
                result = ReportResult(Outcome.TIMEOUT, attempts, "DeadlineExceeded", None,
                                      "FnF did not answer before the push's deadline")
            except ServerException as exc:
                code, status = exc.get_error_code(), exc.get_http_status()
                result = ReportResult(classify(code, status), attempts, code, status,
                                      f"FnF answered {status} {code}")
            except ClientException as exc:
                code = exc.get_error_code()
                text = str(exc.get_error_msg() or "")
                outcome = Outcome.TIMEOUT if "timed out" in text.lower() or "timeout" in text.lower() \
                    else Outcome.FNF_ERROR
                result = ReportResult(outcome, attempts, code, None,
                                      f"FnF not reached ({code}{': timeout' if outcome is Outcome.TIMEOUT else ''})")
            if not is_retryable(result.outcome, result.code, result.http_status) or attempts >= MAX_ATTEMPTS:
                return result
            delay = BACKOFF_SECONDS * (2 ** (attempts - 1)) * (0.5 + random.random())
            if deadline - time.monotonic() - delay < MIN_ATTEMPT_SECONDS:
                return result
            self._sleep(delay)


_lock = threading.Lock()
_warm_reporter: tuple[tuple[str, str, Credentials], Reporter] | None = None


def reporter_for(endpoint_url: str, region: str, credentials: Credentials) -> Reporter:
    """One client per (endpoint, region, key), kept for warm invocations so that
    its HTTP connection is reused; a new STS key replaces it."""
    global _warm_reporter
    key = (endpoint_url, region, credentials)
    with _lock:
        if _warm_reporter is not None and _warm_reporter[0] == key:
            return _warm_reporter[1]
        reporter = Reporter(endpoint_url, region, credentials)
        _warm_reporter = (key, reporter)
        return reporter
