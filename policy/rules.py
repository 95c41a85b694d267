"""The rules the policy pack enforces, as pure functions of (type token, inputs).

Kept apart from ``pulumi_policy`` so the same rules run on the offline render
(``python -m infra.synth``) in tests and in review, and inside
``pulumi preview --policy-pack policy`` through ``__main__.py``. Inputs are the
provider's own camelCase names, as both the render and CrossGuard see them.

Each function returns the violation messages; every message says how to fix it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from infra.config import MAX_CLOUDFLOW_TASK_TIMEOUT_SECONDS as MAX_CLOUDFLOW_TIMEOUT
from mns_callback_flow import cloudflow_definition as cloudflow
from mns_callback_flow import flow_definition as fdl
from mns_callback_flow.policies import UNSCOPABLE_ACTIONS, wildcard_violations

# Type tokens (docs/platform-facts.md "Type tokens"; pulumi-alicloud 4.0.0 schema).
RAM_POLICY = "alicloud:ram/policy:Policy"
RAM_ROLE = "alicloud:ram/role:Role"
FNF_FLOW = "alicloud:fnf/flow:Flow"
FC3_FUNCTION = "alicloud:fc/v3Function:V3Function"
FC3_TRIGGER = "alicloud:fc/v3Trigger:V3Trigger"
FC2_FUNCTION = "alicloud:fc/function:Function"
FC2_TRIGGER = "alicloud:fc/trigger:Trigger"
RAM_ATTACHMENTS = (
    "alicloud:ram/rolePolicyAttachment:RolePolicyAttachment",
    "alicloud:ram/userPolicyAttachment:UserPolicyAttachment",
    "alicloud:ram/groupPolicyAttachment:GroupPolicyAttachment",
)

# Inputs that carry a RAM permission document (the deprecated `document`
# argument still works, so it is checked too). Trust documents (ram.Role) name
# a Principal, not a Resource, and are not permission grants.
_DOCUMENT_INPUTS = ("policyDocument", "document")

NO_WILDCARD_RAM = "no-wildcard-ram-permissions"
ANONYMOUS_NEEDS_SIGNATURE = "anonymous-trigger-needs-mns-signature-check"
ANONYMOUS_NEEDS_TOPIC_BINDING = "anonymous-trigger-needs-topic-binding"
CALLBACK_TIMEOUT = "wait-for-callback-has-timeout"
CALLBACK_TOKEN = "callback-message-carries-token"
CHECKSUMMED_CODE = "fc-code-is-checksummed-archive"


@dataclass(frozen=True)
class Violation:
    """One broken rule on one resource."""

    policy: str
    resource: str
    message: str


# --------------------------------------------------------------------------
# no `*` action; no `*` resource except for actions without resource scoping

# mns_callback_flow.policies.UNSCOPABLE_ACTIONS (its sources are cited there), as the messages name them.
UNSCOPABLE_ACTIONS_TEXT = ", ".join(UNSCOPABLE_ACTIONS)


def ram_wildcards(type_token: str, inputs: Mapping[str, Any]) -> list[str]:
    """Wildcards in a RAM permission policy (the check is mns_callback_flow.policies', shared with the stack),
    or a System policy attached, whose document this pack cannot see.

    Alibaba Cloud's System policies (``AliyunMNSFullAccess``, ``AliyunFnFFullAccess``:
    what the console sample attaches) grant ``<service>:*`` on ``*``; only a Custom
    policy's document is in the stack to be checked.
    """
    if type_token in RAM_ATTACHMENTS:
        if str(inputs.get("policyType", "")).strip().lower() == "system":
            return [(f"attaches the System policy {inputs.get('policyName')!r}, which grants whole services. "
                     "Fix: attach a Custom policy naming only the actions and resources needed "
                     "(mns_callback_flow/policies.py builds them).")]
        return []
    if type_token != RAM_POLICY:
        return []
    out = []
    for key in _DOCUMENT_INPUTS:
        doc = inputs.get(key)
        if not isinstance(doc, str):
            continue  # absent, or unknown until the apply step
        out += [
            f"{key}: {problem}. Fix: name each action (no '*'), and scope 'Resource' to the ARNs "
            f"it needs; only {UNSCOPABLE_ACTIONS_TEXT}, which support no resource scoping, "
            "may use Resource \"*\"."
            for problem in wildcard_violations(doc)
        ]
    return out


# --------------------------------------------------------------------------
# every waitForCallback task has a timeout


def _task_steps(steps: object) -> Iterable[Mapping[str, Any]]:
    """Every step, nested ones included (parallel branches, foreach, choices)."""
    if not isinstance(steps, list):
        return
    for step in steps:
        if not isinstance(step, Mapping):
            continue
        yield step
        yield from _task_steps(step.get("steps"))
        for group in ("branches", "choices"):
            for branch in step.get(group) or ():
                if isinstance(branch, Mapping):
                    yield from _task_steps(branch.get("steps"))
        default = step.get("default")
        if isinstance(default, Mapping):
            yield from _task_steps(default.get("steps"))


def _flow_document(type_token: str, inputs: Mapping[str, Any]) -> tuple[Mapping[str, Any] | None, list[str]]:
    """(the parsed definition of a flow or None, problems reading it); (None, []) for other resources."""
    if type_token != FNF_FLOW:
        return None, []
    text = inputs.get("definition")
    if not isinstance(text, str):
        return None, []  # unknown until the apply step
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return None, [f"definition is not valid YAML ({exc}); fix the document."]
    if not isinstance(doc, Mapping):
        return None, ["definition is not a flow document (expected a mapping: FDL 'steps' or CloudFlow 'States')."]
    return doc, []


def _fdl_callback_steps(doc: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    return (step for step in _task_steps(doc.get("steps")) if step.get("pattern") == "waitForCallback")


def _cloudflow_callback_states(doc: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    return (state for state in cloudflow.iter_states(doc.get("States"))
            if state.get("Type") == "Task" and state.get("TaskMode") == cloudflow.TASK_MODE)


def callback_timeouts(type_token: str, inputs: Mapping[str, Any]) -> list[str]:
    """Callback steps without a timeout, in either spec: an FDL waitForCallback task step
    without a positive integer ``timeoutSeconds``, a CloudFlow WaitForCustomCallback Task
    without a fixed ``Timeout`` of 1-604800 s (0 means "never times out").

    No default timeout is documented for either (docs/platform-facts.md): without
    one, a lost callback leaves the execution waiting indefinitely.
    """
    doc, problems = _flow_document(type_token, inputs)
    if doc is None:
        return problems
    out = []
    if cloudflow.is_state_machine(doc):
        for state in _cloudflow_callback_states(doc):
            if cloudflow.timeout_seconds(state) is None:
                out.append(
                    f"Task state {state.get('Name')!r} waits for a callback without a timeout "
                    f"(Timeout={state.get('Timeout', state.get('Timeout.$'))!r}). Fix: set Timeout to "
                    f"1-{MAX_CLOUDFLOW_TIMEOUT} seconds (config taskTimeoutSeconds), "
                    "so a lost callback fails the state instead of waiting forever."
                )
        return out
    for step in _fdl_callback_steps(doc):
        timeout = step.get("timeoutSeconds")
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0:
            out.append(
                f"task step {step.get('name')!r} waits for a callback without a timeout "
                f"(timeoutSeconds={timeout!r}). Fix: set timeoutSeconds to a positive integer "
                "(config taskTimeoutSeconds), so a lost callback fails the step with "
                "FnF.TaskTimeout instead of waiting forever."
            )
    return out


def callback_tokens(type_token: str, inputs: Mapping[str, Any]) -> list[str]:
    """Callback steps publishing to MNS whose message does not carry the task token.

    The handler reads ``taskToken`` from the pushed message; without it no
    ReportTask* call can name the task and the execution waits until its
    timeout. FDL: ``{target: taskToken, source: $context.task.token}`` in
    ``inputMappings`` and ``serviceParams.MessageBody: $``; CloudFlow:
    ``taskToken.$: $Context.Current.TaskToken`` in ``Parameters.message``.
    """
    doc, problems = _flow_document(type_token, inputs)
    if doc is None:
        return problems
    if cloudflow.is_state_machine(doc):
        return [
            f"Task state {state.get('Name')!r} sends to MNS and waits for a callback, but its "
            f"Parameters.message does not carry {cloudflow.TOKEN_KEY}: {cloudflow.TOKEN_EXPRESSION}. "
            "Fix: add it (mns_callback_flow/cloudflow_definition.py builds such a state), or the handler can never "
            "report the task."
            for state in _cloudflow_callback_states(doc)
            if str(state.get("Action", "")).startswith("MNS:") and not cloudflow.carries_token(state)
        ]
    return [
        f"task step {step.get('name')!r} publishes to MNS and waits for a callback, but its message does "
        f"not carry the task token ({{target: {fdl.TOKEN_TARGET}, source: {fdl.TOKEN_SOURCE}}} in "
        "inputMappings with serviceParams.MessageBody: $). Fix: add them (mns_callback_flow/flow_definition.py builds "
        "such a step), or the handler can never report the task."
        for step in _fdl_callback_steps(doc)
        if str(step.get("resourceArn", "")).startswith("acs:mns:") and not fdl.carries_token(step)
    ]


# --------------------------------------------------------------------------
# FC code given as a checksummed archive


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# type token -> (object holding the code fields or None for top level, inline
# archive, OSS bucket + object, checksum): pulumi-alicloud 4.0.0 input names.
_CODE_FIELDS = {
    FC3_FUNCTION: ("code", "zipFile", ("ossBucketName", "ossObjectName"), "checksum"),
    FC2_FUNCTION: (None, "filename", ("ossBucket", "ossKey"), "codeChecksum"),
}


def code_checksum(type_token: str, inputs: Mapping[str, Any]) -> list[str]:
    """FC code that is not an archive with a CRC-64 checksum.

    The checksum lets FC reject a corrupted upload and makes a code change show
    as one changed value in review (docs/platform-facts.md, pulumi-alicloud 4.0.0 args).
    """
    if type_token not in _CODE_FIELDS:
        return []
    holder, archive, (bucket, key), checksum = _CODE_FIELDS[type_token]
    code = inputs if holder is None else inputs.get(holder)
    if not isinstance(code, Mapping):
        return [(f"{holder} is missing. Fix: give {holder}={{{archive}: <base64 zip>, {checksum}: "
                "<CRC-64/XZ of the zip>} (mns_callback_flow/packaging.py builds both).")]
    at = "" if holder is None else f"{holder}."
    out = []
    if _blank(code.get(archive)) and (_blank(code.get(bucket)) or _blank(code.get(key))):
        out.append(f"the function has no archive ({at}{archive}, or {at}{bucket} + {at}{key}). "
                   f"Fix: give {at}{archive} as the zip built by mns_callback_flow/packaging.py.")
    if _blank(code.get(checksum)):
        out.append(f"{at}{checksum} is missing. Fix: set {at}{checksum} to the CRC-64/XZ of the zip "
                   "as an unsigned decimal (mns_callback_flow/packaging.py computes it).")
    return out


# --------------------------------------------------------------------------
# no anonymous HTTP trigger on a function that skips MNS signature checks


def _json_object(value: object) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    if isinstance(value, str):
        try:
            doc = json.loads(value)
        except ValueError:
            return {}
        return doc if isinstance(doc, Mapping) else {}
    return {}


def _anonymous_http_target(type_token: str, inputs: Mapping[str, Any]) -> tuple[bool, object]:
    """(is an anonymous HTTP trigger, the function name it targets or None if unknown)."""
    if type_token == FC3_TRIGGER:
        http = inputs.get("triggerType") == "http"
        cfg = _json_object(inputs.get("triggerConfig"))
        return http and cfg.get("authType") == "anonymous", inputs.get("functionName")
    if type_token == FC2_TRIGGER:
        http = inputs.get("type") == "http"
        cfg = _json_object(inputs.get("config"))
        return http and cfg.get("authType") == "anonymous", inputs.get("function")
    return False, None


def _function_environment(type_token: str, inputs: Mapping[str, Any]) -> tuple[Mapping[str, Any] | None, object]:
    """(the function's environment variables, its name), or (None, None) for other resources."""
    if type_token not in (FC3_FUNCTION, FC2_FUNCTION):
        return None, None
    env = inputs.get("environmentVariables")
    return (env if isinstance(env, Mapping) else {}), inputs.get(
        "functionName" if type_token == FC3_FUNCTION else "name")


def _skips_signature_check(env: Mapping[str, Any]) -> bool:
    return str(env.get("MNS_VERIFY_SIGNATURE", "")).strip().lower() == "false"


def _lacks_topic_binding(env: Mapping[str, Any]) -> bool:
    return not all(isinstance(env.get(k), str) and env[k].strip() for k in ("MNS_TOPIC_OWNER", "MNS_TOPIC_NAME"))


def _anonymous_triggers_on(resources: Sequence[tuple[str, str, Mapping[str, Any]]],
                           weak: Callable[[Mapping[str, Any]], bool]) -> list[tuple[str, str]]:
    """``(trigger name, function resource name)`` for each anonymous HTTP trigger of a
    function whose environment is ``weak``.

    Cross-resource, so it runs on the whole stack. A trigger whose function
    name is not yet known (an output during preview) counts as targeting every
    such function: the rule fails closed.
    """
    functions = {}
    for type_token, name, inputs in resources:
        env, fn_name = _function_environment(type_token, inputs)
        if env is not None and weak(env):
            functions[name] = fn_name
    out = []
    for type_token, name, inputs in resources:
        anonymous, target = _anonymous_http_target(type_token, inputs)
        if anonymous:
            out += [(name, res) for res, fn in functions.items() if not isinstance(target, str) or target == fn]
    return out


def anonymous_unverified(resources: Sequence[tuple[str, str, Mapping[str, Any]]]) -> list[tuple[str, str]]:
    """``(trigger name, message)`` for each anonymous trigger of an unverified function."""
    return [(trigger, (
        f"anonymous HTTP trigger on function {res!r}, whose environment sets "
        "MNS_VERIFY_SIGNATURE=false: anyone who finds the URL can report tasks. Fix: "
        "turn the check back on (config verifySignature=true; MNS_VERIFY_SIGNATURE is on "
        "unless set to false). An MNS push cannot authenticate to FC, so the handler's "
        "signature check is the trigger's only authentication."))
        for trigger, res in _anonymous_triggers_on(resources, _skips_signature_check)]


def anonymous_unbound(resources: Sequence[tuple[str, str, Mapping[str, Any]]]) -> list[tuple[str, str]]:
    """``(trigger name, message)`` for each anonymous trigger of a function not bound to one topic."""
    return [(trigger, (
        f"anonymous HTTP trigger on function {res!r}, whose environment does not set both "
        "MNS_TOPIC_OWNER and MNS_TOPIC_NAME: a valid MNS signature proves only that some MNS "
        "topic sent the push, and any account can subscribe this URL to a topic of its own. "
        "Fix: give the function the topic's owner account id and name (CallbackFunction args "
        "topic_name / topic_owner set them), so pushes from any other topic are refused."))
        for trigger, res in _anonymous_triggers_on(resources, _lacks_topic_binding)]


# --------------------------------------------------------------------------
# the whole set, on a render


RESOURCE_RULES = {
    NO_WILDCARD_RAM: ram_wildcards,
    CALLBACK_TIMEOUT: callback_timeouts,
    CALLBACK_TOKEN: callback_tokens,
    CHECKSUMMED_CODE: code_checksum,
}


def check_render(render: Mapping[str, Any]) -> list[Violation]:
    """Every violation in an offline render, in resource order then rule order."""
    resources = [(r["type"], r["name"], r.get("inputs") or {}) for r in render["resources"]]
    out = []
    for type_token, name, inputs in resources:
        for policy, rule in RESOURCE_RULES.items():
            out += [Violation(policy, name, msg) for msg in rule(type_token, inputs)]
    out += [Violation(ANONYMOUS_NEEDS_SIGNATURE, name, msg) for name, msg in anonymous_unverified(resources)]
    out += [Violation(ANONYMOUS_NEEDS_TOPIC_BINDING, name, msg) for name, msg in anonymous_unbound(resources)]
    return out
