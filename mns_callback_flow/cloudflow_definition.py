"""The flow's CloudFlow definition (`Type: StateMachine`, `SpecVersion: v1`), built and checked.

Pure: same task, same bytes. The second spec beside `mns_callback_flow/flow_definition.py`
(FDL); `flowSpec: cloudflow` selects it and the stack declares the flow with
`type: DEFAULT`. `localcloud/cloudflow.py` interprets what this module emits, so
the set of constructs is closed and listed here (sources for each in
docs/platform-facts.md "CloudFlow flow spec"). The builder emits exactly:

Document, keys in this order: `Type: StateMachine`, `Name: <flow name>`,
`SpecVersion: v1`, `StartAt: mns-topic-task`, `States: [...]`.

State 1, always, keys in this order:
  - `Type: Task`, `Name: mns-topic-task`
  - `Action: MNS:SendMessage` (the SMQ integration's one Action, for queues and topics)
  - `TaskMode: WaitForCustomCallback` (resumed by ReportTaskSucceeded / ReportTaskFailed)
  - `Timeout: <int>` seconds, always (1-604800; 0 would mean "never times out")
  - `Parameters: {resourceArn: acs:mns:<region>:<account>:/topics/<topic>/messages,
    message: {messageBody.$: $Input.messageBody, taskToken.$: $Context.Current.TaskToken}}`:
    a structured `message` is sent as its JSON text, so the pushed message is the
    same `{"messageBody": ..., "taskToken": ...}` the FDL flow publishes; keys
    ending in `.$` are expressions.
  - `OutputConstructor` only when `taskOutputMappings` configures some: one entry
    per mapping in config order, `<target>.$: $Output[.path]` for `$local[.path]`,
    `<target>.$: $Input[.path]` for `$input[.path]`, `<target>: <constant>` for a
    constant (`$context` sources are refused by infra/config.py under cloudflow).
    By default absent: the state's output is its `$Output`, the Output given to
    ReportTaskSucceeded, whole (the same default as the FDL builder's).
  - `Retry` (only if rules are configured): per `taskRetry` rule n (1-based)
    `{Errors, Description: taskRetry rule <n>, MaxAttempts, IntervalSeconds,
    BackoffRate}` plus `MaxBackoffSeconds` when `maxIntervalSeconds` is set.
    `BackoffRate` is always written: CloudFlow keeps the interval constant without
    it, FDL's `multiplier` defaults to 2.
  - `Catch` (only if rules are configured): per `taskCatch` rule n
    `{Errors, Description: taskCatch rule <n>, Next: catch-<n>}`.
  - `End: true`.

Then one state per catch rule n, in rule order, one of:
  - `{Type: Pass, Name: catch-<n>, InputConstructor: {status: <constant>}, End: true}`:
    the flow succeeds with output `{"status": <constant>}` (a Pass state outputs
    its input, which the InputConstructor replaces).
  - `{Type: Fail, Name: catch-<n>, Code: <error>, Detail: <cause>}` (`Detail` is
    required: the configured cause, else `caught by catch-<n>`).

Nothing else. `validate_cloudflow_definition` also guards hand-edited documents: a
WaitForCustomCallback MNS task whose message does not carry
`$Context.Current.TaskToken` under `taskToken` could never be called back.
"""

from collections.abc import Iterator, Mapping
from typing import Any

from mns_callback_flow.flow_definition import TOKEN_TARGET, FlowDefinitionError, dump_definition
from mns_callback_flow.limits import MAX_CLOUDFLOW_TASK_TIMEOUT_SECONDS
from mns_callback_flow.policies import topic_messages_arn
from mns_callback_flow.task import CallbackTask, CatchRule, OutputMapping, RetryRule

TASK_STATE_NAME = "mns-topic-task"
ACTION = "MNS:SendMessage"
TASK_MODE = "WaitForCustomCallback"
TOKEN_EXPRESSION = "$Context.Current.TaskToken"
TOKEN_KEY = f"{TOKEN_TARGET}.$"  # the field the handler reads from the message, as an expression
MESSAGE_BODY_KEY, MESSAGE_BODY_EXPRESSION = "messageBody.$", "$Input.messageBody"
# The provider's `type` for this spec (pulumi-alicloud 4.0.0 fnf.Flow: "`FDL` or `DEFAULT`").
FLOW_TYPE = "DEFAULT"


def _retry_entry(index: int, rule: RetryRule) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "Errors": list(rule.errors),
        "Description": f"taskRetry rule {index}",
        "MaxAttempts": rule.max_attempts,
        "IntervalSeconds": rule.interval_seconds,
        "BackoffRate": rule.multiplier,
    }
    if rule.max_interval_seconds is not None:
        entry["MaxBackoffSeconds"] = rule.max_interval_seconds
    return entry


