"""MNS-like pushes: signed as MNS signs them, checked the way the official sample checks them."""

from __future__ import annotations

import base64
import json
import socket
import sys
import threading
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from random import Random
from urllib.request import urlopen

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from localcloud.loopback import LoopbackServer, read_body
from localcloud.mns_push import (
    MNS_SIGNING_KEY_BITS,
    CertServer,
    Message,
    Pusher,
    SigningIdentity,
    Subscription,
    build_push,
    push,
    retry_delays,
    rsa_private_key,
    string_to_sign,
)
from localcloud.topic import Topic

# A real signed SIMPLIFIED push, public in cnryb/verify-signature (verify_signature/src/lib.rs).
REAL_CERT = b"""-----BEGIN CERTIFICATE-----
MIICiDCCAjKgAwIBAgIJAL+acWZrTrlfMA0GCSqGSIb3DQEBBQUAMGMxCzAJBgNV
BAYTAjg2MREwDwYDVQQIEwhaaGVqaWFuZzERMA8GA1UEBxMISGFuZ3pob3UxDzAN
BgNVBAoTBkFsaXl1bjEMMAoGA1UECxMDTW5zMQ8wDQYDVQQDEwZub3RpZnkwHhcN
MTUwNzAyMDIwNjE2WhcNMTYwNzAxMDIwNjE2WjBjMQswCQYDVQQGEwI4NjERMA8G
A1UECBMIWmhlamlhbmcxETAPBgNVBAcTCEhhbmd6aG91MQ8wDQYDVQQKEwZBbGl5
dW4xDDAKBgNVBAsTA01uczEPMA0GA1UEAxMGbm90aWZ5MFwwDQYJKoZIhvcNAQEB
BQADSwAwSAJBALX0sFVowct1NAQjDyYSUf0rp1rOHLkz4kp0zNWcDyXMXa5PzsPU
UwJXaLwhvNCDLLWuiLK6Oh5elmOmL8Gy/5MCAwEAAaOByDCBxTAdBgNVHQ4EFgQU
kEah2o9HpCUCxhN/fY3kUtPkP4owgZUGA1UdIwSBjTCBioAUkEah2o9HpCUCxhN/
fY3kUtPkP4qhZ6RlMGMxCzAJBgNVBAYTAjg2MREwDwYDVQQIEwhaaGVqaWFuZzER
MA8GA1UEBxMISGFuZ3pob3UxDzANBgNVBAoTBkFsaXl1bjEMMAoGA1UECxMDTW5z
MQ8wDQYDVQQDEwZub3RpZnmCCQC/mnFma065XzAMBgNVHRMEBTADAQH/MA0GCSqG
SIb3DQEBBQUAA0EAluPg+k0Fc7WRcpP78+eLptYD8an7YOapUdNUmT2/SQC5BZ+t
cyWFit5pAEipngFL105d7AuW2AtwqG0FgV0ipw==
-----END CERTIFICATE-----
"""
REAL_HEADERS = {
    "Content-MD5": "4CCBAD7AF2D23C2D00DDECCA59323A8C",
    "Content-Type": "text/plain;charset=utf-8",
    "Date": "Wed, 29 Mar 2023 08:41:27 GMT",
    "x-mns-message-id": "250EB49D5F8D737A391C93C6ED165396",
    "x-mns-publish-time": "1680079287576",
    "x-mns-request-id": "6423F9B7BF94313030AF5EA0",
    "x-mns-signing-cert-url": "aHR0cHM6Ly9tbnN0ZXN0Lm9zcy1jbi1oYW5nemhvdS5hbGl5dW5jcy5jb20veDUwOV9wdWJsaWNfY2VydGlmaWNhdGUucGVt",
    "x-mns-subscriber": "1321669497458181",
    "x-mns-subscription-name": "mns-en-subs-oss-fecdn-internal-pre-1-22849529855680",
    "x-mns-topic-name": "mns-en-topics-oss-fecdn-internal-pre-22849529792243",
    "x-mns-topic-owner": "1321669497458181",
    "x-mns-version": "2015-06-06",
}
REAL_SIGNATURE = ("LP3cxoTCbhsiLJi0KQdEiRaufaxMfWUdLH064yoVoKl8xNcY+299itGmGsirVMY8vDpuZ1VwS0Uw7"
                  "R5dNduSXg==")


