"""The whole pattern on loopback, deployed from the offline render.

``LocalStack.from_render(document)`` deploys, in this process, what the render
of ``python -m infra.synth`` (``infra.synth.render``) describes, the document
``pulumi up`` ships: every flow (FDL or CloudFlow, its definition text as
rendered) on the FnF endpoint's engine; every function from the code archive
the render carries (FC 3.0 ``code.zipFile``, FC 2.0 ``filename``), unzipped into
a temporary directory that is removed on exit after its CRC-64/XZ was checked
against the render's checksum, with the handler, runtime, timeout, memory and
environment variables as rendered, behind its HTTP trigger (methods, authType);
every topic with its subscription (endpoint, notify format and strategy) and
dead-letter queue (name, retention). The topics' MNS data-plane API
(``mns_api``) takes PublishMessage from any client. ``run_one`` / ``run_many``
drive one flow through the real SDK as a caller would.

Only what must point at the local stand-ins differs from the render: the
function's ``FNF_ENDPOINT`` (the local FnF endpoint instead of the region's)
and ``MNS_CERT_URL_PREFIXES`` (only the local certificate server, whose key
signs the local pushes; the rendered value, or its absence, names cloud
hosts). Nothing about the topic binding is overridden: the local account is
the render's own account (its ``accountId`` output, the offline cloud's), so
the pushes carry the ``TopicOwner`` that the rendered ``MNS_TOPIC_OWNER``
expects, and the rendered ``MNS_TOPIC_NAME`` is the topic's real name.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from tempfile import TemporaryDirectory
from typing import Any, Self

import fastcrc
from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException
from aliyunsdkcore.auth.credentials import StsTokenCredential
from aliyunsdkcore.client import AcsClient
from aliyunsdkfnf.request.v20190315.DescribeExecutionRequest import (
    DescribeExecutionRequest,
)
from aliyunsdkfnf.request.v20190315.GetExecutionHistoryRequest import (
    GetExecutionHistoryRequest,
)
from aliyunsdkfnf.request.v20190315.StartExecutionRequest import StartExecutionRequest

from localcloud import cloudflow, fdl
from localcloud.deployment import Deployment, DeploymentError, FunctionSpec, SubscriptionSpec, deployment_of
from localcloud.engine import DeployedFlow, Engine, Execution
from localcloud.faults import FaultPlan
from localcloud.fc_runtime import FcRuntime, FunctionMeta
from localcloud.fnf_api import Credentials, FnFEndpoint
from localcloud.mns_api import LocalQueue, MnsEndpoint, Published
from localcloud.mns_push import CertServer, Delivery, Message, Pusher, SigningIdentity, Subscription
from localcloud.topic import Topic

ROOT = Path(__file__).resolve().parent.parent
# Seconds of the cloud per second here: 0.01 turns a 600 s task timeout into
# 6 s and MNS's 10-20 s BACKOFF_RETRY into 0.1-0.2 s. Only the flow's and the
# topic's timers scale: the handler keeps its real 4 s report budget and MNS its
# 5 s answer window, so a task timeout that scales below ~5 s can expire while
# a push is still being handled, which the cloud would not do.
DEFAULT_TIME_SCALE = 0.01


class ArchiveMismatch(DeploymentError):
    """A function's code archive is not the one its checksum in the render names."""


def crc64_xz(data: bytes) -> int:
    """CRC-64/XZ, the checksum FC's ``code.checksum`` / ``code_checksum`` carry (docs/platform-facts.md)."""
    return fastcrc.crc64.xz(data)


def unpack_archive(function: FunctionSpec, program_dir: Path, into: Path) -> Path:
    """Unzips ``function``'s archive into ``into`` once its CRC-64/XZ equals the render's checksum."""
    data = function.archive_bytes(program_dir)
    actual = str(crc64_xz(data))
    if actual != function.checksum:
        where = "code.checksum" if function.fc_version == "3.0" else "codeChecksum"
        raise ArchiveMismatch(f"{function.resource}: the code archive's CRC-64 is {actual}, but {where} "
                              f"in the render is {function.checksum}: the archive was changed; render again")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            archive.extractall(into)
    except zipfile.BadZipFile as err:
        raise DeploymentError(f"{function.resource}: the code archive is not a zip file ({err})") from None
    return into


