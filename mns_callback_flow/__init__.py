"""mns-callback-flow: Alibaba Cloud's "wait for callback through an MNS topic" pattern as Pulumi components.

``CallbackPattern("orders")`` declares the whole pattern (flow, topic, push
subscription with its dead-letter queue, callback function with its HTTP
trigger, and least-privilege roles) with only the provider's region config;
its args (``CallbackPatternArgs``) are the public API. The parts are
components of their own: ``CallbackTopic``, ``CallbackFunction``, ``CallbackFlow``.
"""

__version__ = "0.2.0"

from mns_callback_flow.callback_function import CallbackFunction, CallbackFunctionArgs
from mns_callback_flow.errors import InvalidArgument
from mns_callback_flow.flow import CallbackFlow, CallbackFlowArgs
from mns_callback_flow.pattern import (
    CallbackPattern,
    CallbackPatternArgs,
    TaskCatchArgs,
    TaskOutputMappingArgs,
    TaskRetryArgs,
)
from mns_callback_flow.topic import CallbackTopic, CallbackTopicArgs

__all__ = [
    "CallbackFlow",
    "CallbackFlowArgs",
    "CallbackFunction",
    "CallbackFunctionArgs",
    "CallbackPattern",
    "CallbackPatternArgs",
    "CallbackTopic",
    "CallbackTopicArgs",
    "InvalidArgument",
    "TaskCatchArgs",
    "TaskOutputMappingArgs",
    "TaskRetryArgs",
    "__version__",
]
