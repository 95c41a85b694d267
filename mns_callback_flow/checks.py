"""Checks of argument values, each naming the argument and what it expects.

Shared by the components (arguments given in Python, or by a component
provider) and the project's config (``infra.config``, whose values arrive as
Pulumi's config text): a value may be typed or text (``"true"``, ``"3"``,
JSON for lists). Each check raises ``InvalidArgument`` naming ``key``. The rules
between values (a runtime per FC version, the log pair, the task's timeout against
the dead-letter queue and CloudFlow) are here too, so the config and the args hold
one rule each; the names of the other values in a message are the caller's own
(``functionCompute`` in the config, ``function_compute`` in the args).
"""

import json
import math
import re
from collections.abc import Mapping

from mns_callback_flow.errors import InvalidArgument
from mns_callback_flow.limits import (
    DEAD_LETTER_QUEUE_SUFFIX,
    ERROR_NAME_PATTERN,
    LOG_PROJECT_PATTERN,
    LOG_STORE_PATTERN,
    MAX_CAUSE,
    MAX_CLOUDFLOW_TASK_TIMEOUT_SECONDS,
    MAX_ERROR_NAME,
    MAX_MEMORY_MB,
    MAX_QUEUE_RETENTION_SECONDS,
    MAX_RETRY_ATTEMPTS,
    MAX_RETRY_INTERVAL_SECONDS,
    MEMORY_STEP_MB,
    MIN_MEMORY_MB,
    MNS_NAME_PATTERN,
    WORK_REFERENCE_PATTERN,
    cert_url_prefix_refusal,
    cpu_refusal,
    cpu_steps,
    default_cpu,
    runtime_refusal,
    vcpu,
)
from mns_callback_flow.task import CatchRule, OutputMapping, RetryRule

_TRUE, _FALSE = ("true", "True"), ("false", "False")  # what pulumi.Config.get_bool accepts

# ---- scalar parsers: each names the key and the expected type ----------------


def got(raw: object) -> str:
    """Name the type of a non-text value: a YAML list where a number belongs says so."""
    return "" if isinstance(raw, str) else f", got {type(raw).__name__}"


def text(key: str, raw: object) -> str:
    if not isinstance(raw, str):
        raise InvalidArgument(key, raw, f"expected a string, got {type(raw).__name__}")
    return raw


def boolean(key: str, raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw in _TRUE + _FALSE:
        return raw in _TRUE
    raise InvalidArgument(key, raw, "expected a boolean: true or false" + got(raw))


def integer(key: str, raw: object) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and re.fullmatch(r"-?[0-9]+", raw.strip()):
        try:
            return int(raw)
        except ValueError:  # past Python's 4300-digit limit (sys.get_int_max_str_digits)
            raise InvalidArgument(key, f"{raw.strip()[:12]}...", "expected an integer of at most 4300 digits") from None
    raise InvalidArgument(key, raw, "expected an integer" + got(raw))


def number(key: str, raw: object) -> float:
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw)
        except ValueError:
            raise InvalidArgument(key, raw, "expected a number") from None
    else:
        raise InvalidArgument(key, raw, "expected a number" + got(raw))
    if not math.isfinite(value):
        raise InvalidArgument(key, raw, "expected a finite number")
    return value


def ranged(key: str, raw: object, low: int, high: int) -> int:
    value = integer(key, raw)
    if not low <= value <= high:
        raise InvalidArgument(key, raw, f"must be between {low} and {high}")
    return value


def choice(key: str, raw: object, choices: tuple[str, ...]) -> str:
    value = text(key, raw)
    if value not in choices:
        raise InvalidArgument(key, raw, f"must be one of {', '.join(choices)}")
    return value


def optional_text(key: str, raw: object) -> str | None:
    value = text(key, raw).strip()
    return value or None


def work_reference(key: str, raw: object) -> str | None:
    """``module:function`` (the handler's CALLBACK_WORK form, function/mns_callback/work.py), or None."""
    value = optional_text(key, raw)
    if value is not None and not WORK_REFERENCE_PATTERN.fullmatch(value):
        raise InvalidArgument(key, raw, "expected module:function of a module in function/ (or in the work code), e.g. mywork:work")
    return value


