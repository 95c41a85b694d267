"""``python -m bench``: every figure of bench/RESULTS.md, side by side, in one run.

Prints one JSON document: ``date``, ``machine`` (cores, Python, load; after the
run, the share of CPU time a virtual machine's host took, ``cpu_steal_share``), and per
figure its measurements (each a ``{"median", "min", "max", "runs"}``), its
ratios measured pair by pair where it is compared with something, its
``target`` and ``meets_target``. Benchmarks are not tests: nothing here fails
on a slow figure; ``--tiny`` runs every figure at a size only fit to check
that it runs.

``python -m bench FIGURE ...`` runs only the figures named; ``--cdk-peer DIR``
is the AWS CDK peer app (default ``../shared/peers/cdk`` from the project root,
or ``MNS_BENCH_CDK_PEER``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence

from bench.measure import FULL, TINY, Size, cpu_ticks, machine, steal_share

FIGURES = ("synth_vs_imports", "synth_vs_cdk", "render_growth", "cold_start", "handler_work",
           "local_e2e_c1", "local_e2e_concurrent", "archive_vs_pip", "archive_build")


def _figure(name: str, size: Size, cdk_peer: str | None) -> Callable[[], dict]:
    if name in ("synth_vs_imports", "render_growth"):
        from bench import bench_synth

        return lambda: getattr(bench_synth, name)(size)
    if name == "synth_vs_cdk":
        from bench import bench_synth

        return lambda: bench_synth.synth_vs_cdk(size, bench_synth.cdk_peer_dir(cdk_peer))
    if name in ("cold_start", "handler_work"):
        from bench import bench_handler

        return lambda: getattr(bench_handler, name)(size)
    if name.startswith("local_e2e"):
        from bench import bench_localcloud

        return lambda: getattr(bench_localcloud, name)(size)
    from bench import bench_packaging

    return lambda: getattr(bench_packaging, name)(size)


def run(figures: Sequence[str] = FIGURES, size: Size = FULL, cdk_peer: str | None = None) -> dict:
    """The bench document for ``figures`` at ``size``."""
    unknown = sorted(set(figures) - set(FIGURES))
    if unknown:
        raise ValueError(f"unknown figure(s) {unknown}; expected some of {list(FIGURES)}")
    document: dict[str, object] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "size": "tiny" if size == TINY else "full",
        "figures": {},
    }
    run_ticks = cpu_ticks()
    for name in figures:
        started, ticks = time.perf_counter(), cpu_ticks()
        result = _figure(name, size, cdk_peer)()
        result["bench_seconds"] = round(time.perf_counter() - started, 1)
        result["cpu_steal_share"] = steal_share(ticks, cpu_ticks())
        document["figures"][name] = result
    document["machine_after"] = {"load_average_1_5_15": machine()["load_average_1_5_15"],
                                 "cpu_steal_share": steal_share(run_ticks, cpu_ticks())}
    return document


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("figures", nargs="*", metavar="FIGURE", help=f"some of {', '.join(FIGURES)} (default: all)")
    parser.add_argument("--tiny", action="store_true", help="every figure at a tiny size (checks that it runs)")
    parser.add_argument("--cdk-peer", metavar="DIR", help="the AWS CDK peer app to compare the render with")
    args = parser.parse_args(argv)
    try:
        document = run(args.figures or FIGURES, TINY if args.tiny else FULL, args.cdk_peer)
    except ValueError as error:
        parser.error(str(error))
    json.dump(document, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
