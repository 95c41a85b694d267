"""Renders for the local run: the offline render of the dev stack, or of a program of one's own.

``LocalStack.from_render`` deploys what a render describes, so the local-run
tests build renders the way ``infra.synth`` does. A render takes about half a
second; ``rendered`` keeps one per override set (treat it as read-only:
``copy.deepcopy`` it to tamper with it).
"""

from __future__ import annotations

import contextvars
import shutil
import textwrap
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from infra.config import PROJECT, settings_from_mapping
from infra.stack_config import read_stack_config
from infra.synth import render

ROOT = Path(__file__).resolve().parent.parent


@lru_cache(maxsize=32)
def _rendered(overrides: tuple[str, ...]) -> dict[str, Any]:
    return render("dev", overrides)


def rendered(*overrides: str) -> dict[str, Any]:
    """The dev stack's render with ``KEY=VALUE`` overrides (cached)."""
    return _rendered(tuple(overrides))


def render_patterns(patterns: Sequence[tuple[str, Sequence[str]]], *, source_dir: Path | None = None,
                    export: bool = True) -> dict[str, Any]:
    """The render of a program declaring one ``CallbackPattern`` per (name, overrides of the
    dev stack), as ``infra.synth`` renders ``infra.program``; ``export``: the first pattern's
    stack outputs, as ``infra.program`` exports its one pattern's."""
    import pulumi

    from infra.offline_cloud import run_offline
    from infra.pattern import CallbackPattern

    configs = [(name, read_stack_config("dev", list(overrides))) for name, overrides in patterns]
    settings = [(name, settings_from_mapping(config, stack="dev")) for name, config in configs]

    def program() -> None:
        declared = [CallbackPattern(name, {"settings": s, **({"source_dir": str(source_dir)} if source_dir else {})})
                    for name, s in settings]
        if export:
            for key, value in declared[0].stack_outputs().items():
                pulumi.export(key, value)

    def run() -> dict[str, Any]:
        monitor, outputs, _ = run_offline(program, project=PROJECT, stack="dev",
                                          config={k: str(v) for k, v in configs[0][1].items()},
                                          region=settings[0][1].region)
        resources = sorted((r.as_render() for r in monitor.registrations), key=lambda r: (r["type"], r["name"]))
        return {"project": PROJECT, "stack": "dev", "resources": resources, "outputs": outputs}

    return contextvars.Context().run(run)


def source_with_module(directory: Path, module: str, body: str) -> Path:
    """A copy of ``function/`` with one more module, ``module.py``: the code a work function ships in."""
    target = directory / "function"
    shutil.copytree(ROOT / "function", target, ignore=shutil.ignore_patterns("__pycache__"))
    (target / f"{module}.py").write_text(textwrap.dedent(body))
    return target


def rendered_with_work(directory: Path, module: str, body: str, *overrides: str) -> dict[str, Any]:
    """The dev stack's render with ``callbackWork=<module>:work``, ``module`` shipped in the archive."""
    source = source_with_module(directory, module, body)
    return render_patterns([("callback", (f"callbackWork={module}:work", *overrides))], source_dir=source)
