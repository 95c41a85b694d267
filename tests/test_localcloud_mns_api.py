"""The local MNS data-plane endpoint: MNS's signature check and error XML over real HTTP,
and the official aliyun-mns-sdk as its client."""

from __future__ import annotations

import hashlib
import http.client
import time
from email.utils import formatdate
from xml.etree import ElementTree

import pytest

from localcloud.mns_api import XML_NAMESPACE, LocalQueue, MnsEndpoint, MnsError, Published, sign, string_to_sign
from tests.mns_sdk import require_mns_sdk

NS = f"{{{XML_NAMESPACE}}}"


@pytest.fixture
def endpoint():
    with MnsEndpoint(account_id="1234567890123456", region="cn-hangzhou") as ep:
        ep.queues["dlq"] = LocalQueue("dlq")
        ep.published = []

        def publish(body: str) -> Published:
            ep.published.append(body)
            return Published("A" * 32, hashlib.md5(body.encode()).hexdigest().upper())

        ep.topics["topic"] = publish
        ep.key = ep.issue_access_key()
        yield ep


def _request(ep: MnsEndpoint, method: str, uri: str, *, secret: str | None = None, body: bytes = b"",
             authorization: str | None = None, date: str | None = None) -> tuple[int, dict, bytes]:
    headers = {"Date": date or formatdate(usegmt=True), "x-mns-version": "2015-06-06"}
    if body:
        headers["Content-Type"] = "text/xml;charset=UTF-8"
    key_id, real_secret = ep.key
    if authorization is None:
        authorization = f"MNS {key_id}:{sign(secret or real_secret, method, headers, uri)}"
    if authorization:
        headers["Authorization"] = authorization
    connection = http.client.HTTPConnection("127.0.0.1", ep.port, timeout=10)
    try:
        connection.request(method, uri, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def _error(data: bytes) -> dict[str, str]:
    root = ElementTree.fromstring(data)
    assert root.tag == f"{NS}Error"
    return {child.tag.removeprefix(NS): child.text or "" for child in root}


def test_string_to_sign_is_the_documented_one() -> None:
    # MNS "403 SignatureDoesNotMatch" (doc-detail 39221): GET /MyQueue, no body.
    headers = {"Date": "Thu, 09 Jul 2015 03:01:34 GMT", "x-mns-version": "2015-06-06",
               "Host": "1xxxx0.mns.cn-hangzhou.aliyuncs.com"}
    assert string_to_sign("GET", headers, "/MyQueue") == (
        "GET\n\n\nThu, 09 Jul 2015 03:01:34 GMT\nx-mns-version:2015-06-06\n/MyQueue")


def test_a_correctly_signed_request_is_answered(endpoint: MnsEndpoint) -> None:
    status, headers, data = _request(endpoint, "GET", "/queues/dlq")
    assert status == 200, data
    assert ElementTree.fromstring(data).find(f"{NS}QueueName").text == "dlq"
    assert headers["x-mns-request-id"]


def test_a_wrong_signature_is_403_signature_does_not_match(endpoint: MnsEndpoint) -> None:
    status, headers, data = _request(endpoint, "GET", "/queues/dlq", secret="not-the-secret")
    assert status == 403
    error = _error(data)
    assert error["Code"] == "SignatureDoesNotMatch"
    assert error["RequestId"] == headers["x-mns-request-id"]
    assert error["HostId"] == "1234567890123456.mns.cn-hangzhou.aliyuncs.com"
    assert "GET\\n\\n\\n" in error["Message"]  # names the string it signed, as a client needs to debug


def test_a_signed_request_replayed_on_another_resource_is_refused(endpoint: MnsEndpoint) -> None:
    key_id, secret = endpoint.key
    date = formatdate(usegmt=True)
    headers = {"Date": date, "x-mns-version": "2015-06-06"}
    stolen = f"MNS {key_id}:{sign(secret, 'GET', headers, '/queues/dlq')}"
    status, _, data = _request(endpoint, "DELETE", "/queues/dlq/messages?ReceiptHandle=X",
                               authorization=stolen, date=date)
    assert (status, _error(data)["Code"]) == (403, "SignatureDoesNotMatch")


@pytest.mark.parametrize(("authorization", "status", "code"), [
    ("", 400, "MissingAuthorizationHeader"),
    ("Bearer abc", 400, "InvalidAuthorizationHeader"),
    ("MNS no-colon", 400, "InvalidAuthorizationHeader"),
    ("MNS LTAIunknown:c2lnbmF0dXJl", 403, "InvalidAccessKeyId"),
])
def test_bad_authorization_headers_get_mns_errors(endpoint: MnsEndpoint, authorization: str, status: int,
                                                  code: str) -> None:
    got, _, data = _request(endpoint, "GET", "/queues/dlq", authorization=authorization)
    assert (got, _error(data)["Code"]) == (status, code)


def test_a_stale_date_is_refused(endpoint: MnsEndpoint) -> None:
    status, _, data = _request(endpoint, "GET", "/queues/dlq", date=formatdate(time.time() - 3600, usegmt=True))
    assert (status, _error(data)["Code"]) == (403, "TimeExpired")


def test_what_is_not_implemented_gets_error_xml_with_a_clear_code(endpoint: MnsEndpoint) -> None:
    for method, uri in (("PUT", "/queues/new-queue-name"), ("GET", "/queues/dlq/messages?peekonly=true"),
                        ("GET", "/topics/topic"), ("POST", "/somewhere")):
        if uri == "/queues/new-queue-name":
            status, _, data = _request(endpoint, method, uri)
            assert (status, _error(data)["Code"]) == (404, "QueueNotExist")
            continue
        status, _, data = _request(endpoint, method, uri)
        error = _error(data)
        assert (status, error["Code"]) == (501, "NotImplemented"), (method, uri)
        assert method in error["Message"] and "PublishMessage" in error["Message"]


def test_a_body_whose_md5_is_not_the_header_is_refused(endpoint: MnsEndpoint) -> None:
    key_id, secret = endpoint.key
    body = f'<Message xmlns="{XML_NAMESPACE}"><MessageBody>x</MessageBody></Message>'.encode()
    headers = {"Date": formatdate(usegmt=True), "x-mns-version": "2015-06-06",
               "Content-Type": "text/xml;charset=UTF-8", "Content-MD5": "AAAA"}
    headers["Authorization"] = f"MNS {key_id}:{sign(secret, 'POST', headers, '/topics/topic/messages')}"
    connection = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=10)
    connection.request("POST", "/topics/topic/messages", body=body, headers=headers)
    response = connection.getresponse()
    assert (response.status, _error(response.read())["Code"]) == (400, "InvalidDegist")
    connection.close()
    assert endpoint.published == []