def local_environment(function: FunctionSpec, fnf_url: str, cert_prefix: str) -> dict[str, str]:
    """The function's rendered environment with only the two local endpoints put in:
    ``FNF_ENDPOINT`` (the local FnF endpoint) and ``MNS_CERT_URL_PREFIXES`` (the local
    certificate server, the only host whose key signs local pushes)."""
    return {**function.environment, "FNF_ENDPOINT": fnf_url, "MNS_CERT_URL_PREFIXES": cert_prefix}


def parse_definition(flow_type: str, definition: str) -> fdl.Flow | cloudflow.StateMachine:
    """The local interpreter's reading of a flow: ``DEFAULT`` is CloudFlow, ``FDL`` is FDL v1."""
    return cloudflow.parse_state_machine(definition) if flow_type == "DEFAULT" else fdl.parse_flow(definition)


@dataclass
class Pushed:
    """One message's delivery as the topic ended it, for the run's timeline."""

    key: str  # <execution>:<event id> of the TaskSubmitted event that published it
    at: float
    delivery: Delivery


def _sender_of_dead_letters(queue: LocalQueue) -> Callable[[Message], None]:
    """What a topic does with a push whose retries ran out: send the published message to ``queue``."""
    def send(message: Message) -> None:
        queue.send(message.body)
    return send


