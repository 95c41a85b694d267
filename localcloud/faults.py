"""Deliberate misbehaviour for the stand-ins: scripted or random, reproducible from a seed."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from random import Random


class Faults:
    """Hands out faults by name, one per request asked about.

    ``inject(kind, times, actions)`` scripts the next matching requests;
    ``at_random(rate, rng, kinds)`` gives each other request a fault with
    probability ``rate``, drawn from ``rng`` so a seed reproduces a run.
    ``injected`` counts what was handed out. ``delay`` is what a ``slow`` fault waits.
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

    def next_for(self, action: str = "") -> str | None:
        """The fault for this request, or None."""
        with self._lock:
            for i, (kind, actions) in enumerate(self._script):
                if actions is None or action in actions:
                    del self._script[i]
                    return self._count(kind)
            if self._rng is not None and self._rate and self._rng.random() < self._rate:
                return self._count(self._rng.choice(self._random_kinds))
        return None

    def _count(self, kind: str) -> str:
        self.injected[kind] = self.injected.get(kind, 0) + 1
        return kind