def verify(cert_pem: bytes, text: str, authorization: str) -> bool:
    key = x509.load_pem_x509_certificate(cert_pem).public_key()
    try:
        key.verify(base64.b64decode(authorization), text.encode(), padding.PKCS1v15(), hashes.SHA1())
    except InvalidSignature:
        return False
    return True


def test_string_to_sign_reproduces_a_real_mns_push():
    text = string_to_sign("POST", REAL_HEADERS, "/notifications")
    assert verify(REAL_CERT, text, REAL_SIGNATURE)
    assert not verify(REAL_CERT, text.replace("/notifications", "/other"), REAL_SIGNATURE)
    # Header name case does not matter, order of x-mns-* headers does not either.
    shuffled = {k.upper() if k.startswith("x-") else k: v for k, v in reversed(REAL_HEADERS.items())}
    assert string_to_sign("POST", shuffled, "/notifications") == text


class Receiver(BaseHTTPRequestHandler):
    """An HTTP endpoint that checks pushes as aliyun-mns-python-sdk sample/topic/server.py does."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        owner = self.server.owner
        body = read_body(self)
        service = "\n".join(f"{k}:{v}" for k, v in sorted((k.lower(), v) for k, v in self.headers.items())
                             if k.startswith("x-mns-"))
        signed = "\n".join(self.headers.get(h, "") for h in ("content-md5", "content-type", "date"))
        text = f"{self.command}\n{signed}\n{service}\n{self.path}"
        cert_url = base64.b64decode(self.headers["x-mns-signing-cert-url"]).decode()
        with urlopen(cert_url, timeout=5) as answer:
            cert = answer.read()
        valid = verify(cert, text, self.headers["Authorization"])
        with owner.lock:
            owner.received.append((self.path, dict(self.headers), body, valid))
            status = owner.statuses.pop(0) if owner.statuses else 201
        self.send_response(status if valid else 403)
        self.send_header("Content-Length", "0")
        self.end_headers()


class ReceiverServer(LoopbackServer):
    def __init__(self, statuses: list[int] | None = None) -> None:
        super().__init__(Receiver)
        self.lock = threading.Lock()
        self.received: list = []
        self.statuses = list(statuses or [])


@pytest.fixture(scope="module")
def identity():
    return SigningIdentity()


@pytest.fixture
def certs(identity):
    with CertServer(identity) as server:
        yield server


def test_the_local_certificate_has_the_key_size_and_dates_of_mns_own(identity):
    # The certificate MNS served has a 512-bit key; cryptography generates no key below 1024 bits.
    real = x509.load_pem_x509_certificate(REAL_CERT)
    assert real.public_key().key_size == MNS_SIGNING_KEY_BITS == identity.private_key.key_size
    # Expired as MNS's is: the handler (which judges no dates) accepts pushes signed under it.
    assert (identity.certificate.not_valid_before_utc, identity.certificate.not_valid_after_utc) == (
        real.not_valid_before_utc, real.not_valid_after_utc)
    assert identity.certificate.public_key().public_numbers() == identity.private_key.public_key().public_numbers()
    text = b"POST\nmd5\ntext/plain\ndate\n/notifications"
    signature = identity.private_key.sign(text, padding.PKCS1v15(), hashes.SHA1())
    assert verify(identity.certificate_pem, text.decode(), base64.b64encode(signature).decode())


@pytest.mark.parametrize("bits", [512, 513, 768, 1024])
def test_a_key_of_any_size_from_mns_own_up_has_exactly_that_many_bits(bits):
    key = rsa_private_key(bits)
    assert key.key_size == bits and key.public_key().public_numbers().e == 65537
    signature = key.sign(b"x", padding.PKCS1v15(), hashes.SHA1())
    key.public_key().verify(signature, b"x", padding.PKCS1v15(), hashes.SHA1())


def test_a_key_smaller_than_mns_own_is_refused():
    with pytest.raises(ValueError, match="at least 512 bits"):
        rsa_private_key(384)


@pytest.mark.parametrize("fmt", ["JSON", "XML", "SIMPLIFIED"])
def test_push_verifies_like_the_official_sample(certs, fmt):
    message = Message('{"messageBody": "hello <world> & é", "taskToken": "dG9r"}', tag="t1")
    with ReceiverServer() as receiver:
        subscription = Subscription(receiver.url, topic_name="cb-topic", notify_format=fmt)
        path, headers, body = build_push(message, subscription,
                                         private_key=certs.identity.private_key,
                                         cert_url=certs.cert_url)
        assert push(receiver.url, path, headers, body) == 201
        [(got_path, got_headers, got_body, valid)] = receiver.received
    assert valid and got_path == "/notifications"
    assert got_headers["x-mns-version"] == "2015-06-06"
    assert got_headers["Date"].endswith(" GMT")
    assert base64.b64decode(got_headers["x-mns-signing-cert-url"]).decode() == certs.cert_url
    if fmt == "JSON":
        fields = json.loads(got_body)
    elif fmt == "XML":
        root = ET.fromstring(got_body)
        assert root.tag == "{http://mns.aliyuncs.com/doc/v1/}Notification"
        fields = {child.tag.split("}")[1]: child.text or "" for child in root}
    else:
        assert got_body.decode() == message.body
        assert got_headers["x-mns-message-id"] == message.message_id
        assert got_headers["x-mns-message-tag"] == "t1"
        assert got_headers["Content-Type"] == "text/plain;charset=utf-8"
        return
    assert fields["Message"] == message.body
    assert fields["MessageId"] == message.message_id
    assert fields["TopicName"] == "cb-topic" and fields["MessageTag"] == "t1"
    assert set(fields) == {"TopicOwner", "TopicName", "Subscriber", "SubscriptionName",
                           "MessageId", "Message", "MessageMD5", "MessageTag", "PublishTime"}
    assert all(isinstance(v, str) for v in fields.values())


def test_tampered_push_fails_verification(certs):
    with ReceiverServer() as receiver:
        subscription = Subscription(receiver.url + "/invoke?x=1")
        path, headers, body = build_push(Message("{}"), subscription,
                                         private_key=certs.identity.private_key,
                                         cert_url=certs.cert_url)
        assert path == "/invoke?x=1"
        assert push(receiver.url, path, headers, body) == 201
        headers["x-mns-request-id"] = "0" * 24
        assert push(receiver.url, path, headers, body) == 403
        other = SigningIdentity(key_size=1024)
        _, forged, _ = build_push(Message("{}"), subscription, private_key=other.private_key,
                                  cert_url=certs.cert_url)
        assert push(receiver.url, path, forged, body) == 403


def test_retry_schedules_follow_the_documented_strategies():
    backoff = retry_delays("BACKOFF_RETRY", Random(1))
    assert len(backoff) == 3 and all(10 <= d <= 20 for d in backoff)
    decay = retry_delays("EXPONENTIAL_DECAY_RETRY", Random(1))
    assert len(decay) == 176 and decay[:4] == [1, 2, 4, 8] and max(decay) == 512
    assert 22 * 3600 < sum(decay) < 26 * 3600  # "about a day"
    with pytest.raises(ValueError, match="notify strategy"):
        retry_delays("NEVER", Random(1))


def test_pusher_redelivers_until_success(certs):
    with ReceiverServer(statuses=[500, 503]) as receiver:
        pusher = Pusher(Subscription(receiver.url, notify_strategy="BACKOFF_RETRY"),
                        private_key=certs.identity.private_key, cert_url=certs.cert_url,
                        time_scale=0.001, rng=Random(3))
        result = pusher.deliver(Message("{}"))
        assert result.delivered and result.attempts == 3
        assert result.statuses == ["500", "503", "201"]
        assert len(receiver.received) == 3


@pytest.mark.parametrize("status, delivered", [(204, True), (302, True), (399, True), (400, False),
                                              (403, False), (404, False)])
def test_a_status_in_200_to_399_is_delivered_and_a_4xx_is_redelivered(certs, status, delivered):
    # MNS's push backoff page: [200, 400) is success, every other status a failed push.
    with ReceiverServer(statuses=[status] * 5) as receiver:
        pusher = Pusher(Subscription(receiver.url, notify_strategy="BACKOFF_RETRY"),
                        private_key=certs.identity.private_key, cert_url=certs.cert_url,
                        time_scale=0.001, rng=Random(3))
        result = pusher.deliver(Message("{}"))
    assert result.delivered is delivered
    assert result.statuses == [str(status)] * (1 if delivered else 4)


def test_pusher_gives_up_after_the_strategy_and_handles_faults(certs):
    with ReceiverServer(statuses=[500] * 10) as receiver:
        pusher = Pusher(Subscription(receiver.url), private_key=certs.identity.private_key,
                        cert_url=certs.cert_url, time_scale=0.001)
        result = pusher.deliver(Message("{}"))
        assert not result.delivered and result.attempts == 4 and result.redeliveries == 3

    script = {0: "drop", 1: "duplicate"}
    with ReceiverServer() as receiver:
        pusher = Pusher(Subscription(receiver.url, notify_format="XML"),
                        private_key=certs.identity.private_key, cert_url=certs.cert_url,
                        time_scale=0.001, fault=lambda message, attempt: script.get(attempt))
        result = pusher.deliver(Message("{}"))
        assert result.delivered and result.statuses == ["dropped", "201", "201"]
        assert result.duplicates == 1 and len(receiver.received) == 2


class NotHttp(BaseHTTPRequestHandler):
    """Answers every push with bytes that are not an HTTP status line."""

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        read_body(self)
        self.wfile.write(b"garbage\r\n\r\n")
        self.close_connection = True


def test_an_answer_that_is_not_http_is_a_failed_attempt_then_redelivered(certs):
    with LoopbackServer(NotHttp) as server:
        pusher = Pusher(Subscription(server.url), private_key=certs.identity.private_key,
                        cert_url=certs.cert_url, time_scale=0.0001)
        result = pusher.deliver(Message("{}"))
    assert not result.delivered and result.attempts == 4
    assert result.statuses == ["BadStatusLine"] * 4


def test_mns_headers_are_signed_in_name_order_as_the_handler_checks_them():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "function"))
    from mns_callback import signature

    headers = {"x-mns-a": "1", "x-mns-a-b": "2", "Date": "d"}
    text = string_to_sign("POST", headers, "/notifications")
    assert text.index("x-mns-a:1") < text.index("x-mns-a-b:2")
    assert text == signature.string_to_sign("POST", "/notifications", {k.lower(): v for k, v in headers.items()})


def test_unreachable_endpoint_is_a_failed_attempt(certs):
    with ReceiverServer() as receiver:
        url = receiver.url
    pusher = Pusher(Subscription(url), private_key=certs.identity.private_key,
                    cert_url=certs.cert_url, time_scale=0.0001)
    result = pusher.deliver(Message("{}"))
    assert not result.delivered and result.statuses[0] == "ConnectionRefusedError"


def test_a_push_to_a_url_without_a_host_is_refused_by_name():
    with pytest.raises(ValueError, match=r"push endpoint 'http:///notifications' has no host"):
        push("http:///notifications", "/notifications", {}, b"{}")


def test_bad_subscription_settings_are_named():
    with pytest.raises(ValueError, match="notify_format"):
        Subscription("http://127.0.0.1:1/", notify_format="YAML")
    with pytest.raises(ValueError, match="notify_strategy"):
        Subscription("http://127.0.0.1:1/", notify_strategy="SOMETIMES")
    with pytest.raises(ValueError, match="endpoint"):
        Subscription("ftp://host/")


def test_cert_server_counts_fetches(certs):
    with urlopen(certs.cert_url, timeout=5) as answer:
        assert answer.read() == certs.identity.certificate_pem
    assert certs.fetches == 1


def test_a_failing_delivery_is_counted_undelivered_not_lost(certs):
    class BrokenPusher(Pusher):
        def deliver(self, message, fault=None):
            raise RuntimeError("pusher bug")

    heard = []
    pusher = BrokenPusher(Subscription("http://127.0.0.1:1/"), private_key=certs.identity.private_key,
                          cert_url=certs.cert_url)
    topic = Topic("topic", pusher, on_delivery=lambda key, delivery: heard.append((key, delivery)))
    topic.publish("{}", "run-1:3")
    topic.close(timeout=5)
    stats = topic.snapshot()
    assert (stats.published, stats.delivered, stats.undelivered) == (1, 0, 1)
    [(key, delivery)] = heard
    assert key == "run-1:3" and not delivery.delivered
    assert delivery.statuses == ["error: RuntimeError: pusher bug"]


class _Answering(BaseHTTPRequestHandler):
    """Answers 200; ``owner.close_after`` closes the connection after each answer (with or
    without saying so in a ``Connection: close`` header); counts connections."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        owner = self.server.owner  # type: ignore[attr-defined]
        with owner.lock:
            owner.connections += 1

    def do_POST(self) -> None:
        owner = self.server.owner  # type: ignore[attr-defined]
        read_body(self)
        self.send_response(200)
        if owner.close_after == "header":
            self.send_header("Connection", "close")
        self.send_header("Content-Length", "0")
        self.end_headers()
        if owner.close_after:
            self.close_connection = True
        if owner.close_after == "silently":
            self.connection.shutdown(socket.SHUT_WR)  # the FIN is out before the test goes on
            owner.closed.set()


