"""RAM documents for the pattern: trust policies and least-privilege permissions.

Pure functions returning compact canonical JSON (sorted keys, no spaces): the RAM
API reformats the documents it stores, and a canonical form keeps Pulumi from
seeing a perpetual diff (pulumi-alicloud issue 1176, docs/platform-facts.md "RAM").

`wildcard_violations` is the checker the tests and the policy pack share.
"""

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from mns_callback_flow.limits import MNS_NAME_PATTERN, REGION_PATTERN

# The one list of actions that support no resource-level scoping, and so the
# only actions a Resource "*" is allowed for (wildcard_violations, the policy
# pack, README). Each current CloudFlow API reference gives the action's
# resource type as "All Resources", and its RAM authorization notes say: "For
# APIs without resource-level permissions, it is shown as All Resources. Use an
# asterisk (*) in the Resource element of the policy", and "The specified
# resource must be compatible with the action. Otherwise, the policy will be
# ineffective" (docs/platform-facts.md "RAM actions without resource scoping"):
UNSCOPABLE_ACTIONS: tuple[str, ...] = (
    # api-fnf-2019-03-15-reporttasksucceeded: "fnf:ReportTaskSucceeded | get | *All Resource"
    "fnf:ReportTaskSucceeded",
    # help.aliyun.com document_detail/2590646 (ReportTaskFailed): "*全部资源" (All Resources)
    "fnf:ReportTaskFailed",
    # api-fnf-2019-03-15-startexecution (doc-detail/122628): "fnf:StartExecution | update | *All Resource"
    "fnf:StartExecution",
    # api-fnf-2019-03-15-describeexecution: "fnf:DescribeExecution | get | *All Resource"
    "fnf:DescribeExecution",
)
# What the callback handler needs: report a task's outcome.
REPORT_ACTIONS: tuple[str, ...] = ("fnf:ReportTaskSucceeded", "fnf:ReportTaskFailed")
# What a caller of the flow needs: start an execution and read its result.
CALLER_ACTIONS: tuple[str, ...] = ("fnf:StartExecution", "fnf:DescribeExecution")
TRUSTED_SERVICES: tuple[str, ...] = ("fc.aliyuncs.com", "fnf.aliyuncs.com")

_ACCOUNT = re.compile(r"[0-9]{1,32}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,254}")
_TOPIC_MESSAGES_ARN = re.compile(r"acs:mns:([a-z0-9-]+):([0-9]+):/topics/([A-Za-z0-9-]+)/messages")


class PolicyError(ValueError):
    """An argument cannot go into a policy document; the message names it."""


def canonical_json(doc: Mapping[str, Any]) -> str:
    """Compact JSON with sorted keys: the same document always gives the same text."""
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)


