"""Platform limits and naming rules of the pattern's resources, with their sources.

Pure: the components check their args against these, and the project's config
(``infra.config``) checks its keys against the same rules.
"""

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from mns_callback_flow import provider_limits

FUNCTION_COMPUTE_VERSIONS = ("3.0", "2.0")
# docs/platform-facts.md "Python runtimes": python3.10 is GA everywhere (the safe default),
# python3.9 older, python3.12 in public preview in some regions.
RUNTIMES = ("python3.10", "python3.9", "python3.12")
# The Python runtimes each FC generation offers (of those this package can vendor for):
# FC 3.0 lists python3.12 (public preview), 3.10, 3.9 and 3.6 (help.aliyun.com
# /zh/functioncompute/fc-3-0/user-guide/runtime-overview-3), and so does the
# provider's fcv3 `runtime` rule (mns_callback_flow.provider_limits.FCV3_RUNTIMES), which decides
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
NAME_PREFIX_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,39}")
# Simple Log Service naming: project 3-63 chars of lowercase letters, digits and
# hyphens, starting and ending with a letter or digit; logstore 2-63 chars, the
# same plus underscores (SLS "Limits on names" / CreateProject, CreateLogStore).
LOG_PROJECT_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
LOG_STORE_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,61}[a-z0-9]")
ERROR_NAME_PATTERN = re.compile(rf"[A-Za-z0-9_.:-]{{1,{MAX_ERROR_NAME}}}")

# The subscription's dead-letter queue (message.ServiceQueue, pulumi-alicloud 4.0.0
# message/service_queue.py): `message_retention_period` "Valid values: 60 to 604800.
# Unit: seconds". The queue keeps a dead letter at least as long as the task waits
# for its callback, so the provider's bounds bound the task timeout while the
# queue is on (docs/platform-facts.md "MNS data-plane API (queues and topics)").
MIN_QUEUE_RETENTION_SECONDS, MAX_QUEUE_RETENTION_SECONDS = 60, 604800
DEAD_LETTER_QUEUE_SUFFIX = "-dlq"

# ``module:function``, the handler's CALLBACK_WORK form (function/mns_callback/work.py).
WORK_REFERENCE_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*")


def cert_url_prefix_refusal(prefix: str) -> str | None:
    """None when ``prefix`` may extend the handler's signing-certificate trust; else why not.

    Extra trust for the handler's signature check, so held to what cannot widen it
    by accident: https only, the host fixed by a trailing '/' (the handler's own rule
    for MNS_CERT_URL_PREFIXES; a plain-HTTP or open-ended prefix would let anyone who
    can serve a certificate forge pushes).
    """
    parts = urlsplit(prefix)
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        return f"{prefix!r} is not an https://host/ URL prefix"
    if not parts.path.endswith("/") or parts.query or parts.fragment:
        return f"{prefix!r} must end with '/' after the host and path"
    return None


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

