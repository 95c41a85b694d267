"""The offline render as a user runs it: ``python -m infra.synth``, whole process.

* ``synth_vs_imports``: the render against a fresh interpreter that only
  imports ``pulumi`` and the ``pulumi_alicloud`` modules the program uses
  (what any Pulumi program of this pattern pays before it does anything).
* ``synth_vs_cdk``: the render against ``cdk synth`` of the AWS CDK v2 peer
  app of the same pattern (SNS publish with task token -> Lambda URL ->
  SendTaskSuccess), copied to a scratch folder and set up there with
  ``npm ci``; skipped, with a note, where npm is missing or the setup fails.
* ``render_growth``: one program declaring 1, 10 and 50 patterns, whole process,
  beside the same resources written by hand with ``pulumi_alicloud``
  (``bench.handwritten``): what the provider's classes and the SDK cost alone.

``python -m bench.bench_synth --patterns N [--handwritten]`` is the growth program:
the dev stack's pattern declared N times (with the package, or by hand), rendered
offline; it prints the resource count.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bench.measure import FULL, Run, Size, alternate, ratios, run_process, summary

if TYPE_CHECKING:
    from infra.offline_cloud import RecordingMonitor

ROOT = Path(__file__).resolve().parents[1]
# The pulumi_alicloud modules the program uses (infra/*.py): the four service
# modules and the caller-identity invoke of the package itself.
BASELINE_IMPORTS = (
    "import pulumi, pulumi_alicloud as alicloud; "
    "alicloud.fc.V3Function, alicloud.fc.Function, alicloud.message.ServiceTopic, "
    "alicloud.fnf.Flow, alicloud.ram.Role, alicloud.get_caller_identity_output"
)
# The peer, relative to the project root (override: --cdk-peer or MNS_BENCH_CDK_PEER).
DEFAULT_CDK_PEER = Path("..") / "shared" / "peers" / "cdk"
CDK_ENV = {"CDK_DISABLE_VERSION_CHECK": "true", "CDK_DISABLE_CLI_TELEMETRY": "true",
           "AWS_EC2_METADATA_DISABLED": "true"}
CDK_SYNTH = ("npx", "--no-install", "cdk", "synth", "--quiet", "--no-version-reporting", "--no-notices")

TARGETS = {
    "synth_vs_imports": "wall ratio <= 1.3",
    "synth_vs_cdk": "wall ratio <= 0.07",
    "render_growth": "50 patterns / 1 pattern <= 3; per extra pattern <= 10 ms",
}


# The project's own packages, whose bytecode each timed process reads (see _write_bytecode).
PROJECT_PACKAGES = ("infra", "mns_callback_flow", "bench")


def _write_bytecode() -> None:
    """Write the bytecode of the project's own modules before anything is timed.

    The other side (an installed SDK) has its bytecode from its install, and a user's
    second render reads ours from ``__pycache__``; but where ``PYTHONDONTWRITEBYTECODE``
    is set no run writes it, and every timed render would compile this project's
    modules again (tens of ms): a cost of the environment, not of the render.
    """
    import compileall

    for package in PROJECT_PACKAGES:
        compileall.compile_dir(ROOT / package, quiet=2)


def _synth() -> Run:
    return run_process([sys.executable, "-m", "infra.synth"], cwd=ROOT)


def _imports_only() -> Run:
    return run_process([sys.executable, "-c", BASELINE_IMPORTS], cwd=ROOT)


def synth_vs_imports(size: Size) -> dict:
    _write_bytecode()
    runs = alternate({"synth": _synth, "imports": _imports_only}, size.rounds)
    wall = ratios([r.seconds for r in runs["synth"]], [r.seconds for r in runs["imports"]])
    return {
        "target": TARGETS["synth_vs_imports"],
        "synth_seconds": summary([r.seconds for r in runs["synth"]]),
        "imports_only_seconds": summary([r.seconds for r in runs["imports"]]),
        "synth_peak_rss_mib": summary([r.peak_rss_kib / 1024 for r in runs["synth"]], 1),
        "imports_only_peak_rss_mib": summary([r.peak_rss_kib / 1024 for r in runs["imports"]], 1),
        "wall_ratio_per_round": [round(x, 3) for x in wall],
        "wall_ratio": summary(wall),
        "meets_target": summary(wall)["median"] <= 1.3,
    }


def cdk_peer_dir(given: str | None = None) -> Path:
    text = given or os.environ.get("MNS_BENCH_CDK_PEER")
    return Path(text) if text else (ROOT / DEFAULT_CDK_PEER)


def _prepare_peer(peer: Path, scratch: Path) -> tuple[Path | None, str | None]:
    """Copy the peer into ``scratch`` and ``npm ci`` there: (app dir, None) or (None, why not)."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("npx") is None:
        return None, "npm is not installed on this machine: the cdk row is skipped"
    if not (peer / "package-lock.json").is_file():
        return None, f"no CDK peer app (package-lock.json) at {peer}: the cdk row is skipped"
    app = scratch / "cdk"
    shutil.copytree(peer, app, ignore=shutil.ignore_patterns("node_modules", "cdk.out"))
    setup = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=app, capture_output=True, text=True, check=False,
                           timeout=900)
    if setup.returncode != 0:
        return None, f"npm ci failed in the copied peer: {setup.stderr.strip()[-300:]}"
    return app, None


