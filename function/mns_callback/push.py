"""Pure parsing of an MNS HTTP push into a notification and its task message.

MNS pushes one of three notify formats (MNS docs "HTTP endpoint"; docs/platform-facts.md):
JSON ``{"TopicOwner", "TopicName", "Subscriber", "SubscriptionName",
"MessageId", "Message", "MessageMD5", "MessageTag", "PublishTime"}``, XML
``<Notification xmlns="http://mns.aliyuncs.com/doc/v1/">`` with the same
children, or SIMPLIFIED: the raw message as the body, metadata in ``x-mns-*``
headers. The flow publishes ``serviceParams.MessageBody: $``, so the message is
the JSON text ``{"messageBody": ..., "taskToken": "..."}`` (docs/design.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from .errors import BadPush

# An MNS message is at most 64 KiB; escaping in the JSON/XML envelope can grow it
# a few times. Anything larger is not a push of ours.
MAX_BODY_BYTES = 256 * 1024
# The task token is opaque (observed ~200 characters); this only stops abuse.
MAX_TOKEN_CHARS = 8192
MNS_XML_NAMESPACE = "http://mns.aliyuncs.com/doc/v1/"
# What a token may not hold: ``\s`` is str.isspace()'s set (Unicode blanks too),
# plus C0 controls and DEL; and unpaired surrogates. One regex scan each, not a
# Python loop per character (the hot path of every push).
_BLANK_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


FORMATS = ("JSON", "XML", "SIMPLIFIED")


@dataclass(frozen=True)
class Notification:
    """The push's metadata and raw message text, whatever the format.

    Only ``message`` (and the topic identity, when the handler binds pushes to
    its topic) decides anything; the other fields are read leniently, as text
    whatever JSON type they arrive in, because MNS's and FC's documented
    examples disagree on their types (``PublishTime`` a string on the MNS page,
    a number on the FC page: docs/platform-facts.md "MNS HTTP push").
    """

    format: str
    message: str
    message_id: str | None = None
    topic_name: str | None = None
    publish_time: str | None = None
    topic_owner: str | None = None


@dataclass(frozen=True)
class TaskMessage:
    """The message the flow's task step published."""

    task_token: str
    message_body: Any


def parse_push(headers: Mapping[str, str], body: bytes,
               expected_format: str | None = None) -> tuple[Notification, TaskMessage]:
    """Notification and task message of a push, or BadPush naming the field.

    ``headers`` must have lower-case names; ``expected_format`` is the
    subscription's notify format when the handler knows it (else it is guessed).
    """
    notification = parse_notification(headers, body, expected_format)
    return notification, parse_task_message(notification.message, _field(notification))


def _field(notification: Notification) -> str:
    return "body" if notification.format == "SIMPLIFIED" else "Message"


def parse_notification(headers: Mapping[str, str], body: bytes,
                       expected_format: str | None = None) -> Notification:
    """Read the notification in ``expected_format``, or detect the format (no task parsing).

    Knowing the format matters for security, not only speed: under SIMPLIFIED
    the body is the publisher's raw message, which could itself look like a
    JSON or XML notification naming any topic it likes.
    """
    if expected_format is not None and expected_format not in FORMATS:
        raise ValueError(f"expected_format must be one of {', '.join(FORMATS)}, got {expected_format!r}")
    if len(body) > MAX_BODY_BYTES:
        raise BadPush("body", f"{len(body)} bytes is larger than the {MAX_BODY_BYTES} allowed", 413)
    if not body.strip():
        raise BadPush("body", "is empty; expected an MNS notification")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadPush("body", f"is not UTF-8 text (byte {exc.start})") from None
    stripped = text.lstrip("\ufeff \t\r\n")
    if expected_format == "SIMPLIFIED":
        return _simplified(headers, text)
    if expected_format == "XML" or (expected_format is None and stripped.startswith("<")):
        if not stripped.startswith("<"):
            raise BadPush("body", "expected an XML <Notification> (the subscription's notify format is XML)")
        return _parse_xml(stripped)
    if stripped.startswith("{"):
        document = _loads(stripped, "body")
        if expected_format == "JSON" or "Message" in document or "MessageId" in document:
            return _from_json_notification(document)
        return _simplified(headers, text)
    if expected_format == "JSON":
        raise BadPush("body", "expected a JSON notification object (the subscription's notify format is JSON)")
    raise BadPush("body", "expected an MNS notification (JSON or XML) or the raw JSON task message")


def _simplified(headers: Mapping[str, str], text: str) -> Notification:
    """SIMPLIFIED: the body is the message; its metadata arrives in signed ``x-mns-*`` headers."""
    return Notification(
        format="SIMPLIFIED",
        # A byte order mark is how the text was encoded, not message text:
        # JSON refuses it, so it goes, as it does for the JSON and XML formats.
        message=text.removeprefix("\ufeff"),
        message_id=headers.get("x-mns-message-id"),
        topic_name=headers.get("x-mns-topic-name"),
        publish_time=headers.get("x-mns-publish-time"),
        topic_owner=headers.get("x-mns-topic-owner"),
    )


