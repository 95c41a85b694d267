"""A stack's config as the Pulumi CLI would hand it to the program, read offline.

`infra.synth` and the local runner have no Pulumi CLI, so this module does the
CLI's part: project-file defaults < `Pulumi.<stack>.yaml` < `KEY=VALUE`
overrides, with values turned into the strings `pulumi.Config` returns (scalars
as text, structured values as JSON text). It also refuses what the CLI refuses:
a project key without a value or default, and a structured value for a key the
project types as a scalar.
(Project-file config rules: Pulumi "Project file reference", `config` options;
merge order and checks: pulumi/pulumi `sdk/go/common/workspace/config.go`.)

What only the cloud knows is rendered as a placeholder, so that real stacks
render offline:

* an encrypted value (``secure: <ciphertext>``) becomes
  ``[secret sha256:<12 hex digits>]``, a digest of the ciphertext: it changes
  when the ciphertext changes, and tells nothing the stack file does not
  already show (the ciphertext is in the file; its digest is not the plaintext);
* a stack with an ``environment:`` block (Pulumi ESC: a list of environment
  names, or ``imports:`` with that list) gets its values from environments this
  machine cannot open. A project key without a default that the file does not
  set becomes ``[secret sha256:...]`` of the environment names and the key;
  keys set in the file or on the command line keep their values; other keys
  keep their defaults, which the environment may override in the cloud.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypeGuard

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# A secret's stand-in in a render. Found anywhere in a string, it makes the
# preview diff print "(secret changed)" instead of the value.
SECRET_PLACEHOLDER = re.compile(r"\[secret(?: sha256:[0-9a-f]{12})?\]")


class StackConfigError(ValueError):
    """The stack's config cannot be read as the Pulumi CLI would; the message says where."""


def _full_key(project: str, key: str) -> str:
    """A key without namespace is the project's (as in the CLI and Pulumi.yaml)."""
    key = key.strip()
    if not key or key.startswith(":") or key.endswith(":"):
        raise StackConfigError(f"config key {key!r} is empty or malformed")
    return key if ":" in key else f"{project}:{key}"


def secret_placeholder(fingerprint: str) -> str:
    """``[secret sha256:<12 hex>]`` of ``fingerprint``: text already in the stack file
    (a ciphertext, ESC environment names), never a plaintext."""
    return f"[secret sha256:{hashlib.sha256(fingerprint.encode('utf-8')).hexdigest()[:12]}]"


def _is_encrypted(value: object) -> TypeGuard[Mapping[str, object]]:
    """A ``secure: <ciphertext>`` value, as the stack file holds an encrypted secret."""
    return isinstance(value, Mapping) and "secure" in value and len(value) == 1


def _as_config_text(key: str, value: object, source: str) -> str:
    """The string pulumi.Config.get returns for a YAML value (a placeholder for a secure: one)."""
    if _is_encrypted(value):
        ciphertext = value["secure"]
        if not isinstance(ciphertext, str) or not ciphertext:
            raise StackConfigError(f"{source}: {key}: `secure:` must be the ciphertext text")
        return secret_placeholder(ciphertext)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    if value is None:
        return ""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


# libyaml's parser where PyYAML was built with it: the same constructor and resolver as
# yaml.safe_load, so the same documents, in a tenth of the time of the pure-Python parser.
_FAST_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse_yaml(text: str) -> object:
    """``yaml.safe_load(text)``; the fast parser first, the pure one for what it refuses,
    so a document either accepts loads, and a bad one's error is safe_load's own."""
    try:
        return yaml.load(text, Loader=_FAST_SAFE_LOADER)
    except yaml.YAMLError:
        return yaml.safe_load(text)


def _load_yaml(path: Path) -> dict:
    try:
        doc = _parse_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise StackConfigError(f"{path.name}: not valid YAML ({err})") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise StackConfigError(f"{path.name}: expected a mapping at the top level")
    return doc


def _project_config(root: Path) -> tuple[str, dict[str, dict]]:
    """(project name, {full key: schema-or-value declaration}) from Pulumi.yaml."""
    path = root / "Pulumi.yaml"
    if not path.is_file():
        raise StackConfigError(f"no Pulumi.yaml in {root}")
    doc = _load_yaml(path)
    project = doc.get("name")
    if not isinstance(project, str) or not project:
        raise StackConfigError("Pulumi.yaml: `name` is required")
    declarations = {}
    for key, spec in (doc.get("config") or {}).items():
        full = _full_key(project, str(key))
        if isinstance(spec, Mapping) and "type" in spec:
            if not full.startswith(f"{project}:"):
                # Pulumi: "Schemas are only valid for project property keys."
                raise StackConfigError(f"Pulumi.yaml: {key} is not a project key and cannot have a schema")
            declarations[full] = dict(spec)
        elif isinstance(spec, Mapping) and "value" in spec:
            declarations[full] = {"value": spec["value"]}
        else:
            declarations[full] = {"value": spec}
    return project, declarations


