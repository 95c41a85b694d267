"""A pure interpreter of the CloudFlow (`Type: StateMachine`) subset that ``mns_callback_flow/cloudflow_definition.py`` emits.

Exactly these constructs (see that module's docstring), anything else is an
``fdl.UnsupportedFlow`` naming where and what:

* document ``Type: StateMachine``, ``SpecVersion: v1``, ``StartAt``, ``States``,
  optional ``Name`` and ``Description``;
* ``Task`` states with ``Action: MNS:SendMessage``, ``TaskMode:
  WaitForCustomCallback``, ``Timeout`` (an integer or a string of digits, 1-604800),
  ``Parameters: {resourceArn: <topic messages ARN>, message: {...}}``,
  ``OutputConstructor``, ``Retry``, ``Catch``, ``End: true`` and ``Description``;
* ``Pass`` states whose ``InputConstructor`` holds constants, with ``End: true``;
* ``Fail`` states with ``Code`` and ``Detail`` (either may be absent: the reference
  requires ``Detail``, its own example gives only ``Code``).

Expressions (keys ending in ``.$``): ``$Input`` and ``$Context.Execution.Input``
with optional ``.field`` names, ``$Context.Current.TaskToken``,
``$Context.Current.Name``, ``$Context.Execution.Name``, and in an
``OutputConstructor`` also ``$Output[.field...]``; a missing field is null. A key
without ``.$`` holds a constant. A structured ``message`` is sent as its JSON text.
For a WaitForCustomCallback task ``$Output`` is the JSON ``Output`` of
ReportTaskSucceeded; without an ``OutputConstructor`` the state's output is that
whole object. ReportTaskFailed's ``Error`` is the state's error; expiry of
``Timeout`` is ``FnF.TaskTimeout`` (the FDL name; CloudFlow's is unverified,
docs/platform-facts.md). ``Retry``: the first rule naming the error (or
``FnF.ALL``) retries up to ``MaxAttempts`` times, waiting ``IntervalSeconds *
BackoffRate**n`` (no ``BackoffRate``: a constant interval) capped at
``MaxBackoffSeconds``; then the first ``Catch`` rule naming it moves to its
``Next``, else the flow fails. A state with ``End: true`` ends the flow with its
output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from localcloud.fdl import (
    Catch,
    FailStep,
    FdlMapping,
    PassStep,
    Retry,
    UnsupportedFlow,
    check_keys,
    load_definition,
)

ACTION = "MNS:SendMessage"
TASK_MODE = "WaitForCustomCallback"
MAX_TIMEOUT_SECONDS = 604800
# Both documented forms: the CloudFlow SMQ page's `acs:mns:<region>:<account>:/...`
# and FDL's `acs:mns:::/...` (the flow's own region and account).
_TOPIC_ARN = re.compile(r"acs:mns:([a-z0-9-]*):([0-9]*):/topics/([A-Za-z0-9][A-Za-z0-9-]{0,254})/messages")
_FIELDS = r"((?:\.[A-Za-z0-9_-]+)*)"
# expression -> (scope, fixed path under it); a trailing `.field` path follows where allowed.
_EXPRESSIONS = (
    (re.compile(r"\$Context\.Current\.TaskToken"), "token"),
    (re.compile(r"\$Context\.Current\.Name"), "state_name"),
    (re.compile(r"\$Context\.Execution\.Name"), "execution_name"),
    (re.compile(r"\$Context\.Execution\.Input" + _FIELDS), "input"),
    (re.compile(r"\$Input" + _FIELDS), "input"),
    (re.compile(r"\$Output" + _FIELDS), "output"),
)


@dataclass(frozen=True)
class Constructed:
    """One constructor entry: a target field and either a constant or an expression."""

    target: str
    value: Any
    expression: bool


def evaluate(expression: str, scopes: Mapping[str, Any], where: str = "expression") -> Any:
    """The value of one supported expression over ``scopes`` (input, output, token, names)."""
    for pattern, scope in _EXPRESSIONS:
        match = pattern.fullmatch(expression)
        if not match:
            continue
        if scope == "output" and "output" not in scopes:
            raise UnsupportedFlow(f"{where}: $Output is only available in an OutputConstructor")
        value = scopes.get(scope)
        path = match.group(1) if match.groups() else ""
        for part in filter(None, path.split(".")):
            value = value.get(part) if isinstance(value, Mapping) else None
        return value
    raise UnsupportedFlow(f"{where}: expression {expression!r} is not supported (supported: $Input[.field], "
                          "$Context.Execution.Input[.field], $Context.Current.TaskToken, $Context.Current.Name, "
                          "$Context.Execution.Name, $Output[.field] in an OutputConstructor)")


def construct(entries: tuple[Constructed, ...], scopes: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A constructor's object: constants as written, expressions evaluated."""
    return {e.target: evaluate(e.value, scopes, f"{where}.{e.target}.$") if e.expression else e.value
            for e in entries}


