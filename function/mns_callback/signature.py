"""Verifying that a push comes from MNS.

MNS signs each push (MNS docs "topic-message-http-subscription-signature";
official samples aliyun-mns-python-sdk ``sample/topic/server.py`` and
aliyun-mns-go-sdk ``example/http_authorization.go``): ``Authorization`` is the
base64 RSA-SHA1 (PKCS#1 v1.5) signature of

    METHOD \\n Content-MD5 \\n Content-Type \\n Date \\n
    + every ``x-mns-*`` header, name lower-cased, sorted, ``name:value\\n``
    + the request path (with its query, if any)

with the key of the certificate at ``base64decode(x-mns-signing-cert-url)``.
Missing headers count as empty strings. The signature covers ``Content-MD5``
but not the body, so the body's own MD5 must equal that header. The
certificate is fetched only from an allowed prefix, without redirects, and
cached per URL; its validity dates are not enforced (MNS's certificates are
long expired). The certificate is read in pure Python (``rsa_verify``), once
per cached URL; the RSA check runs in ``cryptography`` where it passes a known
answer, else in pure Python (``rsa_backend``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import http.client
import re
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from functools import lru_cache
from urllib.parse import urlsplit

from .errors import CertificateUnavailable, SignatureRejected
from .rsa_backend import VerifyingKey, verify, verifying_key
from .rsa_verify import CertificateError, public_key_of_certificate

MAX_DATE_SKEW_SECONDS = 15 * 60  # FACTS: reject a Date older than 15 minutes
CERT_FETCH_TIMEOUT_SECONDS = 1.5  # per socket operation, and a push's wait when it has no deadline
# A fetch still running after this long is given up on: the next push starts a
# new one (a certificate host that trickles its answer cannot hold every push).
CERT_FETCH_TOTAL_SECONDS = 3.0
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
    return _allowed_url(encoded, allowed_prefixes)


# MNS names the same certificate in push after push: decoding and judging its
# URL once per header value keeps that work off the hot path. Only accepted
# URLs are remembered (a refusal raises, and lru_cache keeps no exceptions).
@lru_cache(maxsize=16)
def _allowed_url(encoded: str, allowed_prefixes: tuple[str, ...]) -> str:
    try:
        url = base64.b64decode(encoded, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise SignatureRejected("x-mns-signing-cert-url is not base64 of a URL") from None
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. "http://[" (an unclosed IPv6 host)
        raise SignatureRejected("x-mns-signing-cert-url is not a plain URL") from None
    if parts.username or parts.password or "\\" in url or _BLANK_OR_CONTROL.search(url):
        raise SignatureRejected("x-mns-signing-cert-url is not a plain URL")
    if not any(url.startswith(prefix) for prefix in allowed_prefixes):
        raise SignatureRejected(f"signing certificate host {parts.hostname!r} is not an allowed MNS certificate URL")
    return url


_BLANK_OR_CONTROL = re.compile("[\x00- ]")  # a space or any C0 control (ord <= 32)


# Pushes sent within the same second carry the same Date: each value is read once.
# Only dates that parse are remembered (a refusal raises, and lru_cache keeps no exceptions).
@lru_cache(maxsize=16)
def _sent_at(raw: str) -> datetime:
    try:
        sent = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        raise SignatureRejected("Date header is not an HTTP date") from None
    if sent.tzinfo is None:
        # timezone.utc, not datetime.UTC (3.11+): the function also runs on python3.9 / 3.10.
        sent = sent.replace(tzinfo=timezone.utc)
    return sent


def check_date(headers: Mapping[str, str], now: datetime) -> None:
    """Refuse a push whose Date is missing or more than 15 minutes off."""
    raw = headers.get("date", "").strip()
    if not raw:
        raise SignatureRejected("Date header is missing")
    sent = _sent_at(raw)
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


def _shut(connection: http.client.HTTPConnection) -> None:
    """Unblock a read in another thread: shutdown wakes a blocked recv, close alone may not."""
    sock = connection.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def fetch_certificate(url: str, timeout: float = CERT_FETCH_TIMEOUT_SECONDS,
                      total: float = CERT_FETCH_TOTAL_SECONDS) -> bytes:
    """GET the PEM at ``url``: no redirects, no proxies, bounded size, and done
    within ``total`` seconds however slowly the host answers (``timeout`` bounds
    each socket operation only)."""
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
    watchdog = threading.Timer(total, _shut, (conn,))
    watchdog.daemon = True
    started = time.monotonic()
    try:
        conn.connect()
        watchdog.start()
        conn.request("GET", path or "/", headers={"Accept": "*/*"})
        response = conn.getresponse()
        data = response.read(MAX_CERT_BYTES + 1)
        if response.status != 200:
            raise CertificateUnavailable(f"certificate URL answered HTTP {response.status}")
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if time.monotonic() - started >= total:
            raise CertificateUnavailable(f"certificate fetch took longer than {total} s") from None
        raise CertificateUnavailable(f"certificate fetch failed: {type(exc).__name__}") from None
    finally:
        watchdog.cancel()
        conn.close()
    if len(data) > MAX_CERT_BYTES:
        raise CertificateUnavailable("certificate is larger than expected")
    return data


def load_public_key(pem: bytes) -> VerifyingKey:
    """RSA public key of a PEM certificate, read by the strict pure-Python reader
    whichever path verifies with it, so both accept the same certificates."""
    try:
        numbers = public_key_of_certificate(pem)
    except CertificateError as exc:
        raise CertificateUnavailable(f"signing certificate unusable: {exc}") from None
    return verifying_key(numbers)


def verify_with_key(key: VerifyingKey, text: str, signature: bytes) -> bool:
    return verify(key, text.encode("utf-8"), signature)


def content_md5_matches(value: str, body: bytes) -> bool:
    """Pure: does the ``Content-MD5`` text name this body's MD5, in a form MNS uses?

    Two forms are on record and both are accepted (docs/platform-facts.md
    "MNS HTTP push"): the hex digest, upper-case in real pushes, and base64 of
    the lower-case hex digest in the MNS documentation's push examples and the
    official PHP endpoint sample; base64 of the raw digest (RFC 1864) too.
    """
    digest = hashlib.md5(body).digest()
    value = value.strip()
    if value.lower() == digest.hex():
        return True
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return decoded == digest or decoded.lower() == digest.hex().encode("ascii")


def check_content_md5(headers: Mapping[str, str], body: bytes) -> None:
    """Refuse a push whose body is not the one MNS signed.

    The signature covers the ``Content-MD5`` header, not the body; only
    comparing that header with the body's own digest binds the two, so that
    the headers of one genuine push cannot carry another body. MNS's pages let
    a request go without the header (its line in the text to sign is then
    empty), but every push on record carries one; a push without it has no
    signed body at all and is refused.
    """
    value = headers.get("content-md5", "").strip()
    if not value:
        raise SignatureRejected("Content-MD5 header is missing: nothing signed binds the body")
    if not content_md5_matches(value, body):
        raise SignatureRejected("Content-MD5 does not match the body (the body is not the one MNS signed)")


class _Fetch:
    """One certificate fetch in flight, shared by every push that waits for it."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.started = time.monotonic()
        self.key: VerifyingKey | None = None
        self.error: CertificateUnavailable | None = None