def stack_names(root: Path = PROJECT_ROOT) -> list[str]:
    """Stacks that have a config file beside Pulumi.yaml."""
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def _environment_names(doc: Mapping, source: str) -> tuple[str, ...]:
    """The ESC environments a stack imports: ``environment: [a, b]`` or ``environment: {imports: [a, b]}``.

    (Pulumi ESC docs, "Use with Pulumi IaC": the list form; the ``imports``
    form is the one ESC environments use for their own imports.)
    """
    block = doc.get("environment")
    if block is None:
        return ()
    names = block.get("imports") if isinstance(block, Mapping) else block
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise StackConfigError(
            f"{source}: `environment` must be a list of ESC environment names (or `imports:` with one)"
        )
    return tuple(names)


def _check_type(key: str, declared: str | None, value: object, source: str) -> None:
    """A structured value is refused for a scalar-typed key, as the CLI refuses it."""
    if _is_encrypted(value):
        return
    structured = isinstance(value, (list, Mapping))
    if declared in ("string", "integer", "boolean") and structured:
        raise StackConfigError(f"{source}: {key} must be of type '{declared}' (the project file says so), "
                               f"got a structured value; give it as text")
    if declared == "array" and value is not None and not isinstance(value, list):
        raise StackConfigError(f"{source}: {key} must be of type 'array'")


def read_stack_config(
    stack: str, overrides: Sequence[str] = (), root: Path | str = PROJECT_ROOT
) -> dict[str, object]:
    """{full key: string value} for `stack`: schema defaults < Pulumi.<stack>.yaml < KEY=VALUE overrides."""
    root = Path(root)
    project, declarations = _project_config(root)
    stack_file = root / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        known = ", ".join(stack_names(root)) or "none"
        raise StackConfigError(f"no config file Pulumi.{stack}.yaml for stack {stack!r} (stacks with one: {known})")
    stack_doc = _load_yaml(stack_file)
    stack_values = stack_doc.get("config") or {}
    if not isinstance(stack_values, Mapping):
        raise StackConfigError(f"{stack_file.name}: `config` must be a mapping")

    merged: dict[str, object] = {}
    secret_keys: dict[str, str] = {}  # key -> where its secret comes from
    for key, spec in declarations.items():
        if "default" in spec:
            merged[key] = _as_config_text(key, spec["default"], "Pulumi.yaml")
        elif "value" in spec:
            merged[key] = _as_config_text(key, spec["value"], "Pulumi.yaml")
    for raw_key, value in stack_values.items():
        key = _full_key(project, str(raw_key))
        _check_type(key, declarations.get(key, {}).get("type"), value, stack_file.name)
        merged[key] = _as_config_text(key, value, stack_file.name)
        if _is_encrypted(value):
            secret_keys[key] = "secure:"
    environments = _environment_names(stack_doc, stack_file.name)
    for key in declarations:
        if environments and key.startswith(f"{project}:") and key not in merged:
            merged[key] = secret_placeholder("\0".join(("esc", *environments, key)))
            secret_keys[key] = "from the ESC environment"
    for override in overrides:
        raw_key, sep, value = override.partition("=")
        if not sep:
            raise StackConfigError(f"override {override!r}: expected KEY=VALUE")
        key = _full_key(project, raw_key)
        merged[key] = value
        secret_keys.pop(key, None)

    for key, origin in sorted(secret_keys.items()):
        declared = declarations.get(key, {}).get("type")
        if declared in ("integer", "boolean"):
            raise StackConfigError(
                f"{stack_file.name}: {key} is a secret ({origin}) of type '{declared}', which the offline "
                f"render cannot stand in for; give it with --config {key}=..."
            )

    missing = sorted(key for key in declarations if key.startswith(f"{project}:") and key not in merged)
    if missing:
        raise StackConfigError(f"stack {stack!r} is missing required config: {', '.join(missing)}")
    return dict(sorted(merged.items()))