@dataclass(frozen=True)
class TaskState:
    """A WaitForCustomCallback ``MNS:SendMessage`` Task, run by ``localcloud.engine`` like an FDL task step."""

    name: str
    topic: str
    resource_arn: str
    timeout_seconds: float
    message: tuple[Constructed, ...]
    output_constructor: tuple[Constructed, ...] = ()
    retry: tuple[Retry, ...] = ()
    catch: tuple[Catch, ...] = ()
    end: bool = True

    def _scopes(self, execution_input: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
        return {"input": execution_input, "token": (context.get("task") or {}).get("token"),
                "state_name": self.name, "execution_name": (context.get("execution") or {}).get("name")}

    def message_body(self, execution_input: Mapping[str, Any], context: Mapping[str, Any]) -> str:
        """``Parameters.message`` built over the state's input and context, as JSON text."""
        body = construct(self.message, self._scopes(execution_input, context), f"state {self.name}.message")
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"))

    def output(self, execution_input: Mapping[str, Any], reported: Mapping[str, Any],
               context: Mapping[str, Any]) -> dict[str, Any]:
        """Without an ``OutputConstructor`` the whole reported Output, else the constructor over it."""
        if not self.output_constructor:
            return dict(reported)
        scopes = {**self._scopes(execution_input, context), "output": reported}
        return construct(self.output_constructor, scopes, f"state {self.name}.OutputConstructor")


@dataclass(frozen=True)
class StateMachine:
    """The parsed flow; ``steps[0]`` is the ``StartAt`` state (what ``localcloud.engine`` starts with)."""

    steps: tuple[TaskState | PassStep | FailStep, ...]

    def step(self, name: str) -> TaskState | PassStep | FailStep:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def after(self, step: object) -> TaskState | PassStep | FailStep | None:
        """The next state after ``step`` succeeds: none, as every state the parser takes has ``End: true``."""
        del step
        return None

    @property
    def topics(self) -> set[str]:
        return {s.topic for s in self.steps if isinstance(s, TaskState)}


# --------------------------------------------------------------------------- parsing

def _constructor(where: str, raw: Any, *, constants_only: bool = False, output: bool = False) -> tuple[Constructed, ...]:
    if not isinstance(raw, Mapping) or not raw:
        raise UnsupportedFlow(f"{where}: expected a non-empty object of fields")
    entries = []
    for key, value in raw.items():
        if not isinstance(key, str) or not key:
            raise UnsupportedFlow(f"{where}: field names must be text, got {key!r}")
        if key.endswith(".$"):
            if constants_only:
                raise UnsupportedFlow(f"{where}.{key}: only constants are supported here")
            if not isinstance(value, str):
                raise UnsupportedFlow(f"{where}.{key}: an expression must be text, got {value!r}")
            scopes = {"output": {}} if output else {}
            evaluate(value, scopes, f"{where}.{key}")  # refuses what is not supported, by name
            target, expression = key[:-2], True
        else:
            if isinstance(value, (Mapping, list)):
                raise UnsupportedFlow(f"{where}.{key}: nested objects and lists are not supported")
            target, expression = key, False
        if not target or "." in target or any(e.target == target for e in entries):
            raise UnsupportedFlow(f"{where}.{key}: {target!r} is not one plain field, or is given twice")
        entries.append(Constructed(target, value, expression))
    return tuple(entries)


def _errors(where: str, raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw or not all(isinstance(e, str) and e for e in raw):
        raise UnsupportedFlow(f"{where}: expected a non-empty list of error names")
    return tuple(raw)


def _number(where: str, raw: Any, low: float) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw < low:
        raise UnsupportedFlow(f"{where}: expected a number >= {low}, got {raw!r}")
    return float(raw)


def _rules(where: str, raw: Any) -> list[Mapping[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(r, Mapping) for r in raw):
        raise UnsupportedFlow(f"{where}: expected a list of rule objects")
    return raw


def _timeout(where: str, raw: Any) -> int:
    value = int(raw.strip()) if isinstance(raw, str) and raw.strip().isdigit() else raw
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TIMEOUT_SECONDS:
        raise UnsupportedFlow(f"{where}.Timeout: expected 1-{MAX_TIMEOUT_SECONDS} seconds, got {raw!r} "
                              "(0 never times out, which the local run does not wait for)")
    return value


def _task(where: str, node: Mapping[str, Any]) -> TaskState:
    check_keys(where, node, {"Type", "Name", "Description", "Action", "TaskMode", "Timeout", "Parameters",
                        "OutputConstructor", "Retry", "Catch", "End"},
          {"Action", "TaskMode", "Timeout", "Parameters", "End"})
    if node["Action"] != ACTION:
        raise UnsupportedFlow(f"{where}.Action: only {ACTION} is supported, got {node['Action']!r}")
    if node["TaskMode"] != TASK_MODE:
        raise UnsupportedFlow(f"{where}.TaskMode: only {TASK_MODE} is supported, got {node['TaskMode']!r}")
    if node["End"] is not True:
        raise UnsupportedFlow(f"{where}.End: only End: true is supported, got {node['End']!r}")
    params = node["Parameters"]
    if not isinstance(params, Mapping):
        raise UnsupportedFlow(f"{where}.Parameters: expected an object")
    check_keys(f"{where}.Parameters", params, {"resourceArn", "message"}, {"resourceArn", "message"})
    arn = params["resourceArn"]
    match = _TOPIC_ARN.fullmatch(arn) if isinstance(arn, str) else None
    if not match:
        raise UnsupportedFlow(f"{where}.Parameters.resourceArn: only MNS topics "
                              f"(acs:mns:<region>:<account>:/topics/<topic>/messages) are supported, got {arn!r}")
    retry = []
    for i, rule in enumerate(_rules(f"{where}.Retry", node.get("Retry"))):
        spot = f"{where}.Retry[{i}]"
        check_keys(spot, rule, {"Errors", "Description", "MaxAttempts", "IntervalSeconds", "BackoffRate",
                           "MaxBackoffSeconds"}, {"Errors", "MaxAttempts", "IntervalSeconds"})
        retry.append(Retry(
            errors=_errors(f"{spot}.Errors", rule["Errors"]),
            interval_seconds=_number(f"{spot}.IntervalSeconds", rule["IntervalSeconds"], 0),
            max_attempts=int(_number(f"{spot}.MaxAttempts", rule["MaxAttempts"], 0)),
            # CloudFlow: "When omitted, the interval stays constant."
            multiplier=_number(f"{spot}.BackoffRate", rule.get("BackoffRate", 1), 1),
            max_interval_seconds=(_number(f"{spot}.MaxBackoffSeconds", rule["MaxBackoffSeconds"], 0)
                                  if rule.get("MaxBackoffSeconds") is not None else None),
        ))
    catch = []
    for i, rule in enumerate(_rules(f"{where}.Catch", node.get("Catch"))):
        spot = f"{where}.Catch[{i}]"
        check_keys(spot, rule, {"Errors", "Description", "Next"}, {"Errors", "Next"})
        catch.append(Catch(_errors(f"{spot}.Errors", rule["Errors"]), str(rule["Next"])))
    output = (_constructor(f"{where}.OutputConstructor", node["OutputConstructor"], output=True)
              if node.get("OutputConstructor") is not None else ())
    return TaskState(
        name=node["Name"], topic=match.group(3), resource_arn=arn,
        timeout_seconds=float(_timeout(where, node["Timeout"])),
        message=_constructor(f"{where}.Parameters.message", params["message"]),
        output_constructor=output, retry=tuple(retry), catch=tuple(catch),
    )


def _state(where: str, node: Any) -> TaskState | PassStep | FailStep:
    if not isinstance(node, Mapping):
        raise UnsupportedFlow(f"{where}: expected a state object")
    kind, name = node.get("Type"), node.get("Name")
    if not isinstance(name, str) or not name:
        raise UnsupportedFlow(f"{where}.Name: required")
    where = f"{where} ({name})"
    if kind == "Task":
        return _task(where, node)
    if kind == "Pass":
        check_keys(where, node, {"Type", "Name", "Description", "InputConstructor", "End"}, {"InputConstructor", "End"})
        if node["End"] is not True:
            raise UnsupportedFlow(f"{where}.End: only End: true is supported, got {node['End']!r}")
        entries = _constructor(f"{where}.InputConstructor", node["InputConstructor"], constants_only=True)
        return PassStep(name, tuple(FdlMapping(e.target, e.value) for e in entries), end=True)
    if kind == "Fail":
        check_keys(where, node, {"Type", "Name", "Description", "Code", "Detail", "End"}, set())
        code, detail = node.get("Code", "Fail"), node.get("Detail", "")
        if not isinstance(code, str) or not isinstance(detail, str):
            raise UnsupportedFlow(f"{where}: Code and Detail must be text")
        return FailStep(name, code, detail)
    raise UnsupportedFlow(f"{where}.Type: {kind!r} states are not supported (supported: Task, Pass, Fail)")


def parse_state_machine(text: str) -> StateMachine:
    """Parses CloudFlow YAML text; ``UnsupportedFlow`` for anything outside the subset."""
    doc = load_definition(text)
    check_keys("StateMachine", doc, {"Type", "Name", "Description", "SpecVersion", "StartAt", "States"},
          {"Type", "SpecVersion", "StartAt", "States"})
    if doc["Type"] != "StateMachine" or doc["SpecVersion"] != "v1":
        raise UnsupportedFlow(f"StateMachine: expected Type StateMachine and SpecVersion v1, got "
                              f"{doc['Type']!r} / {doc['SpecVersion']!r}")
    raw = doc["States"]
    if not isinstance(raw, list) or not raw:
        raise UnsupportedFlow("StateMachine.States: expected a non-empty list")
    states = [_state(f"StateMachine.States[{i}]", node) for i, node in enumerate(raw)]
    names = [s.name for s in states]
    if len(set(names)) != len(names):
        raise UnsupportedFlow(f"StateMachine.States: state names must be unique, got {names}")
    if doc["StartAt"] not in names:
        raise UnsupportedFlow(f"StateMachine.StartAt: {doc['StartAt']!r} is not a state")
    for state in states:
        for rule in getattr(state, "catch", ()):
            if rule.goto not in names:
                raise UnsupportedFlow(f"state {state.name}: Catch Next {rule.goto!r} is not a state")
    start = names.index(doc["StartAt"])
    return StateMachine(tuple([states[start]] + states[:start] + states[start + 1:]))
