"""Component: the whole callback pattern, wired.

The flow publishes to the topic, the topic pushes to the function's trigger,
the function reports back to the flow. Each edge is an Output passed from one
component to the next, so Pulumi orders creation by the real dependencies.

``CallbackPatternArgs`` is the public API: every field is optional, with a
default derived from the component's name, so ``CallbackPattern("orders")``
with only the provider's region is a complete pattern. Plain values are
checked before anything is registered (``pattern_spec.resolve``); values given
as Outputs are checked when they resolve. Either way the error names the arg.
"""

from collections.abc import Sequence

import pulumi
import pulumi_alicloud as alicloud

from mns_callback_flow.callback_function import CallbackFunction, CallbackFunctionArgs
from mns_callback_flow.cloudflow_definition import build_cloudflow_definition
from mns_callback_flow.flow import CallbackFlow, CallbackFlowArgs
from mns_callback_flow.flow_definition import build_flow_definition
from mns_callback_flow.pattern_spec import (
    CallbackPatternArgs,
    PatternSpec,
    TaskCatchArgs,
    TaskOutputMappingArgs,
    TaskRetryArgs,
    checked_log_name,
    checked_topic_name,
    resolve,
)
from mns_callback_flow.policies import topic_messages_arn
from mns_callback_flow.topic import CallbackTopic, CallbackTopicArgs

TYPE_TOKEN = "mns-callback-flow:index:CallbackPattern"

__all__ = ["CallbackPattern", "CallbackPatternArgs", "TaskCatchArgs", "TaskOutputMappingArgs", "TaskRetryArgs"]


# The default args: every field's default. Read, never written (``resolve`` copies).
# ``args`` is typed as the TypedDict itself, not Optional: the component provider's
# analyzer derives the package schema from that annotation.
_NO_ARGS = CallbackPatternArgs()


