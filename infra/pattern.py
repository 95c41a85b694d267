"""Component: the whole callback pattern, wired.

The flow publishes to the topic, the topic pushes to the function's trigger,
the function reports back to the flow. Each edge is an Output passed from one
component to the next, so Pulumi orders creation by the real dependencies.
"""

from __future__ import annotations

import dataclasses
from typing import NotRequired, TypedDict

import pulumi
import pulumi_alicloud as alicloud

from infra.callback_function import CallbackFunction
from infra.cloudflow_definition import build_cloudflow_definition
from infra.config import Settings
from infra.flow import CallbackFlow
from infra.flow_definition import build_flow_definition
from infra.policies import topic_messages_arn
from infra.topic import CallbackTopic

TYPE_TOKEN = "mns-callback-flow:index:CallbackPattern"


class CallbackPatternArgs(TypedDict):
    """What the pattern needs."""

    settings: Settings
    """The validated stack settings (``infra.config``)."""
    source_dir: NotRequired[str]
    """The function's archive root (default ``function/`` of this project)."""


class CallbackPattern(pulumi.ComponentResource):
    """Flow -> MNS topic -> FC HTTP trigger -> ReportTask*, least privilege throughout."""

    function: CallbackFunction
    topic: CallbackTopic
    flow: CallbackFlow
    region: pulumi.Output[str]
    account_id: pulumi.Output[str]
    topic_name: pulumi.Output[str]
    flow_name: pulumi.Output[str]
    function_name: pulumi.Output[str]
    trigger_url: pulumi.Output[str]
    dead_letter_queue_name: pulumi.Output[str]
    flow_role_arn: pulumi.Output[str]
    function_role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: CallbackPatternArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        settings = args["settings"]
        child = pulumi.ResourceOptions(parent=self)
        identity = alicloud.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        self.account_id = identity.account_id
        self.region = pulumi.Output.from_input(settings.region)

        self.function = CallbackFunction(
            f"{name}-function",
            {
                "function_name": settings.function_name,
                "function_compute": settings.function_compute,
                "region": settings.region,
                "account_id": self.account_id,
                "runtime": settings.runtime,
                "memory_size": settings.memory_size,
                "cpu": settings.cpu,
                "timeout": settings.function_timeout_seconds,
                "verify_signature": settings.verify_signature,
                # The flow's resourceArn names a topic of its own account (acs:mns:::, doc 157027),
                # so the topic that may push is the stack account's, created or existing.
                "topic_name": settings.topic_name,
                "topic_owner": self.account_id,
                "notify_content_format": settings.notify_content_format,
                "cert_url_prefixes": settings.signing_cert_url_prefixes,
                "work": settings.callback_work,
                "log_project": settings.log_project,
                "log_store": settings.log_store,
                **({"source_dir": args["source_dir"]} if "source_dir" in args else {}),
            },
            opts=child,
        )
        self.topic = CallbackTopic(
            f"{name}-topic",
            {
                "topic_name": settings.topic_name,
                "create_topic": settings.create_topic,
                "subscription_name": settings.subscription_name,
                "endpoint": self.function.trigger_url,
                "notify_strategy": settings.notify_strategy,
                "notify_content_format": settings.notify_content_format,
                "dead_letter_queue_name": settings.dead_letter_queue_name,
                "dead_letter_retention_seconds": settings.dead_letter_retention_seconds,
            },
            opts=child,
        )
        # The definition names the topic through its Output: the flow follows the topic.
        if settings.flow_spec == "cloudflow":
            # CloudFlow names the topic with its region and account (docs/platform-facts.md).
            definition = pulumi.Output.all(self.account_id, self.topic.topic_name).apply(
                lambda v: build_cloudflow_definition(dataclasses.replace(settings, topic_name=v[1]), v[0])
            )
        else:
            definition = self.topic.topic_name.apply(
                lambda topic: build_flow_definition(dataclasses.replace(settings, topic_name=topic))
            )
        topic_arn = pulumi.Output.all(self.account_id, self.topic.topic_name).apply(
            lambda v: topic_messages_arn(settings.region, v[0], v[1])
        )
        self.flow = CallbackFlow(
            f"{name}-flow",
            {
                "flow_name": settings.flow_name,
                "description": f"Waits for a callback through MNS topic {settings.topic_name}.",
                "definition": definition,
                "topic_arn": topic_arn,
                "flow_spec": settings.flow_spec,
            },
            opts=child,
        )

        self.topic_name = self.topic.topic_name
        self.flow_name = self.flow.flow_name
        self.function_name = self.function.function_name
        self.trigger_url = self.function.trigger_url
        self.dead_letter_queue_name = self.topic.dead_letter_queue_name
        self.flow_role_arn = self.flow.role_arn
        self.function_role_arn = self.function.role_arn
        self.register_outputs(self.stack_outputs())

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
