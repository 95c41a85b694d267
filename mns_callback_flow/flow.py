"""Component: the Serverless Workflow flow and the role it runs as."""

from typing import NotRequired, TypedDict

import pulumi
import pulumi_alicloud as alicloud

from mns_callback_flow import policies
from mns_callback_flow.errors import InvalidArgument
from mns_callback_flow.ram_grants import Tags, grant, service_role

TYPE_TOKEN = "mns-callback-flow:index:CallbackFlow"
FNF_PRINCIPAL = "fnf.aliyuncs.com"


class CallbackFlowArgs(TypedDict):
    """What the flow component needs."""

    flow_name: str
    """The flow's name (what callers pass to StartExecution)."""
    description: pulumi.Input[str]
    """Shown in the console."""
    definition: pulumi.Input[str]
    """The flow definition: FDL v1 (``mns_callback_flow.flow_definition``) or CloudFlow (``mns_callback_flow.cloudflow_definition``)."""
    topic_arn: pulumi.Input[str]
    """``acs:mns:<region>:<account>:/topics/<topic>/messages`` (``policies.topic_messages_arn``):
    the one thing the flow may publish to."""
    flow_spec: NotRequired[str]
    """``fdl`` (default: ``type: FDL``) or ``cloudflow`` (``type: DEFAULT``, the CloudFlow
    state machine spec of ``mns_callback_flow.cloudflow_definition``); decides the flow's type and
    what its role may do with the topic."""
    tags: NotRequired[Tags]
    """Tags for the flow's role and policy (``fnf.Flow`` takes none)."""


# flowSpec -> (fnf.Flow `type`, the role's permission document, its description).
# pulumi-alicloud 4.0.0 fnf.Flow `type`: "Valid values are `FDL` or `DEFAULT`".
_SPECS = {
    "fdl": ("FDL", policies.publish_policy, "mns:PublishMessage on the callback topic only."),
    "cloudflow": (
        "DEFAULT", policies.cloudflow_publish_policy,
        "mns:PublishMessage and mns:SendMessage on the callback topic only.",
    ),
}


class CallbackFlow(pulumi.ComponentResource):
    """A flow (FDL or CloudFlow spec) whose role may publish to exactly one MNS topic and nothing else."""

    flow_name: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: CallbackFlowArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # Children, reachable as attributes (not annotated on the class: a component
        # provider's analyzer reads class annotations as the component's outputs).
        self.role: alicloud.ram.Role
        self.policy: alicloud.ram.Policy
        self.policy_attachment: alicloud.ram.RolePolicyAttachment
        self.flow: alicloud.fnf.Flow
        super().__init__(TYPE_TOKEN, name, None, opts)
        flow_name = args["flow_name"]
        spec = args.get("flow_spec", "fdl")
        if spec not in _SPECS:
            raise InvalidArgument("flow_spec", spec, f"expected one of {', '.join(_SPECS)}")
        flow_type, policy_document, policy_description = _SPECS[spec]

        self.role = service_role(
            f"{name}-role", f"{flow_name}-role", FNF_PRINCIPAL,
            f"Runs the flow {flow_name}: publishes its task tokens to one MNS topic.", self, args.get("tags"),
        )
        self.policy, self.policy_attachment = grant(
            f"{name}-policy", self.role, f"{flow_name}-publish", policy_description,
            pulumi.Output.from_input(args["topic_arn"]).apply(policy_document), self, args.get("tags"),
        )
        self.flow = alicloud.fnf.Flow(
            f"{name}-flow",
            name=flow_name,
            type=flow_type,
            description=args["description"],
            definition=args["definition"],
            role_arn=self.role.arn,
            # An execution started right after `pulumi up` must be allowed to publish.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.policy_attachment]),
        )
        self.flow_name = self.flow.name
        self.role_arn = self.role.arn
        self.register_outputs({"flowName": self.flow_name, "roleArn": self.role_arn})
