"""Which input changes make the provider replace a resource rather than update it.

A bridged Terraform provider replaces a resource when an input whose Terraform
schema says ``ForceNew: true`` changes: ``pulumi up`` creates a new resource
and deletes the old one (replacing a flow ends its running executions). The
offline render has no provider schema, so this table carries it: one entry per
resource type token the package declares (the subscription's dead-letter
queue included), each with the Pulumi names of its force-new inputs and the
terraform-provider-alicloud file they were read from. docs/platform-facts.md,
"Provider replacements (ForceNew)", lists the same fields with the version.

Pure data and two small decisions; no Pulumi, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# The terraform-provider-alicloud tag the fields were read at. Every field below
# is the same at v1.285.0 (what pulumi-alicloud's provider/go.mod pins on its
# master branch), v1.286.0-v1.289.0 and v2.0.0-beta1-beta3.
TERRAFORM_PROVIDER_VERSION = "v1.289.0"

# Component resources of this package: no provider behind them, never replaced.
COMPONENT_PREFIX = "mns-callback-flow:index:"


@dataclass(frozen=True)
class ReplacementRule:
    """The provider's replacement behaviour for one resource type.

    ``force_new``: Pulumi input names whose change replaces the resource.
    ``identity``: inputs that together name the resource in its scope (account
    and region, or its parent); a replacement that keeps them all cannot create
    the new one beside the old one.
    ``provider_deletes_first``: the resource has a string input ``name`` that
    the bridge auto-names; a user-set ``name`` makes the bridge answer every
    replacement with delete-before-replace.
    """

    terraform_type: str
    force_new: frozenset[str]
    identity: tuple[str, ...]
    provider_deletes_first: bool
    source: str


def _rule(terraform_type: str, force_new: set[str], identity: tuple[str, ...], deletes_first: bool) -> ReplacementRule:
    return ReplacementRule(
        terraform_type=terraform_type,
        force_new=frozenset(force_new),
        identity=identity,
        provider_deletes_first=deletes_first,
        source=f"alicloud/resource_{terraform_type}.go@{TERRAFORM_PROVIDER_VERSION}",
    )


# Type token -> rule. Terraform names -> Pulumi names by the bridge's
# snake_case -> camelCase rule (pulumi-alicloud provider/resources.go maps the
# tokens: alicloud_fnf_flow -> fnf Flow, alicloud_fcv3_function -> fc V3Function, ...).
REPLACEMENT_RULES: Mapping[str, ReplacementRule] = {
    "alicloud:fc/function:Function": _rule(
        "alicloud_fc_function", {"service", "name", "namePrefix"}, ("service", "name"), True
    ),
    "alicloud:fc/service:Service": _rule("alicloud_fc_service", {"name", "namePrefix"}, ("name",), True),
    "alicloud:fc/trigger:Trigger": _rule(
        "alicloud_fc_trigger",
        {"service", "function", "name", "namePrefix", "sourceArn", "configMns", "type"},
        ("service", "function", "name"),
        True,
    ),
    "alicloud:fc/v3Function:V3Function": _rule(
        "alicloud_fcv3_function", {"functionName", "idleTimeout"}, ("functionName",), False
    ),
    "alicloud:fc/v3Trigger:V3Trigger": _rule(
        "alicloud_fcv3_trigger",
        {"functionName", "qualifier", "sourceArn", "triggerName", "triggerType"},
        ("functionName", "triggerName"),
        False,
    ),
    "alicloud:fnf/flow:Flow": _rule("alicloud_fnf_flow", {"name"}, ("name",), True),
    "alicloud:message/serviceQueue:ServiceQueue": _rule(
        "alicloud_message_service_queue", {"queueName", "queueType"}, ("queueName",), False
    ),
    "alicloud:message/serviceSubscription:ServiceSubscription": _rule(
        "alicloud_message_service_subscription",
        {"endpoint", "stsRoleArn", "filterTag", "notifyContentFormat", "subscriptionName", "topicName"},
        ("topicName", "subscriptionName"),
        False,
    ),
    "alicloud:message/serviceTopic:ServiceTopic": _rule(
        "alicloud_message_service_topic", {"topicName", "topicType"}, ("topicName",), False
    ),
    # `name` is the deprecated spelling of policyName / roleName; the bridge
    # auto-names it, so only a user-set `name` makes it delete first.
    "alicloud:ram/policy:Policy": _rule("alicloud_ram_policy", {"policyName", "name"}, ("policyName",), True),
    "alicloud:ram/role:Role": _rule("alicloud_ram_role", {"roleName", "name"}, ("roleName",), True),
    "alicloud:ram/rolePolicyAttachment:RolePolicyAttachment": _rule(
        "alicloud_ram_role_policy_attachment",
        {"policyName", "policyType", "roleName"},
        ("policyName", "policyType", "roleName"),
        False,
    ),
}


def rule_for(type_token: str) -> ReplacementRule | None:
    """The rule of a provider type token; None for this package's components."""
    if type_token.startswith(COMPONENT_PREFIX):
        return None
    try:
        return REPLACEMENT_RULES[type_token]
    except KeyError:
        raise KeyError(
            f"no replacement rule for resource type {type_token!r}: add its ForceNew fields to "
            "infra/provider_replacements.py and docs/platform-facts.md"
        ) from None


def forcing_inputs(type_token: str, changed_inputs: set[str]) -> list[str]:
    """The changed top-level inputs that replace a resource of ``type_token``, sorted."""
    rule = rule_for(type_token)
    return sorted(changed_inputs & rule.force_new) if rule else []


# How a replacement is ordered (see ReplacementOrder values).
CREATE_FIRST = "create-before-delete"
PROVIDER_DELETES_FIRST = "provider-deletes-first"
NAME_CANNOT_COEXIST = "name-cannot-coexist"


def replacement_order(type_token: str, old_inputs: Mapping[str, object], new_inputs: Mapping[str, object]) -> str:
    """How ``pulumi up`` orders the replacement of one resource.

    - ``PROVIDER_DELETES_FIRST``: a user-set ``name`` on a type the bridge
      auto-names: the provider asks for delete-before-replace.
    - ``NAME_CANNOT_COEXIST``: the engine creates first (its default), but the
      inputs naming the resource stay the same, so the create would meet the
      old resource's name; ``deleteBeforeReplace`` is needed (a conservative
      reading: that the cloud refuses the duplicate name is unverified).
    - ``CREATE_FIRST``: the new resource has a new name; created, then the old
      one deleted.
    """
    rule = rule_for(type_token)
    if rule is None:
        return CREATE_FIRST
    if rule.provider_deletes_first and "name" in new_inputs:
        return PROVIDER_DELETES_FIRST
    if all(key in new_inputs and old_inputs.get(key) == new_inputs[key] for key in rule.identity):
        return NAME_CANNOT_COEXIST
    return CREATE_FIRST
