"""Component: the Serverless Workflow flow and the role it runs as."""

from __future__ import annotations

from typing import TypedDict

import pulumi
import pulumi_alicloud as alicloud

from infra import policies
from infra.ram_grants import grant, service_role

TYPE_TOKEN = "mns-callback-flow:index:CallbackFlow"
FNF_PRINCIPAL = "fnf.aliyuncs.com"


class CallbackFlowArgs(TypedDict):
    """What the flow component needs."""

    flow_name: str
    """The flow's name (what callers pass to StartExecution)."""
    description: str
    """Shown in the console."""
    definition: pulumi.Input[str]
    """The FDL v1 document (``infra.flow_definition.build_flow_definition``)."""
    topic_arn: pulumi.Input[str]
    """``acs:mns:<region>:<account>:/topics/<topic>/messages`` (``policies.topic_messages_arn``):
    the one thing the flow may publish to."""


class CallbackFlow(pulumi.ComponentResource):
    """An FDL flow whose role may publish to exactly one MNS topic and nothing else."""

    role: alicloud.ram.Role
    policy: alicloud.ram.Policy
    policy_attachment: alicloud.ram.RolePolicyAttachment
    flow: alicloud.fnf.Flow
    flow_name: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: CallbackFlowArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        flow_name = args["flow_name"]

        self.role = service_role(
            f"{name}-role", f"{flow_name}-role", FNF_PRINCIPAL,
            f"Runs the flow {flow_name}: publishes its task tokens to one MNS topic.", self,
        )
        self.policy, self.policy_attachment = grant(
            f"{name}-policy", self.role, f"{flow_name}-publish", "mns:PublishMessage on the callback topic only.",
            pulumi.Output.from_input(args["topic_arn"]).apply(policies.publish_policy), self,
        )
        self.flow = alicloud.fnf.Flow(
            f"{name}-flow",
            name=flow_name,
            type="FDL",
            description=args["description"],
            definition=args["definition"],
            role_arn=self.role.arn,
            # An execution started right after `pulumi up` must be allowed to publish.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.policy_attachment]),
        )
        self.flow_name = self.flow.name
        self.role_arn = self.role.arn
        self.register_outputs({"flowName": self.flow_name, "roleArn": self.role_arn})