class KeyCache:
    """Public keys by certificate URL, bounded, safe across threads.

    Concurrent pushes that need the same uncached certificate share one fetch,
    which runs in its own thread; each push waits for it only until its own
    deadline (then 503, and the fetch goes on to serve the redelivery).
    """

    def __init__(self, fetch: Callable[[str], bytes] = fetch_certificate, size: int = CERT_CACHE_SIZE) -> None:
        self._fetch = fetch
        self._size = size
        self._keys: OrderedDict[str, VerifyingKey] = OrderedDict()
        self._failures: dict[str, float] = {}
        self._in_flight: dict[str, _Fetch] = {}
        self._lock = threading.Lock()
        self.fetches = 0

    def get(self, url: str, deadline: float | None = None) -> VerifyingKey:
        """The key at ``url``; CertificateUnavailable if it cannot be had by ``deadline``."""
        now = time.monotonic()
        deadline = now + CERT_FETCH_TIMEOUT_SECONDS if deadline is None else deadline
        with self._lock:
            if url in self._keys:
                self._keys.move_to_end(url)
                return self._keys[url]
            failed_at = self._failures.get(url)
            if failed_at is not None and now - failed_at < FAILURE_TTL_SECONDS:
                raise CertificateUnavailable("signing certificate failed to load moments ago")
            fetch = self._in_flight.get(url)
            if fetch is None or now - fetch.started > CERT_FETCH_TOTAL_SECONDS:
                fetch = self._in_flight[url] = _Fetch()
                threading.Thread(target=self._run, args=(url, fetch), name="mns-cert-fetch",
                                 daemon=True).start()
        if not fetch.done.wait(max(0.0, deadline - time.monotonic())):
            raise CertificateUnavailable("signing certificate not fetched before the push's deadline")
        if fetch.error is not None:
            raise fetch.error
        assert fetch.key is not None
        return fetch.key

    def _run(self, url: str, fetch: _Fetch) -> None:
        try:
            fetch.key = load_public_key(self._fetch(url))
        except CertificateUnavailable as exc:
            fetch.error = exc
        except Exception as exc:  # noqa: BLE001 - a waiting push must hear of it, not hang
            fetch.error = CertificateUnavailable(f"certificate fetch failed: {type(exc).__name__}")
        with self._lock:
            if self._in_flight.get(url) is fetch:
                del self._in_flight[url]
            if fetch.key is not None:
                self.fetches += 1
                self._keys[url] = fetch.key
                self._failures.pop(url, None)
                while len(self._keys) > self._size:
                    self._keys.popitem(last=False)
            else:
                self._failures[url] = time.monotonic()
                while len(self._failures) > self._size:
                    self._failures.pop(next(iter(self._failures)))
        fetch.done.set()


