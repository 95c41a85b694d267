"""Helpers for tests that run the real Pulumi program under mocks.

The mocks themselves are ``infra.offline_cloud`` (the same ones ``infra.synth``
renders with), keyed on exact type tokens. ``run_stack`` runs
``infra.program.define_stack`` with a config mapping in a fresh runtime
context; ``OutputChecks`` makes a check written as ``Output.apply`` count, so a
test fails when one of its checks never ran.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi

from infra.config import PROJECT, REGION_KEY
from infra.offline_cloud import (
    OfflineCloud,
    RecordingMonitor,
    Registration,
    run_offline,
)
from infra.program import define_stack
from mns_callback_flow.pattern import CallbackPattern

REGION = "cn-hangzhou"
STACK = "test"

T_TOPIC = "alicloud:message/serviceTopic:ServiceTopic"
T_SUBSCRIPTION = "alicloud:message/serviceSubscription:ServiceSubscription"
T_QUEUE = "alicloud:message/serviceQueue:ServiceQueue"
T_ROLE = "alicloud:ram/role:Role"
T_POLICY = "alicloud:ram/policy:Policy"
T_ATTACHMENT = "alicloud:ram/rolePolicyAttachment:RolePolicyAttachment"
T_V3_FUNCTION = "alicloud:fc/v3Function:V3Function"
T_V3_TRIGGER = "alicloud:fc/v3Trigger:V3Trigger"
T_SERVICE = "alicloud:fc/service:Service"
T_FUNCTION = "alicloud:fc/function:Function"
T_TRIGGER = "alicloud:fc/trigger:Trigger"
T_FLOW = "alicloud:fnf/flow:Flow"
COMPONENT = "mns-callback-flow:index:"


def config_of(overrides: Mapping[str, object] | None = None, region: str = REGION) -> dict[str, str]:
    """Full-key config as Pulumi hands it to the program: strings, project keys namespaced."""
    values: dict[str, str] = {REGION_KEY: region}
    for key, value in (overrides or {}).items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        values[full] = json.dumps(value) if isinstance(value, (list, dict)) else str(value).lower() \
            if isinstance(value, bool) else str(value)
    return values


@dataclass
class StackRun:
    """What one run of the program registered and exported."""

    monitor: RecordingMonitor
    outputs: dict[str, Any]
    pattern: CallbackPattern | None = None

    @property
    def resources(self) -> list[Registration]:
        return self.monitor.registrations

    def of_type(self, type_: str) -> list[Registration]:
        return self.monitor.of_type(type_)

    def one(self, type_: str) -> Registration:
        return self.monitor.one(type_)

    def named(self, name: str) -> Registration:
        found = [r for r in self.resources if r.name == name]
        assert len(found) == 1, f"expected one resource named {name!r}, found {len(found)}"
        return found[0]


def run_stack(
    overrides: Mapping[str, object] | None = None,
    checks: Callable[[CallbackPattern], pulumi.Output] | None = None,
    *,
    monitor: RecordingMonitor | None = None,
    region: str = REGION,
) -> StackRun:
    """Run the stack's real program with ``overrides``; ``checks(pattern)`` may return an
    Output (of ``OutputChecks.check`` results) that is awaited before this returns, so a
    failed check fails the run."""
    monitor = monitor or RecordingMonitor(OfflineCloud(region))
    holder: dict[str, Any] = {}

    def program() -> Any:
        pattern = define_stack()
        holder["pattern"] = pattern
        return checks(pattern) if checks else None

    _, outputs, _ = contextvars.Context().run(
        run_offline, program, project=PROJECT, stack=STACK, config=config_of(overrides, region),
        region=region, monitor=monitor,
    )
    return StackRun(monitor=monitor, outputs=outputs, pattern=holder.get("pattern"))


@dataclass
class OutputChecks:
    """Counts Output checks registered and run; the fixture fails a test where they differ."""

    registered: list[str] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)

    def check(self, label: str, output: pulumi.Input[Any], check: Callable[[Any], None]) -> pulumi.Output[Any]:
        self.registered.append(label)

        def run(value: Any) -> Any:
            check(value)
            self.ran.append(label)
            return value

        return pulumi.Output.from_input(output).apply(run)

    def verify(self) -> None:
        assert self.registered, "the test registered no Output check"
        missing = [label for label in self.registered if label not in self.ran]
        assert not missing, f"Output checks that never ran: {missing}"

