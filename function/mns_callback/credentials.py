"""Where the function's STS credentials and region come from.

FC passes them on ``context.credentials`` / ``context.region`` (FC 3.0 event
handlers and FC 2.0 ``environ['fc.context']``); the python3.12 runtime has no
``context.credentials``, but every runtime sets ``ALIBABA_CLOUD_ACCESS_KEY_ID``,
``ALIBABA_CLOUD_ACCESS_KEY_SECRET`` and ``ALIBABA_CLOUD_SECURITY_TOKEN``
(FC docs "Python runtime"; docs/platform-facts.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Credentials:
    """An STS key; the secret and token never show in repr or logs."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)


def credentials_from(context: Any, env: Mapping[str, str]) -> Credentials | None:
    """The context's credentials where it has them, else the environment's."""
    creds = getattr(context, "credentials", None)
    if creds is not None:
        key_id = getattr(creds, "access_key_id", None) or getattr(creds, "accessKeyId", None)
        secret = getattr(creds, "access_key_secret", None) or getattr(creds, "accessKeySecret", None)
        token = getattr(creds, "security_token", None) or getattr(creds, "securityToken", None)
        if key_id and secret:
            return Credentials(key_id, secret, token or None)
    key_id = env.get("ALIBABA_CLOUD_ACCESS_KEY_ID")
    secret = env.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    if key_id and secret:
        return Credentials(key_id, secret, env.get("ALIBABA_CLOUD_SECURITY_TOKEN") or None)
    return None


def region_from(context: Any, fallback: str | None) -> str | None:
    """The context's region, else the one from the environment settings."""
    region = getattr(context, "region", None)
    return region if isinstance(region, str) and region else fallback
