"""Pure: what a render deploys, read from its resources for the local run.

The offline render (``python -m infra.synth``, docs/design.md) is the one
description of a deployment: the same document ``pulumi up`` sends to the
provider. ``deployment_of(document)`` reads from it every flow
(``alicloud:fnf/flow:Flow``), function (FC 3.0 ``fc/v3Function`` or FC 2.0
``fc/function`` under its ``fc/service``) with its HTTP trigger, topic,
subscription and dead-letter queue, and nothing else: no settings are
rebuilt, so the local run cannot drift from what is shipped.

A render that the local run cannot stand in for is refused with
``DeploymentError`` naming the resource and the input.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FLOW = "alicloud:fnf/flow:Flow"
FUNCTION_FC3 = "alicloud:fc/v3Function:V3Function"
TRIGGER_FC3 = "alicloud:fc/v3Trigger:V3Trigger"
FUNCTION_FC2 = "alicloud:fc/function:Function"
SERVICE_FC2 = "alicloud:fc/service:Service"
TRIGGER_FC2 = "alicloud:fc/trigger:Trigger"
TOPIC = "alicloud:message/serviceTopic:ServiceTopic"
SUBSCRIPTION = "alicloud:message/serviceSubscription:ServiceSubscription"
QUEUE = "alicloud:message/serviceQueue:ServiceQueue"

# Provider defaults of inputs a program may leave out (pulumi_alicloud
# message/service_subscription.py and message/service_queue.py docstrings).
DEFAULT_NOTIFY_FORMAT = "XML"
DEFAULT_NOTIFY_STRATEGY = "BACKOFF_RETRY"
DEFAULT_RETENTION_SECONDS = 345600


class DeploymentError(ValueError):
    """The render holds something the local run cannot deploy; the message names it."""


@dataclass(frozen=True)
class FlowSpec:
    name: str
    type: str  # FDL or DEFAULT (CloudFlow)
    definition: str


@dataclass(frozen=True)
class TriggerSpec:
    """An HTTP trigger's config (FC HTTPTriggerConfig: docs/platform-facts.md
    "The local run reads the render")."""

    methods: tuple[str, ...]  # HTTP methods the trigger accepts; () = any
    auth_type: str  # "anonymous" or "function" (FC's default)
    url_internet_disabled: bool = False  # disableURLInternet: the public URL, which MNS pushes to, answers 403


@dataclass(frozen=True)
class FunctionSpec:
    resource: str  # "type::name" of the function resource, for messages
    name: str
    fc_version: str  # "3.0" or "2.0"
    handler: str
    runtime: str
    environment: Mapping[str, str]
    timeout: int
    memory_size: int
    checksum: str  # CRC-64/XZ of the archive, unsigned decimal
    zip_base64: str | None  # FC 3.0: the archive inline
    zip_file: str | None  # FC 2.0: the archive's path, relative to the program's directory
    trigger: TriggerSpec

    def archive_bytes(self, program_dir: Path) -> bytes:
        """The code archive the render ships for this function."""
        if self.zip_base64 is not None:
            try:
                return base64.b64decode(self.zip_base64, validate=True)
            except binascii.Error as err:
                raise DeploymentError(f"{self.resource}: code.zipFile is not base64 ({err})") from None
        assert self.zip_file is not None
        path = Path(self.zip_file)
        path = path if path.is_absolute() else program_dir / path
        try:
            return path.read_bytes()
        except OSError as err:
            raise DeploymentError(f"{self.resource}: filename {self.zip_file!r} cannot be read "
                                  f"({err.strerror}); render the stack again to write it") from None


@dataclass(frozen=True)
class SubscriptionSpec:
    name: str
    topic_name: str
    endpoint: str
    notify_content_format: str
    notify_strategy: str
    dead_letter_queue: str | None
    function: str  # FunctionSpec.name of the function whose trigger serves the endpoint


@dataclass(frozen=True)
class QueueSpec:
    name: str
    retention_seconds: int


@dataclass(frozen=True)
class Deployment:
    flows: tuple[FlowSpec, ...]
    functions: tuple[FunctionSpec, ...]
    topics: tuple[str, ...]  # created by the render or, with createTopic false, named by a subscription
    subscriptions: tuple[SubscriptionSpec, ...]
    queues: tuple[QueueSpec, ...]
    outputs: Mapping[str, Any]
    region: str
    account_id: str

    def flow(self, name: str | None = None) -> FlowSpec:
        """The flow called ``name``; without one, the stack's ``flowName`` output or the only flow."""
        name = name or self.outputs.get("flowName")
        if name is None:
            if len(self.flows) != 1:
                raise DeploymentError(f"the render declares {len(self.flows)} flows "
                                      f"({', '.join(f.name for f in self.flows)}): name one (flow_name)")
            return self.flows[0]
        for flow in self.flows:
            if flow.name == name:
                return flow
        raise DeploymentError(f"the render declares no flow {name!r} "
                              f"(its flows: {', '.join(f.name for f in self.flows) or 'none'})")

    def subscription_of(self, topic: str) -> SubscriptionSpec | None:
        found = [s for s in self.subscriptions if s.topic_name == topic]
        if len(found) > 1:
            raise DeploymentError(f"topic {topic!r} has {len(found)} subscriptions; "
                                  "the local run pushes each topic to one")
        return found[0] if found else None

    def function(self, name: str) -> FunctionSpec:
        return next(f for f in self.functions if f.name == name)

    def queue(self, name: str) -> QueueSpec:
        for queue in self.queues:
            if queue.name == name:
                return queue
        # An existing queue the render does not create: MNS's default retention.
        return QueueSpec(name, DEFAULT_RETENTION_SECONDS)