class LocalStack:
    """Everything a render deploys, on loopback; use as a context manager.

    ``LocalStack.from_render(document)`` is the way in. Raises ``DeploymentError``
    (``ArchiveMismatch``) for a render it cannot deploy, ``fdl.UnsupportedFlow``
    for a definition it cannot run and ``OSError`` for a port it cannot bind.

    Every flow, topic and function of the render is deployed; the caller's
    side (``start``, ``run_one``, ``topic``, ``fc``, ``dead_letters``) is about one
    flow: ``flow_name``, by default the stack's ``flowName`` output (or the only
    flow), its topic (``topicName`` when it publishes to that one) and the
    function that topic pushes to. ``trigger_port`` is that function's.
    ``function_processes`` runs each function in an instance process of its own
    (``FcRuntime(instance_process=True)``) instead of in this one.
    """

    def __init__(self, document: Mapping[str, Any], *, program_dir: Path | str = ROOT,
                 flow_name: str | None = None, time_scale: float = DEFAULT_TIME_SCALE, fnf_port: int = 0,
                 trigger_port: int = 0, faults: FaultPlan | None = None,
                 extra_environment: Mapping[str, str] | None = None, seed: int = 0, mns_port: int = 0,
                 outage_seconds: float = 0.0, function_processes: bool = False) -> None:
        if not isinstance(document, Mapping):
            raise DeploymentError(f"not a render: expected the JSON document of infra.synth, "
                                  f"got {type(document).__name__}")
        self.deployment: Deployment = deployment_of(document)
        d = self.deployment
        self.region = d.region
        self.account_id = d.account_id
        self.flows = {f.name: (f, parse_definition(f.type, f.definition)) for f in d.flows}
        for spec, flow in self.flows.values():
            for topic in sorted(flow.topics):
                if topic not in d.topics:
                    raise fdl.UnsupportedFlow(f"flow {spec.name!r} publishes to {topic!r}, which the render "
                                              f"neither creates nor subscribes to")
                if d.subscription_of(topic) is None:
                    raise fdl.UnsupportedFlow(f"flow {spec.name!r} publishes to {topic!r}, which has no HTTP "
                                              "subscription in the render: its messages would reach no one")
        driven = d.flow(flow_name)
        self.flow_name = driven.name
        self.definition = driven.definition
        self.flow = self.flows[driven.name][1]
        self.topic_name = self._driven_topic(self.flow.topics)
        subscription = d.subscription_of(self.topic_name)
        assert subscription is not None
        self.subscription = subscription
        self.function = d.function(subscription.function)
        self.dead_letter_queue_name = subscription.dead_letter_queue
        self.program_dir = Path(program_dir)
        self.time_scale = time_scale
        self._ports = (fnf_port, trigger_port, mns_port)
        if outage_seconds < 0:
            raise ValueError(f"outage_seconds must be >= 0, got {outage_seconds}")
        self.outage_seconds = outage_seconds
        self.outage_ends = 0.0  # time.monotonic() when the trigger answers again
        self.redriven = 0
        self.faults = faults
        self._extra_env = dict(extra_environment or {})
        self.function_processes = function_processes
        self._seed = seed
        self.pushed: list[Pushed] = []
        self._lock = threading.Lock()
        self._stack = ExitStack()
        self.topic: Topic | None = None
        self.dead_letters: LocalQueue | None = None
        self.topics: dict[str, Topic] = {}
        self.queues: dict[str, LocalQueue] = {}
        self.runtimes: dict[str, FcRuntime] = {}

    @classmethod
    def from_render(cls, document: Mapping[str, Any], *, program_dir: Path | str = ROOT,
                    flow_name: str | None = None, time_scale: float = DEFAULT_TIME_SCALE, fnf_port: int = 0,
                    trigger_port: int = 0, mns_port: int = 0, faults: FaultPlan | None = None, seed: int = 0,
                    outage_seconds: float = 0.0, extra_environment: Mapping[str, str] | None = None,
                    function_processes: bool = False) -> Self:
        """Deploys the render ``document``: ``infra.synth.render``'s dict, or the parsed JSON of
        ``python -m infra.synth``. ``program_dir`` is the directory an FC 2.0 ``filename``
        is relative to (the Pulumi project's); ``flow_name`` the flow the caller's side drives."""
        return cls(document, program_dir=program_dir, flow_name=flow_name, time_scale=time_scale,
                   fnf_port=fnf_port, trigger_port=trigger_port, mns_port=mns_port, faults=faults, seed=seed,
                   outage_seconds=outage_seconds, extra_environment=extra_environment,
                   function_processes=function_processes)

    def _driven_topic(self, topics: set[str]) -> str:
        named = self.deployment.outputs.get("topicName")
        if named in topics:
            return named
        if len(topics) == 1:
            return next(iter(topics))
        raise fdl.UnsupportedFlow(f"flow {self.flow_name!r} publishes to {sorted(topics)}: the local run "
                                  "drives a flow with one topic")

    def __enter__(self) -> Self:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    def _start(self) -> None:
        d = self.deployment
        stack = self._stack
        # Signed as MNS signs: a 512-bit key under a long-expired certificate (mns_push.SigningIdentity).
        self.certs = stack.enter_context(CertServer(SigningIdentity()))
        self.engine = Engine([DeployedFlow(spec.name, spec.definition, flow) for spec, flow in self.flows.values()],
                             self._publish, time_scale=self.time_scale)
        stack.callback(self.engine.stop)
        self.fnf = stack.enter_context(FnFEndpoint(self.engine, port=self._ports[0]))
        if self.faults is not None:
            self.fnf.faults.decider = self.faults.fnf
        self.caller_credentials = self.fnf.issue_sts_credentials()
        # The driven function last, so that it is the one installed when the run starts.
        for function in sorted(d.functions, key=lambda f: (f.name == self.function.name, f.name)):
            self.runtimes[function.name] = self._deploy_function(function)
        self.fc = self.runtimes[self.function.name]
        self.mns = stack.enter_context(MnsEndpoint(account_id=d.account_id, region=d.region,
                                                   port=self._ports[2]))
        for topic_name in d.topics:
            subscription = d.subscription_of(topic_name)
            if subscription is None:
                continue
            self._deploy_topic(topic_name, subscription)
        self.topic = self.topics[self.topic_name]
        self.dead_letters = self.queues.get(self.dead_letter_queue_name or "")
        self.operator_key = self.mns.issue_access_key()
        # The outage runs from the start, in cloud seconds like every other timer.
        self.outage_ends = time.monotonic() + self.outage_seconds * self.time_scale
        self.fc.unavailable_until = self.outage_ends

    def _deploy_function(self, function: FunctionSpec) -> FcRuntime:
        stack = self._stack
        code = Path(stack.enter_context(TemporaryDirectory(prefix=f"localcloud-{function.name}-")))
        unpack_archive(function, self.program_dir, code)
        credentials = self.fnf.issue_sts_credentials()
        if function.name == self.function.name:
            self.function_credentials = credentials
        environment = local_environment(function, self.fnf.url, self.certs.url_prefix)
        environment.update(self._extra_env)
        region = function.environment.get("ALIBABA_CLOUD_REGION", self.deployment.region)
        return stack.enter_context(FcRuntime(
            source_dir=code, fc_version=function.fc_version, credentials=credentials,
            # docs/platform-facts.md: the python3.12 runtime has no context.credentials.
            context_credentials=function.runtime != "python3.12", region=region,
            account_id=self.deployment.account_id,
            function=FunctionMeta(name=function.name, timeout=function.timeout, memory=function.memory_size,
                                  handler=function.handler),
            environment=environment, methods=function.trigger.methods or None,
            auth_type=function.trigger.auth_type, url_internet_disabled=function.trigger.url_internet_disabled,
            instance_process=self.function_processes,
            port=self._ports[1] if function.name == self.function.name else 0))

    def _deploy_topic(self, topic_name: str, subscription: SubscriptionSpec) -> None:
        runtime = self.runtimes[subscription.function]
        pusher = Pusher(Subscription(runtime.url, topic_name=topic_name, topic_owner=self.deployment.account_id,
                                     subscription_name=subscription.name,
                                     notify_format=subscription.notify_content_format,
                                     notify_strategy=subscription.notify_strategy),
                        private_key=self.certs.identity.private_key, cert_url=self.certs.cert_url,
                        time_scale=self.time_scale, rng=Random(self._seed))
        queue = None
        if subscription.dead_letter_queue:
            spec = self.deployment.queue(subscription.dead_letter_queue)
            queue = self.queues.setdefault(spec.name, LocalQueue(spec.name, retention_seconds=spec.retention_seconds))
            self.mns.queues[queue.name] = queue
        # The dead letter's body is the published message itself (what MNS stores is
        # not documented: docs/platform-facts.md; infra.redrive accepts every plausible form).
        dead_letter: Callable[[Message], None] | None = None
        if queue is not None:
            dead_letter = _sender_of_dead_letters(queue)
        topic = Topic(topic_name, pusher, fault=self.faults.push if self.faults else None,
                      on_delivery=self._delivered, dead_letter=dead_letter)
        self.topics[topic_name] = topic
        self.mns.topics[topic_name] = lambda body, t=topic: self._publish_from_client(t, body)
        # Closed before the runtimes and the endpoints (last in, first out): in-flight
        # pushes end while the triggers still serve; the engine then stops what still waits.
        self._stack.callback(topic.close)

    def _publish(self, topic: str, body: str, key: str) -> None:
        self.topics[topic].publish(body, key)

    @staticmethod
    def _publish_from_client(topic: Topic, body: str) -> Published:
        """PublishMessage through the MNS endpoint: pushed like the flow's own publish."""
        # Keyed by the body, so a seeded fault plan treats a republished message alike every run.
        message = topic.publish(body, f"mns:{hashlib.sha256(body.encode()).hexdigest()[:16]}")
        return Published(message.message_id, message.md5)

    def _delivered(self, key: str, delivery: Delivery) -> None:
        with self._lock:
            self.pushed.append(Pushed(key, time.time(), delivery))

    # -- the caller's side, through the real SDK

    def caller(self) -> Caller:
        """The caller's side of this stack as a picklable value, for callers in other processes."""
        return Caller(port=self.fnf.port, region=self.region, credentials=self.caller_credentials,
                      flow_name=self.flow_name)

    def client(self, credentials: Credentials | None = None) -> AcsClient:
        return self.caller().client(credentials)

    def start(self, client: AcsClient, input_text: str, name: str | None = None, *,
              flow_name: str | None = None) -> str:
        return self.caller().start(client, input_text, name, flow_name=flow_name)

    def describe(self, client: AcsClient, name: str, wait_seconds: int = 0, *,
                 flow_name: str | None = None) -> dict[str, Any]:
        return self.caller().describe(client, name, wait_seconds, flow_name=flow_name)

    def history(self, client: AcsClient, name: str, *, flow_name: str | None = None) -> list[dict[str, Any]]:
        return self.caller().history(client, name, flow_name=flow_name)


