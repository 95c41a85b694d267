"""Local end-to-end throughput: executions per second and latency percentiles.

Runs the dev stack's pattern on loopback (SDK caller, FnF endpoint, MNS-like
pushes, the real handler behind the FC stand-in), once without faults and once
with 30 % injected faults, 200 executions each.
"""

from __future__ import annotations

import logging

from infra.config import settings_from_mapping
from infra.stack_config import read_stack_config
from localcloud.faults import FaultPlan
from localcloud.run import LocalStack, run_many

EXECUTIONS = 200
DEMO = '{"messageBody": "hello world"}'


def _run(fault_rate: float) -> dict:
    settings = settings_from_mapping(read_stack_config("dev"), stack="dev")
    faults = FaultPlan(seed=1, rate=fault_rate) if fault_rate else None
    with LocalStack(settings, faults=faults, seed=1) as stack:
        summary = run_many(stack, DEMO, EXECUTIONS)
    return {
        "executions": summary["executions"],
        "succeeded": summary["succeeded"],
        "executions_per_second": round(summary["executions"] / summary["wall_seconds"], 1),
        "latency_ms": summary["latency_ms"],
        "messages_redelivered": summary["messages_redelivered"],
        "duplicate_reports": summary["duplicate_reports"],
    }


def main() -> dict:
    # The handler logs one line per push; keep the benchmark's output to its JSON.
    logging.basicConfig(handlers=[logging.NullHandler()], level=logging.CRITICAL, force=True)
    logging.getLogger("aliyunsdkcore").setLevel(logging.CRITICAL)
    return {"no_faults": _run(0.0), "faults_30_percent": _run(0.3)}


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=2, sort_keys=True))
