"""Component: the MNS topic the flow publishes to, its HTTP push subscription, and
the subscription's dead-letter queue."""

from collections.abc import Sequence
from typing import NotRequired, TypedDict

import pulumi
import pulumi_alicloud as alicloud

from mns_callback_flow.errors import InvalidArgument
from mns_callback_flow.ram_grants import Tags

TYPE_TOKEN = "mns-callback-flow:index:CallbackTopic"


def require_existing_topic(topic_name: str, found_names: Sequence[str] | None, key: str = "topic_name") -> str:
    """``topic_name`` when the lookup found a topic of exactly that name; else an InvalidArgument on ``key``.

    Without this, a misspelt existing topic would preview cleanly and fail only
    when ``pulumi up`` creates the subscription.
    """
    if topic_name not in (found_names or ()):
        raise InvalidArgument(
            key, topic_name,
            "create_topic is false, but no MNS topic of that name exists in this region and account "
            "(message.get_service_topics found none): create it first, fix the name, or create the topic",
        )
    return topic_name


class CallbackTopicArgs(TypedDict):
    """What the topic component needs."""

    topic_name: pulumi.Input[str]
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
    dead_letter_queue_name: NotRequired[str | None]
    """The dead-letter queue to create for the subscription; None or absent: none."""
    dead_letter_retention_seconds: NotRequired[int]
    """How long the dead-letter queue keeps a message (60-604800 s)."""
    tags: NotRequired[Tags]
    """Tags for the topic and the dead-letter queue (the subscription takes none)."""


class CallbackTopic(pulumi.ComponentResource):
    """An MNS topic (``message.ServiceTopic``, the current API; ``mns.Topic`` is the old one)
    and a subscription that pushes every message to the callback's HTTP endpoint."""

    topic_name: pulumi.Output[str]
    dead_letter_queue_name: pulumi.Output[str]
    """The dead-letter queue's name; ``""`` when there is none."""

    def __init__(self, name: str, args: CallbackTopicArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # Children, reachable as attributes (not annotated on the class: a component
        # provider's analyzer reads class annotations as the component's outputs).
        self.topic: alicloud.message.ServiceTopic | None
        self.subscription: alicloud.message.ServiceSubscription
        self.dead_letter_queue: alicloud.message.ServiceQueue | None
        super().__init__(TYPE_TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        if args["create_topic"]:
            self.topic = alicloud.message.ServiceTopic(
                f"{name}-topic", topic_name=args["topic_name"], tags=args.get("tags"), opts=child
            )
            # Through the resource's output, so the subscription waits for the topic.
            self.topic_name = self.topic.topic_name
        else:
            self.topic = None  # an existing topic: nothing to create or delete
            # Looked up at preview (pulumi_alicloud 4.0.0 message.get_service_topics:
            # `topic_name` narrows the ListTopic request, the result's `names` are
            # compared exactly); an Output check, since the name may be an Output.
            wanted = pulumi.Output.from_input(args["topic_name"])
            found = alicloud.message.get_service_topics_output(
                topic_name=wanted, opts=pulumi.InvokeOutputOptions(parent=self)
            )
            self.topic_name = pulumi.Output.all(wanted, found.names).apply(
                lambda v: require_existing_topic(v[0], v[1])
            )

        queue_name = args.get("dead_letter_queue_name")
        if queue_name:
            # pulumi-alicloud 4.0.0 message/service_queue.py: message_retention_period 60-604800 s
            # (default 345600); the config refuses a task timeout beyond it.
            self.dead_letter_queue = alicloud.message.ServiceQueue(
                f"{name}-dead-letters",
                queue_name=queue_name,
                message_retention_period=args.get("dead_letter_retention_seconds", 345600),
                tags=args.get("tags"),
                opts=child,
            )
            self.dead_letter_queue_name = self.dead_letter_queue.queue_name
            # message/service_subscription.py dlq_policy {dead_letter_target_queue, enabled}:
            # "The queue to which dead-letter messages are delivered" (a queue of the topic's
            # account and region, by name: MNS "Dead-letter queue", docs/platform-facts.md).
            dlq_policy: alicloud.message.ServiceSubscriptionDlqPolicyArgsDict = {
                "enabled": True, "dead_letter_target_queue": self.dead_letter_queue_name,
            }
        else:
            self.dead_letter_queue = None
            self.dead_letter_queue_name = pulumi.Output.from_input("")
            # Said outright: the provider's dlq_policy is Optional and Computed, so leaving
            # it out would keep a policy an earlier update enabled.
            dlq_policy = {"enabled": False}

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
            dlq_policy=dlq_policy,
            opts=child,
        )
        self.register_outputs({"topicName": self.topic_name, "subscriptionName": self.subscription.subscription_name,
                               "deadLetterQueueName": self.dead_letter_queue_name})