@dataclass(frozen=True)
class Caller:
    """A caller of a local stack's FnF endpoint through the real SDK: where it is, whose key.

    Plain data, so a caller can run in another process than the stack (as a real caller
    does): the stack's own ``start`` / ``describe`` / ``history`` are this.
    """

    port: int
    region: str
    credentials: Credentials
    flow_name: str

    def client(self, credentials: Credentials | None = None) -> AcsClient:
        ak, secret, token = credentials or self.credentials
        return AcsClient(credential=StsTokenCredential(ak, secret, token), region_id=self.region,
                         port=self.port, auto_retry=False, timeout=70, connect_timeout=5)

    def _call(self, client: AcsClient, request_class: type, flow_name: str | None = None,
              **params: Any) -> dict[str, Any]:
        """One SDK call about a flow (default ``self.flow_name``), pointed at the local endpoint."""
        request = request_class()
        request.set_endpoint("127.0.0.1")
        request.set_FlowName(flow_name or self.flow_name)
        for name, value in params.items():
            if value:
                getattr(request, f"set_{name}")(value)
        body = client.do_action_with_exception(request)
        if body is None:  # aliyunsdkcore returns no body only with the error it raises
            raise RuntimeError(f"{request_class.__name__}: the local endpoint answered no body")
        return json.loads(body)

    def start(self, client: AcsClient, input_text: str, name: str | None = None, *,
              flow_name: str | None = None) -> str:
        return self._call(client, StartExecutionRequest, flow_name, Input=input_text,
                          ExecutionName=name)["Name"]

    def describe(self, client: AcsClient, name: str, wait_seconds: int = 0, *,
                 flow_name: str | None = None) -> dict[str, Any]:
        return self._call(client, DescribeExecutionRequest, flow_name, ExecutionName=name,
                          WaitTimeSeconds=wait_seconds)

    def history(self, client: AcsClient, name: str, *, flow_name: str | None = None) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        next_token = None
        while True:
            page = self._call(client, GetExecutionHistoryRequest, flow_name, ExecutionName=name,
                              NextToken=next_token)
            events.extend(page["Events"])
            next_token = page.get("NextToken")
            if not next_token:
                return events