def synth_vs_cdk(size: Size, peer: Path | None) -> dict:
    result: dict[str, object] = {"target": TARGETS["synth_vs_cdk"]}
    if peer is None:
        return {**result, "skipped": "no CDK peer given"}
    with tempfile.TemporaryDirectory(prefix="mns-bench-cdk-") as temporary:
        app, why_not = _prepare_peer(peer, Path(temporary))
        if app is None:
            return {**result, "skipped": why_not}
        _write_bytecode()
        env = {**os.environ, **CDK_ENV}
        version = subprocess.run(["node", "-p", "require('aws-cdk-lib/package.json').version"], cwd=app,
                                 capture_output=True, text=True, check=False).stdout.strip()
        runs = alternate({"synth": _synth, "cdk": lambda: run_process(CDK_SYNTH, cwd=app, env=env)},
                         size.rounds)
    wall = ratios([r.seconds for r in runs["synth"]], [r.seconds for r in runs["cdk"]])
    memory = ratios([r.peak_rss_kib for r in runs["synth"]], [r.peak_rss_kib for r in runs["cdk"]])
    return {
        **result,
        "peer": f"aws-cdk-lib {version}, `{' '.join(CDK_SYNTH)}`",
        "synth_seconds": summary([r.seconds for r in runs["synth"]]),
        "cdk_synth_seconds": summary([r.seconds for r in runs["cdk"]]),
        "synth_peak_rss_mib": summary([r.peak_rss_kib / 1024 for r in runs["synth"]], 1),
        "cdk_synth_peak_rss_mib": summary([r.peak_rss_kib / 1024 for r in runs["cdk"]], 1),
        "wall_ratio_per_round": [round(x, 3) for x in wall],
        "wall_ratio": summary(wall),
        "peak_memory_ratio": summary(memory),
        "meets_target": summary(wall)["median"] <= 0.07,
    }


def _growth_run(patterns: int, handwritten: bool = False) -> Run:
    command = [sys.executable, "-m", "bench.bench_synth", "--patterns", str(patterns)]
    return run_process(command + (["--handwritten"] if handwritten else []), cwd=ROOT)


def _growth(runs: dict[str, list[Run]], counts: Sequence[int], side: str) -> dict:
    """Growth ratio and cost per extra pattern of one side's runs, round by round."""
    smallest, largest = runs[f"{side}{counts[0]}"], runs[f"{side}{counts[-1]}"]
    growth = ratios([r.seconds for r in largest], [r.seconds for r in smallest])
    extra = [(big.seconds - small.seconds) * 1000 / (counts[-1] - counts[0])
             for big, small in zip(largest, smallest, strict=True)]
    return {
        "seconds_by_patterns": {str(n): summary([r.seconds for r in runs[f"{side}{n}"]]) for n in counts},
        "growth_ratio_per_round": [round(x, 3) for x in growth],
        "growth_ratio": summary(growth),
        "per_extra_pattern_ms_per_round": [round(x, 1) for x in extra],
        "per_extra_pattern_ms": summary(extra, 1),
    }


