"""The pattern's args, resolved: defaults derived from the component's name, every plain
value checked against the platform's rules, each error naming the arg.

Pure: ``resolve(name, args)`` touches neither Pulumi's engine nor the network,
so tests and the component provider call it directly. Values that may be
Outputs (the region, the topic, the log project and store, tags, the
resource group) pass through untouched and are checked when they resolve
(``checked_topic_name``, ``checked_log_name``).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NotRequired, Required, TypedDict

import pulumi

from mns_callback_flow import checks
from mns_callback_flow.errors import InvalidArgument
from mns_callback_flow.limits import (
    DEFAULT_FUNCTION_TIMEOUT_SECONDS,
    DEFAULT_MEMORY_MB,
    DEFAULT_TASK_TIMEOUT_SECONDS,
    FLOW_SPECS,
    FUNCTION_COMPUTE_VERSIONS,
    MAX_FUNCTION_TIMEOUT_SECONDS,
    MAX_TASK_TIMEOUT_SECONDS,
    MIN_QUEUE_RETENTION_SECONDS,
    MNS_ANSWER_BUDGET_SECONDS,
    NAME_PREFIX_PATTERN,
    NOTIFY_CONTENT_FORMATS,
    NOTIFY_STRATEGIES,
)
from mns_callback_flow.ram_grants import Tags
from mns_callback_flow.task import CallbackTask, CatchRule, OutputMapping, RetryRule


class TaskRetryArgs(TypedDict, total=False):
    """One retry rule of the task step (FDL ``retry``, CloudFlow ``Retry``)."""

    errors: Required[list[str]]
    """Error names this rule retries, e.g. ``["FnF.TaskTimeout"]`` or ``["FnF.ALL"]``."""
    interval_seconds: int
    """Seconds before the first retry, 1-86400 (default 1)."""
    max_attempts: int
    """Retries at most, 1-100 (default 3)."""
    multiplier: float
    """Each interval is the previous one times this, 1-100 (default 2)."""
    max_interval_seconds: int
    """The longest interval, at least ``interval_seconds``."""


class TaskCatchFailArgs(TypedDict, total=False):
    """How a catch rule fails the flow."""

    error: Required[str]
    """The flow's error name: 1-128 letters, digits or ``_ . : -``."""
    cause: str
    """The flow's error cause, at most 4096 characters."""


class TaskCatchArgs(TypedDict, total=False):
    """One catch rule: on these errors (after retries), end the flow with ``status`` or ``fail``."""

    errors: Required[list[str]]
    """Error names this rule catches (``FnF.ALL``: every error)."""
    status: NotRequired[str]
    """End the flow successfully with output ``{"status": <status>}``."""
    fail: NotRequired[TaskCatchFailArgs]
    """End the flow failed with this error and cause."""


class TaskOutputMappingArgs(TypedDict):
    """One output mapping of the task step."""

    target: str
    """The output field: 1-128 letters, digits, ``_`` or ``-``."""
    source: str
    """``$local[.field...]`` (what the work reported), ``$input...``, ``$context...`` (FDL only),
    or a constant not starting with ``$``."""


@dataclass(frozen=True)
class PatternSpec:
    """The pattern's args with every default applied and every plain value checked."""

    name_prefix: str
    region: pulumi.Input[str] | None  # None: the provider's region
    topic_name: pulumi.Input[str]
    create_topic: bool
    subscription_name: str
    flow_name: str
    function_name: str
    function_compute: str
    runtime: str
    memory_size: int
    cpu: float | None  # None on FC 2.0
    function_timeout_seconds: int
    task_timeout_seconds: int
    task_retry: tuple[RetryRule, ...]
    task_catch: tuple[CatchRule, ...]
    task_output_mappings: tuple[OutputMapping, ...]
    notify_strategy: str
    notify_content_format: str
    verify_signature: bool
    signing_cert_url_prefixes: tuple[str, ...]
    work: str | None
    work_dir: str | None
    log_project: pulumi.Input[str] | None
    log_store: pulumi.Input[str] | None
    flow_spec: str
    dead_letter_queue_name: str | None
    tags: Any  # pulumi.Input[Mapping[str, pulumi.Input[str]]] | None
    resource_group_id: pulumi.Input[str] | None
    build_dir: str | None

    @property
    def dead_letter_retention_seconds(self) -> int:
        """The task's whole wait, at least the queue's minimum: a dead letter is worth redriving until then."""
        return max(MIN_QUEUE_RETENTION_SECONDS, self.task_timeout_seconds)

    def task(self, topic_name: str) -> CallbackTask:
        """The callback task step, once the topic's name is known."""
        return CallbackTask(
            topic_name=topic_name, timeout_seconds=self.task_timeout_seconds, retry=self.task_retry,
            catch=self.task_catch, output_mappings=self.task_output_mappings,
        )