@dataclass
class Outcome:
    """One execution as the caller saw it, plus the local timeline."""

    description: dict[str, Any]
    history: list[dict[str, Any]]
    pushes: list[Pushed] = field(default_factory=list)
    ending: str = "succeeded"  # one of ENDINGS

    @property
    def status(self) -> str:
        return self.description["Status"]

    @property
    def output(self) -> Any:
        text = self.description.get("Output")
        return json.loads(text) if text else None


def started_topic(stack: LocalStack) -> Topic:
    """The driven flow's topic, there once the stack is entered (``with LocalStack.from_render(...)``)."""
    if stack.topic is None:
        raise RuntimeError("the local stack is not started: enter it with `with LocalStack.from_render(...)` first")
    return stack.topic


def run_one(stack: LocalStack, input_text: str, *, deadline_seconds: float = 120.0,
            flow_name: str | None = None) -> Outcome:
    """Starts one execution of ``flow_name`` (default the stack's flow) over the SDK and
    long-polls DescribeExecution until it ends."""
    flow_name = flow_name or stack.flow_name
    client = stack.client()
    name = stack.start(client, input_text, flow_name=flow_name)
    deadline = time.monotonic() + deadline_seconds
    while True:
        remaining = int(max(1, min(60, deadline - time.monotonic())))
        description = stack.describe(client, name, wait_seconds=remaining, flow_name=flow_name)
        if description["Status"] != "Running" or time.monotonic() >= deadline:
            break
    for topic in stack.topics.values():
        topic.drain(timeout=5)  # let the delivery threads record their results
    pushes = [p for p in stack.pushed if p.key.startswith(f"{name}:")]
    ending = ending_of(stack.engine.execution(flow_name, name))
    return Outcome(description, stack.history(client, name, flow_name=flow_name), pushes, ending)


def _percentile(sorted_values: Sequence[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values) + 0.5) - 1))
    return round(sorted_values[index], 1)


def ending_of(execution: Execution) -> str:
    """Pure: how one execution ended, exactly one of ``ENDINGS``.

    A task timeout means the callback never arrived, whatever the flow made of
    it afterwards: a catch that ends the execution "Succeeded" with
    ``{"status": "timeout"}`` is still a lost callback, so it counts as
    ``timed_out``, never as ``succeeded``.
    """
    if execution.status == "Running":
        return "still_running"
    if execution.timed_out:
        return "timed_out"
    if execution.status == "Succeeded":
        return "caught" if execution.caught else "succeeded"
    return "failed"


# The summary's partition of the executions: every one is counted in exactly one.
ENDINGS = ("succeeded", "caught", "failed", "timed_out", "still_running")