# ---- the official SDK as the client -----------------------------------------------------


@pytest.fixture
def account(endpoint: MnsEndpoint):
    require_mns_sdk()
    from mns.account import Account

    return Account(endpoint.url, *endpoint.key)


def test_the_sdk_publishes_to_the_topic(endpoint: MnsEndpoint, account) -> None:
    from mns.topic import TopicMessage

    answer = account.get_topic("topic").publish_message(TopicMessage('{"taskToken": "t", "x": "<&>"}'))
    assert endpoint.published == ['{"taskToken": "t", "x": "<&>"}']
    assert answer.message_body_md5 == hashlib.md5(endpoint.published[0].encode()).hexdigest().upper()


def test_the_sdk_receives_changes_visibility_deletes_and_counts(endpoint: MnsEndpoint, account) -> None:
    from mns.mns_exception import MNSServerException

    endpoint.queues["dlq"].send("first")
    queue = account.get_queue("dlq")
    queue.set_encoding(False)
    assert (queue.get_attributes().active_messages, queue.get_attributes().inactive_messages) == (1, 0)
    received = queue.receive_message(1)
    assert (received.message_body, received.dequeue_count) == ("first", 1)
    assert (queue.get_attributes().active_messages, queue.get_attributes().inactive_messages) == (0, 1)
    changed = queue.change_message_visibility(received.receipt_handle, 120)
    assert changed.receipt_handle != received.receipt_handle
    with pytest.raises(MNSServerException) as stale:
        queue.delete_message(received.receipt_handle)  # superseded by the change
    assert stale.value.type == "ReceiptHandleError"
    queue.delete_message(changed.receipt_handle)
    assert len(endpoint.queues["dlq"]) == 0
    with pytest.raises(MNSServerException) as empty:
        queue.receive_message(0)
    assert empty.value.type == "MessageNotExist"