def _catch_state(name: str, rule: CatchRule) -> dict[str, Any]:
    if rule.status is not None:
        return {"Type": "Pass", "Name": name, "InputConstructor": {"status": rule.status}, "End": True}
    return {"Type": "Fail", "Name": name, "Code": rule.fail_error, "Detail": rule.fail_cause or f"caught by {name}"}


def _constructor_entry(mapping: OutputMapping) -> tuple[str, str]:
    """One `taskOutputMappings` entry as an OutputConstructor (key, value)."""
    for fdl_scope, expression in (("$local", "$Output"), ("$input", "$Input")):
        if mapping.source == fdl_scope or mapping.source.startswith(fdl_scope + "."):
            return f"{mapping.target}.$", expression + mapping.source[len(fdl_scope):]
    if mapping.source.startswith("$"):
        raise FlowDefinitionError(
            f"taskOutputMappings source {mapping.source!r} has no CloudFlow form (use $local, $input or a constant)"
        )
    return mapping.target, mapping.source


def cloudflow_definition_document(
    task: CallbackTask, *, flow_name: str, region: str, account_id: str
) -> dict[str, Any]:
    """The CloudFlow document as a dict; see the module docstring.

    ``region`` and ``account_id`` own the topic (the flow's own): the documented
    SMQ integration names its resource with region and account.
    """
    timeout = task.timeout_seconds
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= MAX_CLOUDFLOW_TASK_TIMEOUT_SECONDS:
        raise FlowDefinitionError(
            f"task_timeout_seconds must be 1-{MAX_CLOUDFLOW_TASK_TIMEOUT_SECONDS}, got {timeout!r}"
        )
    state: dict[str, Any] = {
        "Type": "Task",
        "Name": TASK_STATE_NAME,
        "Action": ACTION,
        "TaskMode": TASK_MODE,
        "Timeout": timeout,
        "Parameters": {
            "resourceArn": topic_messages_arn(region, account_id, task.topic_name),
            "message": {MESSAGE_BODY_KEY: MESSAGE_BODY_EXPRESSION, TOKEN_KEY: TOKEN_EXPRESSION},
        },
    }
    if task.output_mappings:
        state["OutputConstructor"] = dict(_constructor_entry(m) for m in task.output_mappings)
    if task.retry:
        state["Retry"] = [_retry_entry(n, rule) for n, rule in enumerate(task.retry, 1)]
    names = [f"catch-{n}" for n in range(1, len(task.catch) + 1)]
    if task.catch:
        state["Catch"] = [
            {"Errors": list(rule.errors), "Description": f"taskCatch rule {n}", "Next": name}
            for n, (rule, name) in enumerate(zip(task.catch, names), 1)
        ]
    state["End"] = True
    states = [state] + [_catch_state(name, rule) for rule, name in zip(task.catch, names)]
    doc = {
        "Type": "StateMachine",
        "Name": flow_name,
        "SpecVersion": "v1",
        "StartAt": TASK_STATE_NAME,
        "States": states,
    }
    validate_cloudflow_definition(doc)
    return doc


def build_cloudflow_definition(task: CallbackTask, *, flow_name: str, region: str, account_id: str) -> str:
    """The YAML text the `fnf.Flow` resource receives as `definition` under `type: DEFAULT`."""
    return dump_definition(
        cloudflow_definition_document(task, flow_name=flow_name, region=region, account_id=account_id)
    )


# ---- checks shared by the validator, the policy pack and the local run -------------


def is_state_machine(doc: object) -> bool:
    """Whether a parsed definition is in the CloudFlow spec (FDL documents have `version`/`type: flow`)."""
    return isinstance(doc, Mapping) and doc.get("Type") == "StateMachine"


# Where a Map state keeps its sub-flow: `Processor` (CloudFlow's Map reference, inline mode),
# and `ItemProcessor`, which one translation of that page names (docs/platform-facts.md).
MAP_PROCESSOR_FIELDS = ("Processor", "ItemProcessor")


