"""Who may call: a push is accepted only with its own body and from our topic,
and every push is answered within MNS's 5 s however slowly a peer answers.

Over real HTTP through both FC adapters, with pushes signed by a local MNS
signing identity (``localcloud.mns_push``), as the other handler tests do.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from localcloud.mns_push import CertServer, Message, Subscription, build_push
from tests.handler_env import BOUND
from tests.handler_stack import Stack, reports_for, send

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTED = json.loads((ROOT / "tests" / "fixtures" / "mns_documented_notifications.json").read_text())["examples"]
OWNER, TOPIC = BOUND["MNS_TOPIC_OWNER"], BOUND["MNS_TOPIC_NAME"]
ATTACKER = "1999999999999999"  # an account of someone else's, with a topic of its own


def genuine(stack: Stack, token: str, fmt: str, **subscription: Any) -> tuple[str, dict[str, str], bytes]:
    sub = Subscription(endpoint=stack.fc.url, notify_format=fmt, **subscription)
    return build_push(stack.message(token), sub, private_key=stack.cert.identity.private_key,
                      cert_url=stack.cert.cert_url)


# --------------------------------------------------------------------------- the body is bound

@pytest.mark.parametrize("fmt", ["JSON", "XML", "SIMPLIFIED"])
def test_a_genuine_pushs_headers_with_another_body_are_refused(stack: Stack, fmt: str) -> None:
    victim, other = stack.token(), stack.token()
    path, headers, body = genuine(stack, victim, fmt)
    _, _, swapped = genuine(stack, other, fmt)
    status, answer = send(stack.fc.url, "POST", path, headers, swapped)
    assert (status, answer["error"]) == (403, "signature_rejected"), answer
    assert "Content-MD5 does not match the body" in answer["message"]
    assert stack.fnf.calls == [] and stack.registry.reports == []
    assert send(stack.fc.url, "POST", path, headers, body) == (200, {"result": "reported"})
    assert [r.token for r in stack.registry.reports] == [victim]


def _md5_forms(body: bytes) -> dict[str, str]:
    digest = hashlib.md5(body)
    return {
        "upper-hex": digest.hexdigest().upper(),  # real pushes (tests/fixtures/mns_known_answer.json)
        "lower-hex": digest.hexdigest(),
        "base64-of-hex": base64.b64encode(digest.hexdigest().encode()).decode(),  # MNS doc examples, PHP sample
        "base64-of-digest": base64.b64encode(digest.digest()).decode(),  # RFC 1864
    }


@pytest.mark.parametrize("form", ["upper-hex", "lower-hex", "base64-of-hex", "base64-of-digest"])
def test_every_content_md5_form_mns_uses_is_accepted(stack: Stack, form: str) -> None:
    token = stack.token()
    body = json.dumps({"TopicOwner": OWNER, "TopicName": TOPIC, "MessageId": "M1",
                       "Message": stack.message(token).body}).encode()
    status, answer = stack.signed(body, content_md5=_md5_forms(body)[form])
    assert (status, answer) == (200, {"result": "reported"})
    assert len(reports_for(stack, token)) == 1


@pytest.mark.parametrize("value, words", [
    ("", "Content-MD5 header is missing"),
    ("00000000000000000000000000000000", "does not match the body"),
    ("not-a-digest", "does not match the body"),
])
def test_a_missing_or_wrong_content_md5_is_refused(stack: Stack, value: str, words: str) -> None:
    body = json.dumps({"TopicOwner": OWNER, "TopicName": TOPIC, "Message": stack.message(stack.token()).body}).encode()
    status, answer = stack.signed(body, content_md5=value)
    assert (status, answer["error"]) == (403, "signature_rejected") and words in answer["message"], answer
    assert stack.fnf.calls == []


def test_a_base64_encoded_fc3_body_is_digested_as_the_bytes_mns_sent(stack: Stack) -> None:
    """A binary Content-Type makes the FC 3.0 trigger hand the body over base64-encoded."""
    token = stack.token()
    body = json.dumps({"TopicOwner": OWNER, "TopicName": TOPIC, "Message": stack.message(token).body}).encode()
    status, answer = stack.signed(body, content_type="application/octet-stream")
    assert (status, answer) == (200, {"result": "reported"})


# --------------------------------------------------------------------------- the topic is bound

@pytest.mark.parametrize("fmt", ["JSON", "XML", "SIMPLIFIED"])
@pytest.mark.parametrize("who", [{"topic_owner": ATTACKER}, {"topic_name": "look-alike-topic"},
                                 {"topic_owner": ATTACKER, "topic_name": TOPIC}],
                         ids=["other-account", "other-topic", "same-name-other-account"])
def test_genuinely_signed_pushes_from_another_topic_are_refused(stack: Stack, fmt: str, who: dict) -> None:
    token = stack.token()
    path, headers, body = genuine(stack, token, fmt, **who)
    status, answer = send(stack.fc.url, "POST", path, headers, body)
    assert (status, answer["error"]) == (403, "topic_rejected"), answer
    assert f"only topic {TOPIC!r} of account {OWNER!r}" in answer["message"]
    assert stack.fnf.calls == [] and stack.registry.reports == []


def test_a_simplified_push_imitating_a_json_notification_of_our_topic_is_refused(stack: Stack) -> None:
    """The attacker's own topic pushes SIMPLIFIED: the body is their raw message,
    written to look like a JSON notification that names our topic. MNS's signed
    x-mns-topic-* headers still name theirs."""
    token = stack.token()
    forged = json.dumps({"TopicOwner": OWNER, "TopicName": TOPIC, "MessageId": "M1",
                         "Message": stack.message(token).body})
    sub = Subscription(endpoint=stack.fc.url, notify_format="SIMPLIFIED", topic_owner=ATTACKER,
                       topic_name="attacker-topic")
    path, headers, body = build_push(Message(forged), sub, private_key=stack.cert.identity.private_key,
                                     cert_url=stack.cert.cert_url)
    status, answer = send(stack.fc.url, "POST", path, headers, body)
    assert (status, answer["error"]) == (403, "topic_rejected"), answer
    assert stack.registry.reports == []


def test_a_json_notification_naming_no_topic_is_refused(stack: Stack) -> None:
    body = json.dumps({"MessageId": "M1", "Message": stack.message(stack.token()).body}).encode()
    status, answer = stack.signed(body)
    assert (status, answer["error"]) == (403, "topic_rejected") and "names no sending topic" in answer["message"]


def test_a_numeric_topic_owner_is_compared_as_text(stack: Stack) -> None:
    token = stack.token()
    body = json.dumps({"TopicOwner": int(OWNER), "TopicName": TOPIC, "Message": stack.message(token).body}).encode()
    assert stack.signed(body) == (200, {"result": "reported"})


# --------------------------------------------------------------------------- metadata never decides

def test_metadata_of_any_type_never_fails_a_push(stack: Stack) -> None:
    token = stack.token()
    body = json.dumps({"TopicOwner": OWNER, "TopicName": TOPIC, "Message": stack.message(token).body,
                       "PublishTime": 1550216480040, "MessageId": 7, "MessageMD5": None,
                       "Subscriber": {"id": 1}, "SubscriptionName": ["a"], "MessageTag": 3.5,
                       "SomeFutureField": {"nested": [1, 2]}}).encode()
    assert stack.signed(body) == (200, {"result": "reported"})
    xml = (f"<Notification><TopicOwner>{OWNER}</TopicOwner><TopicName>{TOPIC}</TopicName>"
           "<PublishTime>1550216480040</PublishTime><MessageTag>a</MessageTag><MessageTag>b</MessageTag>"
           "<FutureField><Nested>x</Nested></FutureField>"
           f"<Message>{stack.message(stack.token()).body}</Message></Notification>").encode()
    assert stack.signed(xml, content_type="text/xml;charset=utf-8") == (200, {"result": "reported"})


@pytest.mark.parametrize("example", [e for e in DOCUMENTED if e["format"] == "JSON"], ids=lambda e: e["name"])
def test_each_documented_json_envelope_carries_a_task_through(stack: Stack, example: dict) -> None:
    """The documented envelope, unchanged but for its message and topic, which must be ours."""
    token = stack.token()
    document = json.loads(example["body"])
    document.update(Message=stack.message(token).body, TopicOwner=OWNER, TopicName=TOPIC)
    assert stack.signed(json.dumps(document).encode()) == (200, {"result": "reported"})


# --------------------------------------------------------------------------- one deadline per push

def test_a_trickling_fnf_answer_cannot_hold_the_push_past_mns_window(stack: Stack) -> None:
    """Each byte arrives well inside the read timeout; the answer as a whole would take 8 s."""
    stack.fnf.faults.delay = 8.0
    stack.fnf.faults.inject("trickle", times=10)
    token = stack.token()
    started = time.monotonic()
    status, answer = stack.push_message(stack.message(token))
    elapsed = time.monotonic() - started
    assert (status, answer["error"]) == (504, "timeout"), answer
    assert elapsed < 5.0, f"answered after {elapsed:.1f} s"


def test_a_trickling_certificate_host_cannot_hold_the_push_past_mns_window() -> None:
    from tests.handler_stack import FcRuntime, FnFEndpoint, TokenRegistry
    registry = TokenRegistry()
    with FnFEndpoint(registry) as fnf, CertServer() as cert:
        cert.trickle_seconds = 8.0
        env = {"FNF_ENDPOINT": fnf.url, "MNS_CERT_URL_PREFIXES": cert.url_prefix, **BOUND}
        with FcRuntime(source_dir=ROOT / "function", credentials=fnf.issue_sts_credentials(),
                       environment=env) as fc:
            sub = Subscription(endpoint=fc.url)
            message = Message(json.dumps({"messageBody": 1, "taskToken": registry.issue(flow="demo")}))
            path, headers, body = build_push(message, sub, private_key=cert.identity.private_key,
                                             cert_url=cert.cert_url)
            started = time.monotonic()
            status, answer = send(fc.url, "POST", path, headers, body)
            elapsed = time.monotonic() - started
    assert (status, answer["error"]) == (503, "cert_unavailable"), answer
    assert elapsed < 5.0, f"answered after {elapsed:.1f} s"
    assert registry.reports == []


def test_concurrent_pushes_needing_one_uncached_certificate_share_one_fetch() -> None:
    import sys
    sys.path.insert(0, str(ROOT / "function"))
    from mns_callback import signature

    calls: list[str] = []
    gate = threading.Event()
    pem = CertServer().identity.certificate_pem  # not started: only its PEM is used

    def slow_fetch(url: str) -> bytes:
        calls.append(url)
        gate.wait(5)
        return pem

    keys = signature.KeyCache(slow_fetch)
    got: list[Any] = []
    threads = [threading.Thread(target=lambda: got.append(keys.get("https://c/x.pem", time.monotonic() + 5)))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    gate.set()
    for thread in threads:
        thread.join(5)
    assert calls == ["https://c/x.pem"] and len(got) == 8 and len({id(k) for k in got}) == 1
    assert keys.get("https://c/x.pem") is got[0] and calls == ["https://c/x.pem"], "then cached"


def test_a_push_waits_for_a_shared_fetch_only_until_its_own_deadline() -> None:
    import sys
    sys.path.insert(0, str(ROOT / "function"))
    from mns_callback import signature
    from mns_callback.errors import CertificateUnavailable

    gate = threading.Event()
    pem = CertServer().identity.certificate_pem
    keys = signature.KeyCache(lambda url: (gate.wait(5), pem)[1])
    started = time.monotonic()
    with pytest.raises(CertificateUnavailable, match="before the push's deadline"):
        keys.get("https://c/x.pem", started + 0.3)
    assert time.monotonic() - started < 1.0
    gate.set()  # the fetch goes on and serves the redelivery
    assert keys.get("https://c/x.pem", time.monotonic() + 2).modulus > 0
