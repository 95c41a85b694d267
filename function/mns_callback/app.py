"""The pure core both FC adapters call: one push in, one decision out.

Order: method -> size -> signature (body included) -> parse -> topic ->
work -> report -> decide -> log.
Nothing here raises: every failure becomes an Outcome, answered by
``decision.decide`` and logged as one line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from . import decision, log, push, work
from .credentials import Credentials
from .deadline import PUSH_DEADLINE_SECONDS
from .decision import Decision, Outcome
from .errors import (
    BadPush,
    CertificateUnavailable,
    SettingsError,
    SignatureRejected,
    TaskFailed,
    TopicRejected,
)
from .settings import Settings
from .topic_binding import check_topic


@dataclass(frozen=True)
class HttpRequest:
    """The push as received: header names lower-cased."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    other_paths: tuple[str, ...] = ()  # other spellings of the path the runtime gave


@dataclass(frozen=True)
class Invocation:
    """What FC tells us about this call."""

    credentials: Credentials | None
    region: str | None
    request_id: str | None = None


_keys = None


def _key_cache():
    global _keys
    if _keys is None:
        _keys = _signature().KeyCache()
    return _keys


# The signature and report modules are imported on the first push that needs
# them (report brings in the SDK), then kept: an import statement in the hot
# path costs a few microseconds on every push.
_modules: dict[str, Any] = {}


def _signature() -> Any:
    module = _modules.get("signature")
    if module is None:
        from . import signature as module
        _modules["signature"] = module
    return module


def _report() -> Any:
    module = _modules.get("report")
    if module is None:
        from . import report as module
        _modules["report"] = module
    return module


def lower_headers(headers: Mapping[str, Any] | None) -> dict[str, str]:
    """Header names compared case-insensitively (FC 3.0 canonicalizes them)."""
    result: dict[str, str] = {}
    for name, value in (headers or {}).items():
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        result[str(name).lower()] = str(value)
    return result


def signed_path_spellings(path: str, query: Mapping[str, str]) -> list[str]:
    """The spellings of ``path?query`` that MNS may have signed, most likely first.

    MNS signs the endpoint's path and query as the subscription spells them,
    but FC 3.0 hands the handler only the decoded ``queryParameters`` (repeated
    names comma-joined, FC docs "HTTP trigger"), so the query's bytes are gone.
    The stack subscribes the bare trigger URL, so normally there is no query and
    exactly one spelling. For a hand-made endpoint with a query the rule is:
    the parameters in the event's order, then sorted (FC may reorder them),
    each way percent-encoded per RFC 3986 (``%20``), form-encoded (``+``) or as
    given; the signature must match one of these (each try is one RSA verify).
    """
    if not query:
        return [path]
    items = [(str(k), str(v)) for k, v in query.items()]
    spellings = []
    for ordered in (items, sorted(items)):
        spellings += [urlencode(ordered, quote_via=quote), urlencode(ordered),
                      "&".join(f"{k}={v}" for k, v in ordered)]
    return [f"{path}?{q}" for q in dict.fromkeys(spellings)]


def _bounded(text: str | None, limit: int = 256) -> str | None:
    return None if text is None else text[:limit]


def handle(request: HttpRequest, invocation: Invocation, settings: Settings | SettingsError, *,
           now: datetime | None = None, keys: Any = None,
           reporter_factory: Callable[..., Any] | None = None) -> Decision:
    """Answer one push. ``settings`` may be the SettingsError met at load time."""
    started = time.monotonic()
    # What the push's log line tells beyond the outcome; _run adds to it as it learns.
    trace: dict[str, Any] = {"request_id": invocation.request_id, "method": request.method,
                             "bytes": len(request.body)}
    try:
        outcome, message = _run(request, invocation, settings, started, trace, now, keys, reporter_factory)
    except ImportError as exc:  # a dependency missing from the code archive
        outcome, message = Outcome.CONFIG_ERROR, f"cannot import {exc.name or 'a dependency'}"
    except Exception as exc:  # noqa: BLE001 - last guard: MNS redelivers, FC sees no crash
        outcome, message = Outcome.INTERNAL_ERROR, f"unexpected {type(exc).__name__}"
    answer = decision.decide(outcome, message)
    log.log_push(outcome=outcome.value, status=answer.status,
                 latency_ms=round((time.monotonic() - started) * 1000, 1),
                 **({"problem": message} if answer.status >= 300 else {}), **trace)
    return answer


