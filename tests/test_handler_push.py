"""Parsing pushes in the three notify formats, and refusing what is not one."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "function"))

from mns_callback.errors import BadPush
from mns_callback.push import MAX_BODY_BYTES, parse_push

TOKEN = "djEjZmxvdyNleGVjdXRpb24jMSNzaWduYXR1cmU="
MESSAGE = json.dumps({"messageBody": "hello world", "taskToken": TOKEN})


def json_push(message: str = MESSAGE) -> bytes:
    return json.dumps({"TopicOwner": "1", "TopicName": "t", "Subscriber": "1", "SubscriptionName": "s",
                       "MessageId": "ID1", "Message": message, "MessageMD5": "x", "MessageTag": "",
                       "PublishTime": "1"}).encode()


def xml_push(message: str = MESSAGE) -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<Notification xmlns="http://mns.aliyuncs.com/doc/v1/">'
            f"<TopicName>t</TopicName><MessageId>ID2</MessageId><Message>{escape(message)}</Message>"
            f"</Notification>").encode()


def test_json_format() -> None:
    notification, task = parse_push({}, json_push())
    assert (notification.format, notification.message_id, notification.topic_name) == ("JSON", "ID1", "t")
    assert (task.task_token, task.message_body) == (TOKEN, "hello world")


def test_xml_format() -> None:
    notification, task = parse_push({}, xml_push())
    assert (notification.format, notification.message_id) == ("XML", "ID2")
    assert (task.task_token, task.message_body) == (TOKEN, "hello world")


def test_simplified_format_takes_metadata_from_headers() -> None:
    notification, task = parse_push({"x-mns-message-id": "ID3", "x-mns-topic-name": "t"}, MESSAGE.encode())
    assert (notification.format, notification.message_id, notification.topic_name) == ("SIMPLIFIED", "ID3", "t")
    assert task.task_token == TOKEN


def test_message_body_may_be_any_json_or_absent() -> None:
    body = {"nested": [1, 2, {"x": None}]}
    _, task = parse_push({}, json_push(json.dumps({"taskToken": TOKEN, "messageBody": body})))
    assert task.message_body == body
    _, task = parse_push({}, json_push(json.dumps({"taskToken": TOKEN})))
    assert task.message_body is None


def test_xml_without_namespace_and_with_whitespace_is_read() -> None:
    body = f"\n  <Notification>\n  <Message>{escape(MESSAGE)}</Message>\n</Notification>\n".encode()
    assert parse_push({}, body)[1].task_token == TOKEN


BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
                  b"<Notification><Message>&lol2;</Message></Notification>")
EXTERNAL = (b'<?xml version="1.0"?><!DOCTYPE n [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b"<Notification><Message>&x;</Message></Notification>")

# (body, headers, field named in the error, status)
BAD_BODIES = [
    (b"", "body", 400),
    (b"   \n", "body", 400),
    (b"hello", "body", 400),
    (b"\xff\xfe\x00", "body", 400),
    (b"[1, 2]", "body", 400),
    (b"{not json", "body", 400),
    (b"{" * 100000, "body", 400),
    (b"x" * (MAX_BODY_BYTES + 1), "body", 413),
    (json.dumps({"Message": 42, "MessageId": "1"}).encode(), "Message", 400),
    (json.dumps({"Message": None, "MessageId": "1"}).encode(), "Message", 400),
    (json.dumps({"MessageId": "1"}).encode(), "Message", 400),
    (json_push("not json"), "Message", 400),
    (json_push("[]"), "Message", 400),
    (json_push('"just a string"'), "Message", 400),
    (json_push(json.dumps({"messageBody": "x"})), "Message.taskToken", 400),
    (json_push(json.dumps({"taskToken": 12345})), "Message.taskToken", 400),
    (json_push(json.dumps({"taskToken": None})), "Message.taskToken", 400),
    (json_push(json.dumps({"taskToken": ["a"]})), "Message.taskToken", 400),
    (json_push(json.dumps({"taskToken": ""})), "Message.taskToken", 400),
    (json_push(json.dumps({"taskToken": "a b"})), "Message.taskToken", 400),
    (json_push(json.dumps({"taskToken": "a\nb"})), "Message.taskToken", 400),
    (json_push(json.dumps({"taskToken": "t" * 9000})), "Message.taskToken", 400),
    (json.dumps({"messageBody": "x"}).encode(), "body.taskToken", 400),
    (json.dumps({"taskToken": 1}).encode(), "body.taskToken", 400),
    (xml_push("not json"), "Message", 400),
    (xml_push(json.dumps({"messageBody": 1})), "Message.taskToken", 400),
    (b"<Notification><MessageId>1</MessageId></Notification>", "Message", 400),
    (b"<Other><Message>x</Message></Other>", "body", 400),
    (b'<Notification xmlns="urn:other"><Message>x</Message></Notification>', "body", 400),
    (b"<Notification><Message><b>x</b></Message></Notification>", "Message", 400),
    (b"<Notification><Message>a</Message><Message>b</Message></Notification>", "Message", 400),
    (b"<Notification><Message>x</Message>", "body", 400),
    (b"<Notification><Message>&undefined;</Message></Notification>", "body", 400),
    (BILLION_LAUGHS, "body", 400),
    (EXTERNAL, "body", 400),
]


@pytest.mark.parametrize("body, field, status", BAD_BODIES, ids=[str(i) for i in range(len(BAD_BODIES))])
def test_bad_bodies_name_the_field(body: bytes, field: str, status: int) -> None:
    with pytest.raises(BadPush) as info:
        parse_push({}, body)
    assert (info.value.field, info.value.status) == (field, status), str(info.value)
    assert info.value.problem


def test_xml_entities_are_refused_with_a_clear_message() -> None:
    with pytest.raises(BadPush, match="DOCTYPE is refused"):
        parse_push({}, BILLION_LAUGHS)


def test_the_token_character_rules_hold_for_every_code_point() -> None:
    """The regexes refuse exactly what str.isspace(), C0 controls, DEL and
    surrogates name, over all of Unicode (they replaced a per-character loop)."""
    from mns_callback import push as push_module

    for code in range(0x110000):
        ch = chr(code)
        blank = ch.isspace() or code < 32 or code == 127
        assert bool(push_module._BLANK_OR_CONTROL.match(ch)) is blank, hex(code)
        assert bool(push_module._SURROGATE.match(ch)) is (0xD800 <= code <= 0xDFFF), hex(code)