class CallbackPatternArgs(TypedDict, total=False):
    """What the pattern can be told. Everything has a default; names derive from ``name_prefix``."""

    name_prefix: str
    """Prefix of every cloud name (``<prefix>-topic``, ``-flow``, ``-callback``, ``-callback-sub``,
    ``-dlq``): 1-40 letters, digits or hyphens, starting with a letter. Default: the component's name."""
    region: pulumi.Input[str]
    """The region the pattern is deployed to. Default: the provider's (``alicloud:region``)."""
    topic_name: pulumi.Input[str]
    """The MNS topic. Default ``<prefix>-topic``; required with ``create_topic`` false (it may be
    another stack's output)."""
    create_topic: bool
    """Create the topic (default) or subscribe to an existing topic of that name."""
    function_compute: str
    """``"3.0"`` (default: ``fc.V3Function``) or ``"2.0"`` (``fc.Service`` + ``fc.Function``)."""
    runtime: str
    """FC Python runtime: ``python3.10`` (default), ``python3.9``, or ``python3.12`` on FC 3.0."""
    memory_size: int
    """Function memory in MB, a multiple of 64 in 128-32768 (default 256)."""
    cpu: float
    """vCPU of an FC 3.0 function, in 0.05 steps, 1:1 to 1:4 of memory in GB.
    Default: the least that ratio allows."""
    function_timeout_seconds: int
    """Seconds FC lets one push run, above MNS's 5 s answer window (default 10)."""
    task_timeout_seconds: int
    """Seconds the task step waits for its callback (default 3600)."""
    task_retry: Sequence[TaskRetryArgs]
    """Retry rules of the task step, in order."""
    task_catch: Sequence[TaskCatchArgs]
    """Catch rules of the task step, in order: end the flow with a status, or fail it."""
    task_output_mappings: Sequence[TaskOutputMappingArgs]
    """The task step's output mappings. Default: none, so the flow outputs what the work reported."""
    notify_strategy: str
    """MNS redelivery: ``EXPONENTIAL_DECAY_RETRY`` (default) or ``BACKOFF_RETRY``."""
    notify_content_format: str
    """Push body format: ``JSON`` (default), ``XML`` or ``SIMPLIFIED``."""
    verify_signature: bool
    """Check each push's MNS signature and topic (default true; false only for local tests)."""
    signing_cert_url_prefixes: Sequence[str]
    """Extra https URL prefixes the handler may fetch MNS signing certificates from."""
    work: str
    """The work function, ``module:function``, in ``work_dir`` when given. Default: the built-in
    work, which reports ``{"status": "success"}``."""
    work_dir: str
    """A directory of your own work code, merged into the archive beside the handler; its
    ``requirements.txt`` is vendored by the handler's rules. Needs ``work``."""
    log_project: pulumi.Input[str]
    """Simple Log Service project for the function's logs (with ``log_store``)."""
    log_store: pulumi.Input[str]
    """Logstore in ``log_project``."""
    flow_spec: str
    """``fdl`` (default: FDL v1) or ``cloudflow`` (the CloudFlow state machine spec)."""
    dead_letter_queue: bool
    """Give the subscription a dead-letter queue ``<prefix>-dlq`` (default true)."""
    tags: Tags
    """Tags for every resource that takes them (topic, queue, function or service, roles, policies)."""
    resource_group_id: pulumi.Input[str]
    """Resource group of the resources that take one (the FC 3.0 function)."""
    build_dir: str
    """FC 2.0 only: where the archive file is written (default ``build/`` in the working directory)."""


ARG_NAMES: tuple[str, ...] = tuple(CallbackPatternArgs.__annotations__)


def _is_plain(value: object) -> bool:
    """A value known now (not an Output or awaitable), so it can be checked before registering."""
    return not isinstance(value, pulumi.Output) and not hasattr(value, "__await__")


def checked_topic_name(name: object) -> str:
    """The topic's name, or InvalidArgument on ``topic_name`` (MNS CreateTopic's naming rule)."""
    return checks.topic_name("topic_name", name)


def checked_log_name(key: str, name: object) -> str:
    """A log project (``log_project``) or logstore (``log_store``) name, or InvalidArgument on it."""
    return checks.log_project(key, name) if key == "log_project" else checks.log_store(key, name)