def render_growth(size: Size) -> dict:
    """The package's growth program beside the same resources written by hand (``bench.handwritten``)."""
    _write_bytecode()
    counts = size.patterns
    sides = {f"package{n}": (lambda n=n: _growth_run(n)) for n in counts}
    sides |= {f"handwritten{n}": (lambda n=n: _growth_run(n, handwritten=True)) for n in counts}
    runs = alternate(sides, size.rounds)
    package, handwritten = _growth(runs, counts, "package"), _growth(runs, counts, "handwritten")
    # The package's cost per extra pattern over the hand-written program's, in the same round.
    over = ratios(package["per_extra_pattern_ms_per_round"], handwritten["per_extra_pattern_ms_per_round"])
    return {
        "target": TARGETS["render_growth"],
        "growth_ratio_label": f"{counts[-1]} patterns / {counts[0]} pattern",
        **package,
        "handwritten": handwritten,
        "per_extra_pattern_vs_handwritten": summary(over),
        "meets_target": package["growth_ratio"]["median"] <= 3 and package["per_extra_pattern_ms"]["median"] <= 10,
    }


def figures(size: Size = FULL, cdk_peer: Path | None = None) -> dict:
    return {"synth_vs_imports": synth_vs_imports(size), "synth_vs_cdk": synth_vs_cdk(size, cdk_peer),
            "render_growth": render_growth(size)}


# ---- the growth program: the dev stack's pattern, declared N times -----------


def _render_offline(program: Callable[[], None], stack: str) -> RecordingMonitor:
    """Run a growth program against the offline cloud with ``stack``'s config; what it registered."""
    import contextvars

    from infra.config import PROJECT, settings_from_mapping
    from infra.offline_cloud import run_offline
    from infra.stack_config import read_stack_config

    config = read_stack_config(stack)
    region = settings_from_mapping(config, stack=stack).region

    def render() -> RecordingMonitor:
        monitor, _, _ = run_offline(program, project=PROJECT, stack=stack,
                                    config={k: str(v) for k, v in config.items()}, region=region)
        return monitor

    return contextvars.Context().run(render)


def render_patterns(count: int, stack: str = "dev") -> int:
    """Render ``count`` patterns of ``stack`` in one program; the number of resources registered.

    A plain loop over the library's component, as a user's program would write it: each
    pattern gets the stack's args under its own name prefix.
    """
    from infra.config import load_settings
    from infra.program import pattern_args
    from mns_callback_flow import CallbackPattern

    def program() -> None:
        settings = load_settings()
        for index in range(count):
            args = {**pattern_args(settings), "name_prefix": f"{settings.name_prefix}-{index}"}
            args.pop("topic_name")  # derived from each prefix
            CallbackPattern(f"callback-{index}", args)  # type: ignore[arg-type]

    return len(_render_offline(program, stack).registrations)


def handwritten_registrations(count: int, stack: str = "dev", *, numbered: bool = True) -> RecordingMonitor:
    """What ``count`` hand-written patterns (``bench.handwritten``) register in one program.

    Named as ``render_patterns`` names them (``<prefix>-<index>``), or, with
    ``numbered=False``, under the stack's own prefix, as ``python -m infra.synth`` renders it.
    """
    import pulumi_alicloud as alicloud

    from bench.handwritten import RUNTIME, declare_pattern
    from infra.config import load_settings
    from mns_callback_flow.packaging import FUNCTION_DIR, build_archive

    def program() -> None:
        settings = load_settings()
        archive = build_archive(FUNCTION_DIR, RUNTIME)  # a hand-written program reads its zip once
        account_id = alicloud.get_caller_identity_output().id
        for index in range(count):
            prefix = f"{settings.name_prefix}-{index}" if numbered else settings.name_prefix
            declare_pattern(prefix, index, region=settings.region, account_id=account_id,
                            zip_base64=archive.base64, crc64=archive.crc64)

    return _render_offline(program, stack)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_synth")
    parser.add_argument("--patterns", type=int, required=True, help="how many patterns the program declares")
    parser.add_argument("--handwritten", action="store_true",
                        help="declare the pattern's resources by hand (bench.handwritten), not with the package")
    args = parser.parse_args(argv)
    print(len(handwritten_registrations(args.patterns).registrations) if args.handwritten
          else render_patterns(args.patterns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
