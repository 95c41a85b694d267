"""RAM building blocks the components share: a service role and a custom policy granted to it.

Documents come from ``mns_callback_flow.policies`` (pure, canonical JSON); this module only
declares the resources, with the current argument names of pulumi-alicloud 4.0.0
(``role_name`` / ``assume_role_policy_document``, ``policy_name`` /
``policy_document``; the older ``name`` / ``document`` are deprecated).
"""

from collections.abc import Mapping

import pulumi
import pulumi_alicloud as alicloud

from mns_callback_flow import policies

Tags = pulumi.Input[Mapping[str, pulumi.Input[str]]]


def service_role(
    logical_name: str, role_name: str, service: str, description: str, parent: pulumi.Resource,
    tags: Tags | None = None,
) -> alicloud.ram.Role:
    """A role that only ``service`` (e.g. ``fc.aliyuncs.com``) may assume."""
    return alicloud.ram.Role(
        logical_name,
        role_name=role_name,
        description=description,
        assume_role_policy_document=policies.trust_policy(service),
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def grant(
    logical_name: str,
    role: alicloud.ram.Role,
    policy_name: str,
    description: pulumi.Input[str],
    document: pulumi.Input[str],
    parent: pulumi.Resource,
    tags: Tags | None = None,
) -> tuple[alicloud.ram.Policy, alicloud.ram.RolePolicyAttachment]:
    """A custom policy ``<logical_name>`` with ``document``, attached to ``role``.

    Resources that must not act before the permission exists depend on the
    returned attachment.
    """
    child = pulumi.ResourceOptions(parent=parent)
    policy = alicloud.ram.Policy(
        logical_name, policy_name=policy_name, description=description, policy_document=document, tags=tags,
        opts=child,
    )
    attachment = alicloud.ram.RolePolicyAttachment(
        f"{logical_name}-attachment",
        role_name=role.role_name,
        policy_name=policy.policy_name,
        policy_type="Custom",
        opts=child,
    )
    return policy, attachment
