"""CrossGuard policy pack for mns-callback-flow: ``pulumi preview --policy-pack policy``.

The rules live in ``rules.py`` (pure, also run on the offline render by the
tests); this module only adapts them to ``pulumi_policy``. Every policy is
mandatory: a violation stops the deployment.

The Pulumi policy host runs this file with ``runpy.run_path(<this folder>,
run_name="__main__")``, so ``PolicyPack(...)`` (which starts the analyzer's
gRPC server and never returns) is built only under ``__main__``; importing the
module by path, as the tests do, just defines the policies.
"""

from __future__ import annotations

# rules.py sits beside this file (runpy.run_path puts this folder first on the path); the
# RAM document checks it shares with the components come from the installed package
# mns_callback_flow (the project's .venv installs it, editable).
import rules
from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

MANDATORY = EnforcementLevel.MANDATORY


def _resource_validator(rule):
    """A CrossGuard validator ``(args, report_violation)`` around a pure rule."""

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in rule(args.resource_type, args.props):
            report_violation(message, None)

    validate.__name__ = f"validate_{rule.__name__}"
    return validate


def _stack_validator(rule):
    """A stack-wide CrossGuard validator around a pure cross-resource rule: the
    trigger and the function it calls are separate resources."""

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [(r.resource_type, r.urn, r.props) for r in args.resources]
        for urn, message in rule(resources):
            report_violation(message, urn)

    validate.__name__ = f"validate_{rule.__name__}"
    return validate


POLICIES = [
    ResourceValidationPolicy(
        name=rules.NO_WILDCARD_RAM,
        description="No RAM policy with a '*' action, nor a '*' resource except for "
        f"{rules.UNSCOPABLE_ACTIONS_TEXT} (they support no resource scoping); "
        "no System policy attached.",
        validate=_resource_validator(rules.ram_wildcards),
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name=rules.CALLBACK_TIMEOUT,
        description="Every callback step sets a timeout: FDL waitForCallback timeoutSeconds, "
        "CloudFlow WaitForCustomCallback Timeout (1-604800).",
        validate=_resource_validator(rules.callback_timeouts),
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name=rules.CALLBACK_TOKEN,
        description="Every callback step publishing to MNS carries the task token in its message "
        "(FDL $context.task.token, CloudFlow $Context.Current.TaskToken, as taskToken).",
        validate=_resource_validator(rules.callback_tokens),
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name=rules.CHECKSUMMED_CODE,
        description="Function Compute code is a zip archive with its CRC-64 checksum.",
        validate=_resource_validator(rules.code_checksum),
        enforcement_level=MANDATORY,
    ),
    StackValidationPolicy(
        name=rules.ANONYMOUS_NEEDS_SIGNATURE,
        description="No anonymous HTTP trigger on a function whose environment turns "
        "MNS signature checks off (MNS_VERIFY_SIGNATURE=false).",
        validate=_stack_validator(rules.anonymous_unverified),
        enforcement_level=MANDATORY,
    ),
    StackValidationPolicy(
        name=rules.ANONYMOUS_NEEDS_TOPIC_BINDING,
        description="No anonymous HTTP trigger on a function that is not bound to one MNS topic "
        "(MNS_TOPIC_OWNER and MNS_TOPIC_NAME): any account's topic can push a signed message.",
        validate=_stack_validator(rules.anonymous_unbound),
        enforcement_level=MANDATORY,
    ),
]

if __name__ == "__main__":
    PolicyPack(name="mns-callback-flow", policies=POLICIES, enforcement_level=MANDATORY)
