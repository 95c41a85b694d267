"""The flow's FDL v1 document, built from the callback task and checked before it ships.

Pure: same task, same bytes. `localcloud/` interprets what this module
emits, so the set of constructs is closed and listed here. The builder emits
exactly:

Document: `version: v1`, `type: flow`, `steps: [...]` (no flow-level mappings,
so the flow's output is its `$local`: the output of the one step that produced
output on the path taken).

Step 1, always (docs/design.md), keys in this order:
  - `type: task`, `name: mns-topic-task`
  - `resourceArn: acs:mns:::/topics/<topic>/messages` (empty region/account =
    the flow's own; docs/platform-facts.md, docs 157027 / 130496)
  - `pattern: waitForCallback`
  - `timeoutSeconds: <int>` (always: no default is documented for
    waitForCallback); on expiry the step fails with error `FnF.TaskTimeout`
  - `inputMappings`: `{target: messageBody, source: $input.messageBody}`,
    `{target: taskToken, source: $context.task.token}`
  - `outputMappings` only when `taskOutputMappings` configures some: a list of
    `{target: <field>, source: <$local/$input/$context path or constant>}` in
    config order (`$local` is the JSON Output given to ReportTaskSucceeded).
    By default the key is absent, and FDL then uses the step's local variable
    (the whole reported Output) as its output (doc 122493 "Inputs and outputs":
    without output mappings every step but parallel and foreach outputs its
    `$local`; docs/platform-facts.md "FDL output mappings"). A list is never
    emitted empty.
  - `serviceParams: {MessageBody: $}` (publish the whole mapped input as JSON text)
  - `retry` (only if rules are configured): a list of
    `{errors: [names], intervalSeconds: int, maxAttempts: int, multiplier: number}`
    plus `maxIntervalSeconds: int` when set. Semantics (doc 122494): on an error
    named in `errors` (or `FnF.ALL`), retry up to maxAttempts times, waiting
    intervalSeconds * multiplier**n, capped at maxIntervalSeconds.
  - `catch` (only if rules are configured): a list of `{errors: [names], goto: catch-<n>}`;
    the first rule (in order) naming the error, or `FnF.ALL`, wins, after retries.
  - `end: true` (only when catch steps follow, so the success path stops here).

Then one generated step per catch rule n (1-based), in rule order, one of:
  - `{type: pass, name: catch-<n>, outputMappings: [{target: status, source: <constant string>}], end: true}`:
    the flow succeeds with output `{"status": <constant>}`. A `source` not
    starting with `$` is a constant (FDL "Pass steps" outputs constants).
  - `{type: fail, name: catch-<n>, error: <name>}` plus `cause: <text>` when set:
    the flow fails with that error and cause.

Nothing else (no choice/parallel/foreach/wait/succeed, no errorMappings).

`validate_callback_step` also guards hand-edited documents: a flow whose MNS
message does not carry `$context.task.token` would wait until its timeout for a
callback that can never come (the CDK's `TaskTokenRequired` check, done here).
"""

from collections.abc import Mapping
from typing import Any

import yaml

from mns_callback_flow.task import CallbackTask, CatchRule, RetryRule

TASK_STEP_NAME = "mns-topic-task"
TOKEN_SOURCE = "$context.task.token"
TOKEN_TARGET = "taskToken"  # the field the handler reads from the message


class FlowDefinitionError(ValueError):
    """The flow definition cannot work as a callback flow; the message says why."""


def topic_resource_arn(topic_name: str) -> str:
    """ARN a task step publishes to (docs/platform-facts.md: empty region/account = the flow's own)."""
    return f"acs:mns:::/topics/{topic_name}/messages"


def _retry_entry(rule: RetryRule) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "errors": list(rule.errors),
        "intervalSeconds": rule.interval_seconds,
        "maxAttempts": rule.max_attempts,
        "multiplier": rule.multiplier,
    }
    if rule.max_interval_seconds is not None:
        entry["maxIntervalSeconds"] = rule.max_interval_seconds
    return entry


