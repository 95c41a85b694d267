"""An MNS data-plane endpoint (API 2015-06-06) on loopback: queues and topics over REST/XML.

It answers what the official ``aliyun-mns-sdk`` (``mns/mns_client.py``) sends
when pointed at ``http://127.0.0.1:PORT`` (docs/platform-facts.md "MNS
data-plane API (queues and topics)"):

* ``POST /topics/<topic>/messages`` PublishMessage (``<Message><MessageBody>``),
  201 ``<Message><MessageId/><MessageBodyMD5/></Message>``; the message goes to
  the topic's subscription (the signed HTTP push of ``localcloud.topic``);
* ``GET /queues/<queue>/messages[?waitseconds=N]`` ReceiveMessage and
  ``?numOfMessages=N`` BatchReceiveMessage; 404 ``MessageNotExist`` when empty;
* ``DELETE /queues/<queue>/messages?ReceiptHandle=H`` DeleteMessage, 204;
* ``PUT /queues/<queue>/messages?ReceiptHandle=H&VisibilityTimeout=S``
  ChangeMessageVisibility, 200 ``<ChangeVisibility>`` with a new handle;
* ``GET /queues/<queue>`` GetQueueAttributes with the message counts.

Every request is authenticated first: ``Authorization: MNS <AccessKeyId>:<Signature>``,
the signature base64 HMAC-SHA1 (keyed with the secret) of
``METHOD\\nContent-MD5\\nContent-Type\\nDate\\n`` + each ``x-mns-*`` header,
lowercased and sorted, as ``name:value\\n`` + the request URI with its query.
Anything else is answered with MNS's ``<Error>`` XML, never a hang.

Queue times are real seconds (a client gives them in seconds, like
``VisibilityTimeout``); nothing here is time-scaled.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, unquote, urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from localcloud.loopback import LoopbackServer, RequestHandler, read_body

XML_NAMESPACE = "http://mns.aliyuncs.com/doc/v1/"
MNS_VERSION = "2015-06-06"
# MNS "Sign requests" / common parameters: the Date must be within 15 minutes of the server's clock.
DATE_WINDOW_SECONDS = 15 * 60
# CreateQueue bounds (pulumi-alicloud 4.0.0 message/service_queue.py): VisibilityTimeout
# 1-43200 s, default 30; ReceiveMessage waitseconds 0-30; BatchReceiveMessage 1-16 messages.
MIN_VISIBILITY, MAX_VISIBILITY, DEFAULT_VISIBILITY = 1, 43200, 30
MAX_WAIT_SECONDS = 30
MAX_BATCH = 16
# What a message id and a body MD5 look like in MNS answers: 32 upper hex digits.
_HEX32 = 16


class MnsError(Exception):
    """An error MNS answers as ``<Error><Code/><Message/><RequestId/><HostId/></Error>``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


# Codes and statuses of MNS "Error codes" (help doc-detail 27501) and doc-detail 39221
# (403 SignatureDoesNotMatch); the per-operation ones are cited in docs/platform-facts.md.
def _signature_mismatch(string_to_sign: str) -> MnsError:
    shown = string_to_sign.replace("\n", "\\n")
    return MnsError(403, "SignatureDoesNotMatch",
                    f"The request signature we calculated does not match the signature you provided. "
                    f"String to sign: {shown}")


def string_to_sign(method: str, headers: Mapping[str, str], resource: str) -> str:
    """The text MNS signs for a request (names matched case-insensitively, missing values '')."""
    lower = {k.lower(): v for k, v in headers.items()}
    mns = "".join(f"{k}:{v}\n" for k, v in sorted(lower.items()) if k.startswith("x-mns-"))
    return (f"{method.upper()}\n{lower.get('content-md5', '')}\n{lower.get('content-type', '')}\n"
            f"{lower.get('date', '')}\n{mns}{resource}")


def sign(secret: str, method: str, headers: Mapping[str, str], resource: str) -> str:
    """Base64 HMAC-SHA1 of ``string_to_sign``, keyed with the AccessKey secret."""
    digest = hmac.new(secret.encode(), string_to_sign(method, headers, resource).encode(), hashlib.sha1)
    return base64.b64encode(digest.digest()).decode()


def _md5_matches(header: str, body: bytes) -> bool:
    """Content-MD5 as the SDK sends it (base64 of the hex digest), or hex, or base64 of the digest."""
    digest = hashlib.md5(body)
    forms = {digest.hexdigest().lower(), base64.b64encode(digest.hexdigest().encode()).decode(),
             base64.b64encode(digest.digest()).decode()}
    return header in forms or header.lower() in forms


# --------------------------------------------------------------------------- state