def verify_push(method: str, path: str | Sequence[str], headers: Mapping[str, str], body: bytes, *,
                allowed_prefixes: tuple[str, ...], keys: KeyCache,
                now: datetime | None = None, deadline: float | None = None) -> None:
    """Raise SignatureRejected unless MNS signed this push *and this body* (or
    CertificateUnavailable when the allowed certificate cannot be had by ``deadline``)."""
    check_content_md5(headers, body)
    verify_signed_headers(method, path, headers, allowed_prefixes=allowed_prefixes, keys=keys,
                          now=now, deadline=deadline)


def verify_signed_headers(method: str, path: str | Sequence[str], headers: Mapping[str, str], *,
                          allowed_prefixes: tuple[str, ...], keys: KeyCache,
                          now: datetime | None = None, deadline: float | None = None) -> None:
    """The signature over the headers and path alone; ``verify_push`` adds the body.

    ``path`` may list the spellings a runtime gives of the one request path
    (FC 2.0 shows the proxy path ``/2016-08-15/proxy/<service>/<function>/``
    that MNS signs only in ``fc.request_uri``); the push is accepted if MNS
    signed any of them. ``now`` is injectable so that a recorded push (whose
    Date is long past) can be checked at its own time; by default it is now.
    The cheap checks come first, so a forged push costs no fetch.
    """
    signature = decode_signature(headers)
    url = certificate_url(headers, allowed_prefixes)
    check_date(headers, now or datetime.now(timezone.utc))
    key = keys.get(url, deadline)
    paths = [path] if isinstance(path, str) else list(dict.fromkeys(path))
    if not any(verify_with_key(key, string_to_sign(method, p, headers), signature) for p in paths):
        raise SignatureRejected("signature does not match the push")
