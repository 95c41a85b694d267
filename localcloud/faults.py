"""Deliberate misbehaviour for the stand-ins: scripted or random, reproducible from a seed."""

from __future__ import annotations

import base64
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from random import Random


class Faults:
    """Hands out faults by name, one per request asked about.

    ``inject(kind, times, actions)`` scripts the next matching requests;
    ``at_random(rate, rng, kinds)`` gives each other request a fault with
    probability ``rate``, drawn from ``rng`` so a seed reproduces a run.
    ``decider(action, params)``, when set, is asked after the script: a pure
    function of the request keeps a concurrent run reproducible where a shared
    random stream would depend on thread timing. ``injected`` counts what was
    handed out. ``delay`` is what a ``slow`` fault waits.
    """

    def __init__(self, kinds: Iterable[str], *, delay: float = 1.0,
                 default_random: Iterable[str] = ()) -> None:
        self.kinds = tuple(kinds)
        self.delay = delay
        self._default_random = tuple(default_random) or self.kinds
        self._script: deque[tuple[str, tuple[str, ...] | None]] = deque()
        self._rate = 0.0
        self._rng: Random | None = None
        self._random_kinds: tuple[str, ...] = ()
        self._lock = threading.Lock()
        self.injected: dict[str, int] = {}
        self.decider: Callable[[str, Mapping[str, str]], str | None] | None = None

    def _check(self, kind: str) -> None:
        if kind not in self.kinds:
            raise ValueError(f"fault kind {kind!r} is not one of {', '.join(self.kinds)}")

    def inject(self, kind: str, times: int = 1, actions: Iterable[str] | None = None) -> None:
        """The next ``times`` requests (for any action, or one of ``actions``) get ``kind``."""
        self._check(kind)
        scope = tuple(actions) if actions is not None else None
        with self._lock:
            self._script.extend([(kind, scope)] * times)

    def at_random(self, rate: float, rng: Random, kinds: Iterable[str] | None = None) -> None:
        """Each unscripted request gets one of ``kinds`` with probability ``rate``."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate must be within 0..1, got {rate}")
        chosen = tuple(kinds) if kinds is not None else self._default_random
        for kind in chosen:
            self._check(kind)
        with self._lock:
            self._rate, self._rng, self._random_kinds = rate, rng, chosen

    def clear(self) -> None:
        with self._lock:
            self._script.clear()
            self._rate, self._rng = 0.0, None

    def next_for(self, action: str = "", params: Mapping[str, str] | None = None) -> str | None:
        """The fault for this request, or None."""
        with self._lock:
            for i, (kind, actions) in enumerate(self._script):
                if actions is None or action in actions:
                    del self._script[i]
                    return self._count(kind)
            if self.decider is not None:
                kind = self.decider(action, params or {})
                if kind is not None:
                    self._check(kind)
                    return self._count(kind)
            if self._rng is not None and self._rate and self._rng.random() < self._rate:
                return self._count(self._rng.choice(self._random_kinds))
        return None

    def _count(self, kind: str) -> str:
        self.injected[kind] = self.injected.get(kind, 0) + 1
        return kind


def _stable_token_key(token: str) -> str:
    """A task token without its per-run signature (``v1#flow#execution#event``)."""
    try:
        return base64.b64decode(token, validate=True).decode().rsplit("#", 1)[0]
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        return token


class FaultPlan:
    """Seeded faults of a whole run, decided per message and per report, not per thread.

    Each decision is ``Random(f"{seed}|{channel}|{key}|{n}")``: the same seed gives
    the same faults to the same message attempts and report attempts whatever
    the thread interleaving. Push faults: ``drop`` (lost before delivery),
    ``duplicate`` (delivered twice), ``lost_answer`` (the handler's answer never
    reaches MNS). FnF faults, on ReportTask* only: ``throttle``, ``internal``,
    ``reset``, ``lost_answer`` (the report takes effect, its answer is lost).
    """

    PUSH_KINDS = ("drop", "duplicate", "lost_answer")
    FNF_KINDS = ("throttle", "internal", "reset", "lost_answer")
    FNF_ACTIONS = ("ReportTaskSucceeded", "ReportTaskFailed")

    def __init__(self, seed: int, rate: float) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate must be within 0..1, got {rate}")
        self.seed = seed
        self.rate = rate
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()

    def _draw(self, channel: str, key: str, n: int, kinds: tuple[str, ...]) -> str | None:
        rng = Random(f"{self.seed}|{channel}|{key}|{n}")
        return rng.choice(kinds) if rng.random() < self.rate else None

    def push(self, key: str, attempt: int) -> str | None:
        """Fault for delivery attempt ``attempt`` of the message ``key``."""
        return self._draw("push", key, attempt, self.PUSH_KINDS)

    def fnf(self, action: str, params: Mapping[str, str]) -> str | None:
        """Fault for the n-th request of this action about this task token."""
        if action not in self.FNF_ACTIONS:
            return None
        key = f"{action}|{_stable_token_key(params.get('TaskToken', ''))}"
        with self._lock:
            n = self._seen.get(key, 0)
            self._seen[key] = n + 1
        return self._draw("fnf", key, n, self.FNF_KINDS)
