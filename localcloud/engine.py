"""Flow executions: the FnF backend behind ``fnf_api.FnFEndpoint``.

StartExecution runs the flow (``fdl``, or ``cloudflow`` for the CloudFlow spec)
in a thread per execution; a waitForCallback (WaitForCustomCallback) task
issues a task token, publishes its message to the topic and waits, up to its
timeout, for ReportTaskSucceeded / ReportTaskFailed to arrive at the
endpoint; then retry and catch decide what comes next. Every flow timer (task timeouts, retry intervals) is multiplied by
``time_scale`` so a run stays short.

Answers follow the FnF API (2019-03-15): DescribeExecution's ``Status`` is
``Running`` / ``Succeeded`` / ``Failed`` / ``Stopped``; a step timeout that no
catch handles fails the execution with error ``FnF.TaskTimeout``. FnF does not
document where a failed execution's error goes in DescribeExecution; here its
``Output`` is ``{"error": ..., "cause": ...}`` and the ``ExecutionFailed``
history event carries the same.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from localcloud import cloudflow, fdl
from localcloud.fnf_api import (
    FnFError,
    TokenRegistry,
    execution_already_exists,
    execution_not_exists,
    flow_not_exists,
    invalid_argument,
)

# FnF execution names: 1-128 letters, digits, underscores or hyphens, starting
# with a letter, digit or underscore (StartExecution, ExecutionName).
_EXECUTION_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,127}")

Publisher = Callable[[str, str, str], None]  # (topic, message body, key)


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch * 1000) % 1000:03d}Z"


@dataclass
class HistoryEvent:
    event_id: int
    type: str
    step: str
    time: float
    detail: dict[str, Any] = field(default_factory=dict)
    schedule_event_id: int = 0

    def to_api(self) -> dict[str, Any]:
        return {"EventId": self.event_id, "Type": self.type, "StepName": self.step,
                "ScheduleEventId": self.schedule_event_id, "Time": _iso(self.time),
                "EventDetail": json.dumps(self.detail, ensure_ascii=False)}


@dataclass
class _Pending:
    token: str
    done: threading.Event = field(default_factory=threading.Event)
    result: tuple[str, Any, Any] | None = None  # ("succeeded", output, None) | ("failed", error, cause)


@dataclass
class Execution:
    flow_name: str
    name: str
    definition: str
    input_text: str
    input: dict[str, Any]
    started: float
    status: str = "Running"
    output: str | None = None
    error: str | None = None
    cause: str | None = None
    stopped: float | None = None
    caught: str | None = None  # the error a catch rule handled, if one did
    events: list[HistoryEvent] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def to_api(self) -> dict[str, Any]:
        answer = {"Name": self.name, "FlowName": self.flow_name, "FlowDefinition": self.definition,
                  "Input": self.input_text, "Status": self.status, "StartedTime": _iso(self.started)}
        if self.output is not None:
            answer["Output"] = self.output
        if self.stopped is not None:
            answer["StoppedTime"] = _iso(self.stopped)
        return answer

    @property
    def timed_out(self) -> bool:
        """Its task timed out for good: the execution failed so, or a catch took over."""
        return fdl.TASK_TIMEOUT in (self.error, self.caught)


@dataclass(frozen=True)
class DeployedFlow:
    name: str
    definition: str
    flow: fdl.Flow | cloudflow.StateMachine


class Engine:
    """Runs executions of deployed flows and takes their task reports (an ``FnFBackend``)."""

    def __init__(self, flows: list[DeployedFlow], publish: Publisher, *,
                 time_scale: float = 1.0, clock: Callable[[], float] = time.time) -> None:
        self.flows = {f.name: f for f in flows}
        self._publish = publish
        self.time_scale = time_scale
        self.clock = clock
        self.tokens = TokenRegistry()
        self.executions: dict[tuple[str, str], Execution] = {}
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- FnFBackend: reports

    def report_succeeded(self, token: str, output: str) -> None:
        self._report(token, "succeeded", output, None)

    def report_failed(self, token: str, error: str, cause: str) -> None:
        self._report(token, "failed", error, cause)

    def _report(self, token: str, kind: str, first: Any, second: Any) -> None:
        with self._lock:
            if kind == "succeeded":
                self.tokens.report_succeeded(token, first)  # raises TaskAlreadyCompleted etc.
            else:
                self.tokens.report_failed(token, first, second)
            pending = self._pending.pop(token, None)
            if pending is None:  # issued by this engine but no longer awaited (stopped)
                return
            pending.result = (kind, first, second)
            pending.done.set()

    # -- FnFBackend: executions

    def start_execution(self, flow_name: str, execution_name: str | None, input_text: str | None,
                        callback_token: str | None) -> dict[str, Any]:
        if callback_token is not None:
            raise invalid_argument("CallbackFnFTaskToken (a parent flow) is not supported locally.")
        deployed = self.flows.get(flow_name)
        if deployed is None:
            raise flow_not_exists(flow_name)
        name = execution_name or uuid.uuid4().hex
        if not _EXECUTION_NAME.fullmatch(name):
            raise invalid_argument(f"ExecutionName {name!r} must be 1-128 letters, digits, _ or -.")
        text = input_text or "{}"
        execution = Execution(flow_name, name, deployed.definition, text, json.loads(text),
                              started=self.clock())
        with self._lock:
            if self._stopping.is_set():
                raise FnFError(503, "ServiceUnavailable", "The service is stopping.")
            if (flow_name, name) in self.executions:
                raise execution_already_exists(name)
            self.executions[(flow_name, name)] = execution
            self._event(execution, "ExecutionStarted", "", {"input": execution.input})
            thread = threading.Thread(target=self._run, args=(execution, deployed.flow),
                                      name=f"execution-{name}", daemon=True)
            self._threads.append(thread)
        thread.start()
        return execution.to_api()

    def execution(self, flow_name: str, execution_name: str) -> Execution:
        with self._lock:
            if flow_name not in self.flows:
                raise flow_not_exists(flow_name)
            execution = self.executions.get((flow_name, execution_name))
        if execution is None:
            raise execution_not_exists(execution_name)
        return execution

    def describe_execution(self, flow_name: str, execution_name: str,
                           wait_seconds: int) -> dict[str, Any]:
        execution = self.execution(flow_name, execution_name)
        if wait_seconds:
            execution.done.wait(wait_seconds)  # the client's real seconds, not scaled
        with self._lock:
            return execution.to_api()

    def get_execution_history(self, flow_name: str, execution_name: str, limit: int | None,
                              next_token: str | None) -> dict[str, Any]:
        execution = self.execution(flow_name, execution_name)
        try:
            start = int(next_token or 0)
        except ValueError:
            raise invalid_argument(f"NextToken {next_token!r} is not valid.") from None
        with self._lock:
            events = execution.events[start:start + (limit or 100)]
            total = len(execution.events)
        answer: dict[str, Any] = {"Events": [e.to_api() for e in events]}
        if start + len(events) < total:
            answer["NextToken"] = str(start + len(events))
        return answer

    # -- running

    def stop(self, timeout: float = 5.0) -> None:
        """Stops every running execution (status ``Stopped``) and waits for their threads."""
        self._stopping.set()
        with self._lock:
            for pending in self._pending.values():
                pending.done.set()
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)

    def _event(self, execution: Execution, kind: str, step: str, detail: dict[str, Any],
               schedule: int = 0) -> int:
        """Appends a history event; the caller holds the lock."""
        event = HistoryEvent(len(execution.events) + 1, kind, step, self.clock(), detail, schedule)
        execution.events.append(event)
        return event.event_id

    def _record(self, execution: Execution, kind: str, step: str, detail: dict[str, Any],
                schedule: int = 0) -> int:
        with self._lock:
            return self._event(execution, kind, step, detail, schedule)

    def _finish(self, execution: Execution, status: str, output: dict[str, Any] | None,
                error: str | None = None, cause: str | None = None) -> None:
        with self._lock:
            execution.status, execution.error, execution.cause = status, error, cause
            execution.output = json.dumps(output, ensure_ascii=False) if output is not None else None
            kind = {"Succeeded": "ExecutionSucceeded", "Failed": "ExecutionFailed",
                    "Stopped": "ExecutionStopped"}[status]
            detail = {"output": output} if status == "Succeeded" else {"error": error, "cause": cause}
            self._event(execution, kind, "", detail)
            execution.stopped = self.clock()
            execution.done.set()
            self._changed.notify_all()

    def _run(self, execution: Execution, flow: fdl.Flow | cloudflow.StateMachine) -> None:
        step: fdl.Step | cloudflow.TaskState | None = flow.steps[0]
        local: dict[str, Any] = {}
        try:
            while step is not None:
                if self._stopping.is_set():
                    self._finish(execution, "Stopped", None, "Stopped", "the local run ended")
                    return
                entered = self._record(execution, "StepEntered", step.name, {})
                if isinstance(step, fdl.FailStep):
                    self._finish(execution, "Failed", {"error": step.error, "cause": step.cause},
                                 step.error, step.cause)
                    return
                if isinstance(step, fdl.PassStep):
                    local = fdl.apply_mappings(step.output_mappings, {})
                else:
                    ok, value = self._run_task(execution, step, entered)
                    if not ok:
                        error, cause = value
                        if self._stopping.is_set():
                            self._finish(execution, "Stopped", None, "Stopped", cause)
                            return
                        target = fdl.catch_target(step, error)
                        self._record(execution, "StepExited", step.name,
                                     {"error": error, "cause": cause, "caughtBy": target}, entered)
                        if target is None:
                            self._finish(execution, "Failed", {"error": error, "cause": cause},
                                         error, cause)
                            return
                        with self._lock:
                            execution.caught = error
                        step = flow.step(target)
                        continue
                    local = value
                self._record(execution, "StepExited", step.name, {"output": local}, entered)
                step = flow.after(step)
            self._finish(execution, "Succeeded", local)
        except Exception as err:  # noqa: BLE001 - an interpreter bug must end the execution, visibly
            self._finish(execution, "Failed", {"error": "FnF.RuntimeError", "cause": repr(err)},
                         "FnF.RuntimeError", repr(err))

    def _run_task(self, execution: Execution, step: fdl.TaskStep | cloudflow.TaskState,
                  entered: int) -> tuple[bool, Any]:
        retries_used: dict[int, int] = {}
        while True:
            with self._lock:
                event_id = len(execution.events) + 1
                token = self.tokens.issue(execution.flow_name, execution.name, event_id)
                pending = _Pending(token)
                self._pending[token] = pending
            context = {"task": {"token": token},
                       "execution": {"name": execution.name, "flowName": execution.flow_name},
                       "step": {"name": step.name}}
            body = step.message_body(execution.input, context)
            scheduled = self._record(execution, "TaskSubmitted", step.name,
                                     {"resourceArn": step.resource_arn,
                                      "messageBody": json.loads(body)}, entered)
            self._publish(step.topic, body, f"{execution.name}:{scheduled}")
            pending.done.wait(step.timeout_seconds * self.time_scale)
            with self._lock:
                if pending.result is None:  # timed out (or stopping): close the token first
                    self._pending.pop(token, None)
                    self.tokens.complete(token)
                    if self._stopping.is_set():
                        pending.result = ("failed", "Stopped", "the local run ended")
                    else:
                        pending.result = ("failed", fdl.TASK_TIMEOUT,
                                          f"no callback within {step.timeout_seconds:g} s")
                kind, first, second = pending.result
            if kind == "succeeded":
                reported = json.loads(first)
                self._record(execution, "TaskSucceeded", step.name, {"output": reported}, scheduled)
                return True, step.output(execution.input, reported, context)
            error, cause = first, second
            event = "TaskTimedOut" if error == fdl.TASK_TIMEOUT else "TaskFailed"
            self._record(execution, event, step.name, {"error": error, "cause": cause}, scheduled)
            if self._stopping.is_set():
                return False, (error, cause)
            delay = fdl.retry_delay(step, error, retries_used)
            if delay is None:
                return False, (error, cause)
            self._record(execution, "TaskRetried", step.name, {"delaySeconds": delay}, scheduled)
            if self._stopping.wait(delay * self.time_scale):
                return False, ("Stopped", "the local run ended")

    def wait_all(self, timeout: float) -> bool:
        """Waits until no execution is running; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while any(e.status == "Running" for e in self.executions.values()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
        return True
