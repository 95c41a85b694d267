"""Typed, validated stack settings.

Every config value is checked here, before a single resource is registered, so a
typo fails `pulumi preview` with one clear line naming the key, the value and the
rule, instead of a provider error half-way through an update.

`settings_from_mapping` is pure (tests, `infra.synth` and the local runner call it
with plain dicts); `load_settings` is the one function that touches Pulumi.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mns_callback_flow import checks
from mns_callback_flow.errors import InvalidArgument
from mns_callback_flow.limits import (
    DEFAULT_FUNCTION_TIMEOUT_SECONDS,
    DEFAULT_MEMORY_MB,
    DEFAULT_TASK_TIMEOUT_SECONDS,
    FLOW_SPECS,
    FUNCTION_COMPUTE_VERSIONS,
    MAX_CLOUDFLOW_TASK_TIMEOUT_SECONDS,
    MAX_FUNCTION_TIMEOUT_SECONDS,
    MAX_QUEUE_RETENTION_SECONDS,
    MAX_TASK_TIMEOUT_SECONDS,
    MIN_QUEUE_RETENTION_SECONDS,
    MNS_ANSWER_BUDGET_SECONDS,
    MNS_NAME_PATTERN,
    NAME_PREFIX_PATTERN,
    NOTIFY_CONTENT_FORMATS,
    NOTIFY_STRATEGIES,
    REGION_PATTERN,
    RUNTIMES,
    RUNTIMES_BY_FC,
    cpu_refusal,
    default_cpu,
    runtime_refusal,
    vcpu,
)
from mns_callback_flow.task import CallbackTask, CatchRule, OutputMapping, RetryRule

# Re-exported: the project's config speaks of the same rules and rule types.
__all__ = [
    "MAX_CLOUDFLOW_TASK_TIMEOUT_SECONDS",
    "MAX_QUEUE_RETENTION_SECONDS",
    "MNS_NAME_PATTERN",
    "PROJECT",
    "PROJECT_KEYS",
    "REGION_KEY",
    "REGION_PATTERN",
    "RUNTIMES",
    "RUNTIMES_BY_FC",
    "CatchRule",
    "ConfigError",
    "OutputMapping",
    "RetryRule",
    "Settings",
    "cpu_refusal",
    "default_cpu",
    "full_key",
    "load_settings",
    "runtime_refusal",
    "settings_from_mapping",
    "vcpu",
]

PROJECT = "mns-callback-flow"
REGION_KEY = "alicloud:region"

# The project's own keys (without namespace), each typed in Pulumi.yaml's schema.
PROJECT_KEYS: tuple[str, ...] = (
    "namePrefix",
    "topicName",
    "createTopic",
    "functionCompute",
    "runtime",
    "memorySize",
    "cpu",
    "functionTimeoutSeconds",
    "taskTimeoutSeconds",
    "taskRetry",
    "taskCatch",
    "taskOutputMappings",
    "notifyStrategy",
    "notifyContentFormat",
    "verifySignature",
    "signingCertUrlPrefixes",
    "callbackWork",
    "logProject",
    "logStore",
    "flowSpec",
    "deadLetterQueue",
)


class ConfigError(InvalidArgument):
    """A config value broke a rule; the message names the key, the value and the rule."""

    @staticmethod
    def describe(key: str, value: object, rule: str) -> str:
        return f"config {key}={value!r}: {rule}"


@dataclass(frozen=True)
class Settings:
    """Everything the stack needs to know, validated."""

    stack: str
    region: str
    name_prefix: str
    topic_name: str
    create_topic: bool
    subscription_name: str
    flow_name: str
    function_name: str
    function_compute: str
    runtime: str
    memory_size: int
    cpu: float | None  # vCPU of an FC 3.0 function; None for FC 2.0 (fc.Function takes no cpu)
    function_timeout_seconds: int
    task_timeout_seconds: int
    task_retry: tuple[RetryRule, ...]
    task_catch: tuple[CatchRule, ...]
    notify_strategy: str
    notify_content_format: str
    verify_signature: bool
    signing_cert_url_prefixes: tuple[str, ...]  # empty: the handler's documented default
    callback_work: str | None  # ``module:function`` in function/; None: the built-in work
    log_project: str | None
    log_store: str | None
    # Empty: the task step has no outputMappings, so its output (and the flow's)
    # is the whole Output the work function reported (docs/platform-facts.md
    # "FDL output mappings").
    task_output_mappings: tuple[OutputMapping, ...] = ()
    flow_spec: str = "fdl"  # one of FLOW_SPECS
    # The subscription's dead-letter queue, ``<prefix>-dlq``; None: no dead-letter
    # queue (``deadLetterQueue: false``), a push whose retries fail is discarded.
    dead_letter_queue_name: str | None = None

    @property
    def callback_task(self) -> CallbackTask:
        """The task step these settings configure, as both flow builders take it."""
        return CallbackTask(
            topic_name=self.topic_name, timeout_seconds=self.task_timeout_seconds, retry=self.task_retry,
            catch=self.task_catch, output_mappings=self.task_output_mappings,
        )

    @property
    def dead_letter_retention_seconds(self) -> int:
        """How long the dead-letter queue keeps a message: the task's whole wait, at
        least the provider's minimum (a dead letter is worth redriving until then)."""
        return max(MIN_QUEUE_RETENTION_SECONDS, self.task_timeout_seconds)