def function_cpu(key: str, raw: object, *, function_compute: str, memory_mb: int, memory_key: str,
                 function_compute_key: str) -> float | None:
    """The vCPU of the function: ``raw`` checked against FC 3.0's rules for ``memory_mb``, or
    the least the ratio allows when unset (None or blank). FC 2.0's ``fc.Function`` takes none."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return default_cpu(memory_mb) if function_compute == "3.0" else None
    if function_compute != "3.0":
        raise InvalidArgument(key, raw, f"applies to {function_compute_key} 3.0 only: FC 2.0's fc.Function "
                                        "takes no cpu; unset it")
    value = number(key, raw)
    refusal = cpu_refusal(value, memory_mb)
    if refusal is not None:
        raise InvalidArgument(key, raw, refusal.replace("memorySize=", f"{memory_key}="))
    return vcpu(cpu_steps(value) or 0)


def memory_size(key: str, raw: object) -> int:
    """Function memory in MB: FC's range, in steps of 64 MB."""
    value = ranged(key, raw, MIN_MEMORY_MB, MAX_MEMORY_MB)
    if value % MEMORY_STEP_MB:
        raise InvalidArgument(key, raw, f"must be a multiple of {MEMORY_STEP_MB} MB")
    return value


def runtime(key: str, raw: object, *, function_compute: str, function_compute_key: str) -> str:
    """A Python runtime that ``function_compute`` (named ``function_compute_key`` in the message) offers."""
    value = text(key, raw)
    refusal = runtime_refusal(function_compute, value)
    if refusal is not None:
        raise InvalidArgument(key, raw, f"with {function_compute_key}={function_compute}: {refusal}")
    return value


def _cloud_name(key: str, raw: object, pattern: re.Pattern[str], rule: str) -> str:
    if not isinstance(raw, str) or not pattern.fullmatch(raw):
        raise InvalidArgument(key, raw, rule)
    return raw


def topic_name(key: str, raw: object) -> str:
    """An MNS topic name (MNS CreateTopic's naming rule)."""
    return _cloud_name(key, raw, MNS_NAME_PATTERN,
                       "an MNS topic name is 1-255 letters, digits or hyphens and starts with a letter or digit")


def log_project(key: str, raw: object) -> str:
    """A Simple Log Service project name."""
    return _cloud_name(key, raw, LOG_PROJECT_PATTERN, "a log project name is 3-63 lowercase letters, digits or "
                                                      "hyphens, starting and ending with a letter or digit")


def log_store(key: str, raw: object) -> str:
    """A logstore name."""
    return _cloud_name(key, raw, LOG_STORE_PATTERN, "a logstore name is 2-63 lowercase letters, digits, hyphens or "
                                                    "underscores, starting and ending with a letter or digit")


def log_pair(project_key: str, project_given: bool, store_key: str, store_given: bool, *,
             project_name: str, store_name: str, missing: object) -> None:
    """A log project and a logstore come together or not at all; ``missing`` is the absent one's value."""
    if project_given != store_given:
        raise InvalidArgument(store_key if project_given else project_key, missing,
                              f"{project_name} and {store_name} are given together or not at all")


def task_fits_dead_letter_queue(key: str, raw: object, timeout: int, *, dead_letter_queue: bool,
                                dead_letter_queue_key: str) -> None:
    """A task may wait no longer than the dead-letter queue keeps its message (MNS message retention)."""
    if dead_letter_queue and timeout > MAX_QUEUE_RETENTION_SECONDS:
        raise InvalidArgument(
            key, raw,
            f"must be at most {MAX_QUEUE_RETENTION_SECONDS} while {dead_letter_queue_key} is true: the dead-letter "
            f"queue keeps a message at most {MAX_QUEUE_RETENTION_SECONDS} s (MNS message retention), less than "
            f"the task would wait; lower it or set {dead_letter_queue_key} to false",
        )


