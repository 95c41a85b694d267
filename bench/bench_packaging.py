"""Building the function's code archive: time, size and entry count per runtime.

The archive is rebuilt on every `pulumi preview`/`up` and every offline
render, so it has to stay well under a second for the default runtime.
"""

from __future__ import annotations

import time

import crc

from infra.packaging import CRC64_XZ, FUNCTION_DIR, build_archive, crc64_xz

ROUNDS = 5


def _best_of(rounds: int, action) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> dict:
    results: dict[str, object] = {}
    for runtime in ("python3.10", "python3.12"):
        archive = build_archive(FUNCTION_DIR, runtime)
        results[runtime] = {
            "build_seconds": round(_best_of(ROUNDS, lambda r=runtime: build_archive(FUNCTION_DIR, r)), 4),
            "crc64_seconds": round(_best_of(ROUNDS, lambda a=archive: crc64_xz(a.data)), 4),
            # The pinned crc library's own loop, for comparison (the reason for crc64_xz).
            "crc64_library_seconds": round(
                _best_of(1, lambda a=archive: crc.Calculator(CRC64_XZ, optimized=True).checksum(a.data)), 4
            ),
            "archive_bytes": len(archive.data),
            "entries": len(archive.entries),
            "vendored": list(archive.vendored),
        }
    return results


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=2, sort_keys=True))
