"""Verifying that a push comes from MNS.

MNS signs each push (MNS docs "topic-message-http-subscription-signature";
official samples aliyun-mns-python-sdk ``sample/topic/server.py`` and
aliyun-mns-go-sdk ``example/http_authorization.go``): ``Authorization`` is the
base64 RSA-SHA1 (PKCS#1 v1.5) signature of

    METHOD \\n Content-MD5 \\n Content-Type \\n Date \\n
    + every ``x-mns-*`` header, name lower-cased, sorted, ``name:value\\n``
    + the request path (with its query, if any)

with the key of the certificate at ``base64decode(x-mns-signing-cert-url)``.
Missing headers count as empty strings. The certificate is fetched only from
an allowed prefix, without redirects, and cached per URL; its validity dates
are not enforced (MNS's certificates are long expired).
"""

from __future__ import annotations

import base64
import binascii
import http.client
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from .errors import CertificateUnavailable, SignatureRejected

MAX_DATE_SKEW_SECONDS = 15 * 60  # FACTS: reject a Date older than 15 minutes
CERT_FETCH_TIMEOUT_SECONDS = 1.5  # leaves room for the report in MNS's 5 s
MAX_CERT_BYTES = 16 * 1024
CERT_CACHE_SIZE = 8
# A URL that failed is not fetched again for this long, so that pushes naming
# a missing certificate cannot make every invocation wait on the network.
FAILURE_TTL_SECONDS = 30.0


def string_to_sign(method: str, path: str, headers: Mapping[str, str]) -> str:
    """Pure: the text MNS signs. ``headers`` must have lower-case names."""
    mns = sorted((name, value) for name, value in headers.items() if name.startswith("x-mns-"))
    lines = [method.upper(), headers.get("content-md5", ""), headers.get("content-type", ""),
             headers.get("date", "")]
    return "\n".join(lines) + "\n" + "".join(f"{name}:{value}\n" for name, value in mns) + path


