"""Environment variables -> one frozen Settings object, read once per instance.

Variables (set by the stack; see README "Callback handler"):
  FNF_ENDPOINT            URL of FnF; default ``https://<region>.fnf.aliyuncs.com``
  MNS_VERIFY_SIGNATURE    only an explicit ``false`` turns the check off
  MNS_CERT_URL_PREFIXES   comma-separated allowed signing-certificate URL prefixes
  CALLBACK_WORK           ``module:function`` of the work function
  MNS_TOPIC_OWNER         account id that owns the topic allowed to push (required
  MNS_TOPIC_NAME          with signature checks on) and that topic's name
  MNS_NOTIFY_CONTENT_FORMAT  the subscription's format, JSON, XML or SIMPLIFIED
                          (unset: detected per push)
  ALIBABA_CLOUD_REGION / FC_REGION   region when the FC context has none
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from .errors import SettingsError
from .push import FORMATS

# The documented signing-certificate URL prefixes (SMQ/MNS "Verify HTTP push
# message signatures", help.aliyun.com/en/mns/developer-reference/
# topic-message-http-subscription-signature): "must start with
# https://mnstest.oss-cn-hangzhou.aliyuncs.com/ or
# https://mns-cert.oss-cn-{region}.aliyuncs.com/". Older versions of that page
# and the FAQ "How do I check whether the URL of a public key certificate is
# provided by Alibaba Cloud?" name the mnstest prefix alone; the official Go
# sample (aliyun-mns-go-sdk example/http_authorization.go) shows a real push
# carrying an https mnstest URL. The regional form is spelled "oss-cn-", so it
# only names hosts of mainland-China-style region ids (cn-hangzhou ->
# mns-cert.oss-cn-hangzhou); for any other region only the mnstest prefix is
# documented, and MNS_CERT_URL_PREFIXES is the way to allow more.
TEST_CERT_PREFIX = "https://mnstest.oss-cn-hangzhou.aliyuncs.com/"
REGION_CERT_PREFIX = "https://mns-cert.oss-{region}.aliyuncs.com/"
REGION_CERT_REGION_PREFIX = "cn-"


@dataclass(frozen=True)
class Settings:
    """What the handler needs from its environment, validated."""

    region: str | None
    fnf_endpoint: str | None
    verify_signature: bool
    cert_url_prefixes: tuple[str, ...] | None
    work: str | None
    topic_owner: str | None = None
    topic_name: str | None = None
    notify_format: str | None = None

    def endpoint_for(self, region: str) -> str:
        """The FnF endpoint URL: the override, else the region's https one.

        FACTS: FnF's endpoint is ``https://<region>.fnf.aliyuncs.com``; the SDK's
        own resolver picks other host names and plain HTTP, so we never use it.
        """
        return self.fnf_endpoint or f"https://{region}.fnf.aliyuncs.com"

    def cert_prefixes_for(self, region: str | None) -> tuple[str, ...]:
        """Allowed signing-certificate URL prefixes: the override, else exactly the
        documented https hosts (the regional one only for a ``cn-`` region)."""
        if self.cert_url_prefixes is not None:
            return self.cert_url_prefixes
        if region and region.startswith(REGION_CERT_REGION_PREFIX):
            return (TEST_CERT_PREFIX, REGION_CERT_PREFIX.format(region=region))
        return (TEST_CERT_PREFIX,)


def _check_url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise SettingsError(f"{name}={value!r}: expected a {'/'.join(schemes)} URL with a host")
    return value


def _check_prefix(value: str) -> str:
    """A prefix must fix the host: ``scheme://host[:port]/...`` ending in '/'."""
    _check_url("MNS_CERT_URL_PREFIXES", value, ("https", "http"))
    parts = urlsplit(value)
    if not parts.path.startswith("/") or not value.endswith("/"):
        raise SettingsError(
            f"MNS_CERT_URL_PREFIXES: {value!r} must end with '/' after the host, "
            "so that it cannot match a longer host name")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise SettingsError(f"MNS_CERT_URL_PREFIXES: {value!r} must be a plain scheme://host/path/")
    return value


def settings_from_env(env: Mapping[str, str]) -> Settings:
    """Pure: build Settings from an environment mapping or raise SettingsError."""
    region = (env.get("ALIBABA_CLOUD_REGION") or env.get("FC_REGION") or "").strip() or None
    endpoint = (env.get("FNF_ENDPOINT") or "").strip() or None
    if endpoint is not None:
        _check_url("FNF_ENDPOINT", endpoint, ("https", "http"))
        endpoint = endpoint.rstrip("/")
    verify = (env.get("MNS_VERIFY_SIGNATURE") or "").strip().lower() != "false"
    raw_prefixes = (env.get("MNS_CERT_URL_PREFIXES") or "").strip()
    prefixes = None
    if raw_prefixes:
        prefixes = tuple(_check_prefix(p.strip()) for p in raw_prefixes.split(",") if p.strip())
    work = (env.get("CALLBACK_WORK") or "").strip() or None
    if work is not None and (work.count(":") != 1 or not all(work.split(":"))):
        raise SettingsError(f"CALLBACK_WORK={work!r}: expected 'module:function'")
    topic_owner = (env.get("MNS_TOPIC_OWNER") or "").strip() or None
    topic_name = (env.get("MNS_TOPIC_NAME") or "").strip() or None
    if verify and (topic_owner is None or topic_name is None):
        # Fail closed: a valid signature proves only that *some* MNS topic sent
        # the push (any account can subscribe this URL), so without the topic
        # to compare with, no push can be trusted (mns_callback/topic_binding.py).
        missing = " and ".join(n for n, v in (("MNS_TOPIC_OWNER", topic_owner), ("MNS_TOPIC_NAME", topic_name))
                               if v is None)
        raise SettingsError(f"{missing} must be set while MNS_VERIFY_SIGNATURE is on: the owner account "
                            "id and name of the one topic allowed to push")
    notify_format = (env.get("MNS_NOTIFY_CONTENT_FORMAT") or "").strip().upper() or None
    if notify_format is not None and notify_format not in FORMATS:
        raise SettingsError(f"MNS_NOTIFY_CONTENT_FORMAT={notify_format!r}: expected one of {', '.join(FORMATS)}")
    return Settings(region, endpoint, verify, prefixes, work, topic_owner, topic_name, notify_format)


@lru_cache(maxsize=1)
def load_settings() -> Settings:
    """Settings of this instance, read from os.environ once."""
    return settings_from_env(os.environ)
