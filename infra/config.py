"""Typed, validated stack settings.

Every config value is checked here, before a single resource is registered, so a
typo fails `pulumi preview` with one clear line naming the key, the value and the
rule, instead of a provider error half-way through an update.

`settings_from_mapping` is pure (tests, `infra.synth` and the local runner call it
with plain dicts); `load_settings` is the one function that touches Pulumi.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from infra import provider_limits

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

FUNCTION_COMPUTE_VERSIONS = ("3.0", "2.0")
# docs/platform-facts.md "Python runtimes": python3.10 is GA everywhere (the safe default),
# python3.9 older, python3.12 in public preview in some regions.
RUNTIMES = ("python3.10", "python3.9", "python3.12")
# The Python runtimes each FC generation offers (of those this package can vendor for):
# FC 3.0 lists python3.12 (public preview), 3.10, 3.9 and 3.6 (help.aliyun.com
# /zh/functioncompute/fc-3-0/user-guide/runtime-overview-3), and so does the
# provider's fcv3 `runtime` rule (infra.provider_limits.FCV3_RUNTIMES), which decides
# what previews; FC 2.0 lists python3.10, 3.9 and 3.6 only (help.aliyun.com
# /zh/functioncompute/fc-2-0/user-guide/overview-of-runtimes). The provider's
# fc_function has no runtime rule, so for FC 2.0 the API's list is the one to hold.
RUNTIMES_BY_FC: Mapping[str, tuple[str, ...]] = {
    "3.0": ("python3.10", "python3.9", "python3.12"),
    "2.0": ("python3.10", "python3.9"),
}
RUNTIME_SOURCES: Mapping[str, str] = {
    "3.0": "FC 3.0 \"Runtime overview\" and " + provider_limits.source("fcv3_function") + " `runtime`",
    "2.0": "FC 2.0 \"Overview of runtimes\" (help.aliyun.com/zh/functioncompute/fc-2-0/user-guide/overview-of-runtimes)",
}
# MNS subscription NotifyStrategy values (docs/platform-facts.md "MNS HTTP push").
NOTIFY_STRATEGIES = ("EXPONENTIAL_DECAY_RETRY", "BACKOFF_RETRY")
# MNS subscription NotifyContentFormat values; the handler parses all three.
NOTIFY_CONTENT_FORMATS = ("JSON", "XML", "SIMPLIFIED")

# The flow definition language (docs/platform-facts.md "CloudFlow flow spec"): FDL
# v1 (`type: FDL`, the console sample's) or CloudFlow's state machine spec
# (`Type: StateMachine`, `SpecVersion: v1`; the provider's `type: DEFAULT`).
FLOW_SPECS = ("fdl", "cloudflow")
# CloudFlow Task state `Timeout`: "Valid values: 0 - 604800. A value of 0 indicates
# that the task never times out" (CloudFlow "Task", alibabacloud.com
# serverless-workflow/latest/task-task), so 1-604800 under flowSpec=cloudflow.
MAX_CLOUDFLOW_TASK_TIMEOUT_SECONDS = 604800

# MNS answers a push as failed unless a 2xx arrives within 5 s (docs/platform-facts.md "MNS
# HTTP push"); the function's timeout must leave room beyond that budget, or FC
# kills a handler that is still allowed to answer.
MNS_ANSWER_BUDGET_SECONDS = 5
DEFAULT_FUNCTION_TIMEOUT_SECONDS = 10
# FC caps a function's timeout at 86400 s (FC 3.0 CreateFunction `timeout`).
MAX_FUNCTION_TIMEOUT_SECONDS = 86400
# pulumi-alicloud 4.0.0 fc.V3Function `memory_size`: "a multiple of 64MB. The
# minimum value is 128MB and the maximum value is 32GB"; fc.Function (FC 2.0):
# "Limits to [128, 32768]".
MIN_MEMORY_MB, MAX_MEMORY_MB, MEMORY_STEP_MB = 128, 32768, 64
DEFAULT_MEMORY_MB = 256
# FC 3.0 CreateFunctionInput `cpu` (API 2023-03-30, help.aliyun.com/zh/functioncompute/fc
# /developer-reference/api-fc-2023-03-30-struct-createfunctioninput): vCPU in
# multiples of 0.05, 0.05-16, and cpu : memorySize (in GB) between 1:1 and 1:4,
# i.e. memory_GB / 4 <= cpu <= memory_GB. Held in whole 0.05 steps (twentieths of
# a vCPU) so no float rounding decides a boundary. GB is taken as 1024 MB
# (256 MB at 0.25 vCPU is then exactly 1:1).
CPU_STEPS_PER_VCPU = 20
MIN_CPU_STEPS, MAX_CPU_STEPS = 1, 16 * CPU_STEPS_PER_VCPU
# Serverless Workflow: a flow execution lasts at most one year ("Integrate
# Serverless Workflow", help.aliyun.com document 149829), so a task step cannot
# usefully wait longer. No default timeout exists for waitForCallback
# (docs/platform-facts.md), so we always set one.
MAX_TASK_TIMEOUT_SECONDS = 365 * 24 * 3600
DEFAULT_TASK_TIMEOUT_SECONDS = 3600
# FDL task step `retry` (help.aliyun.com document 122494 "Task steps"):
# intervalSeconds default 1, max 86400; maxIntervalSeconds max 86400;
# maxAttempts default 3; multiplier default 2.
MAX_RETRY_INTERVAL_SECONDS = 86400
MAX_RETRY_ATTEMPTS = 100  # not a platform limit: a guard against typos
# ReportTaskFailed: `Error` 1-128 chars, `Cause` at most 4096 (docs/platform-facts.md); a
# catch rule's error names and a generated fail step use the same bounds.
MAX_ERROR_NAME = 128
MAX_CAUSE = 4096

# MNS topic (and subscription) names: "a maximum of 255 characters in length and
# can contain letters, digits, and hyphens (-). It must start with a letter or
# digit." (MNS API reference "CreateTopic", alibabacloud.com doc-detail 27495).
MNS_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,254}")
# Alibaba Cloud region ids: cn-hangzhou, ap-southeast-1, us-west-1,
# eu-central-1, cn-shanghai-finance-1 ...
REGION_PATTERN = re.compile(r"[a-z]{2}(-[a-z]+)+(-[0-9]+)?")
# Our own prefix rule: the names derived from it must be valid as an MNS topic
# (letters, digits, hyphens), an FC function (must begin with a letter; 1-128
# chars, pulumi-alicloud fc.V3Function `function_name`) and a flow name, with
# room left for the longest suffix.
_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,39}")
# Simple Log Service naming: project 3-63 chars of lowercase letters, digits and
# hyphens, starting and ending with a letter or digit; logstore 2-63 chars, the
# same plus underscores (SLS "Limits on names" / CreateProject, CreateLogStore).
_LOG_PROJECT = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
_LOG_STORE = re.compile(r"[a-z0-9][a-z0-9_-]{0,61}[a-z0-9]")
_ERROR_NAME = re.compile(rf"[A-Za-z0-9_.:-]{{1,{MAX_ERROR_NAME}}}")

# The subscription's dead-letter queue (message.ServiceQueue, pulumi-alicloud 4.0.0
# message/service_queue.py): `message_retention_period` "Valid values: 60 to 604800.
# Unit: seconds". The queue keeps a dead letter at least as long as the task waits
# for its callback, so the provider's bounds bound the task timeout while the
# queue is on (docs/platform-facts.md "MNS data-plane API (queues and topics)").
MIN_QUEUE_RETENTION_SECONDS, MAX_QUEUE_RETENTION_SECONDS = 60, 604800
DEAD_LETTER_QUEUE_SUFFIX = "-dlq"

_TRUE, _FALSE = ("true", "True"), ("false", "False")  # what pulumi.Config.get_bool accepts


class ConfigError(ValueError):
    """A config value broke a rule; the message names the key, the value and the rule."""

    def __init__(self, key: str, value: object, rule: str) -> None:
        self.key, self.value, self.rule = key, value, rule
        super().__init__(f"config {key}={value!r}: {rule}")


@dataclass(frozen=True)
class RetryRule:
    """One FDL `retry` policy of the task step."""

    errors: tuple[str, ...]
    interval_seconds: int = 1
    max_attempts: int = 3
    multiplier: float = 2
    max_interval_seconds: int | None = None


@dataclass(frozen=True)
class CatchRule:
    """One FDL `catch` policy: on these errors, end the flow in a recognisable way.

    Exactly one of `status` (end successfully with output `{"status": status}`)
    and `fail_error` (end failed with that error and `fail_cause`) is set.
    """

    errors: tuple[str, ...]
    status: str | None = None
    fail_error: str | None = None
    fail_cause: str | None = None


@dataclass(frozen=True)
class OutputMapping:
    """One FDL `outputMappings` entry of the task step: `target` of the step's output from `source`."""

    target: str
    source: str


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
    def dead_letter_retention_seconds(self) -> int:
        """How long the dead-letter queue keeps a message: the task's whole wait, at
        least the provider's minimum (a dead letter is worth redriving until then)."""
        return max(MIN_QUEUE_RETENTION_SECONDS, self.task_timeout_seconds)


