"""What the provider itself refuses at preview, before any API is called.

pulumi-alicloud 4.0.0 bridges terraform-provider-alicloud, whose resource
schemas carry ``ValidateFunc`` rules (enums, ranges, patterns). They run at
``pulumi preview``: a value one of them refuses fails the whole preview with
the provider's own message. These are the rules for every input this package
sets, transcribed from the schema files of terraform-provider-alicloud v1.289.0
(inferred as the version pulumi-alicloud 4.0.0 embeds: it carries that
release's new resources, and no later release exists; the rules stand
unchanged in v2.0.0-beta3; docs/platform-facts.md "Provider validation
(ValidateFunc)"). ``infra.config`` and the components check them first,
naming the config key or argument.

A rule here is necessary, not sufficient: the Function Compute API refuses
more (memory in 64 MB steps from 128 MB, the vCPU/memory ratio), and
``infra.config`` holds those too. Resources without a listed input
(``alicloud_fcv3_trigger``, ``alicloud_message_service_subscription``, the
names of topics, roles, policies and flows) have no ``ValidateFunc`` there.

Pure: no Pulumi import, so tests and the config can use it anywhere.
"""

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeGuard

PROVIDER_VERSION = "terraform-provider-alicloud v1.289.0"


def source(resource: str) -> str:
    """The schema file a rule comes from, e.g. ``alicloud/resource_alicloud_fcv3_function.go``."""
    return f"{PROVIDER_VERSION} alicloud/resource_alicloud_{resource}.go"


# ---- the rules' values ------------------------------------------------------

# resource_alicloud_fcv3_function.go `runtime`: StringInSlice(...).
FCV3_RUNTIMES: tuple[str, ...] = (
    "python3.10", "python3.9", "python3", "nodejs20", "nodejs18", "nodejs16", "nodejs14", "java11", "java8",
    "php7.2", "dotnetcore3.1", "go1", "custom.debian10", "custom", "custom-container", "python3.12",
    "custom.debian11", "custom.debian12",
)
# resource_alicloud_fcv3_function.go `cpu`: FloatBetween(0.05, 16).
FCV3_CPU_RANGE = (0.05, 16.0)
# resource_alicloud_fcv3_function.go `memory_size`: IntBetween(64, 32768).
FCV3_MEMORY_RANGE = (64, 32768)
# resource_alicloud_fcv3_function.go `timeout`: IntBetween(0, 86400).
FCV3_TIMEOUT_RANGE = (0, 86400)
# resource_alicloud_fcv3_function.go `function_name`: StringMatch("^[0-9a-zA-Z_-]+$").
FCV3_FUNCTION_NAME = re.compile(r"[0-9a-zA-Z_-]+")
# resource_alicloud_fc_service.go `name`, resource_alicloud_fc_function.go `name`,
# resource_alicloud_fc_trigger.go `name`: StringLenBetween(1, 128).
FC2_NAME_LENGTH = (1, 128)
# resource_alicloud_fc_function.go `memory_size`: IntBetween(128, 32768).
FC2_MEMORY_RANGE = (128, 32768)
# resource_alicloud_fc_trigger.go `type`: StringInSlice of the fc-go-sdk constants
# TRIGGER_TYPE_HTTP "http", _LOG "log", _OSS "oss", _TIMER "timer", _MNS_TOPIC
# "mns_topic", _CDN_EVENTS "cdn_events" (fc-go-sdk trigger.go) and _EVENTBRIDGE
# (its value "eventbridge" unverified; this package uses "http" only).
FC2_TRIGGER_TYPES = ("http", "log", "oss", "timer", "mns_topic", "cdn_events", "eventbridge")
# resource_alicloud_fnf_flow.go `type`: StringInSlice("DEFAULT", "FDL").
FNF_FLOW_TYPES = ("DEFAULT", "FDL")
# resource_alicloud_ram_role_policy_attachment.go `policy_type`: StringInSlice("System", "Custom").
RAM_POLICY_TYPES = ("System", "Custom")
# resource_alicloud_message_service_topic.go `topic_type` (normal, fifo) and
# `max_message_size` (1024-65536) are not set by this package.


# ---- one rule ---------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One ``ValidateFunc`` of one resource argument."""

    resource: str
    """The terraform resource without ``alicloud_``, e.g. ``fcv3_function``."""
    argument: str
    """The terraform argument, e.g. ``memory_size``."""
    input: str
    """The Pulumi input as the engine receives it, e.g. ``memorySize``."""
    accepts: Callable[[object], bool]
    expected: str
    """What the provider expects, in words."""

    def refusal(self, value: object) -> str | None:
        """None when the provider accepts ``value``, else a sentence with the rule's source."""
        if self.accepts(value):
            return None
        return f"{self.expected} (alicloud_{self.resource}.{self.argument}, {source(self.resource)})"


