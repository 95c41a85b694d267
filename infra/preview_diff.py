"""Preview-style diff of two offline renders, for code review.

`pulumi preview --diff` needs a cloud account, the CLI and the provider
plugin; a pull request's reviewer needs the same picture without any of them.
This module compares two renders of ``python -m infra.synth`` (the shape fixed
in docs/design.md: ``{"project", "stack", "resources": [{"type", "name", "parent",
"inputs", "dependsOn"}], "outputs"}``) and prints what would be created,
updated, replaced and deleted, and for each the input paths that change.

Resources are matched by (type, name), as Pulumi matches URNs, so a renamed
logical resource shows as a delete plus a create. A changed input the provider
marks force-new (``infra.provider_replacements``) makes the change a
replacement, ``+-``, with the order ``pulumi up`` would use. Whether a resource
updates is decided from its inputs, as the engine decides it: a change of
``dependsOn`` alone is only noted; a parent of another type changes the URN
(``~ reparent``). Secret config values reach the render as
placeholders (``infra.stack_config``); a change to one prints as
``(secret changed)``, never the values.

Pure: no Pulumi, no network. The only I/O is in :func:`diff_against_file` and
:func:`main`, which read render files and write the summary.

Exit codes (``python -m infra.synth --diff BASE.json`` and
``python -m infra.preview_diff BASE.json HEAD.json``), so CI can tell:

* ``0`` -- no change between the two renders;
* ``2`` -- there are changes (the summary says which);
* ``1`` -- error: a render file is missing, not JSON, or not a render.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import difflib
import hashlib
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, NoReturn, TextIO

from infra.provider_replacements import (
    NAME_CANNOT_COEXIST,
    PROVIDER_DELETES_FIRST,
    forcing_inputs,
    replacement_order,
)
from infra.stack_config import SECRET_PLACEHOLDER

EXIT_NO_CHANGE = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2

Op = Literal["create", "update", "replace", "delete", "reparent"]
_SYMBOL = {"create": "+", "update": "~", "replace": "+-", "delete": "-", "reparent": "~"}
UNKNOWN_TYPE = "unknown-type"
NEW_URN = "new-urn"
_ORDER_NOTE = {
    # Pulumi docs, "Refactoring with aliases"; the URN holds the parent's type chain (SDK Urn.Create).
    NEW_URN: "the URN changes with the parent's type: without an alias pulumi creates it under the new "
    "URN and deletes the old one",
    UNKNOWN_TYPE: "no ForceNew fields known for this type (infra/provider_replacements.py): "
    "this may be a replacement",
    PROVIDER_DELETES_FIRST: "delete before create: the provider deletes the old one first (a user-set name)",
    NAME_CANNOT_COEXIST: "delete before create needed: the new one keeps the old one's name and cannot be "
    "created beside it (unverified); pulumi creates first unless deleteBeforeReplace is set",
}

# Strings at least this long that are pure base64 are blobs (the code
# archive): summarised by length and digest, never printed.
_BLOB_MIN_CHARS = 200
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


class _Missing:
    """The value of a path that exists on one side only."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


class RenderFileError(ValueError):
    """A render file that cannot be compared; the message names the field."""


@dataclass(frozen=True)
class Change:
    """One changed path; ``old``/``new`` is :data:`MISSING` when added/removed."""

    path: str
    old: object
    new: object


@dataclass(frozen=True)
class ResourceChange:
    """A resource to create, update, replace or delete, keyed by (type, name).

    For a replacement, ``forced_by`` names the force-new inputs that changed and
    ``order`` is an ``infra.provider_replacements`` replacement order.
    """

    op: Op
    type: str
    name: str
    changes: tuple[Change, ...] = ()
    forced_by: tuple[str, ...] = ()
    order: str = ""


@dataclass(frozen=True)
class RenderDiff:
    """Everything that differs between a base render and a head render."""

    resources: tuple[ResourceChange, ...] = ()
    outputs: tuple[Change, ...] = ()
    unchanged: int = 0
    stack: str = ""
    project: str = ""
    notes: tuple[str, ...] = ()
    reparented: tuple[ResourceChange, ...] = ()
    quiet: tuple[str, ...] = ()

    @property
    def has_changes(self) -> bool:
        """A new parent type changes the URN; ``quiet`` changes (``dependsOn`` alone) are no step."""
        return bool(self.resources or self.outputs or self.reparented)

    def count(self, op: Op) -> int:
        return sum(1 for r in (*self.resources, *self.reparented) if r.op == op)