def full_key(name: str) -> str:
    """`topicName` -> `mns-callback-flow:topicName`."""
    return f"{PROJECT}:{name}"


# ---- the whole mapping ---------------------------------------------------------


def settings_from_mapping(values: Mapping[str, object], *, stack: str = "dev") -> Settings:
    """Validate full config keys (`mns-callback-flow:topicName`, `alicloud:region`) into Settings.

    Values may be Pulumi's strings or already typed. Unknown project keys are
    refused (a misspelt key must not be silently ignored); other namespaces
    (provider credentials and the like) are not ours and are left alone.
    The shared checks (``mns_callback_flow.checks``) are given full config keys,
    so what they raise is re-raised as the ConfigError of that key.
    """
    try:
        return _settings_from_mapping(values, stack=stack)
    except ConfigError:
        raise
    except InvalidArgument as error:
        raise ConfigError(error.key, error.value, error.rule) from None


def _settings_from_mapping(values: Mapping[str, object], *, stack: str) -> Settings:
    prefix_ns = f"{PROJECT}:"
    for key in sorted(values):
        if key.startswith(prefix_ns) and key[len(prefix_ns):] not in PROJECT_KEYS:
            raise ConfigError(key, values[key], f"unknown key; known keys: {', '.join(PROJECT_KEYS)}")

    def get(name: str, default: object) -> object:
        value = values.get(full_key(name))
        return default if value is None else value

    region = values.get(REGION_KEY)
    if region is None or region == "":
        raise ConfigError(REGION_KEY, region, "required: the region to deploy into, e.g. cn-hangzhou")
    region = checks.text(REGION_KEY, region)
    if not REGION_PATTERN.fullmatch(region):
        raise ConfigError(REGION_KEY, region, "expected a region id like cn-hangzhou, ap-southeast-1 or eu-central-1")

    name_prefix = checks.text(full_key("namePrefix"), get("namePrefix", "")).strip()
    if not name_prefix:
        derived = f"mns-callback-{stack}"
        if not NAME_PREFIX_PATTERN.fullmatch(derived):
            raise ConfigError(
                full_key("namePrefix"), "",
                f"unset, and the stack name {stack!r} gives an invalid prefix {derived!r}: set namePrefix "
                "(1-40 letters, digits or hyphens, starting with a letter)",
            )
        name_prefix = derived
    elif not NAME_PREFIX_PATTERN.fullmatch(name_prefix):
        raise ConfigError(
            full_key("namePrefix"), name_prefix, "must be 1-40 letters, digits or hyphens, starting with a letter"
        )

    create_topic = checks.boolean(full_key("createTopic"), get("createTopic", True))
    topic_name = checks.text(full_key("topicName"), get("topicName", "")).strip()
    if not topic_name:
        if not create_topic:
            raise ConfigError(
                full_key("topicName"), "", "required when createTopic is false: name the existing topic to publish to"
            )
        topic_name = checks.derived_names(name_prefix)["topic_name"]
    checks.topic_name(full_key("topicName"), topic_name)

    function_timeout = checks.ranged(
        full_key("functionTimeoutSeconds"),
        get("functionTimeoutSeconds", DEFAULT_FUNCTION_TIMEOUT_SECONDS),
        MNS_ANSWER_BUDGET_SECONDS + 1,
        MAX_FUNCTION_TIMEOUT_SECONDS,
    )
    memory = checks.memory_size(full_key("memorySize"), get("memorySize", DEFAULT_MEMORY_MB))

    function_compute = checks.choice(
        full_key("functionCompute"), get("functionCompute", "3.0"), FUNCTION_COMPUTE_VERSIONS
    )
    runtime = checks.runtime(full_key("runtime"), get("runtime", "python3.10"), function_compute=function_compute,
                             function_compute_key="functionCompute")
    cpu = checks.function_cpu(full_key("cpu"), get("cpu", ""), function_compute=function_compute, memory_mb=memory,
                              memory_key=full_key("memorySize"), function_compute_key="functionCompute")

    log_project = checks.optional_text(full_key("logProject"), get("logProject", ""))
    log_store = checks.optional_text(full_key("logStore"), get("logStore", ""))
    checks.log_pair(full_key("logProject"), log_project is not None, full_key("logStore"), log_store is not None,
                    project_name="logProject", store_name="logStore", missing="")
    if log_project is not None:
        checks.log_project(full_key("logProject"), log_project)
    if log_store is not None:
        checks.log_store(full_key("logStore"), log_store)

    task_timeout_key, raw_timeout = full_key("taskTimeoutSeconds"), get("taskTimeoutSeconds", DEFAULT_TASK_TIMEOUT_SECONDS)
    task_timeout = checks.ranged(task_timeout_key, raw_timeout, 1, MAX_TASK_TIMEOUT_SECONDS)
    dead_letter_queue = checks.boolean(full_key("deadLetterQueue"), get("deadLetterQueue", True))
    checks.task_fits_dead_letter_queue(task_timeout_key, raw_timeout, task_timeout,
                                       dead_letter_queue=dead_letter_queue, dead_letter_queue_key="deadLetterQueue")
    mappings_key = full_key("taskOutputMappings")
    output_mappings = checks.output_mappings(mappings_key, get("taskOutputMappings", []))
    flow_spec = checks.choice(full_key("flowSpec"), get("flowSpec", "fdl"), FLOW_SPECS)
    checks.task_fits_cloudflow(task_timeout_key, raw_timeout, task_timeout, mappings_key, output_mappings,
                               flow_spec=flow_spec, flow_spec_key="flowSpec")

    names = checks.derived_names(name_prefix)
    return Settings(
        stack=stack,
        region=region,
        name_prefix=name_prefix,
        topic_name=topic_name,
        create_topic=create_topic,
        subscription_name=names["subscription_name"],
        flow_name=names["flow_name"],
        function_name=names["function_name"],
        function_compute=function_compute,
        runtime=runtime,
        memory_size=memory,
        cpu=cpu,
        function_timeout_seconds=function_timeout,
        task_timeout_seconds=task_timeout,
        task_retry=checks.retry_rules(full_key("taskRetry"), get("taskRetry", [])),
        task_catch=checks.catch_rules(full_key("taskCatch"), get("taskCatch", [])),
        notify_strategy=checks.choice(
            full_key("notifyStrategy"), get("notifyStrategy", "EXPONENTIAL_DECAY_RETRY"), NOTIFY_STRATEGIES
        ),
        notify_content_format=checks.choice(
            full_key("notifyContentFormat"), get("notifyContentFormat", "JSON"), NOTIFY_CONTENT_FORMATS
        ),
        verify_signature=checks.boolean(full_key("verifySignature"), get("verifySignature", True)),
        signing_cert_url_prefixes=checks.cert_url_prefixes(
            full_key("signingCertUrlPrefixes"), get("signingCertUrlPrefixes", "")
        ),
        callback_work=checks.work_reference(full_key("callbackWork"), get("callbackWork", "")),
        log_project=log_project,
        log_store=log_store,
        task_output_mappings=output_mappings,
        flow_spec=flow_spec,
        dead_letter_queue_name=names["dead_letter_queue_name"] if dead_letter_queue else None,
    )


def _project_keys_set() -> list[str]:
    """Every key of the project's namespace the stack sets, known or not.

    ``pulumi.Config`` can only be asked for keys by name, so a misspelt key
    would go unseen; the runtime's whole config (set by the language host, or
    ``PULUMI_CONFIG``) lists them all. Keys may arrive as ``<project>:config:<key>``.
    """
    from pulumi.runtime.config import CONFIG, get_config_env

    names = set()
    for key in (*CONFIG.get(), *get_config_env()):
        namespace, _, name = key.partition(":")
        if namespace == PROJECT and name:
            names.add(name.removeprefix("config:"))
    return sorted(names)


def load_settings() -> Settings:
    """Read the stack's config through Pulumi once and validate it (unknown project keys included)."""
    import pulumi  # only here: everything else in this module is pure

    project, provider = pulumi.Config(), pulumi.Config("alicloud")
    names = sorted(set(PROJECT_KEYS) | set(_project_keys_set()))
    values: dict[str, object] = {full_key(name): project.get(name) for name in names}
    values[REGION_KEY] = provider.get("region")
    return settings_from_mapping({k: v for k, v in values.items() if v is not None}, stack=pulumi.get_stack())