def _number(value: object) -> TypeGuard[int | float]:
    """A finite int or float (JSON numbers as the provider reads them), not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def int_between(low: int, high: int) -> tuple[Callable[[object], bool], str]:
    def accepts(value: object) -> bool:
        return _number(value) and float(value).is_integer() and low <= value <= high
    return accepts, f"an integer between {low} and {high}"


def float_between(low: float, high: float) -> tuple[Callable[[object], bool], str]:
    def accepts(value: object) -> bool:
        return _number(value) and low <= value <= high
    return accepts, f"a number between {low:g} and {high:g}"


def string_in(choices: tuple[str, ...]) -> tuple[Callable[[object], bool], str]:
    def accepts(value: object) -> bool:
        return isinstance(value, str) and value in choices
    return accepts, f"one of {', '.join(choices)}"


def string_match(pattern: re.Pattern[str], words: str) -> tuple[Callable[[object], bool], str]:
    def accepts(value: object) -> bool:
        return isinstance(value, str) and pattern.fullmatch(value) is not None
    return accepts, words


def string_length(low: int, high: int) -> tuple[Callable[[object], bool], str]:
    def accepts(value: object) -> bool:
        return isinstance(value, str) and low <= len(value) <= high
    return accepts, f"{low}-{high} characters"


def string_is_json() -> tuple[Callable[[object], bool], str]:
    def accepts(value: object) -> bool:
        if not isinstance(value, str):
            return False
        try:
            json.loads(value)
        except ValueError:
            return False
        return True
    return accepts, "a JSON document"


def _rule(resource: str, argument: str, input_: str, check: tuple[Callable[[object], bool], str]) -> Rule:
    return Rule(resource, argument, input_, check[0], check[1])


FCV3_FUNCTION_RULES = (
    _rule("fcv3_function", "function_name", "functionName",
          string_match(FCV3_FUNCTION_NAME, "letters, digits, underscores or hyphens")),
    _rule("fcv3_function", "runtime", "runtime", string_in(FCV3_RUNTIMES)),
    _rule("fcv3_function", "cpu", "cpu", float_between(*FCV3_CPU_RANGE)),
    _rule("fcv3_function", "memory_size", "memorySize", int_between(*FCV3_MEMORY_RANGE)),
    _rule("fcv3_function", "timeout", "timeout", int_between(*FCV3_TIMEOUT_RANGE)),
)
FC2_SERVICE_RULES = (_rule("fc_service", "name", "name", string_length(*FC2_NAME_LENGTH)),)
FC2_FUNCTION_RULES = (
    _rule("fc_function", "name", "name", string_length(*FC2_NAME_LENGTH)),
    _rule("fc_function", "memory_size", "memorySize", int_between(*FC2_MEMORY_RANGE)),
)
FC2_TRIGGER_RULES = (
    _rule("fc_trigger", "name", "name", string_length(*FC2_NAME_LENGTH)),
    _rule("fc_trigger", "type", "type", string_in(FC2_TRIGGER_TYPES)),
    # ValidateFcTriggerConfig (service_alicloud_fc.go): the config must be a JSON object.
    _rule("fc_trigger", "config", "config", string_is_json()),
)

# resource_alicloud_message_service_queue.go: IntBetween on each number, StringInSlice
# ("normal", "fifo") on queue_type. This package sets queue_name and
# message_retention_period only (the dead-letter queue's retention follows the task timeout).
MNS_QUEUE_RULES = (
    _rule("message_service_queue", "delay_seconds", "delaySeconds", int_between(0, 604800)),
    _rule("message_service_queue", "maximum_message_size", "maximumMessageSize", int_between(1024, 65536)),
    _rule("message_service_queue", "message_retention_period", "messageRetentionPeriod", int_between(60, 604800)),
    _rule("message_service_queue", "polling_wait_seconds", "pollingWaitSeconds", int_between(0, 30)),
    _rule("message_service_queue", "queue_type", "queueType", string_in(("normal", "fifo"))),
    _rule("message_service_queue", "visibility_timeout", "visibilityTimeout", int_between(0, 43200)),
)

# Every rule of every resource this package declares, by Pulumi type token.
RULES_BY_TYPE: Mapping[str, tuple[Rule, ...]] = {
    "alicloud:fc/v3Function:V3Function": FCV3_FUNCTION_RULES,
    "alicloud:fc/v3Trigger:V3Trigger": (),
    "alicloud:fc/service:Service": FC2_SERVICE_RULES,
    "alicloud:fc/function:Function": FC2_FUNCTION_RULES,
    "alicloud:fc/trigger:Trigger": FC2_TRIGGER_RULES,
    "alicloud:message/serviceTopic:ServiceTopic": (),
    "alicloud:message/serviceSubscription:ServiceSubscription": (),
    "alicloud:message/serviceQueue:ServiceQueue": MNS_QUEUE_RULES,
    "alicloud:ram/role:Role": (
        _rule("ram_role", "assume_role_policy_document", "assumeRolePolicyDocument", string_is_json()),
    ),
    "alicloud:ram/policy:Policy": (_rule("ram_policy", "policy_document", "policyDocument", string_is_json()),),
    "alicloud:ram/rolePolicyAttachment:RolePolicyAttachment": (
        _rule("ram_role_policy_attachment", "policy_type", "policyType", string_in(RAM_POLICY_TYPES)),
    ),
    "alicloud:fnf/flow:Flow": (_rule("fnf_flow", "type", "type", string_in(FNF_FLOW_TYPES)),),
}


def violations(type_token: str, inputs: Mapping[str, object]) -> list[tuple[str, str]]:
    """(input, what the provider expects) for each of ``inputs`` of one resource it would refuse.

    Unset inputs (absent or None) are not checked: the provider does not validate them either.
    """
    if type_token not in RULES_BY_TYPE:
        raise KeyError(f"no provider rules are known for {type_token!r}")
    found = []
    for rule in RULES_BY_TYPE[type_token]:
        if inputs.get(rule.input) is not None:
            refusal = rule.refusal(inputs[rule.input])
            if refusal is not None:
                found.append((rule.input, refusal))
    return found


def refusals(type_token: str, inputs: Mapping[str, object]) -> list[str]:
    """``violations`` as sentences: ``memorySize=63: an integer between 64 and 32768 (...)``."""
    return [f"{name}={inputs[name]!r}: {why}" for name, why in violations(type_token, inputs)]


def rule(type_token: str, input_: str) -> Rule:
    """The one rule of ``input_`` on ``type_token``."""
    matches = [r for r in RULES_BY_TYPE[type_token] if r.input == input_]
    if len(matches) != 1:
        raise KeyError(f"no provider rule for {type_token} {input_}")
    return matches[0]