def _run(request: HttpRequest, invocation: Invocation, settings: Settings | SettingsError,
         started: float, trace: dict[str, Any], now: datetime | None, keys: Any,
         reporter_factory: Callable[..., Any] | None) -> tuple[Outcome, str]:
    if isinstance(settings, SettingsError):
        return Outcome.CONFIG_ERROR, str(settings)
    if request.method.upper() != "POST":
        return Outcome.METHOD_NOT_ALLOWED, f"method {request.method} not allowed; MNS pushes with POST"
    if len(request.body) > push.MAX_BODY_BYTES:
        return Outcome.TOO_LARGE, f"body of {len(request.body)} bytes is larger than {push.MAX_BODY_BYTES}"
    region = invocation.region or settings.region
    # One deadline for every network call of this push (certificate, reports):
    # MNS hears an answer within its 5 s however slowly a peer answers.
    deadline = started + PUSH_DEADLINE_SECONDS
    if settings.verify_signature:
        try:
            _signature().verify_push(request.method.upper(), (request.path, *request.other_paths), request.headers,
                        request.body, allowed_prefixes=settings.cert_prefixes_for(region),
                        keys=keys or _key_cache(), now=now, deadline=deadline)
        except SignatureRejected as exc:
            return Outcome.SIGNATURE_REJECTED, exc.problem
        except CertificateUnavailable as exc:
            return Outcome.CERT_UNAVAILABLE, str(exc)
    try:
        notification, task = push.parse_push(request.headers, request.body, settings.notify_format)
    except BadPush as exc:
        return (Outcome.TOO_LARGE if exc.status == 413 else Outcome.BAD_PUSH), str(exc)
    # Metadata is the sender's text: bounded, so a push cannot bloat its own log line.
    trace.update(message_id=_bounded(notification.message_id), format=notification.format,
                 topic=_bounded(notification.topic_name))
    if settings.topic_owner and settings.topic_name:
        try:
            check_topic(notification, request.headers, settings.topic_owner, settings.topic_name)
        except TopicRejected as exc:
            return Outcome.TOPIC_REJECTED, exc.problem
    # Only a push from our topic has a token worth logging (shortened by log.log_push).
    trace["task_token"] = task.task_token
    if invocation.credentials is None:
        return Outcome.CONFIG_ERROR, "no credentials in the FC context or ALIBABA_CLOUD_* environment"
    if not region:
        return Outcome.CONFIG_ERROR, "no region in the FC context or ALIBABA_CLOUD_REGION / FC_REGION"
    try:
        work_function = work.load_work(settings.work)
    except SettingsError as exc:
        return Outcome.CONFIG_ERROR, str(exc)
    failure: tuple[str, str] | None = None
    output = ""
    try:
        output = work.output_text(work_function(task.message_body, notification))
    except TaskFailed as exc:
        failure = (exc.error, exc.cause)
    except work.BadOutput as exc:
        # Deterministic: a redelivery would fail the same way, so the flow is
        # told (its catch can handle "CallbackOutputInvalid") instead of MNS.
        failure = ("CallbackOutputInvalid", str(exc))
    except Exception as exc:  # noqa: BLE001 - user code; MNS redelivers
        return Outcome.WORK_ERROR, f"work function raised {type(exc).__name__}"
    factory = reporter_factory or _report().reporter_for
    reporter = factory(settings.endpoint_for(region), region, invocation.credentials)
    if failure is None:
        result = reporter.succeed(task.task_token, output, deadline)
    else:
        trace["task_error"] = failure[0][:128]
        result = reporter.fail(task.task_token, failure[0], failure[1], deadline)
    trace.update(attempts=result.attempts, fnf_code=result.code)
    return result.outcome, result.message


def refuse(outcome: Outcome, message: str, *, request_id: str | None = None,
           method: str | None = None, size: int | None = None) -> Decision:
    """An adapter's own answer (a request it could not even read), logged as
    one line like every push, so no refusal goes unseen."""
    answer = decision.decide(outcome, message)
    log.log_push(outcome=outcome.value, status=answer.status, latency_ms=0.0, problem=message,
                 request_id=request_id, method=method, bytes=size)
    return answer


def environ_settings() -> Settings | SettingsError:
    """Settings of this instance, or the error that stops it from working."""
    from .settings import load_settings
    try:
        return load_settings()
    except SettingsError as exc:
        return exc
