"""The local end-to-end run as a caller feels it: StartExecution -> the execution's output.

The dev stack's pattern on loopback (SDK caller, FnF endpoint, MNS-like
pushes, the real handler behind the FC stand-in, no faults). Each worker
starts one execution over the SDK and long-polls DescribeExecution until it
ends, then starts the next, so ``concurrency`` executions are in flight at any
time (steady state, not all started at once). Latency is the caller's, from
StartExecution to the answer that carries the output. The callers run in
processes of their own (``CallerProcesses``), as a caller is not in the
cloud's process; at concurrency 8 and 64 the function runs in an instance
process of its own too (``LocalStack(function_processes=True)``).

* ``local_e2e_c1``: one worker; p50 / p95 / p99.
* ``local_e2e_concurrent``: 8 and 64 workers; executions per second and p50 / p99.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Self

from bench.measure import FULL, Size, percentile, summary
from infra.synth import render
from localcloud.run import Caller, LocalStack

DEMO = '{"messageBody": "hello world"}'
EXPECTED_OUTPUT = {"status": "success"}
# Caller processes at concurrency 8 and 64 (one at concurrency 1): the callers' SDK work
# spread over the machine's cores next to the stack's own process.
CALLER_PROCESSES = 2
TARGETS = {"local_e2e_c1": "p50 <= 10 ms", "local_e2e_concurrent": ">= 300 executions/s at concurrency 64"}


def _quiet() -> None:
    # The handler logs one line per push; keep the benchmark's output to its JSON.
    logging.basicConfig(handlers=[logging.NullHandler()], level=logging.CRITICAL, force=True)
    logging.getLogger("aliyunsdkcore").setLevel(logging.CRITICAL)


def _one(caller: Caller, client, name: str) -> float:
    """Milliseconds from StartExecution to the answer carrying the output."""
    started = time.perf_counter()
    caller.start(client, DEMO, name=name)
    while True:
        description = caller.describe(client, name, wait_seconds=30)
        if description["Status"] != "Running":
            break
    elapsed = (time.perf_counter() - started) * 1000
    if description["Status"] != "Succeeded" or json.loads(description["Output"]) != EXPECTED_OUTPUT:
        raise RuntimeError(f"execution {name} ended {description['Status']}: {description.get('Output')}")
    return elapsed


_clients = threading.local()


def _worker(caller: Caller, label: str, per_worker: int) -> list[float]:
    """One caller's executions, one after another, on a client of its own (kept per thread)."""
    if not hasattr(_clients, "client"):
        _quiet()
        _clients.client = caller.client()
    return [_one(caller, _clients.client, f"{label}-{n:04d}") for n in range(per_worker)]


def _callers(caller: Caller, threads: int, per_worker: int, label: str) -> list[float]:
    """In a caller process: ``threads`` callers at once; their latencies (ms)."""
    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            batches = pool.map(lambda index: _worker(caller, f"{label}-{index:03d}", per_worker), range(threads))
            return [ms for batch in batches for ms in batch]
    except Exception as err:  # noqa: BLE001 - the SDK's exceptions cannot be unpickled: send their text
        raise RuntimeError(f"{type(err).__name__}: {err}") from None


class CallerProcesses:
    """The callers run in processes of their own, as a real caller is not in the cloud's process:
    their SDK's request signing and answer parsing then take no time from the stand-ins' interpreter.
    ``processes`` share the concurrency; each is started (and imports the SDK) before any timing."""

    def __init__(self, caller: Caller, processes: int) -> None:
        self.caller = caller
        self.processes = processes
        self._pool = ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn"))
        # Warm every process: started, the SDK imported, a client made.
        list(self._pool.map(_warm, [caller] * processes, [f"process{index}-warm" for index in range(processes)]))

    def steady(self, concurrency: int, per_worker: int, label: str) -> tuple[list[float], float]:
        """Latencies (ms) and wall seconds of ``concurrency`` workers running ``per_worker`` each."""
        shares = [concurrency // self.processes + (index < concurrency % self.processes)
                  for index in range(self.processes)]
        started = time.perf_counter()
        futures = [self._pool.submit(_callers, self.caller, share, per_worker, f"{label}-p{index}")
                   for index, share in enumerate(shares) if share]
        latencies = [ms for future in futures for ms in future.result()]
        return sorted(latencies), time.perf_counter() - started

    def close(self) -> None:
        self._pool.shutdown()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _warm(caller: Caller, label: str) -> None:
    time.sleep(0.2)  # so that every process of the pool gets one of these
    _callers(caller, 1, 1, label)


def _stack(function_processes: bool) -> LocalStack:
    return LocalStack.from_render(render("dev"), seed=1, function_processes=function_processes)


def local_e2e_c1(size: Size) -> dict:
    _quiet()
    p50, p95, p99 = [], [], []
    # One execution at a time: the function in the stack's process saves the hop to an
    # instance process on every push (1-2 ms of latency in alternating runs).
    with _stack(function_processes=False) as stack, CallerProcesses(stack.caller(), 1) as callers:
        callers.steady(1, 5, "warm")
        for index in range(size.local_rounds):
            latencies, _ = callers.steady(1, size.executions_c1, f"c1-{index}")
            p50.append(percentile(latencies, 0.50))
            p95.append(percentile(latencies, 0.95))
            p99.append(percentile(latencies, 0.99))
    return {"target": TARGETS["local_e2e_c1"], "executions_per_round": size.executions_c1,
            "p50_ms": summary(p50, 1), "p95_ms": summary(p95, 1), "p99_ms": summary(p99, 1),
            "meets_target": summary(p50)["median"] <= 10}


def local_e2e_concurrent(size: Size) -> dict:
    _quiet()
    results: dict[str, object] = {"target": TARGETS["local_e2e_concurrent"]}
    # Many at a time: the function in an instance process, off the stand-ins' interpreter lock.
    with _stack(function_processes=True) as stack, CallerProcesses(stack.caller(), CALLER_PROCESSES) as callers:
        for concurrency in size.concurrency:
            rates, p50, p99 = [], [], []
            callers.steady(concurrency, 1, f"warm{concurrency}")
            for index in range(size.local_rounds):
                latencies, wall = callers.steady(concurrency, size.executions_per_worker, f"c{concurrency}-{index}")
                rates.append(len(latencies) / wall)
                p50.append(percentile(latencies, 0.50))
                p99.append(percentile(latencies, 0.99))
            results[f"concurrency_{concurrency}"] = {
                "executions_per_round": concurrency * size.executions_per_worker,
                "executions_per_second": summary(rates, 1), "p50_ms": summary(p50, 1), "p99_ms": summary(p99, 1)}
    top = results.get("concurrency_64")
    results["meets_target"] = bool(top) and top["executions_per_second"]["median"] >= 300
    return results


def figures(size: Size = FULL) -> dict:
    return {"local_e2e_c1": local_e2e_c1(size), "local_e2e_concurrent": local_e2e_concurrent(size)}


if __name__ == "__main__":
    print(json.dumps(figures(), indent=2, sort_keys=True))
