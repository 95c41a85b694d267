"""MNS-like HTTP push: signing identity, certificate server, push builder, pusher.

What MNS does when a topic pushes to an HTTP subscription (MNS API "HTTP
endpoint" / topic-message-http-subscription-signature docs; official sample
aliyun-mns-python-sdk ``sample/topic/server.py``; a real signed push published
in cnryb/verify-signature):

* ``POST`` to the endpoint's path (``/notifications`` when the URL has none);
* headers ``Content-Type``, ``Content-MD5``, ``Date`` (RFC 1123, GMT),
  ``x-mns-version: 2015-06-06``, ``x-mns-request-id``,
  ``x-mns-signing-cert-url`` (base64 of the certificate's URL) and
  ``Authorization`` = base64 RSA-SHA1 PKCS#1 v1.5 signature of
  ``METHOD\\nContent-MD5\\nContent-Type\\nDate\\n`` + every ``x-mns-*`` header,
  lowercased and sorted, as ``name:value\\n`` + the request path;
* bodies: XML ``<Notification xmlns="http://mns.aliyuncs.com/doc/v1/">``, JSON
  with the same fields, or SIMPLIFIED: the raw message, its metadata in
  ``x-mns-message-id`` / ``x-mns-message-tag`` and, as the real push shows,
  ``x-mns-publish-time``, ``x-mns-subscriber``, ``x-mns-subscription-name``,
  ``x-mns-topic-name``, ``x-mns-topic-owner``.

The real push carries ``Content-MD5`` as the upper-case hex MD5 of the body,
``Content-Type: text/plain;charset=utf-8`` for SIMPLIFIED; we use the same hex
form for every format. Success is a status in [200, 400) within 5 s (MNS's push
backoff page; older pages say 2xx: docs/platform-facts.md "MNS HTTP push"), so a
3xx counts as delivered, as MNS counts it; any other answer, 4xx included, is
redelivered per the subscription's strategy (``retry_delays``).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.client
import json
import math
import secrets
import select
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from random import Random
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from localcloud.loopback import LoopbackServer

MNS_VERSION = "2015-06-06"
XML_NAMESPACE = "http://mns.aliyuncs.com/doc/v1/"
FORMATS = ("XML", "JSON", "SIMPLIFIED")
STRATEGIES = ("BACKOFF_RETRY", "EXPONENTIAL_DECAY_RETRY")
# XML: MNS "HttpEndpoint" request example (help.aliyun.com/zh/mns/developer-reference/
# http-endpoint) and the doc's string-to-sign example; SIMPLIFIED: the real push
# headers in aliyun-mns-go-sdk example/http_authorization.go. The JSON value is
# not documented anywhere we found (the HttpEndpoint page describes XML and
# SIMPLIFIED only): an assumption. The handler signs whatever value arrives.
CONTENT_TYPES = {
    "XML": "text/xml;charset=utf-8",
    "JSON": "application/json;charset=utf-8",
    "SIMPLIFIED": "text/plain;charset=utf-8",
}
# An endpoint must answer within this many seconds (MNS HTTP endpoint docs).
PUSH_TIMEOUT_SECONDS = 5.0
CERT_PATH = "/x509_public_certificate.pem"


@dataclass(frozen=True)
class Message:
    """A published message: body text, id (32 upper hex), tag, publish time in ms."""

    body: str
    message_id: str = field(default_factory=lambda: secrets.token_hex(16).upper())
    tag: str = ""
    publish_time_ms: int = field(default_factory=lambda: int(time.time() * 1000))

    @property
    def md5(self) -> str:
        return hashlib.md5(self.body.encode()).hexdigest().upper()


@dataclass(frozen=True)
class Subscription:
    """An HTTP subscription: where to push, in which format, with which retry strategy."""

    endpoint: str
    topic_name: str = "topic"
    subscription_name: str = "subscription"
    topic_owner: str = "1234567890123456"
    notify_format: str = "JSON"
    notify_strategy: str = "BACKOFF_RETRY"

    def __post_init__(self) -> None:
        if self.notify_format not in FORMATS:
            raise ValueError(f"notify_format must be one of {', '.join(FORMATS)}, "
                             f"got {self.notify_format!r}")
        if self.notify_strategy not in STRATEGIES:
            raise ValueError(f"notify_strategy must be one of {', '.join(STRATEGIES)}, "
                             f"got {self.notify_strategy!r}")
        url = urlsplit(self.endpoint)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"endpoint must be an http(s) URL, got {self.endpoint!r}")

    def binding_environment(self) -> dict[str, str]:
        """The handler variables that admit pushes from this subscription's topic only."""
        return {"MNS_TOPIC_OWNER": self.topic_owner, "MNS_TOPIC_NAME": self.topic_name}

    @property
    def path(self) -> str:
        """The request path MNS posts to: the endpoint's path, else ``/notifications``."""
        url = urlsplit(self.endpoint)
        path = url.path or "/notifications"
        return f"{path}?{url.query}" if url.query else path