class CallbackPattern(pulumi.ComponentResource):
    """Flow -> MNS topic -> FC HTTP trigger -> ReportTask*, least privilege throughout."""

    region: pulumi.Output[str]
    account_id: pulumi.Output[str]
    topic_name: pulumi.Output[str]
    flow_name: pulumi.Output[str]
    function_name: pulumi.Output[str]
    trigger_url: pulumi.Output[str]
    dead_letter_queue_name: pulumi.Output[str]
    flow_role_arn: pulumi.Output[str]
    function_role_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: CallbackPatternArgs = _NO_ARGS, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        # Children, reachable as attributes (not annotated on the class: a component
        # provider's analyzer reads class annotations as the component's outputs).
        self.function: CallbackFunction
        self.topic: CallbackTopic
        self.flow: CallbackFlow
        spec = resolve(name, dict(args))  # raises InvalidArgument before anything is registered
        super().__init__(TYPE_TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)  # the component's provider answers
        self.account_id = alicloud.get_caller_identity_output(opts=invoke).account_id
        if spec.region is not None:
            self.region = pulumi.Output.from_input(spec.region)
        else:
            # get_regions(current=True): "match only the region configured in the provider"
            # (pulumi_alicloud 4.0.0 get_regions.py), so an explicit provider is honoured.
            self.region = alicloud.get_regions_output(current=True, opts=invoke).ids.apply(_one_region)
        topic_name = pulumi.Output.from_input(spec.topic_name).apply(checked_topic_name)
        log_project = _checked(spec.log_project, "log_project")
        log_store = _checked(spec.log_store, "log_store")

        self.function = CallbackFunction(f"{name}-function", self._function_args(spec, topic_name,
                                                                                 log_project, log_store), opts=child)
        topic_args: CallbackTopicArgs = {
            "topic_name": topic_name,
            "create_topic": spec.create_topic,
            "subscription_name": spec.subscription_name,
            "endpoint": self.function.trigger_url,
            "notify_strategy": spec.notify_strategy,
            "notify_content_format": spec.notify_content_format,
            "dead_letter_queue_name": spec.dead_letter_queue_name,
            "dead_letter_retention_seconds": spec.dead_letter_retention_seconds,
        }
        if spec.tags is not None:
            topic_args["tags"] = spec.tags
        self.topic = CallbackTopic(f"{name}-topic", topic_args, opts=child)
        # The definition names the topic through its Output: the flow follows the topic.
        topic = pulumi.Output.all(self.region, self.account_id, self.topic.topic_name)
        if spec.flow_spec == "cloudflow":
            # CloudFlow names the topic with its region and account (docs/platform-facts.md).
            definition = topic.apply(lambda v: build_cloudflow_definition(
                spec.task(v[2]), flow_name=spec.flow_name, region=v[0], account_id=v[1]))
        else:
            definition = topic.apply(lambda v: build_flow_definition(spec.task(v[2])))
        flow_args: CallbackFlowArgs = {
            "flow_name": spec.flow_name,
            "description": pulumi.Output.concat("Waits for a callback through MNS topic ", topic_name, "."),
            "definition": definition,
            "topic_arn": topic.apply(lambda v: topic_messages_arn(v[0], v[1], v[2])),
            "flow_spec": spec.flow_spec,
        }
        if spec.tags is not None:
            flow_args["tags"] = spec.tags
        self.flow = CallbackFlow(f"{name}-flow", flow_args, opts=child)

        self.topic_name = self.topic.topic_name
        self.flow_name = self.flow.flow_name
        self.function_name = self.function.function_name
        self.trigger_url = self.function.trigger_url
        self.dead_letter_queue_name = self.topic.dead_letter_queue_name
        self.flow_role_arn = self.flow.role_arn
        self.function_role_arn = self.function.role_arn
        self.register_outputs(self.stack_outputs())

    def _function_args(self, spec: PatternSpec, topic_name: pulumi.Output[str],
                       log_project: pulumi.Output[str] | None,
                       log_store: pulumi.Output[str] | None) -> CallbackFunctionArgs:
        args: CallbackFunctionArgs = {
            "function_name": spec.function_name,
            "function_compute": spec.function_compute,
            "region": self.region,
            "account_id": self.account_id,
            "runtime": spec.runtime,
            "memory_size": spec.memory_size,
            "cpu": spec.cpu,
            "timeout": spec.function_timeout_seconds,
            "verify_signature": spec.verify_signature,
            # The flow's resourceArn names a topic of its own account (acs:mns:::, doc 157027),
            # so the topic that may push is the stack account's, created or existing.
            "topic_name": topic_name,
            "topic_owner": self.account_id,
            "notify_content_format": spec.notify_content_format,
            "cert_url_prefixes": spec.signing_cert_url_prefixes,
            "work": spec.work,
            "work_dir": spec.work_dir,
            "log_project": log_project,
            "log_store": log_store,
            "tags": spec.tags,
            "resource_group_id": spec.resource_group_id,
            "build_dir": spec.build_dir,
        }
        return args

    def stack_outputs(self) -> dict[str, pulumi.Output[str]]:
        """The stack outputs of README "Stack outputs", by their contract names."""
        return {
            "region": self.region,
            "accountId": self.account_id,
            "topicName": self.topic_name,
            "flowName": self.flow_name,
            "functionName": self.function_name,
            "triggerUrl": self.trigger_url,
            "deadLetterQueueName": self.dead_letter_queue_name,
            "flowRoleArn": self.flow_role_arn,
            "functionRoleArn": self.function_role_arn,
        }


def _one_region(ids: Sequence[str] | None) -> str:
    """The provider's region from ``get_regions(current=True)``; it names exactly one."""
    if not ids or len(ids) != 1:
        raise pulumi.InputPropertyError(
            "region", f"the provider names no single current region ({ids!r}); set alicloud:region or pass region",
        )
    return ids[0]


def _checked(value: pulumi.Input[str] | None, key: str) -> pulumi.Output[str] | None:
    """A log name checked when it resolves (it may be another stack's output); None stays None."""
    if value is None:
        return None
    return pulumi.Output.from_input(value).apply(lambda text: checked_log_name(key, text))
