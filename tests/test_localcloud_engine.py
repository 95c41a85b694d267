"""The execution engine on its own: publishing, reports, FnF errors, history paging."""

from __future__ import annotations

import json
import threading

import pytest

from infra.config import CatchRule, RetryRule
from localcloud import fdl
from localcloud.engine import DeployedFlow, Engine
from localcloud.fnf_api import FnFError
from mns_callback_flow.flow_definition import build_flow_definition
from mns_callback_flow.task import CallbackTask


class Published:
    def __init__(self) -> None:
        self.messages: list[tuple[str, dict, str]] = []
        self.arrived = threading.Semaphore(0)

    def __call__(self, topic: str, body: str, key: str) -> None:
        self.messages.append((topic, json.loads(body), key))
        self.arrived.release()

    def next_token(self) -> str:
        assert self.arrived.acquire(timeout=5), "nothing was published"
        return self.messages[-1][1]["taskToken"]


def engine_for(published: Published, **kwargs) -> Engine:
    text = build_flow_definition(CallbackTask(topic_name="t", timeout_seconds=kwargs.pop("timeout", 60),
                                 **kwargs))
    return Engine([DeployedFlow("f", text, fdl.parse_flow(text))], published, time_scale=0.001)


def test_report_resumes_the_execution_and_a_second_report_is_refused():
    published = Published()
    engine = engine_for(published)
    try:
        started = engine.start_execution("f", "e1", '{"messageBody": "hi"}', None)
        assert started["Status"] == "Running" and started["Name"] == "e1"
        token = published.next_token()
        assert published.messages[0][0] == "t" and published.messages[0][1]["messageBody"] == "hi"
        engine.report_succeeded(token, '{"status": "success", "x": 1}')
        with pytest.raises(FnFError) as again:
            engine.report_failed(token, "Late", "")
        assert again.value.code == "TaskAlreadyCompleted"
        described = engine.describe_execution("f", "e1", wait_seconds=5)
        assert described["Status"] == "Succeeded" and json.loads(described["Output"]) == {
            "status": "success", "x": 1}  # no outputMappings: the whole reported Output
        assert "StoppedTime" in described and described["Input"] == '{"messageBody": "hi"}'
    finally:
        engine.stop()


def test_fnf_errors_for_names_and_flows():
    engine = engine_for(Published())
    try:
        engine.start_execution("f", "same", None, None)
        cases = [
            (lambda: engine.start_execution("f", "same", None, None), 409, "ExecutionAlreadyExists"),
            (lambda: engine.start_execution("nope", None, None, None), 404, "FlowNotExists"),
            (lambda: engine.start_execution("f", "bad name!", None, None), 400, "InvalidArgument"),
            (lambda: engine.start_execution("f", None, None, "parent-token"), 400, "InvalidArgument"),
            (lambda: engine.describe_execution("f", "other", 0), 404, "ExecutionNotExists"),
            (lambda: engine.get_execution_history("f", "same", 1, "x"), 400, "InvalidArgument"),
        ]
        for call, status, code in cases:
            with pytest.raises(FnFError) as caught:
                call()
            assert (caught.value.status, caught.value.code) == (status, code)
    finally:
        engine.stop()


def test_history_pages_with_next_token():
    published = Published()
    engine = engine_for(published)
    try:
        engine.start_execution("f", "e", "{}", None)
        engine.report_succeeded(published.next_token(), '{"status": "ok"}')
        engine.describe_execution("f", "e", wait_seconds=5)
        seen, token = [], None
        while True:
            page = engine.get_execution_history("f", "e", 2, token)
            assert len(page["Events"]) <= 2
            seen.extend(e["Type"] for e in page["Events"])
            token = page.get("NextToken")
            if not token:
                break
        assert seen == ["ExecutionStarted", "StepEntered", "TaskSubmitted", "TaskSucceeded",
                        "StepExited", "ExecutionSucceeded"]
    finally:
        engine.stop()


def test_failed_report_is_retried_then_caught():
    published = Published()
    engine = engine_for(published, retry=[RetryRule(("Work.Busy",), max_attempts=1)],
                        catch=[CatchRule(("FnF.ALL",), fail_error="Gave.Up", fail_cause="c")])
    try:
        engine.start_execution("f", "e", "{}", None)
        first = published.next_token()
        engine.report_failed(first, "Work.Busy", "try later")
        second = published.next_token()
        assert second != first
        engine.report_failed(second, "Work.Busy", "still busy")
        described = engine.describe_execution("f", "e", wait_seconds=5)
        assert described["Status"] == "Failed"
        assert json.loads(described["Output"]) == {"error": "Gave.Up", "cause": "c"}
        assert engine.execution("f", "e").caught == "Work.Busy"
    finally:
        engine.stop()


def test_stop_ends_waiting_executions():
    published = Published()
    engine = engine_for(published, timeout=3600)
    engine.start_execution("f", "e", "{}", None)
    published.next_token()
    engine.stop()
    assert engine.execution("f", "e").status == "Stopped"
    with pytest.raises(FnFError, match="stopping"):
        engine.start_execution("f", "later", "{}", None)
