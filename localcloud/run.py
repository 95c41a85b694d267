"""The whole pattern on loopback: FnF endpoint + engine, MNS topic, FC-served handler.

``LocalStack(settings)`` starts, in this process: the certificate server of
the MNS signing identity, the FnF endpoint backed by the engine running the
flow that ``mns_callback_flow.flow_definition`` (or ``mns_callback_flow.cloudflow_definition`` under
``flowSpec: cloudflow``) builds for these settings, the real
handler from ``function/`` behind an FC HTTP trigger (FC 3.0 or 2.0 as the
stack says, its environment as the stack sets it, pointed at the local
endpoints), and the topic pushing to that trigger in the stack's notify format
with its retry strategy. The topic's MNS data-plane API (``mns_api``) takes
PublishMessage from any client, and the subscription's dead-letter queue (when
the stack has one) keeps what the pushes could not deliver. ``run_one`` /
``run_many`` drive it through the real SDK as a caller would.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any, Self

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

from infra.config import Settings
from localcloud import cloudflow, fdl
from localcloud.engine import DeployedFlow, Engine, Execution
from localcloud.faults import FaultPlan
from localcloud.fc_runtime import FcRuntime, FunctionMeta
from localcloud.fnf_api import Credentials, FnFEndpoint
from localcloud.mns_api import LocalQueue, MnsEndpoint, Published
from localcloud.mns_push import CertServer, Delivery, Message, Pusher, Subscription
from localcloud.topic import Topic
from mns_callback_flow.cloudflow_definition import build_cloudflow_definition
from mns_callback_flow.flow_definition import build_flow_definition
from mns_callback_flow.function_environment import (
    function_environment as stack_function_environment,
)

ROOT = Path(__file__).resolve().parent.parent
# Seconds of the cloud per second here: 0.01 turns a 600 s task timeout into
# 6 s and MNS's 10-20 s BACKOFF_RETRY into 0.1-0.2 s. Only the flow's and the
# topic's timers scale: the handler keeps its real 4 s report budget and MNS its
# 5 s answer window, so a task timeout that scales below ~5 s can expire while
# a push is still being handled, which the cloud would not do.
DEFAULT_TIME_SCALE = 0.01
# The account that owns everything locally: the topic's owner in its pushes and FC's FC_ACCOUNT_ID.
LOCAL_ACCOUNT_ID = "1234567890123456"


def function_environment(settings: Settings, fnf_url: str, cert_prefix: str) -> dict[str, str]:
    """The variables the stack gives the function (mns_callback_flow/function_environment.py), made local.

    ``FNF_ENDPOINT`` points at the local endpoint instead of the region's, and
    ``MNS_CERT_URL_PREFIXES`` admits only the local certificate server (the
    stack's ``signingCertUrlPrefixes`` name cloud hosts, which no local push uses).
    """
    return {
        **stack_function_environment(
            settings.region, settings.verify_signature, topic_owner=LOCAL_ACCOUNT_ID,
            topic_name=settings.topic_name, notify_content_format=settings.notify_content_format,
            work=settings.callback_work, endpoint=fnf_url,
        ),
        "MNS_CERT_URL_PREFIXES": cert_prefix,
    }


@dataclass
class Pushed:
    """One message's delivery as the topic ended it, for the run's timeline."""

    key: str  # <execution>:<event id> of the TaskSubmitted event that published it
    at: float
    delivery: Delivery


class LocalStack:
    """Everything on loopback; use as a context manager. Raises ``fdl.UnsupportedFlow``
    for a definition it cannot run and ``OSError`` for a port it cannot bind."""

    def __init__(self, settings: Settings, *, source_dir: Path | str = ROOT / "function",
                 time_scale: float = DEFAULT_TIME_SCALE, fnf_port: int = 0, trigger_port: int = 0,
                 faults: FaultPlan | None = None, extra_environment: Mapping[str, str] | None = None,
                 seed: int = 0, mns_port: int = 0, outage_seconds: float = 0.0) -> None:
        self.settings = settings
        if settings.flow_spec == "cloudflow":
            # The stack names its own account's topic; locally that account is LOCAL_ACCOUNT_ID.
            self.definition = build_cloudflow_definition(
                settings.callback_task, flow_name=settings.flow_name, region=settings.region,
                account_id=LOCAL_ACCOUNT_ID)
            self.flow: fdl.Flow | cloudflow.StateMachine = cloudflow.parse_state_machine(self.definition)
        else:
            self.definition = build_flow_definition(settings.callback_task)
            self.flow = fdl.parse_flow(self.definition)
        if self.flow.topics != {settings.topic_name}:
            raise fdl.UnsupportedFlow(f"the flow publishes to {sorted(self.flow.topics)}, but the "
                                      f"local run serves only the stack's topic {settings.topic_name!r}")
        self.source_dir = Path(source_dir)
        self.time_scale = time_scale
        self._ports = (fnf_port, trigger_port, mns_port)
        if outage_seconds < 0:
            raise ValueError(f"outage_seconds must be >= 0, got {outage_seconds}")
        self.outage_seconds = outage_seconds
        self.outage_ends = 0.0  # time.monotonic() when the trigger answers again
        self.dead_letters: LocalQueue | None = None
        self.redriven = 0
        self.faults = faults
        self._extra_env = dict(extra_environment or {})
        self._seed = seed
        self.pushed: list[Pushed] = []
        self._lock = threading.Lock()
        self._stack = ExitStack()
        self.topic: Topic | None = None

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
        s = self.settings
        stack = self._stack
        self.certs = stack.enter_context(CertServer())
        self.engine = Engine([DeployedFlow(s.flow_name, self.definition, self.flow)],
                             self._publish, time_scale=self.time_scale)
        stack.callback(self.engine.stop)
        self.fnf = stack.enter_context(FnFEndpoint(self.engine, port=self._ports[0]))
        if self.faults is not None:
            self.fnf.faults.decider = self.faults.fnf
        self.function_credentials = self.fnf.issue_sts_credentials()
        self.caller_credentials = self.fnf.issue_sts_credentials()
        env = function_environment(s, self.fnf.url, self.certs.url_prefix)
        env.update(self._extra_env)
        self.fc = stack.enter_context(FcRuntime(
            source_dir=self.source_dir, fc_version=s.function_compute,
            credentials=self.function_credentials,
            # docs/platform-facts.md: the python3.12 runtime has no context.credentials.
            context_credentials=s.runtime != "python3.12", region=s.region, account_id=LOCAL_ACCOUNT_ID,
            function=FunctionMeta(name=s.function_name, timeout=s.function_timeout_seconds,
                                  memory=s.memory_size,
                                  handler="index.handler" if s.function_compute == "3.0"
                                  else "index.wsgi_handler"),
            environment=env, port=self._ports[1]))
        subscription = Subscription(self.fc.url, topic_name=s.topic_name, topic_owner=LOCAL_ACCOUNT_ID,
                                    subscription_name=s.subscription_name,
                                    notify_format=s.notify_content_format,
                                    notify_strategy=s.notify_strategy)
        pusher = Pusher(subscription, private_key=self.certs.identity.private_key,
                        cert_url=self.certs.cert_url, time_scale=self.time_scale,
                        rng=Random(self._seed))
        if s.dead_letter_queue_name:
            self.dead_letters = LocalQueue(s.dead_letter_queue_name,
                                           retention_seconds=s.dead_letter_retention_seconds)
        self.topic = Topic(s.topic_name, pusher,
                           fault=self.faults.push if self.faults else None,
                           on_delivery=self._delivered,
                           dead_letter=self._dead_letter if self.dead_letters is not None else None)
        self.mns = stack.enter_context(MnsEndpoint(account_id=LOCAL_ACCOUNT_ID, region=s.region,
                                                   port=self._ports[2]))
        self.mns.topics[s.topic_name] = self._publish_from_client
        if self.dead_letters is not None:
            self.mns.queues[self.dead_letters.name] = self.dead_letters
        self.operator_key = self.mns.issue_access_key()
        # The outage runs from the start, in cloud seconds like every other timer.
        self.outage_ends = time.monotonic() + self.outage_seconds * self.time_scale
        self.fc.unavailable_until = self.outage_ends
        # Closed first (last in, first out): in-flight pushes end while the trigger
        # and the endpoint still serve; the engine then stops what still waits.
        stack.callback(self.topic.close)

    def _publish(self, topic: str, body: str, key: str) -> None:
        assert self.topic is not None and topic == self.topic.name
        self.topic.publish(body, key)

    def _publish_from_client(self, body: str) -> Published:
        """PublishMessage through the MNS endpoint: pushed like the flow's own publish."""
        assert self.topic is not None
        # Keyed by the body, so a seeded fault plan treats a republished message alike every run.
        message = self.topic.publish(body, f"mns:{hashlib.sha256(body.encode()).hexdigest()[:16]}")
        return Published(message.message_id, message.md5)

    def _dead_letter(self, message: Message) -> None:
        # The dead letter's body is the published message itself (what MNS stores is
        # not documented: docs/platform-facts.md; infra.redrive accepts every plausible form).
        assert self.dead_letters is not None
        self.dead_letters.send(message.body)

    def _delivered(self, key: str, delivery: Delivery) -> None:
        with self._lock:
            self.pushed.append(Pushed(key, time.time(), delivery))

    # -- the caller's side, through the real SDK

    def client(self, credentials: Credentials | None = None) -> AcsClient:
        ak, secret, token = credentials or self.caller_credentials
        return AcsClient(credential=StsTokenCredential(ak, secret, token), region_id=self.settings.region,
                         port=self.fnf.port, auto_retry=False, timeout=70, connect_timeout=5)

    def _call(self, client: AcsClient, request_class: type, **params: Any) -> dict[str, Any]:
        """One SDK call about this stack's flow, pointed at the local endpoint."""
        request = request_class()
        request.set_endpoint("127.0.0.1")
        request.set_FlowName(self.settings.flow_name)
        for name, value in params.items():
            if value:
                getattr(request, f"set_{name}")(value)
        body = client.do_action_with_exception(request)
        if body is None:  # aliyunsdkcore returns no body only with the error it raises
            raise RuntimeError(f"{request_class.__name__}: the local endpoint answered no body")
        return json.loads(body)

    def start(self, client: AcsClient, input_text: str, name: str | None = None) -> str:
        return self._call(client, StartExecutionRequest, Input=input_text, ExecutionName=name)["Name"]

    def describe(self, client: AcsClient, name: str, wait_seconds: int = 0) -> dict[str, Any]:
        return self._call(client, DescribeExecutionRequest, ExecutionName=name,
                          WaitTimeSeconds=wait_seconds)

    def history(self, client: AcsClient, name: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        next_token = None
        while True:
            page = self._call(client, GetExecutionHistoryRequest, ExecutionName=name,
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
    """The stack's topic, there once the stack is entered (``with LocalStack(...)``)."""
    if stack.topic is None:
        raise RuntimeError("the local stack is not started: enter it with `with LocalStack(...)` first")
    return stack.topic


def run_one(stack: LocalStack, input_text: str, *, deadline_seconds: float = 120.0) -> Outcome:
    """Starts one execution over the SDK and long-polls DescribeExecution until it ends."""
    client = stack.client()
    name = stack.start(client, input_text)
    deadline = time.monotonic() + deadline_seconds
    while True:
        remaining = int(max(1, min(60, deadline - time.monotonic())))
        description = stack.describe(client, name, wait_seconds=remaining)
        if description["Status"] != "Running" or time.monotonic() >= deadline:
            break
    started_topic(stack).drain(timeout=5)  # let the delivery thread record its result
    pushes = [p for p in stack.pushed if p.key.startswith(f"{name}:")]
    ending = ending_of(stack.engine.execution(stack.settings.flow_name, name))
    return Outcome(description, stack.history(client, name), pushes, ending)


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
    outcomes = redrive(account.get_queue(stack.dead_letters.name), account.get_topic(stack.settings.topic_name))
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
    executions = [stack.engine.execution(stack.settings.flow_name, n) for n in names]
    return summarize(stack, executions, time.monotonic() - started_at)


def _wait_published(stack: LocalStack, count: int, timeout: float) -> None:
    """Until the engine has published one message per started execution."""
    assert stack.topic is not None
    deadline = time.monotonic() + timeout
    while stack.topic.snapshot().published < count and time.monotonic() < deadline:
        time.sleep(0.01)