def task_fits_cloudflow(timeout_key: str, raw_timeout: object, timeout: int, mappings_key: str,
                        mappings: tuple[OutputMapping, ...], *, flow_spec: str, flow_spec_key: str) -> None:
    """Under CloudFlow, what its builder translates must fit that spec.

    The Task state's ``Timeout`` is at most 604800 s. The output mappings become its
    ``OutputConstructor``: ``$local`` is the task's ``$Output``, ``$input`` the
    state's ``$Input``; FDL's ``$context`` paths have no CloudFlow counterpart the
    builder can name, so they are refused rather than translated by guess.
    """
    if flow_spec != "cloudflow":
        return
    if timeout > MAX_CLOUDFLOW_TASK_TIMEOUT_SECONDS:
        raise InvalidArgument(timeout_key, raw_timeout,
                              f"with {flow_spec_key}=cloudflow at most {MAX_CLOUDFLOW_TASK_TIMEOUT_SECONDS} "
                              "(CloudFlow Task Timeout is 0-604800 s, and 0 would never time out)")
    for index, mapping in enumerate(mappings):
        if mapping.source.startswith("$context"):
            raise InvalidArgument(f"{mappings_key}[{index}].source", mapping.source,
                                  f"with {flow_spec_key}=cloudflow a source is $local (the task's $Output), $input "
                                  "(the state's $Input) or a constant; $context paths are FDL's only")


def derived_names(prefix: str) -> dict[str, str]:
    """The cloud names every pattern derives from its prefix (README "Use it as a library")."""
    return {"topic_name": f"{prefix}-topic", "subscription_name": f"{prefix}-callback-sub",
            "flow_name": f"{prefix}-flow", "function_name": f"{prefix}-callback",
            "dead_letter_queue_name": f"{prefix}{DEAD_LETTER_QUEUE_SUFFIX}"}


def cert_url_prefixes(key: str, raw: object) -> tuple[str, ...]:
    """Comma-separated text or a list of https URL prefixes (``limits.cert_url_prefix_refusal``)."""
    if isinstance(raw, (list, tuple)):
        items = [text(f"{key}[{index}]", item) for index, item in enumerate(raw)]
    else:
        items = text(key, raw).split(",")
    prefixes = tuple(p.strip() for p in items if p.strip())
    for prefix in prefixes:
        refusal = cert_url_prefix_refusal(prefix)
        if refusal is not None:
            raise InvalidArgument(key, raw, refusal)
    return prefixes


# ---- structured values: taskRetry / taskCatch --------------------------------


def rule_list(key: str, raw: object) -> list[Mapping[str, object]]:
    """A list of objects, given structured or as JSON text (Pulumi stores both as text)."""
    value = raw
    if isinstance(raw, str):
        try:
            value = json.loads(raw) if raw.strip() else []
        except json.JSONDecodeError as err:
            raise InvalidArgument(key, raw, f"expected a JSON list of objects ({err.msg})") from None
        except ValueError:  # a number past Python's 4300-digit limit
            raise InvalidArgument(
                key, f"{raw[:40]}...", "expected a JSON list of objects (a number has too many digits)"
            ) from None
    if not isinstance(value, list):
        raise InvalidArgument(key, raw, "expected a list of objects")
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise InvalidArgument(f"{key}[{index}]", item, "expected an object")
    return value


def check_fields(key: str, item: Mapping[str, object], allowed: tuple[str, ...]) -> None:
    for field in item:
        if field not in allowed:
            raise InvalidArgument(f"{key}.{field}", item[field], f"unknown field; allowed: {', '.join(allowed)}")


def error_names(key: str, raw: object) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        raise InvalidArgument(key, raw, "expected a non-empty list of error names, e.g. [\"FnF.TaskTimeout\"]")
    names = []
    for index, name in enumerate(raw):
        if not isinstance(name, str) or not ERROR_NAME_PATTERN.fullmatch(name):
            raise InvalidArgument(
                f"{key}[{index}]", name,
                f"an error name is 1-{MAX_ERROR_NAME} letters, digits or _ . : - (e.g. FnF.ALL, FnF.TaskTimeout)",
            )
        names.append(name)
    return tuple(names)


