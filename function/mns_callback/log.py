"""One structured JSON line per push; tokens shortened, credentials never."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

logger = logging.getLogger("mns_callback")
# json.dumps with these options builds this encoder anew on every call.
_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, default=str)


def _ensure_output() -> None:
    """Make sure the line is written even where nothing configured logging."""
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    if not logging.getLogger().handlers and not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)


def shorten_token(token: str | None) -> str | None:
    """First 6 and last 4 characters plus the length: enough to correlate."""
    if token is None:
        return None
    if len(token) < 20:
        return f"…(len {len(token)})"
    return f"{token[:6]}…{token[-4:]}(len {len(token)})"


def log_push(**fields: Any) -> str:
    """Write and return the push's line. Callers pass no secrets; the token
    must come as ``task_token`` so that it is shortened here."""
    _ensure_output()
    if "task_token" in fields:
        fields["task_token"] = shorten_token(fields["task_token"])
    line = _ENCODER.encode({"event": "mns_push", **fields})
    logger.info(line)
    return line
