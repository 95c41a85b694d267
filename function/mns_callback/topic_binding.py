"""Pure: is this push from *our* topic?

A valid signature proves only that MNS sent the push. The signing certificate
is shared by every MNS customer and the trigger is anonymous, so anyone can
subscribe our trigger URL to a topic of their own account and send genuinely
signed pushes. What MNS says about the sending topic is therefore compared
with the topic the stack deployed (``MNS_TOPIC_OWNER`` / ``MNS_TOPIC_NAME``):

* JSON and XML notifications carry ``TopicOwner`` and ``TopicName`` in the
  body, which ``Content-MD5`` binds to the signature;
* SIMPLIFIED pushes carry them in the signed ``x-mns-topic-owner`` and
  ``x-mns-topic-name`` headers (docs/platform-facts.md "MNS HTTP push").

Wherever MNS put an identity (body fields, and those headers if present), each
one must match: a SIMPLIFIED push from another topic whose raw message
imitates a JSON notification naming our topic still carries the real
topic's headers.
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import TopicRejected
from .push import Notification


def _claims(notification: Notification, headers: Mapping[str, str]) -> list[tuple[str, str | None, str | None]]:
    """(where, owner, name) for each place that names the sending topic."""
    claims = [("x-mns-topic-owner/x-mns-topic-name headers" if notification.format == "SIMPLIFIED"
               else f"{notification.format} TopicOwner/TopicName",
               notification.topic_owner, notification.topic_name)]
    if notification.format != "SIMPLIFIED" and (
            "x-mns-topic-owner" in headers or "x-mns-topic-name" in headers):
        claims.append(("x-mns-topic-owner/x-mns-topic-name headers",
                       headers.get("x-mns-topic-owner"), headers.get("x-mns-topic-name")))
    return claims


def check_topic(notification: Notification, headers: Mapping[str, str], owner: str, name: str) -> None:
    """Raise TopicRejected unless every topic identity in the push is ``owner``/``name``.

    ``headers`` must have lower-case names.
    """
    for where, claimed_owner, claimed_name in _claims(notification, headers):
        if not claimed_owner or not claimed_name:
            raise TopicRejected(f"the push names no sending topic ({where} missing)")
        if claimed_owner.strip() != owner or claimed_name.strip() != name:
            raise TopicRejected(
                f"pushed by topic {claimed_name.strip()[:64]!r} of account {claimed_owner.strip()[:32]!r} "
                f"({where}); only topic {name!r} of account {owner!r} may call this function")