def certificate_url(headers: Mapping[str, str], allowed_prefixes: tuple[str, ...]) -> str:
    """The signing certificate's URL, if the header names an allowed place."""
    encoded = headers.get("x-mns-signing-cert-url", "").strip()
    if not encoded:
        raise SignatureRejected("x-mns-signing-cert-url header is missing")
    try:
        url = base64.b64decode(encoded, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise SignatureRejected("x-mns-signing-cert-url is not base64 of a URL") from None
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. "http://[" (an unclosed IPv6 host)
        raise SignatureRejected("x-mns-signing-cert-url is not a plain URL") from None
    if parts.username or parts.password or "\\" in url or any(ord(c) <= 32 for c in url):
        raise SignatureRejected("x-mns-signing-cert-url is not a plain URL")
    if not any(url.startswith(prefix) for prefix in allowed_prefixes):
        raise SignatureRejected(f"signing certificate host {parts.hostname!r} is not an allowed MNS certificate URL")
    return url


def check_date(headers: Mapping[str, str], now: datetime) -> None:
    """Refuse a push whose Date is missing or more than 15 minutes off."""
    raw = headers.get("date", "").strip()
    if not raw:
        raise SignatureRejected("Date header is missing")
    try:
        sent = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        raise SignatureRejected("Date header is not an HTTP date") from None
    if sent.tzinfo is None:
        # timezone.utc, not datetime.UTC (3.11+): the function also runs on python3.9 / 3.10.
        sent = sent.replace(tzinfo=timezone.utc)
    skew = abs((now - sent).total_seconds())
    if skew > MAX_DATE_SKEW_SECONDS:
        raise SignatureRejected(f"Date is {int(skew)} s away from now; at most {MAX_DATE_SKEW_SECONDS} s allowed")


def decode_signature(headers: Mapping[str, str]) -> bytes:
    raw = headers.get("authorization", "").strip()
    if not raw:
        raise SignatureRejected("Authorization header is missing")
    try:
        signature = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureRejected("Authorization is not base64") from None
    if not 32 <= len(signature) <= 1024:
        raise SignatureRejected("Authorization has the wrong length for an RSA signature")
    return signature


def fetch_certificate(url: str, timeout: float = CERT_FETCH_TIMEOUT_SECONDS) -> bytes:
    """GET the PEM at ``url``: no redirects, no proxies, bounded size."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, parts.port, timeout=timeout, context=ssl.create_default_context())
    elif parts.scheme == "http":
        conn = http.client.HTTPConnection(host, parts.port, timeout=timeout)
    else:
        raise CertificateUnavailable(f"unsupported certificate URL scheme {parts.scheme!r}")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("GET", path or "/", headers={"Accept": "*/*"})
        response = conn.getresponse()
        data = response.read(MAX_CERT_BYTES + 1)
        if response.status != 200:
            raise CertificateUnavailable(f"certificate URL answered HTTP {response.status}")
    except (OSError, http.client.HTTPException) as exc:
        raise CertificateUnavailable(f"certificate fetch failed: {type(exc).__name__}") from None
    finally:
        conn.close()
    if len(data) > MAX_CERT_BYTES:
        raise CertificateUnavailable("certificate is larger than expected")
    return data


def load_public_key(pem: bytes) -> Any:
    """RSA public key of a PEM certificate (``cryptography`` loaded only here)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        key = x509.load_pem_x509_certificate(pem).public_key()
    except ValueError:
        raise CertificateUnavailable("signing certificate is not a PEM X.509 certificate") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise CertificateUnavailable("signing certificate has no RSA key")
    return key


def verify_with_key(key: Any, text: str, signature: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        key.verify(signature, text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA1())
    except InvalidSignature:
        return False
    return True


class KeyCache:
    """Public keys by certificate URL, bounded, safe across threads."""

    def __init__(self, fetch: Callable[[str], bytes] = fetch_certificate, size: int = CERT_CACHE_SIZE) -> None:
        self._fetch = fetch
        self._size = size
        self._keys: OrderedDict[str, Any] = OrderedDict()
        self._failures: dict[str, float] = {}
        self._lock = threading.Lock()
        self.fetches = 0

    def get(self, url: str) -> Any:
        now = time.monotonic()
        with self._lock:
            if url in self._keys:
                self._keys.move_to_end(url)
                return self._keys[url]
            failed_at = self._failures.get(url)
            if failed_at is not None and now - failed_at < FAILURE_TTL_SECONDS:
                raise CertificateUnavailable("signing certificate failed to load moments ago")
        try:
            key = load_public_key(self._fetch(url))
        except CertificateUnavailable:
            with self._lock:
                self._failures[url] = now
                while len(self._failures) > self._size:
                    self._failures.pop(next(iter(self._failures)))
            raise
        with self._lock:
            self.fetches += 1
            self._keys[url] = key
            while len(self._keys) > self._size:
                self._keys.popitem(last=False)
        return key


def verify_push(method: str, path: str | Sequence[str], headers: Mapping[str, str], *,
                allowed_prefixes: tuple[str, ...], keys: KeyCache,
                now: datetime | None = None) -> None:
    """Raise SignatureRejected unless MNS signed this push (or
    CertificateUnavailable when the allowed certificate cannot be had).

    ``path`` may list the spellings a runtime gives of the one request path
    (FC 2.0 shows the proxy path ``/2016-08-15/proxy/<service>/<function>/``
    that MNS signs only in ``fc.request_uri``); the push is accepted if MNS
    signed any of them. ``now`` is injectable so that a recorded push (whose
    Date is long past) can be checked at its own time; by default it is now.
    """
    signature = decode_signature(headers)
    url = certificate_url(headers, allowed_prefixes)
    check_date(headers, now or datetime.now(timezone.utc))
    key = keys.get(url)
    paths = [path] if isinstance(path, str) else list(dict.fromkeys(path))
    if not any(verify_with_key(key, string_to_sign(method, p, headers), signature) for p in paths):
        raise SignatureRejected("signature does not match the push")
