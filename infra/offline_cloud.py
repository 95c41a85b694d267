"""A deterministic stand-in for Alibaba Cloud under ``pulumi.runtime.set_mocks``.

``infra.synth`` and the tests run the real program against it: every resource
the program registers is recorded as the provider would receive it (type token,
logical name, inputs, parent, dependencies), and it answers with fixed ids,
ARNs and URLs so the same source always renders the same bytes.

Only the type tokens the program uses are known; anything else fails loudly,
so a renamed or new resource type cannot slip through a render unnoticed.

A value the program marks secret (``pulumi.Output.secret``, ``Config.get_secret``)
is recorded as a placeholder, never as its plaintext (see :func:`secret_stand_in`).
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks, _resolve_callbacks
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.rpc import is_rpc_secret, unwrap_rpc_secret
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from infra.stack_config import SECRET_PLACEHOLDER, secret_placeholder

ACCOUNT_ID = "1234567890123456"
CALLER_IDENTITY = "alicloud:index/getCallerIdentity:getCallerIdentity"
SERVICE_TOPICS = "alicloud:message/getServiceTopics:getServiceTopics"
REGIONS = "alicloud:index/getRegions:getRegions"
COMPONENT_PREFIX = "mns-callback-flow:index:"


def urn_ref(urn: str) -> str | None:
    """``urn:pulumi:stack::project::a$b::name`` -> ``"b::name"``; the stack itself -> None."""
    if not urn:
        return None
    _, _, qualified_type, name = urn.split("::", 3)
    type_ = qualified_type.split("$")[-1]
    return None if type_ == "pulumi:pulumi:Stack" else f"{type_}::{name}"


def _trigger_url_fc3(function_name: str, region: str) -> str:
    # FC 3.0 HTTPTrigger.urlInternet form: https://<name>-<id>.<region>.fcapp.run
    # (FC API 2023-03-30 struct HTTPTrigger); the mock leaves the random id out.
    return f"https://{function_name}.{region}.fcapp.run"


class OfflineCloud(Mocks):
    """Answers resource registrations and invokes with deterministic values.

    Each answer is keyed on the exact type token; the returned state is the
    inputs plus the outputs the program reads (ARNs, trigger URLs).
    """

    def __init__(
        self, region: str, account_id: str = ACCOUNT_ID, existing_topics: Collection[str] | None = None
    ) -> None:
        self.region = region
        self.account_id = account_id
        # Topics an existing-topic lookup finds; None: whichever topic is asked for exists.
        self.existing_topics = None if existing_topics is None else frozenset(existing_topics)
        self._answers: dict[str, Callable[[str, dict[str, Any]], tuple[str, dict[str, Any]]]] = {
            "alicloud:message/serviceTopic:ServiceTopic": lambda n, i: (i["topicName"], {}),
            "alicloud:message/serviceQueue:ServiceQueue": lambda n, i: (i["queueName"], {}),
            "alicloud:message/serviceSubscription:ServiceSubscription": lambda n, i: (
                f"{i['topicName']}:{i['subscriptionName']}", {}
            ),
            "alicloud:ram/role:Role": lambda n, i: (
                i["roleName"], {"arn": f"acs:ram::{self.account_id}:role/{i['roleName']}"}
            ),
            "alicloud:ram/policy:Policy": lambda n, i: (i["policyName"], {}),
            "alicloud:ram/rolePolicyAttachment:RolePolicyAttachment": lambda n, i: (
                f"role:{i['policyName']}:{i['policyType']}:{i['roleName']}", {}
            ),
            "alicloud:fc/v3Function:V3Function": lambda n, i: (
                i["functionName"],
                {"functionArn": f"acs:fc:{self.region}:{self.account_id}:functions/{i['functionName']}"},
            ),
            "alicloud:fc/v3Trigger:V3Trigger": lambda n, i: (
                f"{i['functionName']}:{i.get('triggerName', n)}",
                {"httpTrigger": {
                    "urlInternet": _trigger_url_fc3(i["functionName"], self.region),
                    "urlIntranet": _trigger_url_fc3(i["functionName"], f"{self.region}-vpc"),
                }},
            ),
            "alicloud:fc/service:Service": lambda n, i: (i["name"], {"serviceId": f"service-id-{i['name']}"}),
            "alicloud:fc/function:Function": lambda n, i: (
                f"{i['service']}:{i['name']}", {"functionId": f"function-id-{i['name']}"}
            ),
            "alicloud:fc/trigger:Trigger": lambda n, i: (
                f"{i['service']}:{i['function']}:{i['name']}", {"triggerId": f"trigger-id-{i['name']}"}
            ),
            "alicloud:fnf/flow:Flow": lambda n, i: (i["name"], {"flowId": f"flow-id-{i['name']}"}),
        }

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if args.typ.startswith(COMPONENT_PREFIX):
            return f"{args.name}-id", {}
        answer = self._answers.get(args.typ)
        if answer is None:
            raise KeyError(f"the offline cloud does not know resource type {args.typ!r} ({args.name})")
        resource_id, outputs = answer(args.name, args.inputs)
        return resource_id, {**args.inputs, **outputs}

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """The invoke's result and its check failures (none: a bad invoke raises)."""
        return self._answer(args), []

    def _answer(self, args: MockCallArgs) -> dict[str, Any]:
        if args.token == CALLER_IDENTITY:
            return {
                "accountId": self.account_id,
                "arn": f"acs:ram::{self.account_id}:root",
                "id": self.account_id,
                "identityType": "Account",
            }
        if args.token == SERVICE_TOPICS:
            return self._service_topics(args.args)
        if args.token == REGIONS:
            return self._regions(args.args)
        raise KeyError(f"the offline cloud does not answer invoke {args.token!r}")

    def _regions(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """``get_regions(current=True)``: the provider's region only (pulumi_alicloud 4.0.0
        get_regions.py: "match only the region configured in the provider")."""
        if not args.get("current"):
            raise KeyError("the offline cloud answers get_regions only with current=True")
        region = {"id": self.region, "localName": self.region, "regionId": self.region}
        return {"current": True, "id": self.region, "ids": [self.region], "regions": [region]}

    def _service_topics(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """``message.get_service_topics`` filtered by ``topicName`` as the ListTopic request is."""
        name = args.get("topicName")
        if not isinstance(name, str) or not name:
            raise KeyError("the offline cloud answers message.get_service_topics by topicName only")
        found = self.existing_topics is None or name in self.existing_topics
        topics = [{
            "id": name,
            "topicName": name,
            "createTime": 0,
            "lastModifyTime": 0,
            "loggingEnabled": False,
            "maxMessageSize": 65536,
            "messageCount": 0,
            "messageRetentionPeriod": 86400,
            "topicUrl": f"https://{self.account_id}.mns.{self.region}.aliyuncs.com/topics/{name}",
            "topicInnerUrl": f"https://{self.account_id}.mns.{self.region}-internal.aliyuncs.com/topics/{name}",
        }] if found else []
        return {
            "id": self.region,
            "topicName": name,
            "ids": [t["id"] for t in topics],
            "names": [t["topicName"] for t in topics],
            "topics": topics,
        }


@dataclass
class Registration:
    """One resource as the engine received it."""

    type: str
    name: str
    parent: str | None
    inputs: dict[str, Any]
    depends_on: list[str] = field(default_factory=list)

    def as_render(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "inputs": self.inputs,
            "dependsOn": self.depends_on,
        }


class RecordingMonitor(MockMonitor):
    """A mock resource monitor that also keeps each registration's parent and dependencies.

    ``Mocks.new_resource`` only sees type, name and inputs; the parent and
    ``dependsOn`` edges are in the engine request, so they are taken here.

    ``RegisterResource`` answers as ``MockMonitor.RegisterResource`` does (the same
    URN, id, state and response), but reads the request's inputs once, for the
    record and for the mocks, and serializes the state without pumping an event
    loop on the monitor's thread (:func:`_serialized`): per resource, that loop
    was most of the monitor's time, and the archive's base64 text was copied
    out of the request twice.
    """

    def __init__(self, mocks: Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request: Any) -> Any:
        if request.type == "pulumi:pulumi:Stack":
            return super().RegisterResource(request)
        urn = self.make_urn(request.parent, request.type, request.name)
        # As MockMonitor: deserializing a resource reference needs an event loop on this thread.
        _ensure_event_loop()
        inputs = rpc.deserialize_properties(request.object)
        self.registrations.append(
            Registration(
                type=request.type,
                name=request.name,
                parent=urn_ref(request.parent),
                inputs=_plain(inputs),
                depends_on=sorted({ref for ref in map(urn_ref, request.dependencies) if ref}),
            )
        )
        resource_id, state = self.mocks.new_resource(MockResourceArgs(
            typ=request.type,
            name=request.name,
            inputs=inputs,
            provider=request.provider,
            resource_id=request.importId,
            custom=request.custom or False,
            transforms=_resolve_callbacks(request.transforms),
        ))
        state_proto = _serialized(state)
        # Mocks.new_resource may answer no id; MockMonitor passes it on as it is (typed `str` there).
        registered_id = cast(str, resource_id)
        self.resources[urn] = MockMonitor.ResourceRegistration(urn, registered_id, state)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=registered_id, object=state_proto)

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == type_]

    def one(self, type_: str) -> Registration:
        found = self.of_type(type_)
        if len(found) != 1:
            raise AssertionError(f"expected exactly one {type_}, found {[r.name for r in found]}")
        return found[0]