# --------------------------------------------------------------------------
# validation


def validate_render(render: object, label: str = "render") -> dict:
    """Return ``render`` if it has the docs/design.md shape, else raise naming the field."""
    if not isinstance(render, dict):
        raise RenderFileError(f"{label}: expected a JSON object, got {type(render).__name__}")
    resources = render.get("resources")
    if not isinstance(resources, list):
        raise RenderFileError(f"{label}: field 'resources' must be a list of resources")
    seen: set[tuple[str, str]] = set()
    for i, res in enumerate(resources):
        where = f"{label}: resources[{i}]"
        if not isinstance(res, dict):
            raise RenderFileError(f"{where}: expected an object with 'type' and 'name'")
        for key in ("type", "name"):
            if not isinstance(res.get(key), str) or not res[key]:
                raise RenderFileError(f"{where}: field '{key}' must be a non-empty string")
        if not isinstance(res.get("inputs", {}), dict):
            raise RenderFileError(f"{where}: field 'inputs' must be an object")
        key = (res["type"], res["name"])
        if key in seen:
            raise RenderFileError(f"{where}: duplicate resource {res['type']} {res['name']}")
        seen.add(key)
    if not isinstance(render.get("outputs", {}), dict):
        raise RenderFileError(f"{label}: field 'outputs' must be an object")
    return render


# --------------------------------------------------------------------------
# diffing


def _flatten_changes(path: str, old: object, new: object) -> list[Change]:
    """Leaf-level changes between two JSON values, with dotted paths."""
    if old == new and type(old) is type(new):
        return []
    if isinstance(old, dict) and new is MISSING:
        new = {}
        if not old:
            return [Change(path, old, MISSING)]
    elif isinstance(new, dict) and old is MISSING:
        old = {}
        if not new:
            return [Change(path, MISSING, new)]
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[Change] = []
        for key in sorted(set(old) | set(new)):
            out += _flatten_changes(
                f"{path}.{key}" if path else str(key),
                old.get(key, MISSING),
                new.get(key, MISSING),
            )
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for i, (a, b) in enumerate(zip(old, new)):
            out += _flatten_changes(f"{path}[{i}]", a, b)
        return out
    return [Change(path, old, new)]


def _resource_body(res: Mapping) -> dict:
    """The parts of a resource a create lists."""
    return {
        "inputs": res.get("inputs", {}),
        "parent": res.get("parent"),
        "dependsOn": res.get("dependsOn", []),
    }


def _parent_type(ref: str | None) -> str | None:
    """``"type::name"`` -> ``type``: a URN carries its parent's type, not its name."""
    return ref.split("::", 1)[0] if ref else None


def _top_level_inputs(changes: Sequence[Change]) -> set[str]:
    """``inputs.code.zipFile`` -> ``code``: the provider decides force-new by top-level input."""
    return {re.split(r"[.\[]", c.path, maxsplit=1)[0] for c in changes}


def _compare(type_: str, name: str, old: Mapping, new: Mapping) -> ResourceChange | None:
    """An update or replacement from the inputs alone (as the engine diffs), or None."""
    old_inputs, new_inputs = old.get("inputs", {}), new.get("inputs", {})
    leaves = _flatten_changes("", old_inputs, new_inputs)
    if not leaves:
        return None
    changes = tuple(Change(f"inputs.{c.path}", c.old, c.new) for c in leaves)
    try:
        forced = forcing_inputs(type_, _top_level_inputs(leaves))
    except KeyError:
        return ResourceChange("update", type_, name, changes, order=UNKNOWN_TYPE)
    if forced:
        order = replacement_order(type_, old_inputs, new_inputs)
        return ResourceChange("replace", type_, name, changes, tuple(forced), order)
    return ResourceChange("update", type_, name, changes)