def summarize(stack: LocalStack, executions: list[Execution], wall: float) -> dict[str, Any]:
    """The fault run's summary: how the executions ended (a partition), what was
    lost (nothing, we hope), latencies. ``all_callbacks_arrived`` is true only
    when every execution succeeded with its work's output."""
    endings = {name: 0 for name in ENDINGS}
    for execution in executions:
        endings[ending_of(execution)] += 1
    assert sum(endings.values()) == len(executions)
    latencies = sorted((e.stopped - e.started) * 1000 for e in executions if e.stopped)
    tokens = stack.engine.tokens
    stats = started_topic(stack).snapshot()
    refused = [code for _token, code in tokens.refused]
    return {
        "executions": len(executions),
        "started": len(executions),
        **endings,
        "all_callbacks_arrived": endings["succeeded"] == len(executions),
        "not_succeeded": sorted(
            f"{e.name}: {ending_of(e)}: {e.status} {e.error}: {e.cause}" if not e.caught
            else f"{e.name}: {ending_of(e)}: caught {e.caught}, output {e.output}"
            for e in executions if ending_of(e) != "succeeded"),
        "reports": len(tokens.reports),
        "duplicate_reports": refused.count("TaskAlreadyCompleted"),
        "messages_published": stats.published,
        "messages_delivered": stats.delivered,
        "messages_undelivered": stats.undelivered,
        "messages_redelivered": stats.redeliveries,
        "duplicate_deliveries": stats.duplicates,
        "pushes_dropped": stats.dropped,
        "answers_lost": stats.answers_lost,
        "dead_lettered": stats.dead_lettered,
        "redriven": stack.redriven,
        "fnf_faults": dict(sorted(stack.fnf.faults.injected.items())),
        "latency_ms": {"p50": _percentile(latencies, 0.50), "p95": _percentile(latencies, 0.95),
                       "p99": _percentile(latencies, 0.99)},
        "wall_seconds": round(wall, 2),
    }


def redrive_dead_letters(stack: LocalStack, *, settle_seconds: float = 60.0) -> list[Any]:
    """Runs ``infra.redrive`` against the local MNS endpoint once the outage is over and
    every delivery in flight has ended (each delivered or dead-lettered)."""
    from mns.account import Account

    from infra.redrive import PUBLISHED, redrive

    if stack.topic is None or stack.dead_letters is None:
        raise ValueError("redrive needs a started stack with a dead-letter queue (deadLetterQueue: true)")
    time.sleep(max(0.0, stack.outage_ends - time.monotonic()))
    deadline = time.monotonic() + settle_seconds
    while time.monotonic() < deadline:
        stack.topic.drain(timeout=max(0.0, deadline - time.monotonic()))
        if not stack.topic.in_flight():
            break
    account = Account(stack.mns.url, *stack.operator_key)
    outcomes = redrive(account.get_queue(stack.dead_letters.name), account.get_topic(stack.topic_name))
    stack.redriven += sum(1 for o in outcomes if o.result == PUBLISHED)
    return outcomes


def run_many(stack: LocalStack, input_text: str, count: int, *, concurrency: int = 16,
             deadline_seconds: float = 120.0, redrive: bool = False) -> dict[str, Any]:
    """Starts ``count`` executions over the SDK at once, waits for all, summarizes.

    ``redrive``: once every message was delivered or dead-lettered and the outage
    is over, redrive the dead letters (``infra.redrive``) before waiting."""
    started_at = time.monotonic()
    local = threading.local()

    def start(index: int) -> str:
        if not hasattr(local, "client"):
            local.client = stack.client()
        for attempt in range(5):  # the caller retries its own transport failures
            try:
                return stack.start(local.client, input_text, name=f"run-{index:05d}")
            except ClientException:
                time.sleep(0.05 * (attempt + 1))
            except ServerException as err:
                if err.get_error_code() == "ExecutionAlreadyExists":
                    return f"run-{index:05d}"
                raise
        raise RuntimeError(f"could not start execution run-{index:05d}")

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        names = list(pool.map(start, range(count)))
    if redrive:
        _wait_published(stack, count, deadline_seconds)
        redrive_dead_letters(stack)
    stack.engine.wait_all(deadline_seconds)  # what still runs after it is counted as still_running
    started_topic(stack).drain(timeout=10)
    executions = [stack.engine.execution(stack.flow_name, n) for n in names]
    return summarize(stack, executions, time.monotonic() - started_at)


def _wait_published(stack: LocalStack, count: int, timeout: float) -> None:
    """Until the engine has published one message per started execution."""
    assert stack.topic is not None
    deadline = time.monotonic() + timeout
    while stack.topic.snapshot().published < count and time.monotonic() < deadline:
        time.sleep(0.01)