@dataclass
class QueueMessage:
    body: str
    message_id: str = field(default_factory=lambda: secrets.token_hex(_HEX32).upper())
    enqueue_time_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    first_dequeue_time_ms: int = 0
    dequeue_count: int = 0
    next_visible: float = 0.0  # time.time() seconds
    receipt_handle: str = ""
    priority: int = 8

    @property
    def md5(self) -> str:
        return hashlib.md5(self.body.encode()).hexdigest().upper()


class LocalQueue:
    """A queue: send, receive (invisible for the visibility timeout), delete, change visibility.

    ``retention_seconds``: a message older than this is dropped, as MNS's
    MessageRetentionPeriod does.
    """

    def __init__(self, name: str, *, visibility_timeout: int = DEFAULT_VISIBILITY,
                 retention_seconds: int = 345600, clock: Callable[[], float] = time.time) -> None:
        self.name = name
        self.visibility_timeout = visibility_timeout
        self.retention_seconds = retention_seconds
        self.created = int(clock())
        self._clock = clock
        self._messages: list[QueueMessage] = []
        self._changed = threading.Condition()
        self.sent = 0

    def send(self, body: str) -> QueueMessage:
        message = QueueMessage(body)
        with self._changed:
            self._messages.append(message)
            self.sent += 1
            self._changed.notify_all()
        return message

    def _expire(self, now: float) -> None:
        cutoff = (now - self.retention_seconds) * 1000
        self._messages = [m for m in self._messages if m.enqueue_time_ms >= cutoff]

    def receive(self, count: int = 1, wait_seconds: float = 0.0) -> list[QueueMessage]:
        """Up to ``count`` visible messages, made invisible; waits up to ``wait_seconds`` for one."""
        deadline = time.monotonic() + wait_seconds
        with self._changed:
            while True:
                now = self._clock()
                self._expire(now)
                ready = [m for m in self._messages if m.next_visible <= now][:count]
                if ready:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                # Woken by a send or a change; the short cap notices a message turning visible.
                self._changed.wait(min(remaining, 0.05))
            for message in ready:
                message.dequeue_count += 1
                message.first_dequeue_time_ms = message.first_dequeue_time_ms or int(now * 1000)
                message.next_visible = now + self.visibility_timeout
                message.receipt_handle = secrets.token_hex(16).upper()
            return [QueueMessage(**vars(m)) for m in ready]  # snapshots

    def _by_handle(self, handle: str) -> QueueMessage:
        for message in self._messages:
            if message.receipt_handle and hmac.compare_digest(message.receipt_handle, handle):
                if message.next_visible <= self._clock():
                    break  # visible again: the handle is no longer the holder's
                return message
        # DeleteMessage / ChangeMessageVisibility: ReceiptHandleError, "the receipt handle
        # is invalid" (the handle expired or belongs to a later receive) - docs/platform-facts.md.
        raise MnsError(400, "ReceiptHandleError", f"The receipt handle you provided is not valid: {handle}")

    def delete(self, handle: str) -> None:
        with self._changed:
            self._messages.remove(self._by_handle(handle))
            self._changed.notify_all()

    def change_visibility(self, handle: str, seconds: int) -> QueueMessage:
        with self._changed:
            message = self._by_handle(handle)
            message.next_visible = self._clock() + seconds
            message.receipt_handle = secrets.token_hex(16).upper()
            self._changed.notify_all()
            return QueueMessage(**vars(message))

    def counts(self) -> tuple[int, int]:
        """(active, inactive) message counts."""
        with self._changed:
            now = self._clock()
            self._expire(now)
            active = sum(1 for m in self._messages if m.next_visible <= now)
            return active, len(self._messages) - active

    def __len__(self) -> int:
        with self._changed:
            return len(self._messages)


@dataclass
class Published:
    message_id: str
    md5: str


# A topic's publish: takes the message body, returns its id and MD5 (or raises MnsError).
PublishFunction = Callable[[str], Published]


# --------------------------------------------------------------------------- XML

def _element(tag: str, fields: Mapping[str, object]) -> str:
    children = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in fields.items())
    return f"<{tag} xmlns=\"{XML_NAMESPACE}\">{children}</{tag}>"


def _document(body: str) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}'.encode()


def error_xml(error: MnsError, request_id: str, host_id: str) -> bytes:
    return _document(_element("Error", {"Code": error.code, "Message": error.message,
                                        "RequestId": request_id, "HostId": host_id}))


def _message_fields(message: QueueMessage) -> dict[str, object]:
    return {"MessageId": message.message_id, "ReceiptHandle": message.receipt_handle,
            "MessageBodyMD5": message.md5, "MessageBody": message.body,
            "EnqueueTime": message.enqueue_time_ms, "NextVisibleTime": int(message.next_visible * 1000),
            "FirstDequeueTime": message.first_dequeue_time_ms, "DequeueCount": message.dequeue_count,
            "Priority": message.priority}