def _processors(state: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for field in MAP_PROCESSOR_FIELDS:
        processor = state.get(field)
        if isinstance(processor, Mapping):
            yield processor


def iter_states(states: object) -> Iterator[Mapping[str, Any]]:
    """Every state, nested ones included (Parallel `Branches[].States`, Map `Processor.States`)."""
    if not isinstance(states, list):
        return
    for state in states:
        if not isinstance(state, Mapping):
            continue
        yield state
        branches = state.get("Branches")
        for branch in branches if isinstance(branches, list) else ():
            if isinstance(branch, Mapping):
                yield from iter_states(branch.get("States"))
        for processor in _processors(state):
            yield from iter_states(processor.get("States"))


def is_callback_task(state: Mapping[str, Any]) -> bool:
    """A Task that sends to SMQ and waits for a ReportTask* call."""
    return (
        state.get("Type") == "Task"
        and state.get("TaskMode") == TASK_MODE
        and str(state.get("Action", "")).startswith("MNS:")
    )


def carries_token(state: Mapping[str, Any]) -> bool:
    """Whether the state's message hands the task token to the handler as `taskToken`."""
    params = state.get("Parameters")
    message = params.get("message") if isinstance(params, Mapping) else None
    return isinstance(message, Mapping) and message.get(TOKEN_KEY) == TOKEN_EXPRESSION


def timeout_seconds(state: Mapping[str, Any]) -> int | None:
    """The state's fixed positive `Timeout` in seconds, else None.

    The Task reference types `Timeout` as a string while its example is `30`:
    both an integer and a string of digits are read. 0 means "never times out",
    so it counts as no timeout, and so does a `Timeout.$` expression, whose
    value is unknown until the execution runs.
    """
    value = state.get("Timeout")
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and 1 <= value <= MAX_CLOUDFLOW_TASK_TIMEOUT_SECONDS:
        return value
    return None


def _check_callback_task(state: Mapping[str, Any]) -> None:
    name = state.get("Name", "?")
    if not carries_token(state):
        raise FlowDefinitionError(
            f"state {name!r} sends to MNS with WaitForCustomCallback but its Parameters.message has no "
            f"{TOKEN_KEY}: {TOKEN_EXPRESSION}: the callback handler could never report the task, and the "
            "flow would wait until its timeout"
        )
    if timeout_seconds(state) is None:
        raise FlowDefinitionError(
            f"state {name!r}: Timeout is {state.get('Timeout')!r}; a WaitForCustomCallback state needs a "
            f"fixed Timeout of 1-{MAX_CLOUDFLOW_TASK_TIMEOUT_SECONDS} seconds (0 never times out)"
        )


def _list_field(state: Mapping[str, Any], key: str) -> list[Any]:
    """``state[key]`` when it is a list (absent: empty); anything else is refused by name."""
    value = state.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise FlowDefinitionError(f"state {state['Name']!r}: {key} must be a list, got {type(value).__name__}")
    return value


def _check_scope(states: object, start_at: object, where: str) -> None:
    if not isinstance(states, list) or not states or not all(isinstance(s, Mapping) for s in states):
        raise FlowDefinitionError(f"{where}: States must be a non-empty list of states")
    names = [state.get("Name") for state in states]
    if not all(isinstance(name, str) and name for name in names) or len(set(names)) != len(names):
        raise FlowDefinitionError(f"{where}: every state needs a unique Name, got {names!r}")
    if start_at not in names:
        raise FlowDefinitionError(f"{where}: StartAt {start_at!r} is not one of its states")
    for state in states:
        if "Next" in state and state["Next"] not in names:
            raise FlowDefinitionError(f"state {state['Name']!r}: Next {state['Next']!r} is not a state beside it")
        for rule in _list_field(state, "Catch"):
            target = rule.get("Next") if isinstance(rule, Mapping) else None
            if target not in names:
                raise FlowDefinitionError(
                    f"state {state['Name']!r}: Catch Next {target!r} is not a state beside it"
                )
        for branch in _list_field(state, "Branches"):
            if isinstance(branch, Mapping) and "States" in branch:
                _check_scope(branch["States"], branch.get("StartAt"), f"{where}/{state['Name']}")
        for processor in _processors(state):
            _check_scope(processor.get("States"), processor.get("StartAt"), f"{where}/{state['Name']}")


def validate_cloudflow_definition(doc: Mapping[str, Any]) -> None:
    """Refuse a CloudFlow definition whose MNS message cannot carry the task token.

    Works on any `Type: StateMachine` document dict: each WaitForCustomCallback
    Task whose Action is `MNS:...` must put `taskToken.$: $Context.Current.TaskToken`
    in `Parameters.message` and set a fixed positive `Timeout`; at least one such
    state must exist.
    """
    if not isinstance(doc, Mapping):
        raise FlowDefinitionError(f"a flow definition is a mapping, got {type(doc).__name__}")
    if doc.get("Type") != "StateMachine" or doc.get("SpecVersion") != "v1":
        raise FlowDefinitionError(
            f"expected Type: StateMachine and SpecVersion: v1, got Type={doc.get('Type')!r} "
            f"SpecVersion={doc.get('SpecVersion')!r}"
        )
    _check_scope(doc.get("States"), doc.get("StartAt"), "StateMachine")
    callbacks = [state for state in iter_states(doc["States"]) if is_callback_task(state)]
    if not callbacks:
        raise FlowDefinitionError(
            "no Task state with TaskMode WaitForCustomCallback and an MNS Action (MNS:SendMessage)"
        )
    for state in callbacks:
        _check_callback_task(state)