def _catch_step(name: str, rule: CatchRule) -> dict[str, Any]:
    if rule.status is not None:
        return {
            "type": "pass",
            "name": name,
            "outputMappings": [{"target": "status", "source": rule.status}],
            "end": True,
        }
    step: dict[str, Any] = {"type": "fail", "name": name, "error": rule.fail_error}
    if rule.fail_cause:
        step["cause"] = rule.fail_cause
    return step


def flow_definition_document(task: CallbackTask) -> dict[str, Any]:
    """The FDL document as a dict (for tests and interpreters); see the module docstring."""
    if not task.topic_name:
        raise FlowDefinitionError("topic_name is required")
    timeout = task.timeout_seconds
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
        raise FlowDefinitionError(f"task timeout_seconds must be a positive integer, got {timeout!r}")
    retry, catch, outputs = list(task.retry), list(task.catch), list(task.output_mappings)

    step: dict[str, Any] = {
        "type": "task",
        "name": TASK_STEP_NAME,
        "resourceArn": topic_resource_arn(task.topic_name),
        "pattern": "waitForCallback",
        "timeoutSeconds": timeout,
        "inputMappings": [
            {"target": "messageBody", "source": "$input.messageBody"},
            {"target": TOKEN_TARGET, "source": TOKEN_SOURCE},
        ],
    }
    if outputs:
        step["outputMappings"] = [{"target": m.target, "source": m.source} for m in outputs]
    step["serviceParams"] = {"MessageBody": "$"}
    if retry:
        step["retry"] = [_retry_entry(rule) for rule in retry]
    names = [f"catch-{index}" for index in range(1, len(catch) + 1)]
    if catch:
        step["catch"] = [{"errors": list(rule.errors), "goto": name} for rule, name in zip(catch, names)]
        step["end"] = True
    steps = [step] + [_catch_step(name, rule) for rule, name in zip(catch, names)]
    doc = {"version": "v1", "type": "flow", "steps": steps}
    validate_callback_step(doc)
    return doc