class _Endpoint(LoopbackServer):
    def __init__(self, close_after: str = "") -> None:
        super().__init__(_Answering)
        self.close_after = close_after
        self.connections = 0
        self.lock = threading.Lock()
        self.closed = threading.Event()


@pytest.mark.parametrize("close_after, connections", [("", 1), ("header", 3), ("silently", 3)])
def test_pushes_reuse_a_kept_connection_unless_the_endpoint_closed_it(certs, close_after, connections):
    with _Endpoint(close_after) as endpoint:
        pusher = Pusher(Subscription(endpoint.url + "/notify"), private_key=certs.identity.private_key,
                        cert_url=certs.cert_url, keep_alive=True)
        deliveries = []
        for index in range(3):
            deliveries.append(pusher.deliver(Message(f"m{index}")))
            if close_after == "silently":
                assert endpoint.closed.wait(5)
                endpoint.closed.clear()
        pusher.stop()
    # A connection the endpoint closed without a word is seen closed before reuse: no push fails on it.
    assert [d.statuses for d in deliveries] == [["200"]] * 3
    assert endpoint.connections == pusher.connections.opened == connections


def test_pushes_open_a_connection_each_unless_asked_to_keep_one(certs):
    with _Endpoint() as endpoint:
        pusher = Pusher(Subscription(endpoint.url + "/notify"), private_key=certs.identity.private_key,
                        cert_url=certs.cert_url)
        deliveries = [pusher.deliver(Message(f"m{index}")) for index in range(3)]
        pusher.stop()
    assert [d.statuses for d in deliveries] == [["200"]] * 3
    assert endpoint.connections == pusher.connections.opened == 3