def full_key(name: str) -> str:
    """`topicName` -> `mns-callback-flow:topicName`."""
    return f"{PROJECT}:{name}"


# ---- scalar parsers: each names the key and the expected type ----------------


def _got(raw: object) -> str:
    """Name the type of a non-text value: a YAML list where a number belongs says so."""
    return "" if isinstance(raw, str) else f", got {type(raw).__name__}"


def _text(key: str, raw: object) -> str:
    if not isinstance(raw, str):
        raise ConfigError(key, raw, f"expected a string, got {type(raw).__name__}")
    return raw


def _bool(key: str, raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw in _TRUE + _FALSE:
        return raw in _TRUE
    raise ConfigError(key, raw, "expected a boolean: true or false" + _got(raw))


def _int(key: str, raw: object) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and re.fullmatch(r"-?[0-9]+", raw.strip()):
        try:
            return int(raw)
        except ValueError:  # past Python's 4300-digit limit (sys.get_int_max_str_digits)
            raise ConfigError(key, f"{raw.strip()[:12]}...", "expected an integer of at most 4300 digits") from None
    raise ConfigError(key, raw, "expected an integer" + _got(raw))


def _number(key: str, raw: object) -> float:
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(key, raw, "expected a number") from None
    else:
        raise ConfigError(key, raw, "expected a number" + _got(raw))
    if not math.isfinite(value):
        raise ConfigError(key, raw, "expected a finite number")
    return value


def _ranged(key: str, raw: object, low: int, high: int) -> int:
    value = _int(key, raw)
    if not low <= value <= high:
        raise ConfigError(key, raw, f"must be between {low} and {high}")
    return value


def _choice(key: str, raw: object, choices: tuple[str, ...]) -> str:
    value = _text(key, raw)
    if value not in choices:
        raise ConfigError(key, raw, f"must be one of {', '.join(choices)}")
    return value


def _optional_text(key: str, raw: object) -> str | None:
    value = _text(key, raw).strip()
    return value or None


# ``module:function``, the handler's CALLBACK_WORK form (function/mns_callback/work.py).
_WORK_REFERENCE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*")


def _work_reference(key: str, raw: object) -> str | None:
    value = _optional_text(key, raw)
    if value is not None and not _WORK_REFERENCE.fullmatch(value):
        raise ConfigError(key, raw, "expected module:function of a module in function/, e.g. mywork:work")
    return value


def _cert_url_prefixes(key: str, raw: object) -> tuple[str, ...]:
    """Extra trust for the handler's signature check, so held to what cannot widen it
    by accident: https only, the host fixed by a trailing '/' (the handler's own rule
    for MNS_CERT_URL_PREFIXES; a plain-HTTP or open-ended prefix would let anyone who
    can serve a certificate forge pushes)."""
    prefixes = tuple(p.strip() for p in _text(key, raw).split(",") if p.strip())
    for prefix in prefixes:
        parts = urlsplit(prefix)
        if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
            raise ConfigError(key, raw, f"{prefix!r} is not an https://host/ URL prefix")
        if not parts.path.endswith("/") or parts.query or parts.fragment:
            raise ConfigError(key, raw, f"{prefix!r} must end with '/' after the host and path")
    return prefixes


# ---- Function Compute: runtime per generation, vCPU and memory ----------------


def runtime_refusal(function_compute: str, runtime: object) -> str | None:
    """None when ``function_compute`` offers ``runtime``; else the rule, with its source."""
    offered = RUNTIMES_BY_FC[function_compute]
    if runtime in offered:
        return None
    return (f"Function Compute {function_compute} offers {', '.join(offered)} "
            f"(source: {RUNTIME_SOURCES[function_compute]})")


def cpu_step_bounds(memory_mb: int) -> tuple[int, int]:
    """The vCPU FC 3.0 allows with ``memory_mb``, in 0.05 steps: ratio 1:1 to 1:4, within 0.05-16."""
    low = -(-memory_mb * CPU_STEPS_PER_VCPU // (4 * 1024))  # ceil(memory_GB / 4 / 0.05)
    high = memory_mb * CPU_STEPS_PER_VCPU // 1024  # floor(memory_GB / 0.05)
    return max(MIN_CPU_STEPS, low), min(MAX_CPU_STEPS, high)


def vcpu(steps: int) -> float:
    """0.05-vCPU steps as the number FC takes: 3 -> 0.15."""
    return round(steps / CPU_STEPS_PER_VCPU, 2)


def default_cpu(memory_mb: int) -> float:
    """The least vCPU the documented ratio allows for ``memory_mb`` (256 MB -> 0.1).

    Set explicitly rather than left to FC, so the deployed vCPU is in the
    program and in every preview; the least, because the handler waits on the
    network, not the CPU, and a larger share is one config key away.
    """
    return vcpu(cpu_step_bounds(memory_mb)[0])


def cpu_steps(value: float) -> int | None:
    """``value`` in whole 0.05-vCPU steps, or None when it is not a multiple of 0.05."""
    steps = round(value * CPU_STEPS_PER_VCPU)
    return steps if abs(value * CPU_STEPS_PER_VCPU - steps) < 1e-9 else None


def cpu_refusal(cpu: float, memory_mb: int) -> str | None:
    """None when FC 3.0 accepts ``cpu`` vCPU with ``memory_mb``; else what it expects."""
    steps = cpu_steps(cpu)
    if steps is None:
        return "must be a multiple of 0.05 vCPU (FC 3.0 CreateFunctionInput cpu)"
    if not MIN_CPU_STEPS <= steps <= MAX_CPU_STEPS:
        return "must be between 0.05 and 16 vCPU (FC 3.0 CreateFunctionInput cpu)"
    low, high = cpu_step_bounds(memory_mb)
    if not low <= steps <= high:
        return (f"with memorySize={memory_mb} MB the vCPU : memory (GB) ratio must be between 1:1 and 1:4, "
                f"so cpu between {vcpu(low):g} and {vcpu(high):g}, or another memorySize "
                "(FC 3.0 CreateFunctionInput cpu and memorySize)")
    return None


def _function_cpu(function_compute: str, memory_mb: int, raw: object) -> float | None:
    key = full_key("cpu")
    if isinstance(raw, str) and not raw.strip():
        return default_cpu(memory_mb) if function_compute == "3.0" else None
    if function_compute != "3.0":
        raise ConfigError(key, raw, "applies to functionCompute 3.0 only: FC 2.0's fc.Function takes no cpu; unset it")
    value = _number(key, raw)
    refusal = cpu_refusal(value, memory_mb)
    if refusal is not None:
        raise ConfigError(key, raw, refusal.replace("memorySize=", f"{full_key('memorySize')}="))
    return vcpu(cpu_steps(value) or 0)


# ---- structured values: taskRetry / taskCatch --------------------------------


def _rule_list(key: str, raw: object) -> list[Mapping[str, object]]:
    """A list of objects, given structured or as JSON text (Pulumi stores both as text)."""
    value = raw
    if isinstance(raw, str):
        try:
            value = json.loads(raw) if raw.strip() else []
        except json.JSONDecodeError as err:
            raise ConfigError(key, raw, f"expected a JSON list of objects ({err.msg})") from None
        except ValueError:  # a number past Python's 4300-digit limit
            raise ConfigError(
                key, f"{raw[:40]}...", "expected a JSON list of objects (a number has too many digits)"
            ) from None
    if not isinstance(value, list):
        raise ConfigError(key, raw, "expected a list of objects")
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise ConfigError(f"{key}[{index}]", item, "expected an object")
    return value


def _check_fields(key: str, item: Mapping[str, object], allowed: tuple[str, ...]) -> None:
    for field in item:
        if field not in allowed:
            raise ConfigError(f"{key}.{field}", item[field], f"unknown field; allowed: {', '.join(allowed)}")


def _errors(key: str, raw: object) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(key, raw, "expected a non-empty list of error names, e.g. [\"FnF.TaskTimeout\"]")
    names = []
    for index, name in enumerate(raw):
        if not isinstance(name, str) or not _ERROR_NAME.fullmatch(name):
            raise ConfigError(
                f"{key}[{index}]", name,
                f"an error name is 1-{MAX_ERROR_NAME} letters, digits or _ . : - (e.g. FnF.ALL, FnF.TaskTimeout)",
            )
        names.append(name)
    return tuple(names)


def _retry_rules(key: str, raw: object) -> tuple[RetryRule, ...]:
    rules = []
    for index, item in enumerate(_rule_list(key, raw)):
        where = f"{key}[{index}]"
        _check_fields(where, item, ("errors", "intervalSeconds", "maxAttempts", "multiplier", "maxIntervalSeconds"))
        if "errors" not in item:
            raise ConfigError(f"{where}.errors", None, "required")
        interval = _ranged(f"{where}.intervalSeconds", item.get("intervalSeconds", 1), 1, MAX_RETRY_INTERVAL_SECONDS)
        max_interval = None
        if item.get("maxIntervalSeconds") is not None:
            max_interval = _ranged(
                f"{where}.maxIntervalSeconds", item["maxIntervalSeconds"], interval, MAX_RETRY_INTERVAL_SECONDS
            )
        multiplier = _number(f"{where}.multiplier", item.get("multiplier", 2))
        if not 1 <= multiplier <= 100:
            raise ConfigError(f"{where}.multiplier", item.get("multiplier"), "must be between 1 and 100")
        rules.append(
            RetryRule(
                errors=_errors(f"{where}.errors", item["errors"]),
                interval_seconds=interval,
                max_attempts=_ranged(f"{where}.maxAttempts", item.get("maxAttempts", 3), 1, MAX_RETRY_ATTEMPTS),
                multiplier=int(multiplier) if multiplier.is_integer() else multiplier,
                max_interval_seconds=max_interval,
            )
        )
    return tuple(rules)


def _catch_rules(key: str, raw: object) -> tuple[CatchRule, ...]:
    rules = []
    for index, item in enumerate(_rule_list(key, raw)):
        where = f"{key}[{index}]"
        _check_fields(where, item, ("errors", "status", "fail"))
        if "errors" not in item:
            raise ConfigError(f"{where}.errors", None, "required")
        errors = _errors(f"{where}.errors", item["errors"])
        if ("status" in item) == ("fail" in item):
            raise ConfigError(
                where, dict(item),
                'give exactly one of "status" (end the flow with output {"status": ...}) '
                'or "fail" ({"error": ..., "cause": ...}: end the flow failed)',
            )
        if "status" in item:
            status = _text(f"{where}.status", item["status"])
            if not 1 <= len(status) <= 256 or status.startswith("$"):
                raise ConfigError(f"{where}.status", status, "must be 1-256 characters, not starting with $")
            rules.append(CatchRule(errors=errors, status=status))
            continue
        fail = item["fail"]
        if not isinstance(fail, Mapping):
            raise ConfigError(f"{where}.fail", fail, 'expected an object {"error": ..., "cause": ...}')
        _check_fields(f"{where}.fail", fail, ("error", "cause"))
        error = _text(f"{where}.fail.error", fail.get("error"))
        if not _ERROR_NAME.fullmatch(error):
            raise ConfigError(f"{where}.fail.error", error, f"must be 1-{MAX_ERROR_NAME} letters, digits or _ . : -")
        cause = _text(f"{where}.fail.cause", fail.get("cause", ""))
        if len(cause) > MAX_CAUSE:
            raise ConfigError(f"{where}.fail.cause", cause[:40] + "...", f"at most {MAX_CAUSE} characters")
        rules.append(CatchRule(errors=errors, fail_error=error, fail_cause=cause or None))
    return tuple(rules)


# ---- structured values: taskOutputMappings --------------------------------------

# A mapping source (FDL "Inputs and outputs", help.aliyun.com document 122493):
# `$local` (the reported Output), `$input` or `$context`, each optionally followed
# by `.field` names, or a constant (text not starting with `$`). Targets are plain
# field names of the step's output. The local interpreter (localcloud/fdl.py)
# runs exactly these forms.
_MAPPING_SOURCE = re.compile(r"\$(local|input|context)(\.[A-Za-z0-9_-]+)*")
_MAPPING_TARGET = re.compile(r"[A-Za-z0-9_-]{1,128}")
MAX_MAPPING_CONSTANT = 256


def _output_mappings(key: str, raw: object) -> tuple[OutputMapping, ...]:
    mappings: list[OutputMapping] = []
    for index, item in enumerate(_rule_list(key, raw)):
        where = f"{key}[{index}]"
        _check_fields(where, item, ("target", "source"))
        for field in ("target", "source"):
            if field not in item:
                raise ConfigError(f"{where}.{field}", None, "required")
        target = _text(f"{where}.target", item["target"])
        if not _MAPPING_TARGET.fullmatch(target):
            raise ConfigError(f"{where}.target", target, "a target is 1-128 letters, digits, _ or - (one field name)")
        if any(mapping.target == target for mapping in mappings):
            raise ConfigError(f"{where}.target", target, "given twice: each target names one field of the output")
        source = _text(f"{where}.source", item["source"])
        if source.startswith("$"):
            if not _MAPPING_SOURCE.fullmatch(source):
                raise ConfigError(
                    f"{where}.source", source,
                    "expected $local, $input or $context, optionally followed by .field names "
                    "(e.g. $local.status), or a constant not starting with $",
                )
        elif not 1 <= len(source) <= MAX_MAPPING_CONSTANT:
            raise ConfigError(f"{where}.source", source, f"a constant is 1-{MAX_MAPPING_CONSTANT} characters")
        mappings.append(OutputMapping(target=target, source=source))
    return tuple(mappings)


# ---- flowSpec: what the other keys mean under CloudFlow ----------------------------


def _check_flow_spec(settings: Settings) -> None:
    """Under `cloudflow`, the keys the CloudFlow builder translates must fit that spec.

    The Task state's `Timeout` is at most 604800 s. `taskOutputMappings` become its
    `OutputConstructor`: `$local` is the task's `$Output`, `$input` the state's
    `$Input`; FDL's `$context` paths have no CloudFlow counterpart the builder
    can name, so they are refused here rather than translated by guess.
    """
    if settings.flow_spec != "cloudflow":
        return
    if settings.task_timeout_seconds > MAX_CLOUDFLOW_TASK_TIMEOUT_SECONDS:
        raise ConfigError(
            full_key("taskTimeoutSeconds"), settings.task_timeout_seconds,
            f"with flowSpec=cloudflow at most {MAX_CLOUDFLOW_TASK_TIMEOUT_SECONDS} "
            "(CloudFlow Task Timeout is 0-604800 s, and 0 would never time out)",
        )
    for index, mapping in enumerate(settings.task_output_mappings):
        if mapping.source.startswith("$context"):
            raise ConfigError(
                f"{full_key('taskOutputMappings')}[{index}].source", mapping.source,
                "with flowSpec=cloudflow a source is $local (the task's $Output), $input (the "
                "state's $Input) or a constant; $context paths are FDL's only",
            )


# ---- the whole mapping ---------------------------------------------------------


def settings_from_mapping(values: Mapping[str, object], *, stack: str = "dev") -> Settings:
    """Validate full config keys (`mns-callback-flow:topicName`, `alicloud:region`) into Settings.

    Values may be Pulumi's strings or already typed. Unknown project keys are
    refused (a misspelt key must not be silently ignored); other namespaces
    (provider credentials and the like) are not ours and are left alone.
    """
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
    region = _text(REGION_KEY, region)
    if not REGION_PATTERN.fullmatch(region):
        raise ConfigError(REGION_KEY, region, "expected a region id like cn-hangzhou, ap-southeast-1 or eu-central-1")

    name_prefix = _text(full_key("namePrefix"), get("namePrefix", "")).strip()
    if not name_prefix:
        derived = f"mns-callback-{stack}"
        if not _PREFIX.fullmatch(derived):
            raise ConfigError(
                full_key("namePrefix"), "",
                f"unset, and the stack name {stack!r} gives an invalid prefix {derived!r}: set namePrefix "
                "(1-40 letters, digits or hyphens, starting with a letter)",
            )
        name_prefix = derived
    elif not _PREFIX.fullmatch(name_prefix):
        raise ConfigError(
            full_key("namePrefix"), name_prefix, "must be 1-40 letters, digits or hyphens, starting with a letter"
        )

    create_topic = _bool(full_key("createTopic"), get("createTopic", True))
    topic_name = _text(full_key("topicName"), get("topicName", "")).strip()
    if not topic_name:
        if not create_topic:
            raise ConfigError(
                full_key("topicName"), "", "required when createTopic is false: name the existing topic to publish to"
            )
        topic_name = f"{name_prefix}-topic"
    if not MNS_NAME_PATTERN.fullmatch(topic_name):
        raise ConfigError(
            full_key("topicName"), topic_name,
            "an MNS topic name is 1-255 letters, digits or hyphens and starts with a letter or digit",
        )

    function_timeout = _ranged(
        full_key("functionTimeoutSeconds"),
        get("functionTimeoutSeconds", DEFAULT_FUNCTION_TIMEOUT_SECONDS),
        MNS_ANSWER_BUDGET_SECONDS + 1,
        MAX_FUNCTION_TIMEOUT_SECONDS,
    )
    memory_key = full_key("memorySize")
    memory = _ranged(memory_key, get("memorySize", DEFAULT_MEMORY_MB), MIN_MEMORY_MB, MAX_MEMORY_MB)
    if memory % MEMORY_STEP_MB:
        raise ConfigError(memory_key, get("memorySize", None), f"must be a multiple of {MEMORY_STEP_MB} MB")

    function_compute = _choice(
        full_key("functionCompute"), get("functionCompute", "3.0"), FUNCTION_COMPUTE_VERSIONS
    )
    runtime = _text(full_key("runtime"), get("runtime", "python3.10"))
    refusal = runtime_refusal(function_compute, runtime)
    if refusal is not None:
        raise ConfigError(full_key("runtime"), runtime, f"with functionCompute={function_compute}: {refusal}")
    cpu = _function_cpu(function_compute, memory, get("cpu", ""))

    log_project = _optional_text(full_key("logProject"), get("logProject", ""))
    log_store = _optional_text(full_key("logStore"), get("logStore", ""))
    if (log_project is None) != (log_store is None):
        missing = "logStore" if log_store is None else "logProject"
        raise ConfigError(full_key(missing), "", "logProject and logStore are given together or not at all")
    if log_project is not None and not _LOG_PROJECT.fullmatch(log_project):
        raise ConfigError(
            full_key("logProject"), log_project,
            "a log project name is 3-63 lowercase letters, digits or hyphens, starting and ending with a letter or digit",
        )
    if log_store is not None and not _LOG_STORE.fullmatch(log_store):
        raise ConfigError(
            full_key("logStore"), log_store,
            "a logstore name is 2-63 lowercase letters, digits, hyphens or underscores, "
            "starting and ending with a letter or digit",
        )

    task_timeout_key = full_key("taskTimeoutSeconds")
    task_timeout = _ranged(
        task_timeout_key, get("taskTimeoutSeconds", DEFAULT_TASK_TIMEOUT_SECONDS), 1, MAX_TASK_TIMEOUT_SECONDS
    )
    dead_letter_queue = _bool(full_key("deadLetterQueue"), get("deadLetterQueue", True))
    if dead_letter_queue and task_timeout > MAX_QUEUE_RETENTION_SECONDS:
        raise ConfigError(
            task_timeout_key, get("taskTimeoutSeconds", None),
            f"must be at most {MAX_QUEUE_RETENTION_SECONDS} while deadLetterQueue is true: the dead-letter "
            f"queue keeps a message at most {MAX_QUEUE_RETENTION_SECONDS} s (MNS message retention), less "
            "than the task would wait; lower it or set deadLetterQueue to false",
        )

    settings = Settings(
        stack=stack,
        region=region,
        name_prefix=name_prefix,
        topic_name=topic_name,
        create_topic=create_topic,
        subscription_name=f"{name_prefix}-callback-sub",
        flow_name=f"{name_prefix}-flow",
        function_name=f"{name_prefix}-callback",
        function_compute=function_compute,
        runtime=runtime,
        memory_size=memory,
        cpu=cpu,
        function_timeout_seconds=function_timeout,
        task_timeout_seconds=task_timeout,
        task_retry=_retry_rules(full_key("taskRetry"), get("taskRetry", [])),
        task_catch=_catch_rules(full_key("taskCatch"), get("taskCatch", [])),
        notify_strategy=_choice(
            full_key("notifyStrategy"), get("notifyStrategy", "EXPONENTIAL_DECAY_RETRY"), NOTIFY_STRATEGIES
        ),
        notify_content_format=_choice(
            full_key("notifyContentFormat"), get("notifyContentFormat", "JSON"), NOTIFY_CONTENT_FORMATS
        ),
        verify_signature=_bool(full_key("verifySignature"), get("verifySignature", True)),
        signing_cert_url_prefixes=_cert_url_prefixes(
            full_key("signingCertUrlPrefixes"), get("signingCertUrlPrefixes", "")
        ),
        callback_work=_work_reference(full_key("callbackWork"), get("callbackWork", "")),
        log_project=log_project,
        log_store=log_store,
        task_output_mappings=_output_mappings(full_key("taskOutputMappings"), get("taskOutputMappings", [])),
        flow_spec=_choice(full_key("flowSpec"), get("flowSpec", "fdl"), FLOW_SPECS),
        dead_letter_queue_name=f"{name_prefix}{DEAD_LETTER_QUEUE_SUFFIX}" if dead_letter_queue else None,
    )
    _check_flow_spec(settings)
    return settings


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