# --------------------------------------------------------------------------- signing

def string_to_sign(method: str, headers: Mapping[str, str], path: str) -> str:
    """The text MNS signs; header names are matched case-insensitively, missing ones are ''."""
    lower = {k.lower(): v for k, v in headers.items()}
    parts = [method.upper(), lower.get("content-md5", ""), lower.get("content-type", ""),
             lower.get("date", "")]
    # Sorted by name, as the official samples do, not by "name:value" (':' sorts
    # after '-', so x-mns-a-b would come before x-mns-a).
    mns = [f"{k}:{v}" for k, v in sorted(lower.items()) if k.startswith("x-mns-")]
    return "\n".join(parts + mns + [path])


def sign_push(private_key: rsa.RSAPrivateKey, method: str, headers: Mapping[str, str],
              path: str) -> str:
    """``Authorization`` value: base64 RSA-SHA1 PKCS#1 v1.5 over ``string_to_sign``."""
    signature = private_key.sign(string_to_sign(method, headers, path).encode(),
                                 padding.PKCS1v15(), hashes.SHA1())
    return base64.b64encode(signature).decode()


# The key size and validity of the certificate MNS signs its pushes with (docs/platform-facts.md
# "MNS HTTP push"): it expired long ago, and a handler that judged its dates would refuse every push.
MNS_SIGNING_KEY_BITS = 512
MNS_CERTIFICATE_VALIDITY = (dt.datetime(2015, 7, 2, 2, 6, 16, tzinfo=dt.UTC),
                            dt.datetime(2016, 7, 1, 2, 6, 16, tzinfo=dt.UTC))
_EXPONENT = 65537


def rsa_private_key(key_size: int) -> rsa.RSAPrivateKey:
    """A fresh RSA key of exactly ``key_size`` bits (exponent 65537).

    ``cryptography`` generates 1024 bits or more and refuses less, yet it signs
    with a smaller key it is given; MNS's own certificate has 512 bits. A key
    below 1024 bits is built from two primes of pycryptodome's ``getPrime``.
    """
    if key_size >= 1024:
        return rsa.generate_private_key(public_exponent=_EXPONENT, key_size=key_size)
    if key_size < 512:
        raise ValueError(f"key_size must be at least 512 bits (MNS's own), got {key_size}")
    from Crypto.Util.number import getPrime

    while True:
        p, q = getPrime(key_size - key_size // 2), getPrime(key_size // 2)
        totient = math.lcm(p - 1, q - 1)
        if p != q and (p * q).bit_length() == key_size and math.gcd(_EXPONENT, totient) == 1:
            break
    d = pow(_EXPONENT, -1, totient)
    return rsa.RSAPrivateNumbers(p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q),
                                 rsa.RSAPublicNumbers(_EXPONENT, p * q)).private_key()


