"""Offline render of the stack's desired state: no cloud, no CLI, no provider plugin.

``python -m infra.synth [--stack NAME] [--config KEY=VALUE ...]`` runs the same
program as ``__main__.py`` (``infra.program.define_stack``) under
``pulumi.runtime.set_mocks`` against ``infra.offline_cloud``, with the config
Pulumi would give it (``Pulumi.yaml`` defaults < ``Pulumi.<stack>.yaml`` <
overrides), and prints every resource as the provider would receive it plus
the stack outputs, as sorted JSON: the same source and config give the same
bytes.

Shape (docs/design.md): ``{"project", "stack", "resources": [{"type", "name",
"parent", "inputs", "dependsOn"}], "outputs"}``; resources sorted by type then
name; ``parent`` is ``"type::name"`` or null for the stack's top level.
"""

from __future__ import annotations

import argparse
import contextvars
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infra.config import PROJECT, ConfigError, settings_from_mapping
from infra.preview_diff import DiffArgumentParser
from infra.stack_config import PROJECT_ROOT, StackConfigError, read_stack_config
from mns_callback_flow.packaging import PackagingError, keep_archives_in

# What a user can get wrong in config or in the function's source: reported as
# one line on stderr, never as a traceback.
USER_ERRORS = (ConfigError, StackConfigError, PackagingError)
EXIT_ERROR = 1
# Where the command keeps the code archives it built, for the next render
# (mns_callback_flow.packaging "archives built by earlier processes"); build/ is not committed.
ARCHIVE_STORE = PROJECT_ROOT / "build" / "archives"


def render(stack: str = "dev", overrides: Sequence[str] = (), root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """The render document of ``stack`` with ``KEY=VALUE`` ``overrides``.

    ``root`` is the directory of ``Pulumi.yaml`` and the stack files. Encrypted
    values and ESC environments render as placeholders (``infra.stack_config``).

    Raises ``ConfigError`` / ``StackConfigError`` for bad config (before any
    resource is registered) and ``PackagingError`` for an unbuildable archive.
    """
    config = read_stack_config(stack, overrides, root)
    # Validate up front: the program would raise the same error, but only
    # after the Pulumi runtime was set up; this keeps the message clean.
    settings = settings_from_mapping(config, stack=stack)
    # A fresh context: the runtime keeps its root stack and config in context
    # variables, so each render starts from nothing, as `pulumi up` does.
    return contextvars.Context().run(_render_in_context, stack, config, settings.region)


def _render_in_context(stack: str, config: dict[str, object], region: str) -> dict[str, Any]:
    from infra.offline_cloud import run_offline
    from infra.program import define_stack

    monitor, outputs, _ = run_offline(
        define_stack,
        project=PROJECT,
        stack=stack,
        config={key: str(value) for key, value in config.items()},
        region=region,
    )
    resources = sorted((r.as_render() for r in monitor.registrations), key=lambda r: (r["type"], r["name"]))
    return {"project": PROJECT, "stack": stack, "resources": resources, "outputs": outputs}


def dumps(document: dict[str, Any]) -> str:
    """Canonical JSON text of a render: sorted keys, two-space indent, final newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = DiffArgumentParser(
        prog="python -m infra.synth", description="Render the stack's desired state offline as JSON."
    )
    parser.add_argument("--stack", default="dev", help="stack whose Pulumi.<stack>.yaml to use (default: dev)")
    parser.add_argument(
        "--config", action="append", default=[], metavar="KEY=VALUE",
        help="override one config value; a KEY without namespace is the project's (repeatable)",
    )
    parser.add_argument(
        "--diff", metavar="BASE.json",
        help="print a preview-style diff against an earlier render instead of the JSON; "
        "exit 0 no change, 2 changes, 1 error (infra/preview_diff.py)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    kept_before = keep_archives_in(ARCHIVE_STORE)
    try:
        document = render(args.stack, args.config)
    except USER_ERRORS as error:
        print(f"infra.synth: {error}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        keep_archives_in(kept_before)
    if args.diff:
        from infra.preview_diff import diff_against_file

        return diff_against_file(args.diff, document, sys.stdout, sys.stderr)
    sys.stdout.write(dumps(document))
    return 0


if __name__ == "__main__":
    from infra.command import run_command

    run_command(main)