def _loads(text: str, field: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise BadPush(field, "is JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise BadPush(field, f"is not valid JSON ({exc.msg} at position {exc.pos})") from None
    except ValueError as exc:
        # Not a JSONDecodeError: an integer beyond Python's digit limit
        # (sys.get_int_max_str_digits, 4300). The same on every redelivery.
        raise BadPush(field, f"is not valid JSON here ({str(exc).split(':')[0]})") from None


def _metadata(value: Any) -> str | None:
    """A metadata field as text: strings as they are, numbers written out, anything else unknown.

    Never a reason to refuse a push (the field decides nothing)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _from_json_notification(document: Mapping[str, Any]) -> Notification:
    message = document.get("Message")
    if message is None:
        raise BadPush("Message", "is missing from the JSON notification")
    if not isinstance(message, str):
        raise BadPush("Message", f"expected a string holding the JSON task message, got {type(message).__name__}")
    return Notification(
        format="JSON",
        message=message,
        message_id=_metadata(document.get("MessageId")),
        topic_name=_metadata(document.get("TopicName")),
        publish_time=_metadata(document.get("PublishTime")),
        topic_owner=_metadata(document.get("TopicOwner")),
    )


def _refuse(what: str) -> Callable[..., NoReturn]:
    def handler(*_args: object) -> NoReturn:
        raise BadPush("body", f"XML with {what} is refused")
    return handler


# Fields that decide something: appearing twice, or holding elements, makes the push ambiguous.
_DECIDING_XML_FIELDS = frozenset({"Message", "TopicOwner", "TopicName"})


def _parse_xml(text: str) -> Notification:
    """Read ``<Notification>`` with expat, refusing DOCTYPE and entities.

    MNS sends a flat element of text children. DTDs and entity declarations
    are refused before they can expand; a field that decides nothing may hold
    anything (it is ignored), while ``Message``, ``TopicOwner`` and
    ``TopicName`` must appear once, as text.
    """
    from xml.parsers import expat  # only XML pushes pay for it

    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse("a DOCTYPE")
    parser.EntityDeclHandler = _refuse("an entity declaration")
    parser.UnparsedEntityDeclHandler = _refuse("an entity declaration")
    parser.ExternalEntityRefHandler = _refuse("an external entity")
    fields: dict[str, str] = {}
    state: dict[str, Any] = {"depth": 0, "current": None}
    text_parts: list[str] = []

    def start(name: str, _attrs: dict) -> None:
        namespace, _, local = name.rpartition(" ")
        depth = state["depth"]
        if depth == 0:
            if local != "Notification" or namespace not in ("", MNS_XML_NAMESPACE):
                raise BadPush("body", f"expected an XML <Notification> root, got <{local}>")
        elif depth == 1:
            if local in fields and local in _DECIDING_XML_FIELDS:
                raise BadPush(local, "appears more than once in the XML notification")
            state["current"] = local
            text_parts.clear()
        elif state["current"] in _DECIDING_XML_FIELDS:
            raise BadPush(str(state["current"]), f"has a nested element <{local}>; expected text")
        state["depth"] = depth + 1

    def end(_name: str) -> None:
        state["depth"] -= 1
        if state["depth"] == 1:
            fields.setdefault(str(state["current"]), "".join(text_parts))
            state["current"] = None

    def chars(data: str) -> None:
        if state["depth"] == 2:
            text_parts.append(data)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(text.encode("utf-8"), True)
    except BadPush:
        raise
    except expat.ExpatError as exc:
        raise BadPush("body", f"is not well-formed XML ({expat.errors.messages[exc.code]}, line {exc.lineno})") from None
    except (LookupError, ValueError) as exc:
        # An XML declaration naming an encoding expat does not know (LookupError).
        raise BadPush("body", f"is not XML this handler can read ({type(exc).__name__})") from None
    if "Message" not in fields:
        raise BadPush("Message", "is missing from the XML notification")
    return Notification(
        format="XML",
        message=fields["Message"],
        message_id=fields.get("MessageId"),
        topic_name=fields.get("TopicName"),
        publish_time=fields.get("PublishTime"),
        topic_owner=fields.get("TopicOwner"),
    )


def parse_task_message(message: str, field: str = "Message") -> TaskMessage:
    """``{"taskToken": str, "messageBody": any}`` out of the message text."""
    document = _loads(message, field)
    if not isinstance(document, dict):
        raise BadPush(field, f"expected a JSON object with taskToken, got {type(document).__name__}")
    if "taskToken" not in document:
        raise BadPush(f"{field}.taskToken", "is missing")
    token = document["taskToken"]
    if not isinstance(token, str):
        raise BadPush(f"{field}.taskToken", f"expected a string, got {type(token).__name__}")
    if not token.strip():
        raise BadPush(f"{field}.taskToken", "is empty")
    if len(token) > MAX_TOKEN_CHARS:
        raise BadPush(f"{field}.taskToken", f"is {len(token)} characters; at most {MAX_TOKEN_CHARS} expected")
    if _BLANK_OR_CONTROL.search(token):
        raise BadPush(f"{field}.taskToken", "contains whitespace or control characters")
    if _SURROGATE.search(token):
        # Only a JSON escape (\ud800) makes one; it cannot be sent to FnF as
        # UTF-8, so the report would fail the same way on every redelivery.
        raise BadPush(f"{field}.taskToken", "contains an unpaired surrogate (\\ud800-\\udfff)")
    return TaskMessage(task_token=token, message_body=document.get("messageBody"))