class _Dumper(yaml.SafeDumper):
    """Indents sequences under their key, as the FDL samples in the docs are written."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        return super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    # With allow_unicode, PyYAML writes NEL / LS / PS raw into a single-quoted
    # scalar, where YAML line folding reads NEL back as a space: double quotes
    # escape them (\N, \L, \P), so the flow gets the exact text configured.
    if any(ch in data for ch in "\x85\u2028\u2029"):
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')
    return dumper.represent_str(data)


_Dumper.add_representer(str, _represent_str)


def dump_definition(doc: Mapping[str, Any]) -> str:
    """Deterministic YAML text of an FDL document (insertion order, no line wrapping)."""
    return yaml.dump(
        doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1 << 20
    )


def build_flow_definition(task: CallbackTask) -> str:
    """The FDL v1 text the `fnf.Flow` resource receives as `definition`."""
    return dump_definition(flow_definition_document(task))


# ---- validation of any document (built here or edited by hand) ---------------------


def _is_callback_task(step: Mapping[str, Any]) -> bool:
    return (
        step.get("type") == "task"
        and step.get("pattern") == "waitForCallback"
        and str(step.get("resourceArn", "")).startswith("acs:mns:")
    )


def carries_token(step: Mapping[str, Any]) -> bool:
    """Whether the step's published message hands the task token to the handler as `taskToken`
    (mapped into the step's input, and the whole input published); shared with the policy pack."""
    mappings = step.get("inputMappings") or []
    params = step.get("serviceParams")
    return (
        isinstance(mappings, list)
        and any(isinstance(m, Mapping) and m.get("target") == TOKEN_TARGET and m.get("source") == TOKEN_SOURCE
                for m in mappings)
        and isinstance(params, Mapping)
        and params.get("MessageBody") == "$"
    )


def _check_callback_task(step: Mapping[str, Any]) -> None:
    name = step.get("name", "?")
    mappings = step.get("inputMappings") or []
    if not isinstance(mappings, list) or not all(isinstance(m, Mapping) for m in mappings):
        raise FlowDefinitionError(f"step {name!r}: inputMappings must be a list of {{target, source}} objects")
    carries = any(m.get("target") == TOKEN_TARGET and m.get("source") == TOKEN_SOURCE for m in mappings)
    if not carries:
        raise FlowDefinitionError(
            f"step {name!r} publishes to MNS with waitForCallback but no inputMapping "
            f"{{target: {TOKEN_TARGET}, source: {TOKEN_SOURCE}}}: the callback handler could never "
            "report the task, and the flow would wait until its timeout"
        )
    params = step.get("serviceParams")
    body = params.get("MessageBody") if isinstance(params, Mapping) else None
    if body != "$":
        raise FlowDefinitionError(
            f"step {name!r}: serviceParams.MessageBody is {body!r}, expected '$' "
            f"(the whole mapped input, so the published message carries {TOKEN_TARGET})"
        )
    timeout = step.get("timeoutSeconds")
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
        raise FlowDefinitionError(
            f"step {name!r}: timeoutSeconds is {timeout!r}; a waitForCallback step needs a positive "
            "timeoutSeconds (no default is documented)"
        )


def _list_field(step: Mapping[str, Any], key: str) -> list[Any]:
    """``step[key]`` when it is a list (absent: empty); anything else is refused by name."""
    value = step.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise FlowDefinitionError(f"step {step['name']!r}: {key} must be a list, got {type(value).__name__}")
    return value


def _check_steps(steps: object, where: str) -> int:
    """Check one list of sibling steps; return how many callback tasks it holds."""
    if not isinstance(steps, list) or not steps:
        raise FlowDefinitionError(f"{where}: steps must be a non-empty list")
    names = [step.get("name") if isinstance(step, Mapping) else None for step in steps]
    if not all(isinstance(name, str) and name for name in names) or len(set(names)) != len(names):
        raise FlowDefinitionError(f"{where}: every step needs a unique name, got {names!r}")
    found = 0
    for step in steps:
        if _is_callback_task(step):
            _check_callback_task(step)
            found += 1
        for rule in _list_field(step, "catch"):
            target = rule.get("goto") if isinstance(rule, Mapping) else None
            if target not in names:
                raise FlowDefinitionError(
                    f"step {step['name']!r}: catch goto {target!r} is not a sibling step (FDL: goto targets "
                    "a step beside the task step)"
                )
        # Nested step lists: foreach `steps`, parallel `branches[].steps`,
        # choice `choices[].steps` and `default.steps` (FDL step reference).
        nested = [step] if "steps" in step else []
        nested += _list_field(step, "branches") + _list_field(step, "choices")
        nested += [step["default"]] if isinstance(step.get("default"), Mapping) else []
        for holder in nested:
            if isinstance(holder, Mapping) and "steps" in holder:
                found += _check_steps(holder["steps"], f"{where}/{step['name']}")
    return found


def validate_callback_step(doc: Mapping[str, Any]) -> None:
    """Refuse a definition whose MNS message cannot carry the task token.

    Works on any FDL v1 document dict: each waitForCallback task step that
    publishes to MNS must map `$context.task.token` to `taskToken`, publish
    `MessageBody: $` and set `timeoutSeconds`; at least one such step must exist.
    """
    if not isinstance(doc, Mapping):
        raise FlowDefinitionError(f"a flow definition is a mapping, got {type(doc).__name__}")
    if doc.get("version") != "v1" or doc.get("type") != "flow":
        raise FlowDefinitionError(
            f"expected version: v1 and type: flow, got version={doc.get('version')!r} type={doc.get('type')!r}"
        )
    if _check_steps(doc.get("steps"), "flow") == 0:
        raise FlowDefinitionError(
            "no task step with pattern waitForCallback publishing to an MNS topic (resourceArn acs:mns:...)"
        )
