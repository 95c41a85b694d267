"""Shared measuring tools: one process's wall time and peak memory, alternating
pairs, and the median / min / max summaries every figure reports.

A figure compared with something else is measured side by side: the two
commands run in turn, round after round, and the ratio is taken per round, so
a machine that is busier in one round than in the next (a shared machine)
shifts both sides of that round's ratio alike.
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Size:
    """How much work each figure does: the full run, or a tiny one for tests."""

    rounds: int  # alternating rounds per compared pair (each round runs both sides once)
    cold_rounds: int  # rounds of the handler's cold start, per runtime
    pushes: int  # pushes timed for the handler's own work
    patterns: tuple[int, ...]  # pattern counts of the render-growth program
    executions_c1: int  # local executions at concurrency 1, per round
    executions_per_worker: int  # local executions each worker runs at concurrency 8 and 64
    concurrency: tuple[int, ...]
    local_rounds: int
    naive_pip: bool  # run `pip install -t` (needs the package index) for the archive's comparison


FULL = Size(rounds=7, cold_rounds=7, pushes=2001, patterns=(1, 10, 50), executions_c1=200,
            executions_per_worker=12, concurrency=(8, 64), local_rounds=3, naive_pip=True)
TINY = Size(rounds=1, cold_rounds=1, pushes=5, patterns=(1, 2), executions_c1=2,
            executions_per_worker=1, concurrency=(2,), local_rounds=1, naive_pip=False)


@dataclass(frozen=True)
class Run:
    """One finished process: wall seconds, peak resident set in KiB, exit status."""

    seconds: float
    peak_rss_kib: int
    returncode: int


# Forks and runs the command, waits for it, writes "peak_kib exit_code seconds" to
# the file descriptor it is given.
# A small interpreter of its own, because a forked child starts out with its
# parent's resident pages and Linux keeps that high-water mark across exec: run
# straight from the bench (tens of MiB by then) every command would seem as big.
_LAUNCHER = """\
import os, sys, time
report, command = int(sys.argv[1]), sys.argv[2:]
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.close(report)
        os.execvp(command[0], command)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - started
os.write(report, f"{usage.ru_maxrss} {os.waitstatus_to_exitcode(status)} {seconds!r}".encode())
"""


def run_process(argv: Sequence[str], *, cwd: str | os.PathLike[str], env: Mapping[str, str] | None = None,
                timeout: float = 600.0) -> Run:
    """Run ``argv`` to its end, its output discarded; wall time and peak memory.

    The peak is ``wait4``'s ``ru_maxrss``: the largest of the process and of
    the descendants it waited for (``npx cdk synth`` waits for its ``node
    app.js``), as GNU ``time -f %M`` reports it. Neither counts the launcher's
    own start-up (about 20 ms, under 10 MiB).
    """
    read_end, write_end = os.pipe()
    try:
        process = subprocess.Popen([sys.executable, "-I", "-S", "-c", _LAUNCHER, str(write_end), *argv],
                                   cwd=cwd, env=None if env is None else dict(env), stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, pass_fds=(write_end,))
    finally:
        os.close(write_end)
    try:
        _, error = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        os.close(read_end)
        raise RuntimeError(f"{' '.join(argv)} ran longer than {timeout:.0f} s") from None
    with os.fdopen(read_end, "rb") as reader:
        report = reader.read().decode()
    if process.returncode != 0 or not report:
        raise RuntimeError(f"launching {' '.join(argv)} failed: {error.decode(errors='replace')[-2000:]}")
    peak, code, seconds = report.split()
    if int(code) != 0:
        text = error.decode(errors="replace").strip()[-2000:]
        raise RuntimeError(f"{' '.join(argv)} exited {code}: {text}")
    return Run(float(seconds), int(peak), int(code))


def summary(values: Sequence[float], digits: int = 3) -> dict[str, float | int]:
    """``{"median", "min", "max", "runs"}`` of ``values``."""
    if not values:
        raise ValueError("no values to summarize")
    return {"median": round(statistics.median(values), digits), "min": round(min(values), digits),
            "max": round(max(values), digits), "runs": len(values)}


def alternate(sides: Mapping[str, Callable[[], Run]], rounds: int, warmup: int = 1) -> dict[str, list[Run]]:
    """Run every side once per round, in turn, ``rounds`` times after ``warmup`` untimed rounds."""
    for _ in range(warmup):
        for action in sides.values():
            action()
    runs: dict[str, list[Run]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, action in sides.items():
            runs[name].append(action())
    return runs


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Per-round ratios of two sides measured in the same rounds."""
    if len(numerators) != len(denominators):
        raise ValueError("ratios need the same number of rounds on both sides")
    return [a / b for a, b in zip(numerators, denominators, strict=True)]


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, math.ceil(fraction * len(sorted_values)))  # the smallest value with this share at or below it
    return sorted_values[min(rank, len(sorted_values)) - 1]


def cpu_ticks() -> tuple[int, int] | None:
    """(steal, total) clock ticks of every CPU since boot (Linux ``/proc/stat``), else None.

    On a virtual machine "steal" is the time the host ran someone else while this
    machine had work: a figure measured while it is high ran on less CPU than it asked for.
    """
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    if len(fields) < 8:
        return None
    return fields[7], sum(fields[:8])


def steal_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """The share of CPU time the host took between two ``cpu_ticks`` readings (None where unknown)."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return round((after[0] - before[0]) / (after[1] - before[1]), 3)


def machine() -> dict[str, object]:
    """What the numbers were measured on."""
    import platform

    load = os.getloadavg()
    return {"cores": os.cpu_count(), "python": platform.python_version(),
            "implementation": platform.python_implementation(), "system": platform.system(),
            "machine": platform.machine(), "load_average_1_5_15": [round(x, 2) for x in load]}
