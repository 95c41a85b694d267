"""Two callback patterns side by side, with nothing but the provider's region configured.

``orders`` takes every default; ``billing`` waits ten minutes for its callback,
pushes XML and tags what it creates. Names derive from each component's name,
so the two never collide.
"""

import pulumi

from mns_callback_flow import CallbackPattern

orders = CallbackPattern("orders")
billing = CallbackPattern("billing", {
    "task_timeout_seconds": 600,
    "notify_content_format": "XML",
    "tags": {"team": "billing"},
})

for prefix, pattern in {"orders": orders, "billing": billing}.items():
    pulumi.export(f"{prefix}FlowName", pattern.flow_name)
    pulumi.export(f"{prefix}TopicName", pattern.topic_name)
    pulumi.export(f"{prefix}TriggerUrl", pattern.trigger_url)