def test_a_received_message_comes_back_after_its_visibility_timeout(endpoint: MnsEndpoint, account) -> None:
    endpoint.queues["short"] = LocalQueue("short", visibility_timeout=1)
    endpoint.queues["short"].send("again")
    queue = account.get_queue("short")
    queue.set_encoding(False)
    assert queue.receive_message(0).dequeue_count == 1
    assert queue.receive_message(3).dequeue_count == 2  # long-polled until visible again


def test_a_failing_publish_is_the_sdks_server_error(endpoint: MnsEndpoint, account) -> None:
    from mns.mns_exception import MNSServerException
    from mns.topic import TopicMessage

    def refuse(_body: str) -> None:
        raise MnsError(503, "ServiceUnavailable", "try later")

    endpoint.publish_fault = refuse
    with pytest.raises(MNSServerException) as caught:
        account.get_topic("topic").publish_message(TopicMessage("x"))
    assert caught.value.type == "ServiceUnavailable"
    assert endpoint.published == []


def test_the_documented_lower_case_query_names_work_too(endpoint: MnsEndpoint) -> None:
    # ChangeMessageVisibility's reference writes ?receiptHandle=...&visibilityTimeout=...;
    # the SDK sends ReceiptHandle / VisibilityTimeout. Both are taken.
    endpoint.queues["dlq"].send("m")
    (received,) = endpoint.queues["dlq"].receive()
    status, _, data = _request(endpoint, "PUT", f"/queues/dlq/messages?receiptHandle={received.receipt_handle}"
                               "&visibilityTimeout=50")
    assert status == 200, data
    handle = ElementTree.fromstring(data).find(f"{NS}ReceiptHandle").text
    status, _, data = _request(endpoint, "DELETE", f"/queues/dlq/messages?ReceiptHandle={handle}")
    assert (status, data) == (204, b"")
    assert len(endpoint.queues["dlq"]) == 0


def test_out_of_range_arguments_are_invalid_argument(endpoint: MnsEndpoint) -> None:
    for uri in ("/queues/dlq/messages?waitseconds=31", "/queues/dlq/messages?numOfMessages=17"):
        status, _, data = _request(endpoint, "GET", uri)
        assert (status, _error(data)["Code"]) == (400, "InvalidArgument"), uri


def test_the_signature_checked_is_the_one_the_sdk_computes() -> None:
    require_mns_sdk()
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from mns.auth import StaticCredentialsProvider
    from mns.mns_client import MNSClient

    client = MNSClient("http://127.0.0.1:1", "id", "secret")
    names = st.from_regex(r"x-mns-[a-z-]{1,12}", fullmatch=True)
    values = st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=20)

    @settings(max_examples=60, derandomize=True, database=None, deadline=None)
    @given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]), mns=st.dictionaries(names, values, max_size=4),
           md5=values, resource=st.from_regex(r"/queues/[a-z]{1,8}/messages(\?ReceiptHandle=[A-F0-9]{4})?",
                                              fullmatch=True))
    def agree(method: str, mns: dict, md5: str, resource: str) -> None:
        headers = {"content-md5": md5, "content-type": "text/xml;charset=UTF-8",
                   "date": "Thu, 09 Jul 2015 03:01:34 GMT", **mns}
        expected = client.get_signature(method, headers, resource,
                                        StaticCredentialsProvider("id", "secret").get_credentials())
        assert expected == f"MNS id:{sign('secret', method, headers, resource)}"

    agree()
