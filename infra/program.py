"""The Pulumi program itself, shared by ``__main__.py`` and ``infra.synth``.

Keeping it here means the offline render runs exactly what ``pulumi up`` runs.
The stack's config (``infra.config``) is mapped onto the component's args here
and only here: the component never reads config.
"""

from dataclasses import asdict

import pulumi

from infra.config import Settings, load_settings
from mns_callback_flow import CallbackPattern, CallbackPatternArgs, TaskCatchArgs, TaskRetryArgs

PATTERN_NAME = "callback"


def _retry(rule: object) -> TaskRetryArgs:
    values = {k: v for k, v in asdict(rule).items() if v is not None}  # type: ignore[call-overload]
    values["errors"] = list(values["errors"])
    return TaskRetryArgs(**values)


def _catch(rule: object) -> TaskCatchArgs:
    fields = asdict(rule)  # type: ignore[call-overload]
    if fields["status"] is not None:
        return TaskCatchArgs(errors=list(fields["errors"]), status=fields["status"])
    fail = {"error": fields["fail_error"], **({"cause": fields["fail_cause"]} if fields["fail_cause"] else {})}
    return TaskCatchArgs(errors=list(fields["errors"]), fail=fail)  # type: ignore[typeddict-item]


def pattern_args(settings: Settings) -> CallbackPatternArgs:
    """The component's args for the stack's validated settings (README "Configuration")."""
    args: CallbackPatternArgs = {
        "name_prefix": settings.name_prefix,
        "region": settings.region,
        "topic_name": settings.topic_name,
        "create_topic": settings.create_topic,
        "function_compute": settings.function_compute,
        "runtime": settings.runtime,
        "memory_size": settings.memory_size,
        "function_timeout_seconds": settings.function_timeout_seconds,
        "task_timeout_seconds": settings.task_timeout_seconds,
        "task_retry": [_retry(rule) for rule in settings.task_retry],
        "task_catch": [_catch(rule) for rule in settings.task_catch],
        "task_output_mappings": [{"target": m.target, "source": m.source} for m in settings.task_output_mappings],
        "notify_strategy": settings.notify_strategy,
        "notify_content_format": settings.notify_content_format,
        "verify_signature": settings.verify_signature,
        "signing_cert_url_prefixes": list(settings.signing_cert_url_prefixes),
        "flow_spec": settings.flow_spec,
        "dead_letter_queue": settings.dead_letter_queue_name is not None,
    }
    if settings.cpu is not None:
        args["cpu"] = settings.cpu
    if settings.callback_work:
        args["work"] = settings.callback_work  # a module of the handler's own function/
    if settings.log_project and settings.log_store:
        args["log_project"], args["log_store"] = settings.log_project, settings.log_store
    return args


def define_stack() -> CallbackPattern:
    """Read and validate the config, declare the pattern, export its outputs (README "Stack outputs")."""
    settings = load_settings()  # raises ConfigError before any resource is registered
    pattern = CallbackPattern(PATTERN_NAME, pattern_args(settings))
    for key, value in pattern.stack_outputs().items():
        pulumi.export(key, value)
    return pattern
