"""A pure interpreter of the FDL v1 subset that ``mns_callback_flow/flow_definition.py`` emits.

Exactly these constructs (see that module's docstring), anything else is an
``UnsupportedFlow`` naming where and what:

* document ``version: v1``, ``type: flow``, ``steps``;
* ``task`` steps with ``resourceArn: acs:mns:::/topics/<topic>/messages``,
  ``pattern: waitForCallback``, ``timeoutSeconds``, ``inputMappings``,
  ``outputMappings``, ``serviceParams: {MessageBody: $}``, ``retry``,
  ``catch`` and ``end``;
* ``pass`` steps whose ``outputMappings`` are constants, with ``end``;
* ``fail`` steps with ``error`` and optional ``cause``.

Semantics (help.aliyun.com FDL docs: "Task steps" 122494, "Error handling"
214310, "Inputs and outputs" 122493): mapping sources are ``$input``,
``$context`` or ``$local``, each optionally followed by ``.<field>`` names, or a
constant (no ``$``); a missing path maps to null, a bare ``$local`` is the whole
object (unverified on FnF: docs/platform-facts.md "FDL output mappings").
Targets are plain field names, each at most once. ``MessageBody: $`` publishes
the mapped input as JSON text. For a waitForCallback task, ``$local`` is the
JSON ``Output`` of ReportTaskSucceeded and ``$input`` the step's mapped input;
without ``outputMappings`` the step's output is its whole ``$local`` (doc
122493); an empty ``outputMappings`` list, whose meaning no document gives, is
refused. ReportTaskFailed's ``Error`` becomes the step's error
name; expiry of ``timeoutSeconds`` is ``FnF.TaskTimeout``. A failed attempt is
retried by the first retry rule naming its error (or ``FnF.ALL``), each rule
counting its own attempts, waiting ``intervalSeconds * multiplier**n`` capped at
``maxIntervalSeconds``; once retries are spent, the first catch rule naming the
error (or ``FnF.ALL``) moves to its ``goto`` step, else the flow fails.
Steps run in order; a step with ``end: true`` (or the last step) ends the flow,
whose output is the ``$local`` produced by its last step.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import yaml

ALL_ERRORS = "FnF.ALL"
TASK_TIMEOUT = "FnF.TaskTimeout"
_TOPIC_ARN = re.compile(r"acs:mns:[a-z0-9-]*:[0-9]*:/topics/([A-Za-z0-9][A-Za-z0-9-]{0,254})/messages")
_PATH = re.compile(r"\$(input|context|local)((?:\.[A-Za-z0-9_-]+)*)")


class UnsupportedFlow(ValueError):
    """The definition uses something this interpreter does not run; the message says where."""


@dataclass(frozen=True)
class FdlMapping:
    """One inputMappings/outputMappings entry: where a value goes and where it comes from."""

    target: str
    source: str


@dataclass(frozen=True)
class Retry:
    errors: tuple[str, ...]
    interval_seconds: float = 1.0
    max_attempts: int = 3
    multiplier: float = 2.0
    max_interval_seconds: float | None = None

    def delay(self, retry_number: int) -> float:
        """Seconds before retry ``retry_number`` (0-based) under this rule."""
        delay = self.interval_seconds * self.multiplier ** retry_number
        return min(delay, self.max_interval_seconds) if self.max_interval_seconds else delay


@dataclass(frozen=True)
class Catch:
    errors: tuple[str, ...]
    goto: str


@dataclass(frozen=True)
class TaskStep:
    name: str
    topic: str
    timeout_seconds: float
    input_mappings: tuple[FdlMapping, ...]
    output_mappings: tuple[FdlMapping, ...]
    retry: tuple[Retry, ...] = ()
    catch: tuple[Catch, ...] = ()
    end: bool = False

    # What localcloud.engine asks of a callback task, in either spec (localcloud/cloudflow.py).

    @property
    def resource_arn(self) -> str:
        return f"acs:mns:::/topics/{self.topic}/messages"

    def message_body(self, execution_input: Mapping[str, Any], context: Mapping[str, Any]) -> str:
        return message_body(self, execution_input, context)

    def output(self, execution_input: Mapping[str, Any], reported: Mapping[str, Any],
               context: Mapping[str, Any]) -> dict[str, Any]:
        return task_output(self, execution_input, reported, context)


@dataclass(frozen=True)
class PassStep:
    name: str
    output_mappings: tuple[FdlMapping, ...]
    end: bool = False


@dataclass(frozen=True)
class FailStep:
    name: str
    error: str
    cause: str = ""


Step = TaskStep | PassStep | FailStep


class RecoverableTask(Protocol):
    """What retry_delay and catch_target read: an FDL task step or a CloudFlow task state."""

    @property
    def retry(self) -> tuple[Retry, ...]: ...

    @property
    def catch(self) -> tuple[Catch, ...]: ...


@dataclass(frozen=True)
class Flow:
    steps: tuple[Step, ...]

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def after(self, step: object) -> Step | None:
        """The step that follows ``step`` when it succeeds, None when the flow ends."""
        if getattr(step, "end", False):
            return None
        index = self.steps.index(step)
        return self.steps[index + 1] if index + 1 < len(self.steps) else None

    @property
    def topics(self) -> set[str]:
        return {s.topic for s in self.steps if isinstance(s, TaskStep)}


# --------------------------------------------------------------------------- parsing

def check_keys(where: str, node: Mapping[str, Any], allowed: set[str], required: set[str]) -> None:
    """Refuse by name a key the interpreter does not run, or a required one that is missing."""
    for key in node:
        if key not in allowed:
            raise UnsupportedFlow(f"{where}: {key!r} is not supported here "
                                  f"(supported: {', '.join(sorted(allowed))})")
    for key in sorted(required):  # the first missing key, the same on every run
        if key not in node:
            raise UnsupportedFlow(f"{where}: {key!r} is required")


def _mapping_list(where: str, raw: Any, *, constants_only: bool = False) -> tuple[FdlMapping, ...]:
    if not isinstance(raw, list):
        raise UnsupportedFlow(f"{where}: expected a list of {{target, source}}")
    result = []
    for i, item in enumerate(raw):
        spot = f"{where}[{i}]"
        if not isinstance(item, Mapping):
            raise UnsupportedFlow(f"{spot}: expected {{target, source}}")
        check_keys(spot, item, {"target", "source"}, {"target", "source"})
        target, source = item["target"], item["source"]
        if not isinstance(target, str) or not target or "." in target:
            raise UnsupportedFlow(f"{spot}.target: expected a plain field name, got {target!r}")
        if isinstance(source, str) and source.startswith("$"):
            if constants_only:
                raise UnsupportedFlow(f"{spot}.source: only constants are supported in pass steps, "
                                      f"got {source!r}")
            if not _PATH.fullmatch(source):
                raise UnsupportedFlow(f"{spot}.source: {source!r} is not $input/$context/$local "
                                      "followed by .field names")
        if any(m.target == target for m in result):
            raise UnsupportedFlow(f"{spot}.target: {target!r} is mapped twice")
        result.append(FdlMapping(target, source))
    return tuple(result)


def _output_mapping_list(where: str, node: Mapping[str, Any]) -> tuple[FdlMapping, ...]:
    """A task step's ``outputMappings``: absent means the whole ``$local``; an empty list is refused."""
    if "outputMappings" not in node or node["outputMappings"] is None:
        return ()
    if node["outputMappings"] == []:
        raise UnsupportedFlow(f"{where}.outputMappings: an empty list is not supported "
                              "(omit the key: the step's output is then its whole $local)")
    return _mapping_list(f"{where}.outputMappings", node["outputMappings"])


