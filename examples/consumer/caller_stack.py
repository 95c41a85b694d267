"""The resources a caller of the pattern's flow needs, from its stack outputs."""

from __future__ import annotations

from typing import NotRequired, TypedDict

import caller_access as access
import pulumi
import pulumi_alicloud as alicloud

from mns_callback_flow.policies import start_execution_policy

TYPE_TOKEN = "mns-callback-flow-consumer:index:FlowCaller"


class FlowCallerArgs(TypedDict):
    """The pattern's stack outputs the caller uses, and who may use it."""

    flow_name: pulumi.Input[str]
    """The pattern's ``flowName`` output: the flow the role is for (it names the role and the start command)."""
    region: pulumi.Input[str]
    """The pattern's ``region`` output (where the start command calls the flow)."""
    account_id: pulumi.Input[str]
    """The pattern's ``accountId`` output (the default trusted principal)."""
    trusted_principal: NotRequired[str | None]
    """Who may assume the role: ``acs:ram::<account>:root``, ``:user/<name>`` or ``:role/<name>``;
    unset or empty means the pattern account's root."""
    role_name: NotRequired[str | None]
    """The role's name; unset or empty means ``<flowName>-caller``."""


class FlowCaller(pulumi.ComponentResource):
    """A RAM role for calling the pattern's flow: it may only start and describe executions.

    RAM cannot scope StartExecution / DescribeExecution to one flow (their API
    references list "All Resources": mns_callback_flow.policies.UNSCOPABLE_ACTIONS), so the
    grant is on "*": the role may start and describe any flow of the account.

    Takes the pattern's outputs as Outputs, so it works on a StackReference's
    values during preview, before they are known.
    """

    role: alicloud.ram.Role
    policy: alicloud.ram.Policy
    attachment: alicloud.ram.RolePolicyAttachment
    role_name: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    start_command: pulumi.Output[str]
    assume_role_command: pulumi.Output[str]

    def __init__(self, name: str, args: FlowCallerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        flow_name, region, account_id = args["flow_name"], args["region"], args["account_id"]
        trusted_principal, role_name = args.get("trusted_principal"), args.get("role_name")
        super().__init__(TYPE_TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        flow = pulumi.Output.from_input(flow_name)
        principal = (
            pulumi.Output.from_input(trusted_principal)
            if trusted_principal
            else pulumi.Output.from_input(account_id).apply(access.account_root)
        )
        self.role_name = flow.apply(lambda f: access.caller_role_name(f, role_name))
        self.role = alicloud.ram.Role(
            f"{name}-role",
            role_name=self.role_name,
            assume_role_policy_document=principal.apply(access.trust_policy),
            description=flow.apply(lambda f: f"Starts and describes executions of flow {f}."),
            opts=child,
        )
        self.policy = alicloud.ram.Policy(
            f"{name}-policy",
            policy_name=self.role_name.apply(lambda r: f"{r}-start"),
            # Resource "*": these actions support no resource scoping (see the class docstring).
            policy_document=start_execution_policy(),
            description="StartExecution/DescribeExecution (no resource scoping exists for them).",
            opts=child,
        )
        self.attachment = alicloud.ram.RolePolicyAttachment(
            f"{name}-attachment",
            role_name=self.role.role_name,
            policy_name=self.policy.policy_name,
            policy_type="Custom",
            opts=child,
        )
        self.role_arn = self.role.arn
        self.start_command = pulumi.Output.all(flow, region).apply(lambda v: access.start_command(v[0], v[1]))
        self.assume_role_command = self.role_arn.apply(access.assume_role_command)
        self.register_outputs({
            "roleArn": self.role_arn,
            "roleName": self.role.role_name,
            "startCommand": self.start_command,
            "assumeRoleCommand": self.assume_role_command,
        })