def _check(name: str, value: object, pattern: re.Pattern[str], expected: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise PolicyError(f"{name}={value!r}: expected {expected}")
    return value


def _scope(region: str, account_id: str) -> tuple[str, str]:
    return (
        _check("region", region, REGION_PATTERN, "a region id like cn-hangzhou"),
        _check("account_id", account_id, _ACCOUNT, "a numeric Alibaba Cloud account id"),
    )


def _allow(actions: Iterable[str], resource: str | list[str]) -> dict[str, Any]:
    return {"Action": list(actions), "Effect": "Allow", "Resource": resource}


def _policy(*statements: dict[str, Any]) -> str:
    return canonical_json({"Statement": list(statements), "Version": "1"})


# ---- ARNs --------------------------------------------------------------------------


def topic_messages_arn(region: str, account_id: str, topic_name: str) -> str:
    """The messages of one MNS topic.

    `acs:mns:<region>:<account>:/topics/<topic>` is the documented topic resource
    (MNS "CreateTopic" authorization, SMQ "Custom policies" reference); message
    operations add `/messages`, as the documented queue form
    `acs:mns:<region>:<account>:/queues/<queue>/messages` does (MNS "Permission
    policies and examples", help.aliyun.com document_detail/27447: SendMessage,
    ReceiveMessage, DeleteMessage). The same table scopes topic children the same
    way (`/topics/<topic>/subscriptions/<subscription>` for Subscribe), the topic
    API path is `POST /topics/<topic>/messages`, and CloudFlow's own task resource
    for a publish is `acs:mns:::/topics/<topic>/messages` (doc 157027). The
    PublishMessage row itself was not found verbatim: still unverified.
    """
    region, account_id = _scope(region, account_id)
    topic = _check("topic_name", topic_name, MNS_NAME_PATTERN, "an MNS topic name")
    return f"acs:mns:{region}:{account_id}:/topics/{topic}/messages"


def flow_arn(region: str, account_id: str, flow_name: str) -> str:
    """`acs:fnf:<region>:<account>:flow/<name>` (docs/platform-facts.md "RAM")."""
    region, account_id = _scope(region, account_id)
    return f"acs:fnf:{region}:{account_id}:flow/{_check('flow_name', flow_name, _NAME, 'a flow name')}"


def logstore_arn(region: str, account_id: str, log_project: str, log_store: str) -> str:
    """`acs:log:<region>:<account>:project/<p>/logstore/<s>` (SLS "Authentication rules", doc 29052)."""
    region, account_id = _scope(region, account_id)
    project = _check("log_project", log_project, _NAME, "a log project name")
    store = _check("log_store", log_store, _NAME, "a logstore name")
    return f"acs:log:{region}:{account_id}:project/{project}/logstore/{store}"


# ---- documents ---------------------------------------------------------------------


def trust_policy(service: str) -> str:
    """Let one Alibaba Cloud service assume the role (docs/platform-facts.md "RAM" trust principals)."""
    if service not in TRUSTED_SERVICES:
        raise PolicyError(f"service={service!r}: expected one of {', '.join(TRUSTED_SERVICES)}")
    return canonical_json({
        "Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": [service]}}],
        "Version": "1",
    })


def report_task_policy() -> str:
    """What the callback function may do: report a task's outcome, nothing else."""
    # Resource "*" because ReportTaskSucceeded/ReportTaskFailed cannot be scoped
    # to a flow or an execution (RAM: "All Resources"); see UNSCOPABLE_ACTIONS.
    return _policy(_allow(REPORT_ACTIONS, "*"))


def publish_policy(topic_arn: str) -> str:
    """What an FDL flow may do: publish to its one topic (the messages ARN of ``topic_messages_arn``)."""
    _check("topic_arn", topic_arn, _TOPIC_MESSAGES_ARN, "acs:mns:<region>:<account>:/topics/<topic>/messages")
    return _policy(_allow(["mns:PublishMessage"], topic_arn))


# What a CloudFlow flow's role may do with its topic. The SMQ integration's one
# Action, `MNS:SendMessage`, serves queues and topics alike (CloudFlow "Simple
# Message Queue (formerly MNS)", help.aliyun.com document_detail/2593184); MNS
# authorizes publishing to a topic as `mns:PublishMessage` and sending to a queue
# as `mns:SendMessage` (MNS API authorization table, help.aliyun.com/zh/mns/b3asrm).
# Which of the two CloudFlow's call to a topic is checked against is not
# documented (docs/platform-facts.md "CloudFlow flow spec": unverified), so the
# role holds both, on this one topic's messages only.
CLOUDFLOW_PUBLISH_ACTIONS: tuple[str, ...] = ("mns:PublishMessage", "mns:SendMessage")


def cloudflow_publish_policy(topic_arn: str) -> str:
    """What a CloudFlow (`type: DEFAULT`) flow may do: send to its one topic (see CLOUDFLOW_PUBLISH_ACTIONS)."""
    _check("topic_arn", topic_arn, _TOPIC_MESSAGES_ARN, "acs:mns:<region>:<account>:/topics/<topic>/messages")
    return _policy(_allow(CLOUDFLOW_PUBLISH_ACTIONS, topic_arn))


