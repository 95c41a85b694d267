"""One deadline per push, across every network call it makes.

A socket timeout bounds each read, not a call: a peer that trickles its answer
a byte at a time keeps a "2 s" call busy for as long as it likes. MNS waits 5 s
for the answer (docs/platform-facts.md "MNS HTTP push"), so the certificate
fetch and every report attempt run against the push's one deadline: the call
runs in a daemon thread and the push stops waiting for it when the deadline
passes. An abandoned call may still finish later; that is safe, because FnF
refuses a second report of the same task (``TaskAlreadyCompleted``) and the
push, answered 5xx, is redelivered.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# From the moment the push arrives, every network call it makes (the signing
# certificate, each report attempt) must be done within this many seconds,
# leaving room under MNS's 5 s for the answer itself.
PUSH_DEADLINE_SECONDS = 4.0


class DeadlineExceeded(Exception):
    """The push's deadline passed before the call returned."""


def remaining(deadline: float) -> float:
    """Seconds left until ``deadline`` (a ``time.monotonic()`` value), never negative."""
    return max(0.0, deadline - time.monotonic())


def call_before(deadline: float, function: Callable[[], T]) -> T:
    """``function()``'s result or exception, or DeadlineExceeded once ``deadline`` passes."""
    if remaining(deadline) <= 0:
        raise DeadlineExceeded("no time left before the push's deadline")
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = function()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="mns-callback-call", daemon=True)
    worker.start()
    worker.join(remaining(deadline))
    if worker.is_alive():
        raise DeadlineExceeded("the call did not return before the push's deadline")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