def _parse_message_body(data: bytes) -> str:
    """``MessageBody`` of a PublishMessage request (``<Message xmlns=...><MessageBody>``)."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise MnsError(400, "MalformedXML", "The XML you provided was not well-formed.")
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError:
        raise MnsError(400, "MalformedXML", "The XML you provided was not well-formed.") from None
    if root.tag not in ("Message", f"{{{XML_NAMESPACE}}}Message"):
        raise MnsError(400, "InvalidArgument",
                       f"The XML you provided did not validate against our published schema, cause by {root.tag}.")
    body = root.find(f"{{{XML_NAMESPACE}}}MessageBody")
    if body is None:
        body = root.find("MessageBody")
    if body is None or not (body.text or ""):
        raise MnsError(400, "InvalidArgument", "MessageBody is required and must not be empty.")
    return body.text or ""


# --------------------------------------------------------------------------- endpoint

class MnsEndpoint(LoopbackServer):
    """The endpoint: ``queues`` and ``topics`` by name; ``credentials`` AccessKeyId -> secret.

    ``publish_fault``, when set, is asked per PublishMessage and may raise
    ``MnsError`` (a test's failing publish); ``calls`` counts answered requests by action.
    """

    def __init__(self, *, account_id: str, region: str, port: int = 0,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(_MnsHandler, port)
        self.account_id = account_id
        self.region = region
        self.clock = clock
        self.queues: dict[str, LocalQueue] = {}
        self.topics: dict[str, PublishFunction] = {}
        self.credentials: dict[str, str] = {}
        self.publish_fault: Callable[[str], None] | None = None
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()

    @property
    def host_id(self) -> str:
        return f"{self.account_id}.mns.{self.region}.aliyuncs.com"

    def issue_access_key(self) -> tuple[str, str]:
        key_id, secret = "LTAI" + secrets.token_hex(10), secrets.token_urlsafe(22)
        self.credentials[key_id] = secret
        return key_id, secret

    def _count(self, action: str) -> None:
        with self._lock:
            self.calls[action] = self.calls.get(action, 0) + 1

    # -- pure apart from the credential table

    def authenticate(self, method: str, resource: str, headers: Mapping[str, str], body: bytes) -> None:
        lower = {k.lower(): v for k, v in headers.items()}
        authorization = lower.get("authorization")
        if not authorization:
            raise MnsError(400, "MissingAuthorizationHeader", "Authorization header is required.")
        scheme, _, credential = authorization.partition(" ")
        key_id, colon, signature = credential.partition(":")
        if scheme != "MNS" or not colon or not key_id or not signature:
            raise MnsError(400, "InvalidAuthorizationHeader", "The Authorization header format is invalid.")
        date = lower.get("date")
        if not date:
            raise MnsError(400, "MissingDateHeader", "Date header is required.")
        try:
            stamp = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            raise MnsError(400, "InvalidDateHeader", "The Date header format is invalid.") from None
        if abs(self.clock() - stamp) > DATE_WINDOW_SECONDS:
            raise MnsError(403, "TimeExpired", "The http request you sent is expired.")
        if lower.get("x-mns-version", MNS_VERSION) != MNS_VERSION:
            raise MnsError(400, "InvalidArgument", f"x-mns-version must be {MNS_VERSION}.")
        secret = self.credentials.get(key_id)
        if secret is None:
            raise MnsError(403, "InvalidAccessKeyId", "The AccessKey Id you provided is not exist.")
        expected = sign(secret, method, headers, resource)
        if not hmac.compare_digest(expected, signature):
            raise _signature_mismatch(string_to_sign(method, headers, resource))
        md5 = lower.get("content-md5")
        if md5 and not _md5_matches(md5, body):
            raise MnsError(400, "InvalidDegist", "The Content-MD5 you specified is invalid.")

    def dispatch(self, method: str, target: str, body: bytes) -> tuple[int, bytes, str]:
        """``(status, body, action)`` of an authenticated request; raises MnsError."""
        url = urlsplit(target)
        parts = [unquote(p) for p in url.path.split("/") if p]
        # Names matched case-insensitively: the SDK sends ReceiptHandle / VisibilityTimeout, the
        # ChangeMessageVisibility reference writes receiptHandle / visibilityTimeout.
        query = {k.lower(): v for k, v in parse_qsl(url.query, keep_blank_values=True)}
        if len(parts) == 3 and parts[0] == "topics" and parts[2] == "messages" and method == "POST":
            return self._publish(parts[1], body)
        if len(parts) >= 2 and parts[0] == "queues":
            queue = self.queues.get(parts[1])
            if queue is None:
                raise MnsError(404, "QueueNotExist", f"The queue name you provided is not exist: {parts[1]}")
            if len(parts) == 2 and method == "GET" and not query:
                return self._attributes(queue)
            if len(parts) == 3 and parts[2] == "messages":
                if method == "GET" and "peekonly" not in query:
                    return self._receive(queue, query)
                if method == "DELETE" and "receipthandle" in query:
                    queue.delete(query["receipthandle"])
                    return 204, b"", "DeleteMessage"
                if method == "PUT" and "receipthandle" in query:
                    return self._change_visibility(queue, query)
        raise MnsError(501, "NotImplemented",
                       f"The local MNS endpoint does not implement {method} {url.path}"
                       f"{'?' + url.query if url.query else ''}; it serves PublishMessage, "
                       "ReceiveMessage, BatchReceiveMessage, DeleteMessage, ChangeMessageVisibility "
                       "and GetQueueAttributes.")

    def _publish(self, topic: str, body: bytes) -> tuple[int, bytes, str]:
        publish = self.topics.get(topic)
        if publish is None:
            raise MnsError(404, "TopicNotExist", f"The topic name you provided is not exist: {topic}")
        text = _parse_message_body(body)
        if self.publish_fault is not None:
            self.publish_fault(text)
        published = publish(text)
        return 201, _document(_element("Message", {"MessageId": published.message_id,
                                                   "MessageBodyMD5": published.md5})), "PublishMessage"

    @staticmethod
    def _int(query: Mapping[str, str], name: str, low: int, high: int, default: int) -> int:
        raw = query.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise MnsError(400, "InvalidArgument", f"The value of {name} should between {low} and {high}.")
        return value

    def _receive(self, queue: LocalQueue, query: Mapping[str, str]) -> tuple[int, bytes, str]:
        wait = self._int(query, "waitseconds", 0, MAX_WAIT_SECONDS, 0)
        batch = "numofmessages" in query
        count = self._int(query, "numofmessages", 1, MAX_BATCH, 1)
        messages = queue.receive(count, wait)
        if not messages:
            raise MnsError(404, "MessageNotExist", "Message not exist.")
        if batch:
            items = "".join(_element("Message", _message_fields(m)).replace(f' xmlns="{XML_NAMESPACE}"', "")
                            for m in messages)
            return 200, _document(f'<Messages xmlns="{XML_NAMESPACE}">{items}</Messages>'), "BatchReceiveMessage"
        return 200, _document(_element("Message", _message_fields(messages[0]))), "ReceiveMessage"

    def _change_visibility(self, queue: LocalQueue, query: Mapping[str, str]) -> tuple[int, bytes, str]:
        if "visibilitytimeout" not in query:
            raise MnsError(400, "MissingVisibilityTimeout", "VisibilityTimeout is required.")
        seconds = self._int(query, "visibilitytimeout", MIN_VISIBILITY, MAX_VISIBILITY, DEFAULT_VISIBILITY)
        message = queue.change_visibility(query["receipthandle"], seconds)
        fields = {"ReceiptHandle": message.receipt_handle, "NextVisibleTime": int(message.next_visible * 1000)}
        return 200, _document(_element("ChangeVisibility", fields)), "ChangeMessageVisibility"

    def _attributes(self, queue: LocalQueue) -> tuple[int, bytes, str]:
        active, inactive = queue.counts()
        fields = {"QueueName": queue.name, "CreateTime": queue.created, "LastModifyTime": queue.created,
                  "VisibilityTimeout": queue.visibility_timeout, "MaximumMessageSize": 65536,
                  "MessageRetentionPeriod": queue.retention_seconds, "DelaySeconds": 0,
                  "PollingWaitSeconds": 0, "ActiveMessages": active, "InactiveMessages": inactive,
                  "DelayMessages": 0, "LoggingEnabled": "False"}
        return 200, _document(_element("Queue", fields)), "GetQueueAttributes"


class _MnsHandler(RequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _serve(self) -> None:
        owner: MnsEndpoint = self.server.owner  # type: ignore[attr-defined]
        request_id = uuid.uuid4().hex.upper()[:24]
        action = "Error"
        try:
            try:
                body = read_body(self)
            except ValueError as err:
                self.close_connection = True
                raise MnsError(400, "InvalidArgument", f"Content-Length: {err}") from None
            headers = {k: v for k, v in self.headers.items()}
            owner.authenticate(self.command, self.path, headers, body)
            status, data, action = owner.dispatch(self.command, self.path, body)
        except MnsError as err:
            status, data = err.status, error_xml(err, request_id, owner.host_id)
        except Exception as err:  # noqa: BLE001 - a stand-in bug is MNS's 500, never a hang
            status = 500
            data = error_xml(MnsError(500, "InternalError", f"{type(err).__name__}: {err}"),
                             request_id, owner.host_id)
        owner._count(action)
        self.send_response(status)
        self.send_header("x-mns-request-id", request_id)
        self.send_header("x-mns-version", MNS_VERSION)
        if data:
            self.send_header("Content-Type", "text/xml;charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD":  # a HEAD answer has the headers of the GET, no body
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

