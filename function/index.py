"""Function Compute entry points: thin adapters over ``mns_callback.app``.

``handler(event, context)`` is the FC 3.0 HTTP-trigger entry (event = JSON
bytes, answer = ``{"statusCode", "headers", "isBase64Encoded", "body"}``);
``wsgi_handler(environ, start_response)`` is the FC 2.0 one
(``environ['fc.context']``). See docs/platform-facts.md "Function Compute".
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, urlsplit

from mns_callback import app
from mns_callback.credentials import credentials_from, region_from
from mns_callback.decision import Decision, Outcome
from mns_callback.errors import BadPush
from mns_callback.push import MAX_BODY_BYTES


def _invocation(context: Any, settings: Any) -> app.Invocation:
    """Credentials and region of this call, read per request: FC rotates the STS
    key under a warm instance, so a value kept from the cold start would expire."""
    fallback = None if isinstance(settings, Exception) else settings.region
    return app.Invocation(
        credentials=credentials_from(context, os.environ),
        region=region_from(context, fallback),
        request_id=getattr(context, "request_id", None),
    )


def _fc3_response(answer: Decision) -> dict:
    return {"statusCode": answer.status, "headers": dict(answer.headers),
            "isBase64Encoded": False, "body": answer.body.decode("ascii")}


def _object(value: Any, field: str) -> dict:
    """``value`` if it is a JSON object (absent counts as empty), else BadPush naming ``field``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadPush(field, f"expected a JSON object, got {type(value).__name__}")
    return value


def _string(value: Any, field: str, default: str) -> str:
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise BadPush(field, f"expected a string, got {type(value).__name__}")
    return value


def _fc3_request(event: Any) -> app.HttpRequest:
    """The push out of an FC 3.0 HTTP-trigger event; BadPush naming the malformed field."""
    if isinstance(event, (bytes, bytearray, str)):
        try:
            event = json.loads(event)
        except RecursionError:
            raise BadPush("event", "is JSON nested too deeply") from None
        except ValueError:  # UnicodeDecodeError is one too
            raise BadPush("event", "is not JSON text; expected the FC 3.0 HTTP trigger event") from None
    if not isinstance(event, dict):
        raise BadPush("event", f"expected a JSON object (the FC 3.0 HTTP trigger event), got {type(event).__name__}")
    http = _object(_object(event.get("requestContext"), "event.requestContext").get("http"),
                   "event.requestContext.http")
    method = _string(http.get("method"), "event.requestContext.http.method", "") or _string(
        event.get("httpMethod"), "event.httpMethod", "")
    path = _string(event.get("rawPath"), "event.rawPath", "") or _string(
        http.get("path"), "event.requestContext.http.path", "/")
    query = _object(event.get("queryParameters"), "event.queryParameters")
    headers = _object(event.get("headers"), "event.headers")
    raw = _string(event.get("body"), "event.body", "")
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise BadPush("event.body", "is not base64, though isBase64Encoded is true") from None
    else:
        body = raw.encode("utf-8", "surrogatepass")
    paths = app.signed_path_spellings(path, query)
    return app.HttpRequest(method, paths[0], app.lower_headers(headers), body, tuple(paths[1:]))


def handler(event: Any, context: Any) -> dict:
    """FC 3.0 HTTP trigger. Every push gets an answer, never an exception: FC
    would turn one into a 502 that MNS redelivers forever without saying why."""
    request_id = getattr(context, "request_id", None)
    try:
        settings = app.environ_settings()
        try:
            request = _fc3_request(event)
        except BadPush as exc:
            return _fc3_response(app.refuse(Outcome.BAD_PUSH, str(exc), request_id=request_id))
        return _fc3_response(app.handle(request, _invocation(context, settings), settings))
    except Exception as exc:  # noqa: BLE001 - last guard of the entry point
        return _fc3_response(app.refuse(Outcome.INTERNAL_ERROR, f"unexpected {type(exc).__name__}",
                                        request_id=request_id))


def _wsgi_paths(environ: dict) -> list[str]:
    """The request path as MNS signed it, in every spelling the runtime gives.

    FC 2.0 routes ``/2016-08-15/proxy/<service>/<function>/...``: MNS signs that
    whole path, which only ``fc.request_uri`` keeps (PATH_INFO is the rest).
    """
    paths = []
    for key in ("fc.request_uri", "REQUEST_URI", "RAW_URI"):
        raw = environ.get(key)
        if raw:
            parts = urlsplit(str(raw))
            paths.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    path = (environ.get("SCRIPT_NAME") or "") + (environ.get("PATH_INFO") or "")
    path = quote(path.encode("latin-1"), safe="/;=,:@!$&'()*+~-._") or "/"
    query = environ.get("QUERY_STRING")
    paths.append(f"{path}?{query}" if query else path)
    return list(dict.fromkeys(p for p in paths if p))


def _wsgi_headers(environ: dict) -> dict[str, str]:
    headers = {key[5:].replace("_", "-").lower(): str(value)
               for key, value in environ.items() if key.startswith("HTTP_")}
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = str(environ[key])
    return headers


def _wsgi_answer(environ: dict, settings: Any) -> Decision:
    """The push's decision; the declared length is checked before the body is
    read, so an oversized push costs no memory."""
    request_id = getattr(environ.get("fc.context"), "request_id", None)
    method = str(environ.get("REQUEST_METHOD") or "")
    raw_length = environ.get("CONTENT_LENGTH")
    try:
        length = int(raw_length or 0)
    except ValueError:
        length = -1
    if length < 0:
        return app.refuse(Outcome.BAD_PUSH, f"Content-Length: expected a byte count, got {str(raw_length)[:32]!r}",
                          request_id=request_id, method=method)
    if length > MAX_BODY_BYTES:
        return app.refuse(Outcome.TOO_LARGE, f"body of {length} bytes is larger than {MAX_BODY_BYTES}",
                          request_id=request_id, method=method, size=length)
    try:
        body = environ["wsgi.input"].read(length) if length else b""
    except Exception as exc:  # noqa: BLE001 - the connection broke mid-body: MNS redelivers
        return app.refuse(Outcome.INTERNAL_ERROR, f"request body could not be read ({type(exc).__name__})",
                          request_id=request_id, method=method, size=length)
    if not isinstance(body, bytes) or len(body) != length:
        got = len(body) if isinstance(body, bytes) else type(body).__name__
        return app.refuse(Outcome.INTERNAL_ERROR, f"request body ended after {got} of {length} bytes",
                          request_id=request_id, method=method, size=length)
    paths = _wsgi_paths(environ)
    request = app.HttpRequest(method, paths[0], _wsgi_headers(environ), body, tuple(paths[1:]))
    return app.handle(request, _invocation(environ.get("fc.context"), settings), settings)


def wsgi_handler(environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
    """FC 2.0 HTTP trigger (WSGI). Like ``handler``, it answers every request
    through the one decision path and lets no exception escape."""
    try:
        answer = _wsgi_answer(environ, app.environ_settings())
    except Exception as exc:  # noqa: BLE001 - last guard of the entry point
        answer = app.refuse(Outcome.INTERNAL_ERROR, f"unexpected {type(exc).__name__}")
    start_response(f"{answer.status} {answer.reason}",
                   [*answer.headers, ("Content-Length", str(len(answer.body)))])
    return [answer.body]
