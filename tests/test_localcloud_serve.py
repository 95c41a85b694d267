"""``python -m localcloud serve`` as a subprocess, with the official SDKs as its clients."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.mns_sdk import require_mns_sdk

ROOT = Path(__file__).resolve().parent.parent
KEYS = ["accessKeyId", "accessKeySecret", "deadLetterQueueName", "flowName", "fnfEndpoint", "mnsEndpoint",
        "region", "topicName", "triggerUrl"]


@pytest.fixture(scope="module")
def served():
    require_mns_sdk()
    process = subprocess.Popen(
        [sys.executable, "-m", "localcloud", "serve", "--stack", "dev", "--time-scale", "0.01"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        line = process.stdout.readline()
        assert line, process.stderr.read()
        yield process, json.loads(line)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_it_prints_one_line_with_what_a_client_needs(served) -> None:
    _, info = served
    assert sorted(info) == KEYS
    assert (info["region"], info["flowName"], info["topicName"], info["deadLetterQueueName"]) == (
        "cn-hangzhou", "mns-callback-dev-flow", "mns-callback-dev-topic", "mns-callback-dev-dlq")
    for key in ("fnfEndpoint", "mnsEndpoint", "triggerUrl"):
        assert urlsplit(info[key]).hostname == "127.0.0.1"


def test_the_fnf_sdk_starts_and_describes_an_execution(served) -> None:
    from aliyunsdkcore.auth.credentials import AccessKeyCredential
    from aliyunsdkcore.client import AcsClient
    from aliyunsdkfnf.request.v20190315.DescribeExecutionRequest import DescribeExecutionRequest
    from aliyunsdkfnf.request.v20190315.GetExecutionHistoryRequest import GetExecutionHistoryRequest
    from aliyunsdkfnf.request.v20190315.StartExecutionRequest import StartExecutionRequest

    _, info = served
    client = AcsClient(credential=AccessKeyCredential(info["accessKeyId"], info["accessKeySecret"]),
                       region_id=info["region"], port=urlsplit(info["fnfEndpoint"]).port, auto_retry=False)
    start = StartExecutionRequest()
    start.set_endpoint("127.0.0.1")
    start.set_FlowName(info["flowName"])
    start.set_Input(json.dumps({"messageBody": "from a client"}))
    name = json.loads(client.do_action_with_exception(start))["Name"]
    describe = DescribeExecutionRequest()
    describe.set_endpoint("127.0.0.1")
    describe.set_FlowName(info["flowName"])
    describe.set_ExecutionName(name)
    describe.set_WaitTimeSeconds(10)
    deadline = time.monotonic() + 30
    while True:
        status = json.loads(client.do_action_with_exception(describe))
        if status["Status"] != "Running" or time.monotonic() > deadline:
            break
    assert (status["Status"], json.loads(status["Output"])) == ("Succeeded", {"status": "success"})
    history = GetExecutionHistoryRequest()
    history.set_endpoint("127.0.0.1")
    history.set_FlowName(info["flowName"])
    history.set_ExecutionName(name)
    events = [e["Type"] for e in json.loads(client.do_action_with_exception(history))["Events"]]
    assert events[0] == "ExecutionStarted" and events[-1] == "ExecutionSucceeded"


def test_the_mns_sdk_publishes_receives_and_deletes(served) -> None:
    from mns.account import Account
    from mns.mns_exception import MNSServerException
    from mns.topic import TopicMessage

    _, info = served
    account = Account(info["mnsEndpoint"], info["accessKeyId"], info["accessKeySecret"])
    # Not a callback message: the handler refuses every push (400), the retries run out
    # (time-scaled), and the message dead-letters.
    published = account.get_topic(info["topicName"]).publish_message(TopicMessage("not a callback message"))
    assert published.message_id
    queue = account.get_queue(info["deadLetterQueueName"])
    queue.set_encoding(False)
    received = queue.receive_message(10)
    assert received.message_body == "not a callback message"
    queue.delete_message(received.receipt_handle)
    attributes = queue.get_attributes()
    assert (attributes.active_messages, attributes.inactive_messages) == (0, 0)
    with pytest.raises(MNSServerException) as empty:
        queue.receive_message(0)
    assert empty.value.type == "MessageNotExist"
    forged = Account(info["mnsEndpoint"], info["accessKeyId"], "not-the-secret")
    with pytest.raises(MNSServerException) as refused:
        forged.get_queue(info["deadLetterQueueName"]).get_attributes()
    assert refused.value.type == "SignatureDoesNotMatch"  # MNS's 403 for a wrong signature


def test_sigterm_ends_it_with_exit_code_0(served) -> None:
    process, _ = served
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0


def test_without_a_queue_the_line_names_none() -> None:
    from localcloud.__main__ import serve_description
    from localcloud.run import LocalStack
    from tests.local_render import rendered

    with LocalStack.from_render(rendered("deadLetterQueue=false")) as stack:
        line = serve_description(stack, ("id", "secret"))
        assert stack.mns.queues == {}
    assert line["deadLetterQueueName"] == "" and line["accessKeyId"] == "id"
    assert sorted(line) == KEYS