def camel_case(name: str) -> str:
    """The config's (and FDL's) spelling of a field: ``interval_seconds`` -> ``intervalSeconds``."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def retry_rules(key: str, raw: object, *, snake_case: bool = False) -> tuple[RetryRule, ...]:
    """FDL retry rules. Fields are spelt as in FDL and the config (``intervalSeconds``),
    or in Python's spelling (``interval_seconds``) with ``snake_case``."""
    def field(name: str) -> str:
        return name if snake_case else camel_case(name)

    interval_key, attempts_key, max_key = field("interval_seconds"), field("max_attempts"), field("max_interval_seconds")
    rules = []
    for index, item in enumerate(rule_list(key, raw)):
        where = f"{key}[{index}]"
        check_fields(where, item, ("errors", interval_key, attempts_key, "multiplier", max_key))
        if "errors" not in item:
            raise InvalidArgument(f"{where}.errors", None, "required")
        interval = ranged(f"{where}.{interval_key}", item.get(interval_key, 1), 1, MAX_RETRY_INTERVAL_SECONDS)
        max_interval = None
        if item.get(max_key) is not None:
            max_interval = ranged(f"{where}.{max_key}", item[max_key], interval, MAX_RETRY_INTERVAL_SECONDS)
        multiplier = number(f"{where}.multiplier", item.get("multiplier", 2))
        if not 1 <= multiplier <= 100:
            raise InvalidArgument(f"{where}.multiplier", item.get("multiplier"), "must be between 1 and 100")
        rules.append(
            RetryRule(
                errors=error_names(f"{where}.errors", item["errors"]),
                interval_seconds=interval,
                max_attempts=ranged(f"{where}.{attempts_key}", item.get(attempts_key, 3), 1, MAX_RETRY_ATTEMPTS),
                multiplier=int(multiplier) if multiplier.is_integer() else multiplier,
                max_interval_seconds=max_interval,
            )
        )
    return tuple(rules)


def catch_rules(key: str, raw: object) -> tuple[CatchRule, ...]:
    rules = []
    for index, item in enumerate(rule_list(key, raw)):
        where = f"{key}[{index}]"
        check_fields(where, item, ("errors", "status", "fail"))
        if "errors" not in item:
            raise InvalidArgument(f"{where}.errors", None, "required")
        names = error_names(f"{where}.errors", item["errors"])
        if ("status" in item) == ("fail" in item):
            raise InvalidArgument(
                where, dict(item),
                'give exactly one of "status" (end the flow with output {"status": ...}) '
                'or "fail" ({"error": ..., "cause": ...}: end the flow failed)',
            )
        if "status" in item:
            status = text(f"{where}.status", item["status"])
            if not 1 <= len(status) <= 256 or status.startswith("$"):
                raise InvalidArgument(f"{where}.status", status, "must be 1-256 characters, not starting with $")
            rules.append(CatchRule(errors=names, status=status))
            continue
        fail = item["fail"]
        if not isinstance(fail, Mapping):
            raise InvalidArgument(f"{where}.fail", fail, 'expected an object {"error": ..., "cause": ...}')
        check_fields(f"{where}.fail", fail, ("error", "cause"))
        error = text(f"{where}.fail.error", fail.get("error"))
        if not ERROR_NAME_PATTERN.fullmatch(error):
            raise InvalidArgument(f"{where}.fail.error", error, f"must be 1-{MAX_ERROR_NAME} letters, digits or _ . : -")
        cause = text(f"{where}.fail.cause", fail.get("cause", ""))
        if len(cause) > MAX_CAUSE:
            raise InvalidArgument(f"{where}.fail.cause", cause[:40] + "...", f"at most {MAX_CAUSE} characters")
        rules.append(CatchRule(errors=names, fail_error=error, fail_cause=cause or None))
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


def output_mappings(key: str, raw: object) -> tuple[OutputMapping, ...]:
    mappings: list[OutputMapping] = []
    for index, item in enumerate(rule_list(key, raw)):
        where = f"{key}[{index}]"
        check_fields(where, item, ("target", "source"))
        for field in ("target", "source"):
            if field not in item:
                raise InvalidArgument(f"{where}.{field}", None, "required")
        target = text(f"{where}.target", item["target"])
        if not _MAPPING_TARGET.fullmatch(target):
            raise InvalidArgument(f"{where}.target", target, "a target is 1-128 letters, digits, _ or - (one field name)")
        if any(mapping.target == target for mapping in mappings):
            raise InvalidArgument(f"{where}.target", target, "given twice: each target names one field of the output")
        source = text(f"{where}.source", item["source"])
        if source.startswith("$"):
            if not _MAPPING_SOURCE.fullmatch(source):
                raise InvalidArgument(
                    f"{where}.source", source,
                    "expected $local, $input or $context, optionally followed by .field names "
                    "(e.g. $local.status), or a constant not starting with $",
                )
        elif not 1 <= len(source) <= MAX_MAPPING_CONSTANT:
            raise InvalidArgument(f"{where}.source", source, f"a constant is 1-{MAX_MAPPING_CONSTANT} characters")
        mappings.append(OutputMapping(target=target, source=source))
    return tuple(mappings)


