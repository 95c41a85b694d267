"""The local end-to-end run as a caller feels it: StartExecution -> the execution's output.

The dev stack's pattern on loopback (SDK caller, FnF endpoint, MNS-like
pushes, the real handler behind the FC stand-in, no faults). Each worker
starts one execution over the SDK and long-polls DescribeExecution until it
ends, then starts the next, so ``concurrency`` executions are in flight at any
time (steady state, not all started at once). Latency is the caller's, from
StartExecution to the answer that carries the output.

* ``local_e2e_c1``: one worker; p50 / p95 / p99.
* ``local_e2e_concurrent``: 8 and 64 workers; executions per second and p50 / p99.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from bench.measure import FULL, Size, percentile, summary
from infra.synth import render
from localcloud.run import LocalStack

DEMO = '{"messageBody": "hello world"}'
EXPECTED_OUTPUT = {"status": "success"}
TARGETS = {"local_e2e_c1": "p50 <= 10 ms", "local_e2e_concurrent": ">= 300 executions/s at concurrency 64"}


def _quiet() -> None:
    # The handler logs one line per push; keep the benchmark's output to its JSON.
    logging.basicConfig(handlers=[logging.NullHandler()], level=logging.CRITICAL, force=True)
    logging.getLogger("aliyunsdkcore").setLevel(logging.CRITICAL)


def _one(stack: LocalStack, client, name: str) -> float:
    """Milliseconds from StartExecution to the answer carrying the output."""
    started = time.perf_counter()
    stack.start(client, DEMO, name=name)
    while True:
        description = stack.describe(client, name, wait_seconds=30)
        if description["Status"] != "Running":
            break
    elapsed = (time.perf_counter() - started) * 1000
    if description["Status"] != "Succeeded" or json.loads(description["Output"]) != EXPECTED_OUTPUT:
        raise RuntimeError(f"execution {name} ended {description['Status']}: {description.get('Output')}")
    return elapsed


def _steady(stack: LocalStack, concurrency: int, per_worker: int, label: str) -> tuple[list[float], float]:
    """Latencies (ms) and wall seconds of ``concurrency`` workers running ``per_worker`` each."""
    local = threading.local()

    def worker(index: int) -> list[float]:
        if not hasattr(local, "client"):
            local.client = stack.client()
        return [_one(stack, local.client, f"{label}-{index:03d}-{n:04d}") for n in range(per_worker)]

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        latencies = [ms for batch in pool.map(worker, range(concurrency)) for ms in batch]
    return sorted(latencies), time.perf_counter() - started


def _stack() -> LocalStack:
    return LocalStack.from_render(render("dev"), seed=1)


def local_e2e_c1(size: Size) -> dict:
    _quiet()
    p50, p95, p99 = [], [], []
    with _stack() as stack:
        _steady(stack, 1, 5, "warm")
        for index in range(size.local_rounds):
            latencies, _ = _steady(stack, 1, size.executions_c1, f"c1-{index}")
            p50.append(percentile(latencies, 0.50))
            p95.append(percentile(latencies, 0.95))
            p99.append(percentile(latencies, 0.99))
    return {"target": TARGETS["local_e2e_c1"], "executions_per_round": size.executions_c1,
            "p50_ms": summary(p50, 1), "p95_ms": summary(p95, 1), "p99_ms": summary(p99, 1),
            "meets_target": summary(p50)["median"] <= 10}


def local_e2e_concurrent(size: Size) -> dict:
    _quiet()
    results: dict[str, object] = {"target": TARGETS["local_e2e_concurrent"]}
    with _stack() as stack:
        for concurrency in size.concurrency:
            rates, p50, p99 = [], [], []
            _steady(stack, concurrency, 1, f"warm{concurrency}")
            for index in range(size.local_rounds):
                latencies, wall = _steady(stack, concurrency, size.executions_per_worker, f"c{concurrency}-{index}")
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
