"""The handler variables that bind it to the local topic's pushes (``Subscription``'s defaults)."""

from localcloud.mns_push import Subscription

BOUND = Subscription("http://127.0.0.1/").binding_environment()