def secret_stand_in(plaintext: Any) -> str:
    """What a render shows for a secret value.

    Offline, a secret can only be built from config placeholders (the stack
    file's ciphertexts are never decrypted) or from text in the program. With
    placeholders in it, the stand-in is a digest of those, so the diff sees a
    changed ciphertext; otherwise it is ``[secret]``: no digest of a plaintext,
    which a short secret could be guessed back from.
    """
    text = plaintext if isinstance(plaintext, str) else json.dumps(plaintext, sort_keys=True, default=str)
    found = SECRET_PLACEHOLDER.findall(text)
    if not found:
        return "[secret]"
    if found == [text]:
        return text
    return secret_placeholder("\0".join(found))


def _plain(value: Any) -> Any:
    """Inputs as JSON-able data (keys are sorted later, at dump time); secrets as stand-ins."""
    if is_rpc_secret(value):
        return secret_stand_in(_plain(unwrap_rpc_secret(value)))
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        # The engine carries every number as a double; 256.0 was an int in the program.
        return int(value)
    return value


def _serialized(state: Mapping[str, Any]) -> Any:
    """``rpc.serialize_properties(state)``, as ``MockMonitor`` sends it back to the program.

    The coroutine is stepped here: state made of plain values (all the offline
    cloud answers) serializes without waiting for anything, so it finishes on its
    first step. State that would wait (an Output, a resource) is serialized
    again through the SDK's ``_sync_await``, as ``MockMonitor`` does it;
    serializing has no effects to undo.
    """
    stepped = rpc.serialize_properties(state, {})
    try:
        stepped.send(None)
    except StopIteration as finished:
        return finished.value
    stepped.close()
    return _sync_await(rpc.serialize_properties(state, {}))


