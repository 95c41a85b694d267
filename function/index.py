"""Function Compute entry points: thin adapters over ``mns_callback.app``.

``handler(event, context)`` is the FC 3.0 HTTP-trigger entry (event = JSON
bytes, answer = ``{"statusCode", "headers", "isBase64Encoded", "body"}``);
``wsgi_handler(environ, start_response)`` is the FC 2.0 one
(``environ['fc.context']``). See FACTS.md "Function Compute".
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from mns_callback import app
from mns_callback.credentials import credentials_from, region_from
from mns_callback.decision import Decision, Outcome, decide
from mns_callback.push import MAX_BODY_BYTES


def _invocation(context: Any, settings: Any) -> app.Invocation:
    fallback = None if isinstance(settings, Exception) else settings.region
    return app.Invocation(
        credentials=credentials_from(context, os.environ),
        region=region_from(context, fallback),
        request_id=getattr(context, "request_id", None),
    )


def _fc3_response(answer: Decision) -> dict:
    return {"statusCode": answer.status, "headers": dict(answer.headers),
            "isBase64Encoded": False, "body": answer.body.decode("ascii")}


def _fc3_request(event: Any) -> app.HttpRequest:
    """The push out of an FC 3.0 HTTP-trigger event; ValueError if malformed."""
    if isinstance(event, (bytes, bytearray)):
        event = json.loads(bytes(event).decode("utf-8"))
    elif isinstance(event, str):
        event = json.loads(event)
    if not isinstance(event, dict):
        raise TypeError("event is not a JSON object")
    http = (event.get("requestContext") or {}).get("http") or {}
    method = str(http.get("method") or event.get("httpMethod") or "")
    path = str(event.get("rawPath") or http.get("path") or "/")
    query = event.get("queryParameters") or {}
    paths = [path]
    if isinstance(query, dict) and query:
        # FC 3.0 passes the query parsed; MNS signed it as sent. Endpoints
        # normally have none; rebuild the likely spellings.
        items = [(str(k), str(v)) for k, v in query.items()]
        paths = [f"{path}?{urlencode(items, quote_via=quote)}", f"{path}?{urlencode(items)}",
                 f"{path}?{urlencode(sorted(items), quote_via=quote)}",
                 f"{path}?" + "&".join(f"{k}={v}" for k, v in items)]
        paths = list(dict.fromkeys(paths))
    raw = event.get("body") or ""
    if not isinstance(raw, str):
        raise TypeError("event body is not a string")
    if event.get("isBase64Encoded"):
        body = base64.b64decode(raw, validate=True)
    else:
        body = raw.encode("utf-8")
    return app.HttpRequest(method, paths[0], app.lower_headers(event.get("headers")), body, tuple(paths[1:]))


def handler(event: Any, context: Any) -> dict:
    """FC 3.0 HTTP trigger."""
    settings = app.environ_settings()
    try:
        request = _fc3_request(event)
    except (ValueError, TypeError, binascii.Error, AttributeError) as exc:
        return _fc3_response(decide(Outcome.BAD_PUSH, f"event: not an FC HTTP trigger event ({type(exc).__name__})"))
    return _fc3_response(app.handle(request, _invocation(context, settings), settings))


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


def wsgi_handler(environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
    """FC 2.0 HTTP trigger (WSGI)."""
    settings = app.environ_settings()
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = -1
    if length < 0:
        answer = decide(Outcome.BAD_PUSH, "Content-Length is not a number")
    elif length > MAX_BODY_BYTES:
        answer = decide(Outcome.TOO_LARGE, f"body of {length} bytes is larger than {MAX_BODY_BYTES}")
    else:
        body = environ["wsgi.input"].read(length) if length else b""
        paths = _wsgi_paths(environ)
        request = app.HttpRequest(str(environ.get("REQUEST_METHOD") or ""), paths[0],
                                  _wsgi_headers(environ), body, tuple(paths[1:]))
        answer = app.handle(request, _invocation(environ.get("fc.context"), settings), settings)
    start_response(f"{answer.status} {answer.reason}",
                   [*answer.headers, ("Content-Length", str(len(answer.body)))])
    return [answer.body]