def _ref(resource: Mapping[str, Any]) -> str:
    return f"{resource['type']}::{resource['name']}"


def _input(resource: Mapping[str, Any], key: str, kind: type | tuple[type, ...] = str) -> Any:
    value = resource.get("inputs", {}).get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise DeploymentError(f"{_ref(resource)}: input {key!r} must be "
                              f"{getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def _optional(resource: Mapping[str, Any], key: str, default: Any) -> Any:
    value = resource.get("inputs", {}).get(key)
    return default if value is None else value


def _trigger_spec(resource: Mapping[str, Any], key: str) -> TriggerSpec:
    try:
        config = json.loads(_input(resource, key))
    except json.JSONDecodeError as err:
        raise DeploymentError(f"{_ref(resource)}: {key} is not JSON ({err.msg})") from None
    if not isinstance(config, dict):
        raise DeploymentError(f"{_ref(resource)}: {key} must be a JSON object")
    methods = config.get("methods") or []
    if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
        raise DeploymentError(f"{_ref(resource)}: {key}.methods must be a list of HTTP methods")
    # FC's default authType is "function" (HTTPTriggerConfig, FC API 2021-04-06 and 2023-03-30).
    return TriggerSpec(tuple(m.upper() for m in methods), str(config.get("authType", "function")),
                       config.get("disableURLInternet") is True)


def _functions(resources: Sequence[Mapping[str, Any]]) -> tuple[list[FunctionSpec], dict[str, str]]:
    """Every function with its HTTP trigger, and each trigger's ``type::name`` -> function name."""
    by_type: dict[str, list[Mapping[str, Any]]] = {}
    for resource in resources:
        by_type.setdefault(resource["type"], []).append(resource)
    functions: list[FunctionSpec] = []
    served_by: dict[str, str] = {}

    for resource in by_type.get(FUNCTION_FC3, []):
        name = _input(resource, "functionName")
        triggers = [t for t in by_type.get(TRIGGER_FC3, []) if t["inputs"].get("functionName") == name
                    and t["inputs"].get("triggerType") == "http"]
        code = _input(resource, "code", dict)
        functions.append(_function_spec(resource, name, "3.0", triggers, "triggerConfig",
                                        checksum=code.get("checksum"), zip_base64=code.get("zipFile"),
                                        zip_file=None, field="code.checksum"))
        served_by.update({_ref(t): name for t in triggers})

    services = {_input(s, "name") for s in by_type.get(SERVICE_FC2, [])}
    for resource in by_type.get(FUNCTION_FC2, []):
        name, service = _input(resource, "name"), _input(resource, "service")
        if service not in services:
            raise DeploymentError(f"{_ref(resource)}: its service {service!r} is not in the render")
        triggers = [t for t in by_type.get(TRIGGER_FC2, []) if t["inputs"].get("function") == name
                    and t["inputs"].get("service") == service and t["inputs"].get("type") == "http"]
        functions.append(_function_spec(resource, name, "2.0", triggers, "config",
                                        checksum=resource["inputs"].get("codeChecksum"), zip_base64=None,
                                        zip_file=_input(resource, "filename"), field="codeChecksum"))
        served_by.update({_ref(t): name for t in triggers})
    names = [f.name for f in functions]
    if len(set(names)) != len(names):
        raise DeploymentError(f"the render declares functions of the same name: {sorted(names)}")
    return functions, served_by


def _function_spec(resource: Mapping[str, Any], name: str, fc_version: str,
                   triggers: Sequence[Mapping[str, Any]], config_key: str, *, checksum: Any,
                   zip_base64: Any, zip_file: str | None, field: str) -> FunctionSpec:
    if len(triggers) != 1:
        raise DeploymentError(f"{_ref(resource)}: the local run serves a function through exactly one "
                              f"HTTP trigger, the render gives it {len(triggers)}")
    if not isinstance(checksum, str) or not checksum.isdigit():
        raise DeploymentError(f"{_ref(resource)}: {field} must be the archive's CRC-64 as decimal digits, "
                              f"got {checksum!r}")
    if fc_version == "3.0" and not isinstance(zip_base64, str):
        raise DeploymentError(f"{_ref(resource)}: code.zipFile (the archive, base64) is missing")
    environment = _optional(resource, "environmentVariables", {})
    if not isinstance(environment, dict) or not all(isinstance(v, str) for v in environment.values()):
        raise DeploymentError(f"{_ref(resource)}: environmentVariables must map names to strings")
    return FunctionSpec(
        resource=_ref(resource), name=name, fc_version=fc_version, handler=_input(resource, "handler"),
        runtime=_input(resource, "runtime"), environment=dict(environment),
        # Unset: the local run's assumption (docs/platform-facts.md "The local run reads the render").
        timeout=int(_optional(resource, "timeout", 3)), memory_size=int(_optional(resource, "memorySize", 128)),
        checksum=checksum, zip_base64=zip_base64, zip_file=zip_file,
        trigger=_trigger_spec(triggers[0], config_key))


def _served_function(subscription: Mapping[str, Any], served_by: Mapping[str, str],
                     resources: Sequence[Mapping[str, Any]], functions: Sequence[FunctionSpec]) -> str:
    """The function whose trigger serves this subscription's endpoint.

    The endpoint in a render is the offline cloud's stand-in for the trigger's
    URL (FC assigns the real one, with an id, only at creation), so it cannot
    name the function for certain. What can: the endpoint is an output of the
    trigger, so Pulumi records the trigger among the subscription's
    ``dependsOn``. Failing that (an endpoint given as text), the one function
    under the same nearest component (``parent`` chain), as a pattern's
    components are.
    """
    triggers = {served_by[d] for d in subscription.get("dependsOn", []) if d in served_by}
    if len(triggers) == 1:
        return triggers.pop()
    if len(triggers) > 1:
        raise DeploymentError(f"{_ref(subscription)}: depends on the triggers of {sorted(triggers)}; "
                              "which serves its endpoint is ambiguous")
    parents = {_ref(r): r.get("parent") for r in resources}
    by_ref = {f.resource: f.name for f in functions}
    ancestor = subscription.get("parent")
    while ancestor is not None:
        under = {name for ref, name in by_ref.items() if _has_ancestor(ref, ancestor, parents)}
        if len(under) == 1:
            return under.pop()
        if under:
            break
        ancestor = parents.get(ancestor)
    raise DeploymentError(f"{_ref(subscription)}: no function of the render serves its endpoint "
                          f"{subscription['inputs'].get('endpoint')!r}")


def _has_ancestor(ref: str, ancestor: str, parents: Mapping[str, str | None]) -> bool:
    current = parents.get(ref)
    while current is not None:
        if current == ancestor:
            return True
        current = parents.get(current)
    return False


def _subscription_spec(resource: Mapping[str, Any], function: str) -> SubscriptionSpec:
    push_type = _optional(resource, "pushType", "http")
    if push_type != "http":
        raise DeploymentError(f"{_ref(resource)}: pushType {push_type!r}: the local run pushes over http only")
    dlq = _optional(resource, "dlqPolicy", {})
    queue = dlq.get("deadLetterTargetQueue") if isinstance(dlq, dict) and dlq.get("enabled") else None
    return SubscriptionSpec(
        name=_input(resource, "subscriptionName"), topic_name=_input(resource, "topicName"),
        endpoint=_input(resource, "endpoint"),
        notify_content_format=_optional(resource, "notifyContentFormat", DEFAULT_NOTIFY_FORMAT),
        notify_strategy=_optional(resource, "notifyStrategy", DEFAULT_NOTIFY_STRATEGY),
        dead_letter_queue=queue or None, function=function)


def _account_and_region(outputs: Mapping[str, Any], functions: Sequence[FunctionSpec]) -> tuple[str, str]:
    """The account and region the render deploys into: its outputs, else what its functions were given."""
    owners = {f.environment.get("MNS_TOPIC_OWNER") for f in functions} - {None}
    regions = {f.environment.get("ALIBABA_CLOUD_REGION") for f in functions} - {None}
    account = outputs.get("accountId") or (owners.pop() if len(owners) == 1 else None)
    region = outputs.get("region") or (regions.pop() if len(regions) == 1 else None)
    if not isinstance(account, str) or not account:
        raise DeploymentError("the render names no single account: no accountId output, and its functions' "
                              "MNS_TOPIC_OWNER values differ or are missing")
    if not isinstance(region, str) or not region:
        raise DeploymentError("the render names no single region: no region output, and its functions' "
                              "ALIBABA_CLOUD_REGION values differ or are missing")
    return account, region


def deployment_of(document: Mapping[str, Any]) -> Deployment:
    """Pure: the flows, functions, topics, subscriptions and queues of a render document."""
    resources = document.get("resources")
    if not isinstance(resources, list) or not all(isinstance(r, dict) and "type" in r for r in resources):
        raise DeploymentError("not a render: 'resources' must be a list of resources with a 'type'")
    outputs = document.get("outputs") or {}
    flows = []
    for resource in resources:
        if resource["type"] == FLOW:
            flow_type = _optional(resource, "type", "FDL")
            if flow_type not in ("FDL", "DEFAULT"):
                raise DeploymentError(f"{_ref(resource)}: type must be FDL or DEFAULT, got {flow_type!r}")
            flows.append(FlowSpec(_input(resource, "name"), flow_type, _input(resource, "definition")))
    functions, served_by = _functions(resources)
    subscriptions = [
        _subscription_spec(r, _served_function(r, served_by, resources, functions))
        for r in resources if r["type"] == SUBSCRIPTION
    ]
    topics = [_input(r, "topicName") for r in resources if r["type"] == TOPIC]
    topics += [s.topic_name for s in subscriptions if s.topic_name not in topics]  # existing topics
    queues = [QueueSpec(_input(r, "queueName"), int(_optional(r, "messageRetentionPeriod",
                                                              DEFAULT_RETENTION_SECONDS)))
              for r in resources if r["type"] == QUEUE]
    account, region = _account_and_region(outputs, functions)
    return Deployment(tuple(flows), tuple(functions), tuple(topics), tuple(subscriptions), tuple(queues),
                      dict(outputs), region, account)