def run_offline(
    program: Callable[[], Any],
    *,
    project: str,
    stack: str,
    config: Mapping[str, str],
    region: str,
    monitor: RecordingMonitor | None = None,
) -> tuple[RecordingMonitor, dict[str, Any], Any]:
    """Run ``program`` against the offline cloud; return (monitor, stack outputs, result).

    When ``program`` returns a ``pulumi.Output`` it is awaited, so checks written
    as ``Output.apply`` run before this returns (their errors propagate). Pass a
    ``monitor`` to inspect what was registered even when the program raises.
    Call it inside a fresh ``contextvars.Context`` (see ``infra.synth``) so the
    Pulumi runtime's globals (root stack, config) start empty each time.
    When the program fails, what it left running is ended before the error is
    re-raised, so many runs can share one process (a test suite).
    """
    from pulumi.runtime.settings import get_root_resource
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    monitor = monitor if monitor is not None else RecordingMonitor(OfflineCloud(region))
    pulumi.runtime.set_mocks(monitor.mocks, project=project, stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(dict(config))
    holder: dict[str, Any] = {}

    def body() -> None:
        result = program()
        if isinstance(result, pulumi.Output):
            result = _sync_await(result.future())
        exported = dict(getattr(get_root_resource(), "outputs", {}))
        secret = {
            name for name, value in exported.items()
            if isinstance(value, pulumi.Output) and _sync_await(value.is_secret())
        }
        resolved = pulumi.Output.all(*exported.values()).apply(lambda values: dict(zip(exported, values)))
        values = _sync_await(resolved.future())
        if values is None:  # Output.future() gives None for a value unknown until deployment
            raise RuntimeError("a stack output is unknown offline; the offline cloud answers every output")
        holder["outputs"] = {
            name: secret_stand_in(value) if name in secret else value for name, value in values.items()
        }
        holder["result"] = result

    try:
        _sync_await(run_pulumi_func(body))
    except BaseException:
        _settle_failed_run()
        raise
    return monitor, holder.get("outputs", {}), holder.get("result")


def _settle_failed_run() -> None:
    """End what a failed program left in the runtime, so it cannot fail a later run.

    On the first error ``wait_for_rpcs`` stops awaiting: apply tasks stay
    pending on the shared event loop (they would run, and fail, inside the next
    run) and failed ones stay in ``SETTINGS.outputs``. ``pulumi up`` never sees
    this because its process exits; a render or a test suite runs on.
    """
    from pulumi.runtime.sync_await import _ensure_event_loop

    loop = _ensure_event_loop()
    leftover = set(_pending_outputs() or ()) | {task for task in asyncio.all_tasks(loop) if not task.done()}
    for task in leftover:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
    pending = _pending_outputs()
    if pending:
        pending.clear()
    _discard_unobserved(loop)


def _pending_outputs() -> set[asyncio.Task] | None:
    """``SETTINGS.outputs``: the runtime's pending output tasks (None outside a run)."""
    from pulumi.runtime.settings import SETTINGS

    # pulumi/runtime/settings.py declares `def outputs(self) -> set[asyncio.Task]` under the
    # untyped `contextproperty` decorator (pulumi/_utils.py), which pyright reads as returning
    # the decorator's inner function, not the ContextProperty it returns at run time.
    return SETTINGS.outputs  # pyright: ignore[reportAttributeAccessIssue]


def _discard_unobserved(loop: asyncio.AbstractEventLoop) -> None:
    """Mark the failed run's unobserved coroutines and futures as dealt with.

    The run's error is raised to the caller once; without this,
    Python reports its leftovers again whenever the garbage collector reaches
    them, in some later, unrelated test or at exit:
    - ``Output(resources, future, is_known)`` (as ``StackReference.require_output``
      calls it) takes coroutine objects and awaits them in turn; once one
      raises or its task is cancelled, the rest never run ("coroutine
      'Output.is_known' was never awaited"). Closing one that never ran says
      exactly that it will not run.
    - a resource whose inputs failed sets that error on each of its output
      futures, which nothing reads ("Future exception was never retrieved").
    """
    codes = {pulumi.Output.future.__code__, pulumi.Output.is_known.__code__}
    for obj in gc.get_objects():
        if inspect.iscoroutine(obj):
            if obj.cr_code in codes and inspect.getcoroutinestate(obj) == inspect.CORO_CREATED:
                obj.close()
        elif isinstance(obj, asyncio.Future) and obj.get_loop() is loop and obj.done() and not obj.cancelled():
            obj.exception()
