"""Pure parts of the consumer: names, trust document, how to start the flow.

The permission document itself comes from the pattern's own
``mns_callback_flow.policies.start_execution_policy`` so the two projects cannot drift.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex

# RAM role names: 1-64 letters, digits, '.', '-' (RAM CreateRole, RoleName).
_ROLE_NAME = re.compile(r"[A-Za-z0-9.-]{1,64}")
# Principals a caller role may trust: the account itself, or one RAM user/role in it.
_PRINCIPAL = re.compile(r"acs:ram::\d+:(root|user/[^/\s]+|role/[^/\s]+)")
# `pulumi.StackReference` wants the fully qualified `<org>/<project>/<stack>`.
_STACK_NAME = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")

DEMO_INPUT = {"messageBody": "hello world"}


class ConsumerConfigError(ValueError):
    """Bad consumer configuration; the message names the key and what was expected."""


def check_stack_name(value: str, key: str = "patternStack") -> str:
    """The fully qualified stack name, or ConsumerConfigError naming ``key``."""
    if not isinstance(value, str) or not _STACK_NAME.fullmatch(value):
        raise ConsumerConfigError(
            f"{key}={value!r}: expected the pattern's fully qualified stack name "
            "<org>/<project>/<stack>, e.g. acme/mns-callback-flow/dev")
    return value


def account_root(account_id: str) -> str:
    """The principal ARN of a whole account (the default a caller role trusts)."""
    if not re.fullmatch(r"\d+", str(account_id)):
        raise ConsumerConfigError(f"accountId={account_id!r}: expected the numeric Alibaba Cloud account ID")
    return f"acs:ram::{account_id}:root"


def trust_policy(principal: str, key: str = "trustedPrincipal") -> str:
    """Compact, key-sorted trust document (the RAM API reformats anything else: docs/platform-facts.md)."""
    if not _PRINCIPAL.fullmatch(principal or ""):
        raise ConsumerConfigError(
            f"{key}={principal!r}: expected acs:ram::<account>:root, "
            "acs:ram::<account>:user/<name> or acs:ram::<account>:role/<name>")
    doc = {
        "Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"RAM": [principal]}}],
        "Version": "1",
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)


def caller_role_name(flow_name: str, override: str | None = None, key: str = "roleName") -> str:
    """``override`` if valid, else ``<flow>-caller`` made valid and at most 64 chars."""
    if override:
        if not _ROLE_NAME.fullmatch(override):
            raise ConsumerConfigError(f"{key}={override!r}: expected 1-64 letters, digits, '.' or '-'")
        return override
    name = re.sub(r"[^A-Za-z0-9.-]", "-", f"{flow_name}-caller")
    if len(name) > 64:
        # keep it unique for long flow names: a cut prefix plus a digest of the whole
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        name = f"{name[:55]}-{digest}"
    return name


def start_command(flow_name: str, region: str, execution_input: dict | None = None) -> str:
    """The aliyun CLI command that starts one execution (run with the role's credentials)."""
    body = json.dumps(DEMO_INPUT if execution_input is None else execution_input, separators=(",", ":"))
    return shlex.join(["aliyun", "fnf", "StartExecution", "--region", region,
                       "--FlowName", flow_name, "--Input", body])


def assume_role_command(role_arn: str, session: str = "flow-caller") -> str:
    """The aliyun CLI command that gets STS credentials for the caller role."""
    return shlex.join(["aliyun", "sts", "AssumeRole", "--RoleArn", role_arn, "--RoleSessionName", session])