class SigningIdentity:
    """A fresh RSA key and a self-signed certificate naming it, like MNS's ``notify`` cert:
    its key has ``MNS_SIGNING_KEY_BITS`` (the default) and its dates are that certificate's.
    Unlike it, the certificate is signed with SHA-256: ``cryptography`` signs none with SHA-1."""

    def __init__(self, key_size: int = MNS_SIGNING_KEY_BITS) -> None:
        self.private_key = rsa_private_key(key_size)
        name = x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "localcloud"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Mns"),
            x509.NameAttribute(NameOID.COMMON_NAME, "notify"),
        ])
        not_before, not_after = MNS_CERTIFICATE_VALIDITY
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(self.private_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.private_key, hashes.SHA256())
        )
        self.certificate_pem = self.certificate.public_bytes(serialization.Encoding.PEM)


class _CertHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        owner: CertServer = self.server.owner  # type: ignore[attr-defined]
        if self.path != CERT_PATH:
            self.send_error(404)
            return
        with owner._lock:
            owner.fetches += 1
        data = owner.identity.certificate_pem
        self.send_response(200)
        self.send_header("Content-Type", "application/x-pem-file")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not owner.trickle_seconds:
            self.wfile.write(data)
            return
        for index in range(len(data)):  # a host that dribbles its answer (wfile is unbuffered)
            try:
                self.wfile.write(data[index:index + 1])
            except OSError:
                return
            time.sleep(owner.trickle_seconds / len(data))


class CertServer(LoopbackServer):
    """Serves the identity's certificate PEM at ``cert_url``; counts fetches (to check caching).

    ``trickle_seconds`` > 0 sends the PEM a byte at a time over that long.
    """

    def __init__(self, identity: SigningIdentity | None = None, port: int = 0) -> None:
        super().__init__(_CertHandler, port)
        self.identity = identity or SigningIdentity()
        self.fetches = 0
        self.trickle_seconds = 0.0
        self._lock = threading.Lock()

    @property
    def cert_url(self) -> str:
        return self.url + CERT_PATH

    @property
    def url_prefix(self) -> str:
        """What the handler's ``MNS_CERT_URL_PREFIXES`` must allow."""
        return self.url + "/"


# --------------------------------------------------------------------------- building

def notification_fields(message: Message, subscription: Subscription) -> dict[str, str]:
    """The notification's fields, all strings, in the documented order."""
    return {
        "TopicOwner": subscription.topic_owner,
        "TopicName": subscription.topic_name,
        "Subscriber": subscription.topic_owner,
        "SubscriptionName": subscription.subscription_name,
        "MessageId": message.message_id,
        "Message": message.body,
        "MessageMD5": message.md5,
        "MessageTag": message.tag,
        "PublishTime": str(message.publish_time_ms),
    }


def render_body(message: Message, subscription: Subscription) -> bytes:
    fmt = subscription.notify_format
    if fmt == "SIMPLIFIED":
        return message.body.encode()
    fields = notification_fields(message, subscription)
    if fmt == "JSON":
        return json.dumps(fields, ensure_ascii=False).encode()
    children = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields.items())
    return (f'<?xml version="1.0" encoding="utf-8"?>\n'
            f'<Notification xmlns="{XML_NAMESPACE}">{children}</Notification>').encode()


def build_push(message: Message | str, subscription: Subscription, *,
               private_key: rsa.RSAPrivateKey, cert_url: str, date: str | None = None,
               request_id: str | None = None) -> tuple[str, dict[str, str], bytes]:
    """``(path, headers, body)`` of the signed POST MNS would send for ``message``.

    The format is the subscription's ``notify_format``; a plain string is
    published as a new ``Message``. ``date`` and ``request_id`` default to now
    and a fresh id (give them to build a stale or replayed push).
    """
    if isinstance(message, str):
        message = Message(message)
    body = render_body(message, subscription)
    headers = {
        "Content-Type": CONTENT_TYPES[subscription.notify_format],
        "Content-MD5": hashlib.md5(body).hexdigest().upper(),
        "Date": date or formatdate(usegmt=True),
        "x-mns-version": MNS_VERSION,
        "x-mns-request-id": request_id or secrets.token_hex(12).upper(),
        "x-mns-signing-cert-url": base64.b64encode(cert_url.encode()).decode(),
    }
    if subscription.notify_format == "SIMPLIFIED":
        headers.update({
            "x-mns-message-id": message.message_id,
            "x-mns-publish-time": str(message.publish_time_ms),
            "x-mns-subscriber": subscription.topic_owner,
            "x-mns-subscription-name": subscription.subscription_name,
            "x-mns-topic-name": subscription.topic_name,
            "x-mns-topic-owner": subscription.topic_owner,
        })
        if message.tag:
            headers["x-mns-message-tag"] = message.tag
    path = subscription.path
    headers["Authorization"] = sign_push(private_key, "POST", headers, path)
    return path, headers, body


