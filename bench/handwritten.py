"""The dev stack's pattern written out by hand with ``pulumi_alicloud``: the render growth's peer.

What a Pulumi program without this package declares for the same pattern: the
same twelve resources with the same inputs (``tests/test_bench.py`` holds them to
the package's render of the dev stack), in one function a user would loop over,
with no components, checks or derived names. The code archive is read once, as
such a program reads a zip built beforehand. Its cost per pattern is what the
provider's classes and the Pulumi SDK take for these resources; the package's
own cost is the difference.

``python -m bench.bench_synth --patterns N --handwritten`` runs it N times.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_alicloud as alicloud

# The dev stack's choices (Pulumi.dev.yaml), written in as a hand-written program would.
RUNTIME = "python3.10"
MEMORY_MB = 256
FUNCTION_TIMEOUT_SECONDS = 10
TASK_TIMEOUT_SECONDS = 600
FDL = """version: v1
type: flow
steps:
  - type: task
    name: mns-topic-task
    resourceArn: acs:mns:::/topics/{topic}/messages
    pattern: waitForCallback
    timeoutSeconds: {timeout}
    inputMappings:
      - target: messageBody
        source: $input.messageBody
      - target: taskToken
        source: $context.task.token
    serviceParams:
      MessageBody: $
    retry:
      - errors:
          - FnF.TaskTimeout
        intervalSeconds: 1
        maxAttempts: 1
        multiplier: 2
    catch:
      - errors:
          - FnF.TaskTimeout
        goto: catch-1
    end: true
  - type: pass
    name: catch-1
    outputMappings:
      - target: status
        source: timeout
    end: true
"""


def _trust(service: str) -> str:
    return json.dumps({"Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow",
                                      "Principal": {"Service": [service]}}], "Version": "1"},
                      separators=(",", ":"), sort_keys=True)


def _allow(actions: list[str], resource: str) -> str:
    return json.dumps({"Statement": [{"Action": actions, "Effect": "Allow", "Resource": resource}],
                       "Version": "1"}, separators=(",", ":"), sort_keys=True)


def declare_pattern(prefix: str, index: int, *, region: str, account_id: pulumi.Input[str],
                    zip_base64: str, crc64: str) -> None:
    """One pattern's twelve resources, named ``prefix``-something, logical names numbered by ``index``."""
    topic_name, queue_name = f"{prefix}-topic", f"{prefix}-dlq"
    function_name, flow_name = f"{prefix}-callback", f"{prefix}-flow"
    n = f"-{index}"
    alicloud.message.ServiceTopic(f"topic{n}", topic_name=topic_name)
    alicloud.message.ServiceQueue(f"dead-letters{n}", queue_name=queue_name, message_retention_period=600)

    function_role = alicloud.ram.Role(
        f"function-role{n}", role_name=f"{function_name}-role", assume_role_policy_document=_trust("fc.aliyuncs.com"),
        description=f"Runs the callback function {function_name}: reports task results to Serverless Workflow.")
    report = alicloud.ram.Policy(
        f"function-policy{n}", policy_name=f"{function_name}-report",
        policy_document=_allow(["fnf:ReportTaskSucceeded", "fnf:ReportTaskFailed"], "*"),
        description="fnf:ReportTaskSucceeded and fnf:ReportTaskFailed only.")
    alicloud.ram.RolePolicyAttachment(f"function-policy-attachment{n}", policy_name=report.policy_name,
                                      policy_type="Custom", role_name=function_role.role_name)
    function = alicloud.fc.V3Function(
        f"function{n}", function_name=function_name, handler="index.handler", runtime=RUNTIME,
        memory_size=MEMORY_MB, cpu=0.1, timeout=FUNCTION_TIMEOUT_SECONDS, internet_access=True,
        role=function_role.arn, description="Reports MNS-pushed task tokens back to Serverless Workflow.",
        code=alicloud.fc.V3FunctionCodeArgs(zip_file=zip_base64, checksum=crc64),
        environment_variables={
            "ALIBABA_CLOUD_REGION": region, "FNF_ENDPOINT": f"https://{region}.fnf.aliyuncs.com",
            "MNS_NOTIFY_CONTENT_FORMAT": "JSON", "MNS_TOPIC_NAME": topic_name, "MNS_TOPIC_OWNER": account_id,
            "MNS_VERIFY_SIGNATURE": "true"})
    alicloud.fc.V3Trigger(
        f"trigger{n}", function_name=function.function_name, qualifier="LATEST", trigger_name="http",
        trigger_type="http",
        trigger_config=json.dumps({"authType": "anonymous", "disableURLInternet": False, "methods": ["POST"]},
                                  separators=(",", ":")))
    alicloud.message.ServiceSubscription(
        f"subscription{n}", topic_name=topic_name, subscription_name=f"{function_name}-sub",
        endpoint=f"https://{function_name}.{region}.fcapp.run", push_type="http", notify_content_format="JSON",
        notify_strategy="BACKOFF_RETRY", dlq_policy={"enabled": True, "dead_letter_target_queue": queue_name})

    flow_role = alicloud.ram.Role(
        f"flow-role{n}", role_name=f"{flow_name}-role", assume_role_policy_document=_trust("fnf.aliyuncs.com"),
        description=f"Runs the flow {flow_name}: publishes its task tokens to one MNS topic.")
    publish = alicloud.ram.Policy(
        f"flow-policy{n}", policy_name=f"{flow_name}-publish",
        policy_document=pulumi.Output.from_input(account_id).apply(lambda account: _allow(
            ["mns:PublishMessage"], f"acs:mns:{region}:{account}:/topics/{topic_name}/messages")),
        description="mns:PublishMessage on the callback topic only.")
    alicloud.ram.RolePolicyAttachment(f"flow-policy-attachment{n}", policy_name=publish.policy_name,
                                      policy_type="Custom", role_name=flow_role.role_name)
    alicloud.fnf.Flow(
        f"flow{n}", name=flow_name, type="FDL", role_arn=flow_role.arn,
        definition=FDL.format(topic=topic_name, timeout=TASK_TIMEOUT_SECONDS),
        description=f"Waits for a callback through MNS topic {topic_name}.")
