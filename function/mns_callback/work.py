"""The user-replaceable work function and how it is found.

A work function takes the task's ``messageBody`` and the notification, and
returns the task output (a JSON object, read by the flow's outputMappings as
``$local``). Raising ``mns_callback.TaskFailed(error, cause)`` reports the task
failed instead. Set ``CALLBACK_WORK=module:function`` to use your own; the
module is imported from the code archive (``function/``).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from .errors import SettingsError

# What it returns is checked by output_text: a user's function may return anything.
WorkFunction = Callable[[Any, Any], object]
# FnF event data is at most 32 KiB (docs/platform-facts.md, "Limits").
MAX_OUTPUT_BYTES = 32 * 1024


def default_work(message_body: Any, notification: Any) -> Mapping[str, Any]:
    """What the console sample reports: ``{"status": "success"}``."""
    return {"status": "success"}


@lru_cache(maxsize=4)
def load_work(reference: str | None) -> WorkFunction:
    """The work function named ``module:function`` (default: default_work)."""
    if reference is None:
        return default_work
    module_name, _, attribute = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SettingsError(f"CALLBACK_WORK={reference!r}: cannot import {module_name!r} ({exc})") from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise SettingsError(f"CALLBACK_WORK={reference!r}: {module_name} has no function {attribute!r}")
    return function


class BadOutput(ValueError):
    """The work function returned something FnF cannot take as output."""


def output_text(output: Any) -> str:
    """The JSON object text for ReportTaskSucceeded's Output."""
    if not isinstance(output, Mapping):
        raise BadOutput(f"work function returned {type(output).__name__}; expected a JSON object (dict)")
    try:
        text = json.dumps(dict(output), ensure_ascii=False, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise BadOutput(f"work function output is not JSON-serializable ({exc})") from None
    except RecursionError:  # nested deeper than json can write: the same on every redelivery
        raise BadOutput("work function output is nested too deeply to write as JSON") from None
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:  # an unpaired surrogate, e.g. echoed from a "\ud800" escape
        raise BadOutput("work function output is not valid Unicode text (unpaired surrogate)") from None
    if size > MAX_OUTPUT_BYTES:
        raise BadOutput(f"work function output is larger than FnF's {MAX_OUTPUT_BYTES} bytes")
    return text
