"""Renders for the local run: the offline render of the dev stack, or of a program of one's own.

``LocalStack.from_render`` deploys what a render describes, so the local-run
tests build renders the way ``infra.synth`` does. A render takes about half a
second; ``rendered`` keeps one per override set (treat it as read-only:
``copy.deepcopy`` it to tamper with it).
"""

from __future__ import annotations

import contextvars
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


def render_patterns(patterns: Sequence[tuple[str, Sequence[str]]], *, work_dir: Path | None = None,
                    export: bool = True) -> dict[str, Any]:
    """The render of a program declaring one ``CallbackPattern`` per (name, overrides of the
    dev stack), each with the args ``infra.program`` maps that config onto (and ``work_dir``,
    the user's work code, when given); ``export``: the first pattern's stack outputs, as
    ``infra.program`` exports its one pattern's."""
    import pulumi

    from infra.offline_cloud import run_offline
    from infra.program import pattern_args
    from mns_callback_flow import CallbackPattern

    configs = [(name, read_stack_config("dev", list(overrides))) for name, overrides in patterns]
    settings = [(name, settings_from_mapping(config, stack="dev")) for name, config in configs]

    def program() -> None:
        declared = [CallbackPattern(name, {**pattern_args(s), **({"work_dir": str(work_dir)} if work_dir else {})})
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


def work_with_module(directory: Path, module: str, body: str) -> Path:
    """A directory of work code of one's own holding ``module.py``: merged into the archive beside the handler."""
    target = directory / "work"
    target.mkdir(parents=True, exist_ok=True)
    (target / f"{module}.py").write_text(textwrap.dedent(body))
    return target


def rendered_with_work(directory: Path, module: str, body: str, *overrides: str) -> dict[str, Any]:
    """The dev stack's render with ``callbackWork=<module>:work``, ``module`` shipped in the archive."""
    work = work_with_module(directory, module, body)
    return render_patterns([("callback", (f"callbackWork={module}:work", *overrides))], work_dir=work)