def push(url: str, path: str, headers: Mapping[str, str], body: bytes,
         timeout: float = PUSH_TIMEOUT_SECONDS) -> int:
    """Sends one push with http.client; returns the HTTP status (raises OSError on transport)."""
    target = urlsplit(url)
    if target.hostname is None:
        raise ValueError(f"push endpoint {url!r} has no host")
    connection_class = (http.client.HTTPSConnection if target.scheme == "https"
                        else http.client.HTTPConnection)
    connection = connection_class(target.hostname, target.port, timeout=timeout)
    try:
        connection.request("POST", path, body=body, headers=dict(headers))
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


class KeptConnections:
    """Keep-alive HTTP connections to one push endpoint, each reused once its answer was read.

    A connection set up per push costs the connect, the server's accept and a server
    thread every time. A connection the endpoint closed (``Connection: close``, or the
    socket readable while idle: its end of file) is never reused, so a push never goes
    out on a connection that is known to be gone; a failure on one is the attempt's own.
    """

    def __init__(self, url: str, timeout: float = PUSH_TIMEOUT_SECONDS, *, keep_alive: bool = True) -> None:
        target = urlsplit(url)
        self.keep_alive = keep_alive
        if target.hostname is None:
            raise ValueError(f"push endpoint {url!r} has no host")
        self._host, self._port = target.hostname, target.port
        self._connection_class = (http.client.HTTPSConnection if target.scheme == "https"
                                  else http.client.HTTPConnection)
        self.timeout = timeout
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._closed = False
        self.opened = 0  # connections set up so far

    def _take(self) -> http.client.HTTPConnection:
        with self._lock:
            while self._idle:
                connection = self._idle.pop()
                if _still_open(connection):
                    return connection
                connection.close()
            self.opened += 1
        return self._connection_class(self._host, self._port, timeout=self.timeout)

    def push(self, path: str, headers: Mapping[str, str], body: bytes) -> int:
        """Sends one push; returns the HTTP status (raises OSError / HTTPException on transport)."""
        connection = self._take()
        try:
            connection.request("POST", path, body=body, headers=dict(headers))
            response = connection.getresponse()
            response.read()
        except BaseException:
            connection.close()
            raise
        with self._lock:
            if response.will_close or self._closed or not self.keep_alive:
                connection.close()
            else:
                self._idle.append(connection)
        return response.status

    def close(self) -> None:
        """Closes the idle connections; the ones in use close when their push ends."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


def _still_open(connection: http.client.HTTPConnection) -> bool:
    """An idle connection is usable while its socket has nothing to read: no end of file."""
    sock = connection.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


# --------------------------------------------------------------------------- delivery

def retry_delays(strategy: str, rng: Random) -> list[float]:
    """Seconds before each redelivery (MNS docs, "NotifyStrategy").

    BACKOFF_RETRY: 3 retries, each 10 to 20 s after the previous attempt.
    EXPONENTIAL_DECAY_RETRY: 176 retries, 2^n s apart capped at 512 s (about a day).
    """
    if strategy == "BACKOFF_RETRY":
        return [rng.uniform(10.0, 20.0) for _ in range(3)]
    if strategy == "EXPONENTIAL_DECAY_RETRY":
        return [float(min(2 ** n, 512)) for n in range(176)]
    raise ValueError(f"notify strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")


@dataclass
class Delivery:
    """How the delivery of one message went."""

    message_id: str
    delivered: bool = False
    attempts: int = 0
    statuses: list[str] = field(default_factory=list)  # "201", "dropped", "ConnectionResetError"...
    duplicates: int = 0

    @property
    def redeliveries(self) -> int:
        return max(0, self.attempts - 1)


def _is_success(status: str) -> bool:
    # "HTTP状态码在 [200, 400) 之间会认为推送成功" (MNS push backoff policy page): the wider
    # of the documented ranges, so a handler answering 3xx is shown losing the message.
    return status.isdigit() and 200 <= int(status) < 400


# A fault hook decides, per attempt, whether the push is "drop"ped before it
# leaves, sent twice ("duplicate"), sent but its answer lost ("lost_answer":
# MNS sees a failure and redelivers), or sent normally (None).
FaultHook = Callable[[Message, int], "str | None"]


class Pusher:
    """Delivers messages to one subscription, redelivering per its strategy.

    ``time_scale`` multiplies every retry delay (0.001 turns 10-20 s into
    10-20 ms) so runs stay short; the push timeout is ``timeout`` seconds.
    ``stop()`` ends pending retries (a delivery in progress gives up).
    ``keep_alive`` reuses a connection between pushes; off by default: whether MNS
    does is not documented (docs/platform-facts.md "Local run throughput"), and a
    connection the endpoint closes between the check and the next push would turn
    one push into a timeout that MNS would not have seen.
    """

    def __init__(self, subscription: Subscription, *, private_key: rsa.RSAPrivateKey,
                 cert_url: str, time_scale: float = 1.0, timeout: float = PUSH_TIMEOUT_SECONDS,
                 rng: Random | None = None, fault: FaultHook | None = None, keep_alive: bool = False) -> None:
        if time_scale < 0:
            raise ValueError(f"time_scale must be >= 0, got {time_scale}")
        self.subscription = subscription
        self._key = private_key
        self._cert_url = cert_url
        self.time_scale = time_scale
        self._rng = rng or Random()
        self._rng_lock = threading.Lock()
        self._fault = fault
        self._stopped = threading.Event()
        self.connections = KeptConnections(subscription.endpoint, timeout, keep_alive=keep_alive)

    @property
    def timeout(self) -> float:
        """Seconds a push may take (connect, and each read of the answer)."""
        return self.connections.timeout

    @timeout.setter
    def timeout(self, seconds: float) -> None:
        self.connections.timeout = seconds

    def stop(self) -> None:
        self._stopped.set()
        self.connections.close()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def _attempt(self, message: Message) -> str:
        path, headers, body = build_push(message, self.subscription, private_key=self._key,
                                         cert_url=self._cert_url)
        try:
            return str(self.connections.push(path, headers, body))
        except (OSError, http.client.HTTPException) as err:
            # Refused, reset, timed out or not HTTP at all: MNS counts a failed
            # attempt and redelivers; it never gives up on the message for it.
            return type(err).__name__

    def deliver(self, message: Message, fault: FaultHook | None = None) -> Delivery:
        """Pushes until a delivered answer (2xx or 3xx) or the strategy's retries run out (blocking).

        ``fault`` overrides the pusher's own fault hook for this message.
        """
        fault_hook = fault or self._fault
        with self._rng_lock:
            delays = retry_delays(self.subscription.notify_strategy, self._rng)
        result = Delivery(message.message_id)
        for attempt, delay in enumerate([0.0] + delays):
            if delay and self._stopped.wait(delay * self.time_scale):
                break
            if self._stopped.is_set():
                break
            result.attempts += 1
            kind = fault_hook(message, attempt) if fault_hook else None
            if kind == "drop":
                result.statuses.append("dropped")
                continue
            if kind == "lost_answer":  # the endpoint ran, its answer never came back
                self._attempt(message)
                result.statuses.append("lost_answer")
                continue
            statuses = [self._attempt(message)]
            if kind == "duplicate":  # the same message arrives twice
                result.duplicates += 1
                statuses.append(self._attempt(message))
            result.statuses.extend(statuses)
            if any(_is_success(status) for status in statuses):
                result.delivered = True
                break
        return result
