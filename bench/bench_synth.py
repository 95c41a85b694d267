"""Offline render of the whole stack (``infra.synth.render``): wall time per render.

Tests and the preview diff render several times per run; a render should stay
around a second.
"""

from __future__ import annotations

import time

from infra.synth import dumps, render

ROUNDS = 3


def _time(overrides: tuple[str, ...]) -> tuple[float, int, int]:
    best, size, count = float("inf"), 0, 0
    for _ in range(ROUNDS):
        start = time.perf_counter()
        document = render("dev", overrides)
        best = min(best, time.perf_counter() - start)
        size, count = len(dumps(document)), len(document["resources"])
    return best, size, count


def main() -> dict:
    results: dict[str, object] = {}
    for label, overrides in (("fc3", ()), ("fc2", ("functionCompute=2.0",))):
        seconds, size, count = _time(overrides)
        results[label] = {"render_seconds": round(seconds, 4), "render_bytes": size, "resources": count}
    return results


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=2, sort_keys=True))
