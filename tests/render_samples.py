"""A small hand-written render in the shape docs/design.md fixes for ``infra.synth``.

Used where a test needs a render it can edit freely (the preview diff's own
cases); the real render from ``infra.synth.render`` is used alongside it.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import zipfile

FLOW = """version: v1
type: flow
steps:
  - type: task
    name: mns-topic-task
    resourceArn: acs:mns:::/topics/demo-topic/messages
    pattern: waitForCallback
    timeoutSeconds: 300
    inputMappings:
      - target: messageBody
        source: $input.messageBody
      - target: taskToken
        source: $context.task.token
    outputMappings:
      - target: status
        source: $local.status
    serviceParams:
      MessageBody: $
"""


def _policy(statements: list[dict]) -> str:
    return json.dumps({"Statement": statements, "Version": "1"}, separators=(",", ":"), sort_keys=True)


def _zip_b64(text: str) -> str:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("index.py", date_time=(1980, 1, 1, 0, 0, 0))
        zf.writestr(info, text * 40)
    return base64.b64encode(buf.getvalue()).decode()


def sample_render() -> dict:
    """A fresh copy each call, so a test may mutate it."""
    comp = "mns-callback-flow:index:CallbackPattern::demo"
    render = {
        "project": "mns-callback-flow",
        "stack": "dev",
        "resources": [
            {
                "type": "alicloud:fnf/flow:Flow",
                "name": "demo-flow",
                "parent": comp,
                "inputs": {"definition": FLOW, "description": "demo", "name": "demo-flow", "type": "FDL"},
                "dependsOn": [],
            },
            {
                "type": "alicloud:ram/policy:Policy",
                "name": "demo-flow-policy",
                "parent": comp,
                "inputs": {
                    "policyName": "demo-flow-publish",
                    "policyDocument": _policy([
                        {"Action": ["mns:PublishMessage"], "Effect": "Allow",
                         "Resource": ["acs:mns:cn-hangzhou:123456789:/topics/demo-topic/messages"]},
                    ]),
                },
                "dependsOn": [],
            },
            {
                "type": "alicloud:fc/v3Function:V3Function",
                "name": "demo-function",
                "parent": comp,
                "inputs": {
                    "code": {"checksum": "4270285996107335518", "zipFile": _zip_b64("print('hello')\n")},
                    "environmentVariables": {
                        "FNF_ENDPOINT": "https://cn-hangzhou.fnf.aliyuncs.com",
                        "MNS_VERIFY_SIGNATURE": "true",
                    },
                    "handler": "index.handler",
                    "runtime": "python3.10",
                    "timeout": 30,
                },
                "dependsOn": [],
            },
            {
                "type": "alicloud:fc/v3Trigger:V3Trigger",
                "name": "demo-trigger",
                "parent": comp,
                "inputs": {
                    "functionName": "demo-function",
                    "qualifier": "LATEST",
                    "triggerType": "http",
                    "triggerConfig": json.dumps({"authType": "anonymous", "methods": ["POST"]}),
                },
                "dependsOn": [],
            },
        ],
        "outputs": {"flowName": "demo-flow", "region": "cn-hangzhou"},
    }
    return copy.deepcopy(render)


def find(render: dict, type_token: str, name: str | None = None) -> dict:
    """The one resource of ``type_token`` (and ``name``); fails loudly otherwise."""
    hits = [r for r in render["resources"] if r["type"] == type_token and (name is None or r["name"] == name)]
    assert len(hits) == 1, f"expected one {type_token} {name or ''} in the render, found {len(hits)}"
    return hits[0]