def resolve(name: str, args: Mapping[str, Any]) -> PatternSpec:
    """``args`` of the component called ``name``, resolved and checked (see the module docstring)."""
    for key in sorted(args):
        if key not in ARG_NAMES:
            raise InvalidArgument(key, args[key], f"unknown argument; known: {', '.join(ARG_NAMES)}")
    given = {key: value for key, value in args.items() if value is not None}

    prefix = checks.text("name_prefix", given.get("name_prefix", name)).strip()
    if not NAME_PREFIX_PATTERN.fullmatch(prefix):
        derived = "" if "name_prefix" in given else f" (derived from the component's name {name!r}; pass name_prefix)"
        raise InvalidArgument("name_prefix", prefix,
                              "must be 1-40 letters, digits or hyphens, starting with a letter" + derived)

    create_topic = checks.boolean("create_topic", given.get("create_topic", True))
    if "topic_name" not in given and not create_topic:
        raise InvalidArgument("topic_name", None, "required when create_topic is false: name the existing topic")
    names = checks.derived_names(prefix)
    topic_name = given.get("topic_name", names["topic_name"])
    if _is_plain(topic_name):
        checked_topic_name(topic_name)

    function_compute = checks.choice("function_compute", given.get("function_compute", "3.0"),
                                     FUNCTION_COMPUTE_VERSIONS)
    runtime = checks.runtime("runtime", given.get("runtime", "python3.10"), function_compute=function_compute,
                             function_compute_key="function_compute")
    memory = checks.memory_size("memory_size", given.get("memory_size", DEFAULT_MEMORY_MB))
    cpu = checks.function_cpu("cpu", given.get("cpu"), function_compute=function_compute, memory_mb=memory,
                              memory_key="memory_size", function_compute_key="function_compute")

    checks.log_pair("log_project", "log_project" in given, "log_store", "log_store" in given,
                    project_name="log_project", store_name="log_store", missing=None)
    for key in ("log_project", "log_store"):
        if key in given and _is_plain(given[key]):
            checked_log_name(key, given[key])

    raw_timeout = given.get("task_timeout_seconds", DEFAULT_TASK_TIMEOUT_SECONDS)
    task_timeout = checks.ranged("task_timeout_seconds", raw_timeout, 1, MAX_TASK_TIMEOUT_SECONDS)
    dead_letter_queue = checks.boolean("dead_letter_queue", given.get("dead_letter_queue", True))
    checks.task_fits_dead_letter_queue("task_timeout_seconds", raw_timeout, task_timeout,
                                       dead_letter_queue=dead_letter_queue, dead_letter_queue_key="dead_letter_queue")
    flow_spec = checks.choice("flow_spec", given.get("flow_spec", "fdl"), FLOW_SPECS)
    output_mappings = checks.output_mappings("task_output_mappings", _listed(given.get("task_output_mappings", [])))
    checks.task_fits_cloudflow("task_timeout_seconds", raw_timeout, task_timeout, "task_output_mappings",
                               output_mappings, flow_spec=flow_spec, flow_spec_key="flow_spec")

    work = checks.work_reference("work", given.get("work", ""))
    work_dir = checks.optional_text("work_dir", given.get("work_dir", ""))
    if work_dir is not None and work is None:
        raise InvalidArgument("work", None, "required with work_dir: name the work function, module:function")

    return PatternSpec(
        name_prefix=prefix,
        region=given.get("region"),
        topic_name=topic_name,
        create_topic=create_topic,
        subscription_name=names["subscription_name"],
        flow_name=names["flow_name"],
        function_name=names["function_name"],
        function_compute=function_compute,
        runtime=runtime,
        memory_size=memory,
        cpu=cpu,
        function_timeout_seconds=checks.ranged(
            "function_timeout_seconds", given.get("function_timeout_seconds", DEFAULT_FUNCTION_TIMEOUT_SECONDS),
            MNS_ANSWER_BUDGET_SECONDS + 1, MAX_FUNCTION_TIMEOUT_SECONDS,
        ),
        task_timeout_seconds=task_timeout,
        task_retry=checks.retry_rules("task_retry", _listed(given.get("task_retry", [])), snake_case=True),
        task_catch=checks.catch_rules("task_catch", _listed(given.get("task_catch", []))),
        task_output_mappings=output_mappings,
        notify_strategy=checks.choice("notify_strategy", given.get("notify_strategy", "EXPONENTIAL_DECAY_RETRY"),
                                      NOTIFY_STRATEGIES),
        notify_content_format=checks.choice("notify_content_format", given.get("notify_content_format", "JSON"),
                                            NOTIFY_CONTENT_FORMATS),
        verify_signature=checks.boolean("verify_signature", given.get("verify_signature", True)),
        signing_cert_url_prefixes=checks.cert_url_prefixes("signing_cert_url_prefixes",
                                                           _listed(given.get("signing_cert_url_prefixes", []))),
        work=work,
        work_dir=work_dir,
        log_project=given.get("log_project"),
        log_store=given.get("log_store"),
        flow_spec=flow_spec,
        dead_letter_queue_name=names["dead_letter_queue_name"] if dead_letter_queue else None,
        tags=given.get("tags"),
        resource_group_id=given.get("resource_group_id"),
        build_dir=checks.optional_text("build_dir", given.get("build_dir", "")),
    )


def _listed(value: object) -> object:
    """A tuple as the list the checks take; anything else as given, for the checks to judge
    (``list()`` would split a string into characters and a mapping into its keys)."""
    return list(value) if isinstance(value, tuple) else value
