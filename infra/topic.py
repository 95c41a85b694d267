"""Component: the MNS topic the flow publishes to, and its HTTP push subscription."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

import pulumi
import pulumi_alicloud as alicloud

from infra.config import ConfigError, full_key

TYPE_TOKEN = "mns-callback-flow:index:CallbackTopic"


def require_existing_topic(topic_name: str, found_names: Sequence[str] | None) -> str:
    """``topic_name`` when the lookup found a topic of exactly that name; else a ConfigError on topicName.

    Without this, a misspelt existing topic would preview cleanly and fail only
    when ``pulumi up`` creates the subscription.
    """
    if topic_name not in (found_names or ()):
        raise ConfigError(
            full_key("topicName"), topic_name,
            "createTopic is false, but no MNS topic of that name exists in this region and account "
            "(message.get_service_topics found none): create it first, fix the name, or set createTopic true",
        )
    return topic_name


class CallbackTopicArgs(TypedDict):
    """What the topic component needs."""

    topic_name: str
    """The MNS topic's name (created, or an existing one when ``create_topic`` is false)."""
    create_topic: bool
    """Create the topic (true) or subscribe to an existing topic of that name (false)."""
    subscription_name: str
    """The HTTP subscription's name, unique within the topic."""
    endpoint: pulumi.Input[str]
    """Where MNS pushes each message: the callback function's HTTP trigger URL."""
    notify_strategy: str
    """MNS redelivery policy on a failed push: ``BACKOFF_RETRY`` or ``EXPONENTIAL_DECAY_RETRY``."""
    notify_content_format: str
    """Push body format: ``JSON``, ``XML`` or ``SIMPLIFIED``."""


class CallbackTopic(pulumi.ComponentResource):
    """An MNS topic (``message.ServiceTopic``, the current API; ``mns.Topic`` is the old one)
    and a subscription that pushes every message to the callback's HTTP endpoint."""

    topic: alicloud.message.ServiceTopic | None
    subscription: alicloud.message.ServiceSubscription
    topic_name: pulumi.Output[str]

    def __init__(self, name: str, args: CallbackTopicArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        if args["create_topic"]:
            self.topic = alicloud.message.ServiceTopic(
                f"{name}-topic", topic_name=args["topic_name"], opts=child
            )
            # Through the resource's output, so the subscription waits for the topic.
            self.topic_name = self.topic.topic_name
        else:
            self.topic = None  # an existing topic: nothing to create or delete
            # Looked up at preview (pulumi_alicloud 4.0.0 message.get_service_topics:
            # `topic_name` narrows the ListTopic request, the result's `names` are
            # compared exactly); an Output check, since the name may be an Output.
            name = pulumi.Output.from_input(args["topic_name"])
            found = alicloud.message.get_service_topics_output(
                topic_name=name, opts=pulumi.InvokeOutputOptions(parent=self)
            )
            self.topic_name = pulumi.Output.all(name, found.names).apply(
                lambda v: require_existing_topic(v[0], v[1])
            )

        self.subscription = alicloud.message.ServiceSubscription(
            f"{name}-subscription",
            topic_name=self.topic_name,
            subscription_name=args["subscription_name"],
            # Arguments as documented by pulumi_alicloud 4.0.0 message/service_subscription.py:
            # push_type one of http/queue/mpush/alisms/email; for http the endpoint is
            # "an HTTP URL that starts with http:// or https://" (MNS pushes to https
            # endpoints: aliyun-mns-python-sdk sample/topic/simple_https_notify_endpoint.py);
            # notify_content_format XML/JSON/SIMPLIFIED, default XML: always say which;
            # notify_strategy BACKOFF_RETRY (default) or EXPONENTIAL_DECAY_RETRY.
            push_type="http",
            endpoint=args["endpoint"],
            notify_content_format=args["notify_content_format"],
            notify_strategy=args["notify_strategy"],
            opts=child,
        )
        self.register_outputs({"topicName": self.topic_name, "subscriptionName": self.subscription.subscription_name})