def _errors(where: str, raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw or not all(isinstance(e, str) and e for e in raw):
        raise UnsupportedFlow(f"{where}: expected a non-empty list of error names")
    return tuple(raw)


def _number(where: str, raw: Any, default: float, low: float) -> float:
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw < low:
        raise UnsupportedFlow(f"{where}: expected a number >= {low}, got {raw!r}")
    return float(raw)


def _rules(where: str, raw: Any) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise UnsupportedFlow(f"{where}: expected a list of rules, got {type(raw).__name__}")
    return raw


def _task(where: str, node: Mapping[str, Any]) -> TaskStep:
    check_keys(where, node, {"type", "name", "resourceArn", "pattern", "timeoutSeconds", "inputMappings",
                        "outputMappings", "serviceParams", "retry", "catch", "end"},
          {"resourceArn", "pattern", "timeoutSeconds", "serviceParams"})
    arn = node["resourceArn"]
    match = _TOPIC_ARN.fullmatch(arn) if isinstance(arn, str) else None
    if not match:
        raise UnsupportedFlow(f"{where}.resourceArn: only MNS topics "
                              f"(acs:mns:::/topics/<topic>/messages) are supported, got {arn!r}")
    if node["pattern"] != "waitForCallback":
        raise UnsupportedFlow(f"{where}.pattern: only waitForCallback is supported, "
                              f"got {node['pattern']!r}")
    params = node["serviceParams"]
    if not isinstance(params, Mapping) or dict(params) != {"MessageBody": "$"}:
        raise UnsupportedFlow(f"{where}.serviceParams: only {{MessageBody: $}} is supported, got {params!r}")
    timeout = node["timeoutSeconds"]
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
        raise UnsupportedFlow(f"{where}.timeoutSeconds: expected a positive integer, got {timeout!r}")
    retry = []
    for i, rule in enumerate(_rules(f"{where}.retry", node.get("retry"))):
        spot = f"{where}.retry[{i}]"
        if not isinstance(rule, Mapping):
            raise UnsupportedFlow(f"{spot}: expected an object")
        check_keys(spot, rule, {"errors", "intervalSeconds", "maxAttempts", "multiplier",
                           "maxIntervalSeconds"}, {"errors"})
        retry.append(Retry(
            errors=_errors(f"{spot}.errors", rule["errors"]),
            interval_seconds=_number(f"{spot}.intervalSeconds", rule.get("intervalSeconds"), 1, 0),
            max_attempts=int(_number(f"{spot}.maxAttempts", rule.get("maxAttempts"), 3, 0)),
            multiplier=_number(f"{spot}.multiplier", rule.get("multiplier"), 2, 1),
            max_interval_seconds=(_number(f"{spot}.maxIntervalSeconds", rule["maxIntervalSeconds"], 0, 0)
                                  if rule.get("maxIntervalSeconds") is not None else None),
        ))
    catch = []
    for i, rule in enumerate(_rules(f"{where}.catch", node.get("catch"))):
        spot = f"{where}.catch[{i}]"
        if not isinstance(rule, Mapping):
            raise UnsupportedFlow(f"{spot}: expected an object")
        check_keys(spot, rule, {"errors", "goto"}, {"errors", "goto"})
        catch.append(Catch(_errors(f"{spot}.errors", rule["errors"]), str(rule["goto"])))
    return TaskStep(
        name=node["name"], topic=match.group(1), timeout_seconds=float(timeout),
        input_mappings=_mapping_list(f"{where}.inputMappings", node.get("inputMappings") or []),
        output_mappings=_output_mapping_list(where, node),
        retry=tuple(retry), catch=tuple(catch), end=_end(where, node),
    )


def _end(where: str, node: Mapping[str, Any]) -> bool:
    end = node.get("end", False)
    if not isinstance(end, bool):
        raise UnsupportedFlow(f"{where}.end: expected true or false, got {end!r}")
    return end


def _step(where: str, node: Any) -> Step:
    if not isinstance(node, Mapping):
        raise UnsupportedFlow(f"{where}: expected a step object")
    kind, name = node.get("type"), node.get("name")
    if not isinstance(name, str) or not name:
        raise UnsupportedFlow(f"{where}.name: required")
    where = f"{where} ({name})"
    if kind == "task":
        return _task(where, node)
    if kind == "pass":
        check_keys(where, node, {"type", "name", "outputMappings", "end"}, set())
        return PassStep(name, _mapping_list(f"{where}.outputMappings", node.get("outputMappings") or [],
                                            constants_only=True), _end(where, node))
    if kind == "fail":
        check_keys(where, node, {"type", "name", "error", "cause"}, {"error"})
        error, cause = node["error"], node.get("cause", "")
        if not isinstance(error, str) or not isinstance(cause, str):
            raise UnsupportedFlow(f"{where}: error and cause must be strings")
        return FailStep(name, error, cause)
    raise UnsupportedFlow(f"{where}.type: {kind!r} steps are not supported (supported: task, pass, fail)")


def load_definition(text: str) -> Mapping[str, Any]:
    """The YAML mapping of a flow definition (either spec); ``UnsupportedFlow`` otherwise."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise UnsupportedFlow(f"flow definition is not valid YAML ({err})") from None
    if not isinstance(doc, Mapping):
        raise UnsupportedFlow("flow definition: expected a mapping at the top level")
    return doc


def parse_flow(text: str) -> Flow:
    """Parses FDL YAML text into a Flow; ``UnsupportedFlow`` for anything outside the subset."""
    doc = load_definition(text)
    check_keys("flow", doc, {"version", "type", "steps"}, {"version", "type", "steps"})
    if doc["version"] != "v1" or doc["type"] != "flow":
        raise UnsupportedFlow(f"flow: expected version v1 and type flow, got "
                              f"{doc['version']!r} / {doc['type']!r}")
    raw_steps = doc["steps"]
    if not isinstance(raw_steps, list) or not raw_steps:
        raise UnsupportedFlow("flow.steps: expected a non-empty list")
    steps = tuple(_step(f"flow.steps[{i}]", node) for i, node in enumerate(raw_steps))
    names = [s.name for s in steps]
    if len(set(names)) != len(names):
        raise UnsupportedFlow(f"flow.steps: step names must be unique, got {names}")
    for step in steps:
        for rule in getattr(step, "catch", ()):
            if rule.goto not in names:
                raise UnsupportedFlow(f"step {step.name}: catch goto {rule.goto!r} is not a step")
    return Flow(steps)


# --------------------------------------------------------------------------- evaluation

def resolve(source: str, scopes: Mapping[str, Any]) -> Any:
    """Value of a mapping source: ``$input.a.b`` etc. from ``scopes``, or the constant itself."""
    if not isinstance(source, str) or not source.startswith("$"):
        return source
    match = _PATH.fullmatch(source)
    if not match:
        raise UnsupportedFlow(f"mapping source {source!r} is not supported")
    value: Any = scopes.get(match.group(1))
    for part in filter(None, match.group(2).split(".")):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def apply_mappings(mappings: tuple[FdlMapping, ...], scopes: Mapping[str, Any]) -> dict[str, Any]:
    return {m.target: resolve(m.source, scopes) for m in mappings}


def step_input(step: TaskStep, execution_input: Mapping[str, Any],
               context: Mapping[str, Any]) -> dict[str, Any]:
    """The step's input: its ``inputMappings`` over the flow's input (none: the flow's input)."""
    if not step.input_mappings:
        return dict(execution_input)
    return apply_mappings(step.input_mappings, {"input": execution_input, "context": context})


def message_body(step: TaskStep, execution_input: Mapping[str, Any],
                 context: Mapping[str, Any]) -> str:
    """``serviceParams.MessageBody: $``: the step's mapped input as JSON text."""
    return json.dumps(step_input(step, execution_input, context), ensure_ascii=False, separators=(",", ":"))


def task_output(step: TaskStep, execution_input: Mapping[str, Any], local: Mapping[str, Any],
                context: Mapping[str, Any]) -> dict[str, Any]:
    """The step's output: without ``outputMappings`` the whole ``$local`` (the reported
    Output), else those mappings over ``$local``, the step's ``$input`` and ``$context``."""
    if not step.output_mappings:
        return dict(local)
    scopes = {"input": step_input(step, execution_input, context), "local": local, "context": context}
    return apply_mappings(step.output_mappings, scopes)


def _names(errors: tuple[str, ...], error: str) -> bool:
    return error in errors or ALL_ERRORS in errors


def retry_delay(step: RecoverableTask, error: str, retries_used: dict[int, int]) -> float | None:
    """Seconds to wait before retrying after ``error``, or None when no retry is left.

    ``retries_used`` (rule index -> retries made) is updated: each rule counts its own.
    """
    for index, rule in enumerate(step.retry):
        if _names(rule.errors, error):
            used = retries_used.get(index, 0)
            if used >= rule.max_attempts:
                return None
            retries_used[index] = used + 1
            return rule.delay(used)
    return None


def catch_target(step: RecoverableTask, error: str) -> str | None:
    """The step a catch rule sends ``error`` to, or None."""
    for rule in step.catch:
        if _names(rule.errors, error):
            return rule.goto
    return None