def log_write_policy(region: str, account_id: str, log_project: str, log_store: str) -> str:
    """Let FC write the function's logs into one logstore (action `log:PostLogStoreLogs`, doc 29052)."""
    return _policy(_allow(["log:PostLogStoreLogs"], logstore_arn(region, account_id, log_project, log_store)))


def start_execution_policy() -> str:
    """What a consumer needs to run the flow: start an execution and read its result.

    Resource "*": the current API references list StartExecution and
    DescribeExecution with "All Resources" (see UNSCOPABLE_ACTIONS), so a grant
    scoped to one flow's ARN would not fit the action and leave the policy
    ineffective. Older pages scoped them (FnF "Authorization rules", doc 122683:
    `flow/<name>` and `flow/<name>/execution/<execution>`; the execution-role
    guide, document_detail/2400340: `acs:fnf:::flows/<flow>/executions/*`); a
    "*" resource works under either reading, a scoped one under one only. No
    condition key is documented for either action, so nothing narrows it further.
    """
    return _policy(_allow(CALLER_ACTIONS, "*"))


# ---- the shared least-privilege check ------------------------------------------------


def _as_list(value: object) -> list[object]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _broad_resource(resource: str) -> bool:
    """Whether ``resource`` reaches past one named resource.

    A ``*`` may only be the last part of a path below a named resource
    (``flow/<name>/execution/*``: the executions of one flow). Anything else
    with a ``*`` is broad: ``*``; a wildcard service, region or account
    (``acs:mns:*:*:/topics/t/messages`` is that topic in every account); a
    wildcard name (``/topics/*``, ``flow/demo*``, ``/topics/*/messages``).
    """
    if "*" not in resource:
        return False
    parts = resource.strip().split(":", 4)
    if len(parts) != 5:
        return True
    if any("*" in field for field in parts[1:4]):
        return True
    path = [segment for segment in parts[4].split("/") if segment]
    if not path:
        return True
    *named, last = path
    if any("*" in segment for segment in named):
        return True
    return "*" in last and (last != "*" or len(named) < 3)


def wildcard_violations(policy: str | Mapping[str, Any]) -> list[str]:
    """Every way a permission policy is broader than this project allows (empty = fine).

    Rules: no Allow statement may name an action containing `*` (`*`, `fnf:*`,
    `log:Post*`), use NotAction or NotResource, or grant a wildcard resource;
    the one exception is Resource `*` on a statement whose actions are all in
    UNSCOPABLE_ACTIONS (they support no resource scoping). Deny statements
    narrow access and are not judged; any other Effect (``allow``, a typo) is judged as an Allow: the check fails
    closed rather than trust how RAM reads it.
    """
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except json.JSONDecodeError as err:
            return [f"not JSON: {err.msg}"]
    if not isinstance(policy, Mapping) or not isinstance(policy.get("Statement"), (list, Mapping)):
        return ["no Statement list"]
    problems = []
    for index, statement in enumerate(_as_list(policy["Statement"])):
        where = f"Statement[{index}]"
        if not isinstance(statement, Mapping):
            problems.append(f"{where}: not an object")
            continue
        if statement.get("Effect") == "Deny":
            continue
        for key in ("NotAction", "NotResource"):
            if key in statement:
                problems.append(f"{where}: {key} grants everything not listed")
        actions = [str(a) for a in _as_list(statement.get("Action"))]
        resources = [str(r) for r in _as_list(statement.get("Resource"))]
        if not actions:
            problems.append(f"{where}: no Action")
        if not resources and "NotResource" not in statement:
            problems.append(f"{where}: no Resource")
        problems += [f"{where}: wildcard action {a!r}" for a in actions if "*" in a]
        only_unscopable = bool(actions) and set(actions) <= set(UNSCOPABLE_ACTIONS)
        for resource in resources:
            if _broad_resource(resource) and not (resource == "*" and only_unscopable):
                problems.append(f"{where}: wildcard resource {resource!r} for {', '.join(actions) or 'no action'}")
    return problems