def diff_renders(base: dict, head: dict) -> RenderDiff:
    """Compare two renders; resources are matched by (type, name) as URNs are."""
    validate_render(base, "base")
    validate_render(head, "head")
    old = {(r["type"], r["name"]): r for r in base["resources"]}
    new = {(r["type"], r["name"]): r for r in head["resources"]}
    changes: list[ResourceChange] = []
    reparented: list[ResourceChange] = []
    quiet: list[str] = []
    unchanged = 0
    for key in sorted(set(old) | set(new)):
        type_, name = key
        if key not in old:
            body = {k: v for k, v in _resource_body(new[key]).items() if v not in (None, [])}
            leaves = _flatten_changes("", {}, body)
            changes.append(ResourceChange("create", type_, name, tuple(leaves)))
        elif key not in new:
            changes.append(ResourceChange("delete", type_, name))
        else:
            change = _compare(type_, name, old[key], new[key])
            label = f"{type_} {name}"
            old_parent, new_parent = old[key].get("parent"), new[key].get("parent")
            if _parent_type(old_parent) != _parent_type(new_parent):
                # A new URN: whatever the inputs do, the engine sees a different resource.
                moved = (Change("parent", old_parent, new_parent), *(change.changes if change else ()))
                reparented.append(ResourceChange("reparent", type_, name, moved, order=NEW_URN))
            elif change:
                changes.append(change)
            else:
                unchanged += 1
                if old_parent != new_parent:
                    quiet.append(f"{label}: parent {old_parent} => {new_parent} (same parent type: the URN stays)")
                elif sorted(old[key].get("dependsOn", [])) != sorted(new[key].get("dependsOn", [])):
                    quiet.append(f"{label}: dependsOn changed only (no update: the engine diffs inputs)")
    outputs = _flatten_changes("", base.get("outputs", {}), head.get("outputs", {}))
    notes = []
    for key in ("project", "stack"):
        if base.get(key) != head.get(key):
            notes.append(f"{key} differs: {base.get(key)!r} => {head.get(key)!r}")
    return RenderDiff(
        resources=tuple(changes),
        outputs=tuple(outputs),
        unchanged=unchanged,
        stack=str(head.get("stack", "")),
        project=str(head.get("project", "")),
        notes=tuple(notes),
        reparented=tuple(reparented),
        quiet=tuple(quiet),
    )


# --------------------------------------------------------------------------
# formatting


def _blob_summary(text: str) -> str | None:
    """``<base64 …>`` for a long base64 string (a code archive), else None."""
    if len(text) < _BLOB_MIN_CHARS or not _BASE64.fullmatch(text):
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    digest = hashlib.sha256(raw).hexdigest()[:16]
    return f"<base64, {len(raw)} bytes, sha256 {digest}…>"


def _as_document(text: str) -> list[str] | None:
    """The lines to diff for a multi-line or JSON-document string, else None.

    JSON objects/arrays (RAM policy documents, trigger config) are
    pretty-printed with sorted keys first, so the diff shows the statement
    that changed rather than one long changed line.
    """
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            doc = json.loads(stripped)
        except ValueError:
            doc = None
        if isinstance(doc, (dict, list)):
            return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
    if "\n" in text:
        return text.splitlines()
    return None


def _scalar(value: object) -> str:
    if value is MISSING:
        return "(none)"
    if isinstance(value, str):
        blob = _blob_summary(value)
        if blob:
            return blob
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _holds_secret(value: object) -> bool:
    """True when a secret placeholder is anywhere in ``value`` (a string, or inside a list/object)."""
    if isinstance(value, str):
        return SECRET_PLACEHOLDER.search(value) is not None
    if isinstance(value, dict):
        return any(_holds_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_secret(v) for v in value)
    return False


def _format_change(sym: str, change: Change, indent: str, note: str = "") -> list[str]:
    """Lines for one changed path: a scalar ``old => new`` or a unified diff.

    A value holding a secret prints as ``(secret)``; a change to or from one as
    ``(secret changed)``: neither value is printed.
    """
    old, new = change.old, change.new
    if _holds_secret(old) or _holds_secret(new):
        shown = "(secret changed)" if old is not MISSING and new is not MISSING else "(secret)"
        return [f"{indent}{sym} {change.path}: {shown}{note}"]
    old_doc = _as_document(old) if isinstance(old, str) else None
    new_doc = _as_document(new) if isinstance(new, str) else None
    if old is MISSING and new_doc is not None:
        return [f"{indent}{sym} {change.path}:{note}"] + [f"{indent}    + {line}" for line in new_doc]
    if (old_doc is not None or new_doc is not None) and old is not MISSING and new is not MISSING:
        a = old_doc if old_doc is not None else [_scalar(old)]
        b = new_doc if new_doc is not None else [_scalar(new)]
        lines = [f"{indent}{sym} {change.path}:{note}"]
        diff = difflib.unified_diff(a, b, fromfile="before", tofile="after", lineterm="", n=3)
        lines += [f"{indent}    {line}" for line in diff]
        return lines
    if old is MISSING:
        return [f"{indent}+ {change.path}: {_scalar(new)}{note}"]
    if new is MISSING:
        return [f"{indent}- {change.path}: {_scalar(old)}{note}"]
    return [f"{indent}~ {change.path}: {_scalar(old)} => {_scalar(new)}{note}"]


