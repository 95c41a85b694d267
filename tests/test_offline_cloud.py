"""``infra.offline_cloud.run_offline``: one process runs many programs (a test suite, renders)."""

from __future__ import annotations

import contextvars
import gc
import warnings
from typing import Any

import pulumi
import pulumi_alicloud as alicloud
import pytest
from pulumi.runtime.mocks import MockMonitor

from infra.offline_cloud import OfflineCloud, RecordingMonitor, run_offline

REGION = "cn-hangzhou"


class ReferencingCloud(OfflineCloud):
    """The offline cloud plus a StackReference whose outputs lack ``flowName``."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if args.typ == "pulumi:pulumi:StackReference":
            return args.name, {"name": args.name, "outputs": {"region": REGION}, "secretOutputNames": []}
        return super().new_resource(args)


def _missing_output_program() -> None:
    # StackReference.require_output hands Output() coroutine objects; the
    # failing lookup leaves apply tasks pending and coroutines never awaited.
    reference = pulumi.StackReference("acme/mns-callback-flow/dev")
    flow = reference.require_output("flowName")
    pulumi.export("flow", flow)
    pulumi.export("region", reference.require_output("region"))
    pulumi.export("later", flow.apply(lambda name: f"{name}-later"))
    alicloud.ram.Role("caller", role_name=flow.apply(lambda name: f"{name}-caller"), assume_role_policy_document="{}")


def _bad_config_program() -> None:
    raise ValueError("patternStack: expected <org>/<project>/<stack>")


def _good_program() -> None:
    pulumi.export("answer", pulumi.Output.from_input("ok").apply(str.upper))


def _run(program: Any) -> dict[str, Any]:
    monitor = RecordingMonitor(ReferencingCloud(REGION))
    _, outputs, _ = contextvars.Context().run(
        run_offline, program, project="p", stack="s", config={}, region=REGION, monitor=monitor,
    )
    return outputs


def test_a_failed_run_leaves_nothing_behind_for_the_next_one(caplog: pytest.LogCaptureFixture) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            with pytest.raises(KeyError, match="flowName"):
                _run(_missing_output_program)
            with pytest.raises(ValueError, match="patternStack"):
                _run(_bad_config_program)
            assert _run(_good_program) == {"answer": "OK"}
        gc.collect()
    never_awaited = [str(w.message) for w in caught if "was never awaited" in str(w.message)]
    assert never_awaited == []
    assert [r.getMessage() for r in caplog.records if "never retrieved" in r.getMessage()] == []


def test_a_secret_input_or_output_is_recorded_as_a_stand_in_not_its_plaintext():
    import contextvars

    import pulumi
    import pulumi_alicloud as alicloud

    from infra.offline_cloud import run_offline

    def program() -> None:
        alicloud.ram.Policy("plain", policy_name="p", policy_document="{}",
                            description=pulumi.Output.secret("hunter2"))
        alicloud.ram.Policy("from-config", policy_name="q", policy_document="{}",
                            description=pulumi.Output.secret("key [secret sha256:0123456789ab]"))
        pulumi.export("token", pulumi.Output.secret("hunter2"))
        pulumi.export("name", "visible")

    def run():
        return run_offline(program, project="p", stack="s", config={}, region="cn-hangzhou")

    monitor, outputs, _ = contextvars.Context().run(run)
    described = {r.name: r.inputs["description"] for r in monitor.registrations}
    assert described["plain"] == "[secret]"
    assert described["from-config"].startswith("[secret sha256:")
    assert described["from-config"] != "[secret sha256:0123456789ab]"
    assert outputs == {"token": "[secret]", "name": "visible"}


class _ComparingMonitor(RecordingMonitor):
    """Answers each registration as RecordingMonitor does and keeps, beside it, the answer
    the SDK's own MockMonitor gives to the same request (on a monitor of its own)."""

    def __init__(self, mocks: OfflineCloud) -> None:
        super().__init__(mocks)
        self.sdk = MockMonitor(mocks)
        self.answers: list[tuple[str, Any, Any]] = []

    def RegisterResource(self, request: Any) -> Any:
        ours = super().RegisterResource(request)
        self.answers.append((request.name, ours, self.sdk.RegisterResource(request)))
        return ours


def _secret_and_plain_program() -> None:
    from infra.program import define_stack

    define_stack()
    alicloud.ram.Role("with-secret", role_name="r", assume_role_policy_document=pulumi.Output.secret("{}"),
                      description=pulumi.Output.from_input("d").apply(str.upper))


@pytest.mark.parametrize("config", [{}, {"mns-callback-flow:functionCompute": "2.0",
                                         "mns-callback-flow:flowSpec": "cloudflow"}])
def test_the_monitor_answers_every_registration_as_the_sdk_mock_monitor_does(config: dict[str, str]) -> None:
    from infra.config import PROJECT

    monitor = _ComparingMonitor(OfflineCloud(REGION))
    contextvars.Context().run(
        run_offline, _secret_and_plain_program, project=PROJECT, stack="dev",
        config={"alicloud:region": REGION, **config}, region=REGION, monitor=monitor,
    )
    assert len(monitor.answers) == len(monitor.registrations) + 1 > 15  # and the stack
    for name, ours, sdk in monitor.answers:
        assert ours.SerializeToString(deterministic=True) == sdk.SerializeToString(deterministic=True), name
    assert {urn: tuple(r) for urn, r in monitor.resources.items()} == {
        urn: tuple(r) for urn, r in monitor.sdk.resources.items()}
    secret = next(r for r in monitor.registrations if r.name == "with-secret")
    assert secret.inputs["assumeRolePolicyDocument"] == "[secret]"


def test_state_that_would_wait_is_serialized_through_the_sdk() -> None:
    from infra.offline_cloud import _serialized

    def run() -> Any:
        holder: dict[str, Any] = {}

        def body() -> None:
            holder["state"] = _serialized({"plain": 1.0, "later": pulumi.Output.from_input("x").apply(str.upper)})

        run_offline(body, project="p", stack="s", config={}, region=REGION)
        return holder["state"]

    state = contextvars.Context().run(run)
    assert dict(state) == {"plain": 1.0, "later": "X"}