def _forcing_note(res: ResourceChange, change: Change) -> str:
    """`` (forces replacement)`` on a changed path under a force-new input."""
    if res.op != "replace":
        return ""
    top = _top_level_inputs([Change(change.path.removeprefix("inputs."), change.old, change.new)])
    return " (forces replacement)" if top & set(res.forced_by) else ""


def _change_symbol(change: Change) -> str:
    if change.old is MISSING:
        return "+"
    if change.new is MISSING:
        return "-"
    return "~"


def format_diff(diff: RenderDiff) -> str:
    """The preview-style text a reviewer reads; deterministic for the same diff."""
    title = f"Preview of stack {diff.stack or '?'} (project {diff.project or '?'})"
    lines = [title, ""]
    lines += [f"note: {n}" for n in diff.notes]
    if diff.notes:
        lines.append("")
    if not diff.has_changes:
        lines += ["No changes.", ""]
    for res in (*diff.resources, *diff.reparented):
        sym = _SYMBOL[res.op]
        lines.append(f"{sym} {res.op} {res.type} {res.name}")
        if res.order in _ORDER_NOTE:
            lines.append(f"    ! {_ORDER_NOTE[res.order]}")
        for change in res.changes:
            lines += _format_change(_change_symbol(change), change, "    ", _forcing_note(res, change))
        lines.append("")
    if diff.outputs:
        lines.append("Outputs:")
        for change in diff.outputs:
            lines += _format_change(_change_symbol(change), change, "    ")
        lines.append("")
    for only in diff.quiet:
        lines.append(f"note: {only}")
    if diff.quiet:
        lines.append("")
    lines.append("Resources:")
    for op in ("create", "update", "replace", "delete", "reparent"):
        n = diff.count(op)  # type: ignore[arg-type]
        if n:
            lines.append(f"    {_SYMBOL[op]} {n} to {op}")
    lines.append(f"    {diff.unchanged} unchanged")
    return "\n".join(lines) + "\n"


def exit_code(diff: RenderDiff) -> int:
    """``0`` no change, ``2`` changes (see the module docstring)."""
    return EXIT_CHANGES if diff.has_changes else EXIT_NO_CHANGE


# --------------------------------------------------------------------------
# I/O edges


def load_render(path: str) -> dict:
    """Read and validate a render file, raising RenderFileError on any problem."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as exc:
        raise RenderFileError(f"{path}: cannot read render file ({exc.strerror})") from exc
    except ValueError as exc:
        raise RenderFileError(f"{path}: not JSON ({exc})") from exc
    return validate_render(data, path)


def diff_against_file(base_path: str, head: dict, out: TextIO, err: TextIO) -> int:
    """Print the diff of ``head`` against the render in ``base_path``; return the exit code."""
    try:
        diff = diff_renders(load_render(base_path), head)
    except RenderFileError as exc:
        print(f"error: {exc}", file=err)
        return EXIT_ERROR
    out.write(format_diff(diff))
    return exit_code(diff)


class DiffArgumentParser(argparse.ArgumentParser):
    """Usage errors exit ``EXIT_ERROR``: argparse's own 2 means "changes" here, and a
    CI step that trusts the exit code would read a typo as a diff to post."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m infra.preview_diff BASE.json HEAD.json``: diff two saved renders."""
    parser = DiffArgumentParser(
        prog="python -m infra.preview_diff",
        description="Compare two renders of python -m infra.synth, preview-style. "
        "Exit 0: no change, 2: changes, 1: error.",
    )
    parser.add_argument("base", help="the earlier render (JSON file)")
    parser.add_argument("head", help="the current render (JSON file)")
    args = parser.parse_args(argv)
    try:
        head = load_render(args.head)
    except RenderFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return diff_against_file(args.base, head, sys.stdout, sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
