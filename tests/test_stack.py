"""The real Pulumi program under mocks: resources, inputs, wiring and least privilege."""

from __future__ import annotations

import base64
import contextvars
import io
import json
import re
import zipfile
from pathlib import Path

import pulumi
import pytest
import yaml

from infra.config import ConfigError
from infra.offline_cloud import ACCOUNT_ID, OfflineCloud, RecordingMonitor, run_offline
from mns_callback_flow.callback_function import CallbackFunction
from mns_callback_flow.errors import InvalidArgument
from mns_callback_flow.packaging import PackagingError, crc64_xz
from mns_callback_flow.policies import REPORT_ACTIONS, wildcard_violations
from tests.mocks import (
    COMPONENT,
    REGION,
    T_ATTACHMENT,
    T_FLOW,
    T_FUNCTION,
    T_POLICY,
    T_QUEUE,
    T_ROLE,
    T_SERVICE,
    T_SUBSCRIPTION,
    T_TOPIC,
    T_TRIGGER,
    T_V3_FUNCTION,
    T_V3_TRIGGER,
    OutputChecks,
    StackRun,
    run_stack,
)

TOPIC_ARN_OF = "acs:mns:{region}:{account}:/topics/{topic}/messages"
LOGGING = {"logProject": "callback-logs", "logStore": "callback-store"}


@pytest.fixture(scope="module")
def fc3() -> StackRun:
    return run_stack({})


@pytest.fixture(scope="module")
def fc2() -> StackRun:
    return run_stack({"functionCompute": "2.0"})


@pytest.fixture(scope="module")
def fc3_logging() -> StackRun:
    return run_stack(LOGGING)


def types_of(run: StackRun) -> list[str]:
    return sorted(r.type for r in run.resources)


def role_named(run: StackRun, suffix: str) -> dict:
    return next(r for r in run.of_type(T_ROLE) if r.name.endswith(suffix)).inputs


def policy_documents(run: StackRun) -> list[dict]:
    return [json.loads(r.inputs["policyDocument"]) for r in run.of_type(T_POLICY)]


def test_fc3_registers_exactly_the_fc3_resources(fc3: StackRun) -> None:
    assert types_of(fc3) == sorted([
        T_V3_FUNCTION, T_V3_TRIGGER, T_TOPIC, T_SUBSCRIPTION, T_QUEUE, T_FLOW,
        T_ROLE, T_ROLE, T_POLICY, T_POLICY, T_ATTACHMENT, T_ATTACHMENT,
        f"{COMPONENT}CallbackPattern", f"{COMPONENT}CallbackFunction",
        f"{COMPONENT}CallbackTopic", f"{COMPONENT}CallbackFlow",
    ])


def test_fc2_registers_service_function_and_trigger(fc2: StackRun) -> None:
    assert types_of(fc2) == sorted([
        T_SERVICE, T_FUNCTION, T_TRIGGER, T_TOPIC, T_SUBSCRIPTION, T_QUEUE, T_FLOW,
        T_ROLE, T_ROLE, T_POLICY, T_POLICY, T_ATTACHMENT, T_ATTACHMENT,
        f"{COMPONENT}CallbackPattern", f"{COMPONENT}CallbackFunction",
        f"{COMPONENT}CallbackTopic", f"{COMPONENT}CallbackFlow",
    ])


def test_fc3_function_inputs(fc3: StackRun) -> None:
    function = fc3.one(T_V3_FUNCTION).inputs
    assert function["handler"] == "index.handler"
    assert function["runtime"] == "python3.10"
    assert function["memorySize"] == 256 and function["timeout"] == 10
    assert function["functionName"] == "mns-callback-test-callback"
    assert function["role"] == f"acs:ram::{ACCOUNT_ID}:role/mns-callback-test-callback-role"
    assert function["environmentVariables"] == {
        "FNF_ENDPOINT": f"https://{REGION}.fnf.aliyuncs.com",
        "MNS_VERIFY_SIGNATURE": "true",
        "ALIBABA_CLOUD_REGION": REGION,
        # Bound to the stack's own topic: the account that owns it and its name.
        "MNS_TOPIC_OWNER": ACCOUNT_ID,
        "MNS_TOPIC_NAME": "mns-callback-test-topic",
        "MNS_NOTIFY_CONTENT_FORMAT": "JSON",
    }
    zip_bytes = base64.b64decode(function["code"]["zipFile"], validate=True)
    assert zip_bytes[:4] == b"PK\x03\x04"
    assert function["code"]["checksum"] == str(crc64_xz(zip_bytes))
    assert "logConfig" not in function


def test_fc3_trigger_inputs(fc3: StackRun) -> None:
    trigger = fc3.one(T_V3_TRIGGER)
    assert trigger.inputs["functionName"] == "mns-callback-test-callback"
    assert trigger.inputs["triggerType"] == "http" and trigger.inputs["qualifier"] == "LATEST"
    assert json.loads(trigger.inputs["triggerConfig"]) == {
        "authType": "anonymous", "methods": ["POST"], "disableURLInternet": False,
    }
    # Created after the function it triggers (the name comes from its output).
    assert f"{T_V3_FUNCTION}::{fc3.one(T_V3_FUNCTION).name}" in trigger.depends_on


def test_fc2_service_function_trigger_inputs(fc2: StackRun) -> None:
    service = fc2.one(T_SERVICE).inputs
    function = fc2.one(T_FUNCTION).inputs
    assert {k: function["environmentVariables"][k] for k in ("MNS_TOPIC_OWNER", "MNS_TOPIC_NAME")} == {
        "MNS_TOPIC_OWNER": ACCOUNT_ID, "MNS_TOPIC_NAME": "mns-callback-test-topic"}
    trigger = fc2.one(T_TRIGGER).inputs
    assert service["name"] == "mns-callback-test-callback-service"
    assert service["role"] == f"acs:ram::{ACCOUNT_ID}:role/mns-callback-test-callback-role"
    assert function["service"] == service["name"] and function["name"] == "mns-callback-test-callback"
    assert function["handler"] == "index.wsgi_handler"
    assert function["environmentVariables"]["FNF_ENDPOINT"] == f"https://{REGION}.fnf.aliyuncs.com"
    archive = Path(function["filename"])  # relative to the working directory, as Pulumi runs it
    assert not Path(function["filename"]).is_absolute() and function["filename"].startswith("build/")
    assert function["codeChecksum"] == str(crc64_xz(archive.read_bytes()))
    assert trigger == {
        "service": service["name"], "function": function["name"], "name": "http", "type": "http",
        "config": '{"authType":"anonymous","methods":["POST"]}',
    }
    assert fc2.outputs["triggerUrl"] == (
        f"https://{ACCOUNT_ID}.{REGION}.fc.aliyuncs.com/2016-08-15/proxy/{service['name']}/{function['name']}/"
    )


@pytest.mark.parametrize("run_name", ["fc3", "fc2"])
def test_subscription_pushes_json_to_the_trigger_url(run_name: str, request: pytest.FixtureRequest) -> None:
    run: StackRun = request.getfixturevalue(run_name)
    subscription = run.one(T_SUBSCRIPTION).inputs
    assert subscription["endpoint"] == run.outputs["triggerUrl"]
    assert subscription["pushType"] == "http"
    assert subscription["notifyContentFormat"] == "JSON"
    assert subscription["notifyStrategy"] == "EXPONENTIAL_DECAY_RETRY"
    assert subscription["topicName"] == run.outputs["topicName"] == "mns-callback-test-topic"
    assert subscription["subscriptionName"] == "mns-callback-test-callback-sub"


def test_fc3_trigger_url_is_the_triggers_internet_url(fc3: StackRun) -> None:
    assert fc3.outputs["triggerUrl"] == f"https://mns-callback-test-callback.{REGION}.fcapp.run"


def test_flow_publishes_to_the_topic_it_is_allowed_to(fc3: StackRun) -> None:
    flow = fc3.one(T_FLOW)
    topic = fc3.outputs["topicName"]
    assert flow.inputs["type"] == "FDL" and flow.inputs["name"] == "mns-callback-test-flow"
    assert flow.inputs["description"]
    definition = yaml.safe_load(flow.inputs["definition"])
    task = definition["steps"][0]
    assert task["resourceArn"] == f"acs:mns:::/topics/{topic}/messages"
    assert task["pattern"] == "waitForCallback" and task["timeoutSeconds"] == 3600
    flow_role = role_named(fc3, "flow-role")
    assert flow.inputs["roleArn"] == fc3.outputs["flowRoleArn"] == f"acs:ram::{ACCOUNT_ID}:role/{flow_role['roleName']}"
    publish = json.loads(fc3.named("callback-flow-policy").inputs["policyDocument"])
    assert publish["Statement"] == [{
        "Action": ["mns:PublishMessage"], "Effect": "Allow",
        "Resource": TOPIC_ARN_OF.format(region=REGION, account=ACCOUNT_ID, topic=topic),
    }]
    # Ordering: the flow waits for its topic and for its permission.
    assert f"{T_TOPIC}::callback-topic-topic" in flow.depends_on
    assert f"{T_ATTACHMENT}::callback-flow-policy-attachment" in flow.depends_on


def test_cloudflow_flow_is_type_default_with_the_state_machine_and_its_own_grant() -> None:
    run = run_stack({"flowSpec": "cloudflow", "taskTimeoutSeconds": "900"})
    flow = run.one(T_FLOW)
    topic = run.outputs["topicName"]
    topic_arn = TOPIC_ARN_OF.format(region=REGION, account=ACCOUNT_ID, topic=topic)
    # pulumi-alicloud 4.0.0 fnf.Flow `type`: "Valid values are `FDL` or `DEFAULT`".
    assert flow.inputs["type"] == "DEFAULT" and flow.inputs["name"] == "mns-callback-test-flow"
    definition = yaml.safe_load(flow.inputs["definition"])
    assert (definition["Type"], definition["SpecVersion"], definition["Name"]) == (
        "StateMachine", "v1", "mns-callback-test-flow")
    [task] = definition["States"]
    assert (task["Action"], task["TaskMode"], task["Timeout"]) == ("MNS:SendMessage", "WaitForCustomCallback", 900)
    # The definition names the stack's own account's topic, as the role's grant does.
    assert task["Parameters"]["resourceArn"] == topic_arn
    assert task["Parameters"]["message"]["taskToken.$"] == "$Context.Current.TaskToken"
    publish = json.loads(run.named("callback-flow-policy").inputs["policyDocument"])
    assert publish["Statement"] == [{
        "Action": ["mns:PublishMessage", "mns:SendMessage"], "Effect": "Allow", "Resource": topic_arn}]
    assert wildcard_violations(publish) == []
    assert f"{T_ATTACHMENT}::callback-flow-policy-attachment" in flow.depends_on
    assert flow.inputs["roleArn"] == run.outputs["flowRoleArn"]


@pytest.mark.parametrize("run_name", ["fc3", "fc2", "fc3_logging"])
def test_roles_trust_one_service_and_attach_their_own_policy(run_name: str, request: pytest.FixtureRequest) -> None:
    run: StackRun = request.getfixturevalue(run_name)
    trusts = {
        r.inputs["roleName"]: json.loads(r.inputs["assumeRolePolicyDocument"]) for r in run.of_type(T_ROLE)
    }
    assert trusts == {
        "mns-callback-test-callback-role": {"Statement": [{
            "Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": ["fc.aliyuncs.com"]}}],
            "Version": "1"},
        "mns-callback-test-flow-role": {"Statement": [{
            "Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": ["fnf.aliyuncs.com"]}}],
            "Version": "1"},
    }
    policies = {r.inputs["policyName"] for r in run.of_type(T_POLICY)}
    attachments = run.of_type(T_ATTACHMENT)
    assert {a.inputs["policyName"] for a in attachments} == policies
    for attachment in attachments:
        assert attachment.inputs["policyType"] == "Custom"
        owner = "flow" if "flow" in attachment.name else "callback"
        assert attachment.inputs["roleName"] == f"mns-callback-test-{owner}-role"


def test_function_role_may_only_report(fc3: StackRun) -> None:
    report = json.loads(fc3.named("callback-function-policy").inputs["policyDocument"])
    assert report["Statement"] == [{"Action": list(REPORT_ACTIONS), "Effect": "Allow", "Resource": "*"}]
    assert fc3.outputs["functionRoleArn"] == f"acs:ram::{ACCOUNT_ID}:role/mns-callback-test-callback-role"


def test_logging_adds_exactly_its_own_logstore(fc3_logging: StackRun) -> None:
    function = fc3_logging.one(T_V3_FUNCTION)
    assert function.inputs["logConfig"] == {"project": "callback-logs", "logstore": "callback-store"}
    log_policy = json.loads(fc3_logging.named("callback-function-log-policy").inputs["policyDocument"])
    assert log_policy["Statement"] == [{
        "Action": ["log:PostLogStoreLogs"], "Effect": "Allow",
        "Resource": f"acs:log:{REGION}:{ACCOUNT_ID}:project/callback-logs/logstore/callback-store",
    }]
    assert f"{T_ATTACHMENT}::callback-function-log-policy-attachment" in function.depends_on


def test_fc2_logging_goes_on_the_service() -> None:
    run = run_stack({**LOGGING, "functionCompute": "2.0"})
    assert run.one(T_SERVICE).inputs["logConfig"] == {"project": "callback-logs", "logstore": "callback-store"}


@pytest.mark.parametrize("run_name", ["fc3", "fc2", "fc3_logging"])
def test_no_wildcard_beyond_the_report_statement(run_name: str, request: pytest.FixtureRequest) -> None:
    run: StackRun = request.getfixturevalue(run_name)
    documents = policy_documents(run)
    assert documents, "no RAM policy rendered"
    for document in documents:
        assert wildcard_violations(document) == []
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            assert not any("*" in action for action in actions), statement
            if any("*" in resource for resource in resources):
                assert resources == ["*"] and sorted(actions) == sorted(REPORT_ACTIONS), statement


@pytest.mark.parametrize("run_name", ["fc3", "fc2", "fc3_logging"])
def test_every_child_is_parented_to_its_component(run_name: str, request: pytest.FixtureRequest) -> None:
    run: StackRun = request.getfixturevalue(run_name)
    components = {f"{r.type}::{r.name}" for r in run.resources if r.type.startswith(COMPONENT)}
    for resource in run.resources:
        if resource.type == f"{COMPONENT}CallbackPattern":
            assert resource.parent is None
            continue
        assert resource.parent in components, f"{resource.type}::{resource.name} has parent {resource.parent}"
        parent_name = resource.parent.split("::", 1)[1]
        assert resource.name.startswith(f"{parent_name}-"), resource.name


def test_components_expose_their_children(output_checks: OutputChecks) -> None:
    def checks(pattern) -> pulumi.Output:
        assert pattern.topic.topic is not None and pattern.flow.flow is not None
        assert pattern.function.service is None and pattern.function.archive.entries
        return pulumi.Output.all(
            output_checks.check(
                "subscription endpoint is the trigger URL",
                pulumi.Output.all(
                    pattern.topic.subscription.endpoint,
                    pattern.function.trigger.http_trigger.apply(lambda http: http.url_internet),
                ),
                lambda v: _equal(v[0], v[1]),
            ),
            output_checks.check("account from the caller identity", pattern.account_id,
                                lambda v: _equal(v, ACCOUNT_ID)),
            output_checks.check(
                "flow role is the flow's role",
                pulumi.Output.all(pattern.flow.flow.role_arn, pattern.flow.role.arn, pattern.flow_role_arn),
                lambda v: _equal(len(set(v)), 1),
            ),
            output_checks.check(
                "the subscription's topic is the topic resource's",
                pulumi.Output.all(pattern.topic.subscription.topic_name, pattern.topic.topic.topic_name),
                lambda v: _equal(v[0], v[1]),
            ),
        )

    run_stack({}, checks)
    assert len(output_checks.ran) == 4


def _equal(actual: object, expected: object) -> None:
    assert actual == expected, f"{actual!r} != {expected!r}"


def test_an_output_check_that_never_runs_is_caught() -> None:
    checks = OutputChecks()
    checks.check("never awaited", pulumi.Output.from_input("x"), lambda v: None)
    with pytest.raises(AssertionError, match="never ran: \\['never awaited'\\]"):
        checks.verify()
    with pytest.raises(AssertionError, match="registered no Output check"):
        OutputChecks().verify()


def test_existing_topic_gets_no_topic_resource_but_a_subscription() -> None:
    run = run_stack({"createTopic": "false", "topicName": "orders-existing"})
    assert run.of_type(T_TOPIC) == []
    subscription = run.one(T_SUBSCRIPTION)
    # Logical names stay the component's, as with a created topic (the URNs must not change).
    assert subscription.name == "callback-topic-subscription"
    assert [r.name for r in run.of_type(T_QUEUE)] == ["callback-topic-dead-letters"]
    assert subscription.inputs["topicName"] == "orders-existing"
    assert subscription.inputs["endpoint"] == run.outputs["triggerUrl"]
    assert run.outputs["topicName"] == "orders-existing"
    definition = yaml.safe_load(run.one(T_FLOW).inputs["definition"])
    assert definition["steps"][0]["resourceArn"] == "acs:mns:::/topics/orders-existing/messages"
    # The handler accepts pushes of that existing topic only, owned by the stack's account.
    environment = run.one(T_V3_FUNCTION).inputs["environmentVariables"]
    assert (environment["MNS_TOPIC_OWNER"], environment["MNS_TOPIC_NAME"]) == (ACCOUNT_ID, "orders-existing")
    publish = json.loads(run.named("callback-flow-policy").inputs["policyDocument"])
    assert publish["Statement"][0]["Resource"] == TOPIC_ARN_OF.format(
        region=REGION, account=ACCOUNT_ID, topic="orders-existing")


def test_settings_reach_the_resources() -> None:
    run = run_stack({
        "runtime": "python3.12", "memorySize": "512", "functionTimeoutSeconds": "30", "taskTimeoutSeconds": "90",
        "notifyStrategy": "BACKOFF_RETRY", "notifyContentFormat": "XML", "verifySignature": "false",
        "namePrefix": "orders",
    }, region="ap-southeast-1")
    function = run.one(T_V3_FUNCTION).inputs
    assert (function["runtime"], function["memorySize"], function["timeout"]) == ("python3.12", 512, 30)
    assert function["functionName"] == "orders-callback"
    assert function["environmentVariables"] == {
        "FNF_ENDPOINT": "https://ap-southeast-1.fnf.aliyuncs.com",
        "MNS_VERIFY_SIGNATURE": "false",
        "ALIBABA_CLOUD_REGION": "ap-southeast-1",
        "MNS_TOPIC_OWNER": ACCOUNT_ID,
        "MNS_TOPIC_NAME": "orders-topic",
        "MNS_NOTIFY_CONTENT_FORMAT": "XML",
    }
    # python3.12 preinstalls no aliyun-python-sdk-core: the archive carries it.
    names = zipfile.ZipFile(io.BytesIO(base64.b64decode(function["code"]["zipFile"]))).namelist()
    assert "aliyunsdkcore/client.py" in names and "aliyunsdkfnf/endpoint.py" in names
    subscription = run.one(T_SUBSCRIPTION).inputs
    assert (subscription["notifyStrategy"], subscription["notifyContentFormat"]) == ("BACKOFF_RETRY", "XML")
    assert yaml.safe_load(run.one(T_FLOW).inputs["definition"])["steps"][0]["timeoutSeconds"] == 90
    assert run.outputs["region"] == "ap-southeast-1"
    assert run.outputs["flowRoleArn"] == f"acs:ram::{ACCOUNT_ID}:role/orders-flow-role"


def test_a_configured_work_function_reaches_the_handler_and_must_exist() -> None:
    run = run_stack({"callbackWork": "mns_callback.work:default_work"})
    assert run.one(T_V3_FUNCTION).inputs["environmentVariables"]["CALLBACK_WORK"] == "mns_callback.work:default_work"
    assert "CALLBACK_WORK" not in run_stack({}).one(T_V3_FUNCTION).inputs["environmentVariables"]
    for missing, problem in (("mywork:work", "mywork.py not found in function/"),
                             ("mns_callback.work:nothing", "work.py defines no top-level 'nothing'")):
        with pytest.raises(PackagingError, match=f"work function .*{re.escape(problem)}"):
            run_stack({"callbackWork": missing})


@pytest.mark.parametrize("fc", ["3.0", "2.0"])
def test_signing_cert_prefixes_reach_the_handler_environment(fc: str) -> None:
    prefixes = "https://mns-cert.example.com/ap-southeast-1/,https://mnstest.oss-cn-hangzhou.aliyuncs.com/"
    run = run_stack({"functionCompute": fc, "signingCertUrlPrefixes": prefixes}, region="ap-southeast-1")
    function = run.one(T_V3_FUNCTION if fc == "3.0" else T_FUNCTION).inputs
    assert function["environmentVariables"]["MNS_CERT_URL_PREFIXES"] == prefixes


BAD_CONFIG = [
    ("functionCompute", "4.0", "mns-callback-flow:functionCompute"),
    ("runtime", "python2.7", "mns-callback-flow:runtime"),
    ("memorySize", "100", "mns-callback-flow:memorySize"),
    ("memorySize", "200", "multiple of 64"),
    ("functionTimeoutSeconds", "3", "mns-callback-flow:functionTimeoutSeconds"),
    ("taskTimeoutSeconds", "0", "mns-callback-flow:taskTimeoutSeconds"),
    ("topicName", "bad_topic!", "mns-callback-flow:topicName"),
    ("createTopic", "maybe", "mns-callback-flow:createTopic"),
    ("notifyStrategy", "SOMETIMES", "mns-callback-flow:notifyStrategy"),
    ("notifyContentFormat", "YAML", "mns-callback-flow:notifyContentFormat"),
    ("verifySignature", "yes", "mns-callback-flow:verifySignature"),
    ("logProject", "only-project", "mns-callback-flow:logStore"),
    ("taskRetry", "[{\"maxAttempts\": 2}]", "mns-callback-flow:taskRetry[0].errors"),
    ("alicloud:region", "Hangzhou", "alicloud:region"),
]


@pytest.mark.parametrize(("key", "value", "named"), BAD_CONFIG)
def test_bad_config_is_refused_before_any_resource(key: str, value: str, named: str) -> None:
    monitor = RecordingMonitor(OfflineCloud(REGION))
    with pytest.raises(ConfigError) as caught:
        run_stack({key: value}, monitor=monitor)
    assert named in str(caught.value)
    assert monitor.registrations == []


def test_existing_topic_needs_its_name() -> None:
    monitor = RecordingMonitor(OfflineCloud(REGION))
    with pytest.raises(ConfigError, match="topicName.*required when createTopic is false"):
        run_stack({"createTopic": "false"}, monitor=monitor)
    assert monitor.registrations == []



def _function_args(source_dir: Path, function_compute: str = "3.0") -> dict:
    return {
        "function_name": "solo-callback", "function_compute": function_compute, "region": REGION,
        "account_id": ACCOUNT_ID, "runtime": "python3.10", "memory_size": 128, "timeout": 10,
        "verify_signature": True, "topic_name": "solo-topic", "notify_content_format": "JSON",
        "source_dir": str(source_dir),
    }


def _run_component(build, monitor: RecordingMonitor) -> None:
    contextvars.Context().run(
        run_offline, build, project="mns-callback-flow", stack="test",
        config={"alicloud:region": REGION}, region=REGION, monitor=monitor,
    )


def test_function_component_packages_the_given_source(tmp_path: Path) -> None:
    (tmp_path / "index.py").write_text("def handler(event, context):\n    return 'ok'\n")
    monitor = RecordingMonitor(OfflineCloud(REGION))
    _run_component(lambda: CallbackFunction("solo", _function_args(tmp_path)), monitor)
    function = monitor.one(T_V3_FUNCTION)
    assert function.parent == f"{COMPONENT}CallbackFunction::solo"
    names = zipfile.ZipFile(io.BytesIO(base64.b64decode(function.inputs["code"]["zipFile"]))).namelist()
    assert names == ["index.py"]  # no requirements.txt: nothing vendored


@pytest.mark.parametrize(
    ("function_compute", "error"),
    [("1.0", "function_compute='1.0': expected '3.0' or '2.0'"), ("2.0", "defines no top-level 'wsgi_handler'")],
)
def test_function_component_refuses_before_registering(function_compute: str, error: str, tmp_path: Path) -> None:
    (tmp_path / "index.py").write_text("def handler(event, context):\n    return 'ok'\n")
    monitor = RecordingMonitor(OfflineCloud(REGION))
    with pytest.raises(ValueError, match=error):
        _run_component(lambda: CallbackFunction("solo", _function_args(tmp_path, function_compute)), monitor)
    assert monitor.registrations == []


# ---- what the provider and the API would refuse, refused first -----------------


def test_fc3_function_gets_an_explicit_cpu(fc3: StackRun) -> None:
    # Derived from memorySize 256: the least the 1:4 ratio allows.
    assert fc3.one(T_V3_FUNCTION).inputs["cpu"] == 0.1


def test_cpu_setting_reaches_the_function() -> None:
    function = run_stack({"memorySize": "1024", "cpu": "0.5"}).one(T_V3_FUNCTION).inputs
    assert (function["cpu"], function["memorySize"]) == (0.5, 1024)


def test_fc2_function_has_no_cpu(fc2: StackRun) -> None:
    assert "cpu" not in fc2.one(T_FUNCTION).inputs


def test_fc2_with_python312_fails_before_anything_is_registered() -> None:
    monitor = RecordingMonitor(OfflineCloud(REGION))
    with pytest.raises(ConfigError, match=r"runtime='python3\.12': with functionCompute=2\.0.*fc-2-0") as caught:
        run_stack({"functionCompute": "2.0", "runtime": "python3.12"}, monitor=monitor)
    assert caught.value.key == "mns-callback-flow:runtime"
    assert monitor.registrations == []


def test_cpu_out_of_ratio_fails_before_anything_is_registered() -> None:
    monitor = RecordingMonitor(OfflineCloud(REGION))
    with pytest.raises(ConfigError, match=r"mns-callback-flow:cpu='2'.*mns-callback-flow:memorySize=1024"):
        run_stack({"memorySize": "1024", "cpu": "2"}, monitor=monitor)
    assert monitor.registrations == []


@pytest.mark.parametrize("overrides", [
    {}, {"functionCompute": "2.0"}, LOGGING, {"createTopic": "false", "topicName": "orders-existing"},
    {"runtime": "python3.12", "memorySize": "32768", "cpu": "16", "functionTimeoutSeconds": "86400"},
])
def test_no_registered_input_breaks_a_provider_rule(overrides: dict) -> None:
    from mns_callback_flow import provider_limits

    run = run_stack(overrides)
    checked = [r for r in run.resources if not r.type.startswith(COMPONENT)]
    assert checked
    for registration in checked:
        assert provider_limits.refusals(registration.type, registration.inputs) == [], registration.name


def test_existing_topic_is_looked_up() -> None:
    cloud = OfflineCloud(REGION, existing_topics=["orders-existing"])
    run = run_stack({"createTopic": "false", "topicName": "orders-existing"}, monitor=RecordingMonitor(cloud))
    assert run.one(T_SUBSCRIPTION).inputs["topicName"] == "orders-existing"


def test_missing_existing_topic_is_an_error_naming_topic_name() -> None:
    cloud = OfflineCloud(REGION, existing_topics=["orders-other", "orders-existing-2"])
    # Raised in an apply: Pulumi reports it wrapped (with the resource input it fed), message intact.
    with pytest.raises(ValueError, match=r"topic_name='orders-existing': create_topic is false, "
                                         r"but no MNS topic of that name exists"):
        run_stack({"createTopic": "false", "topicName": "orders-existing"}, monitor=RecordingMonitor(cloud))


def test_require_existing_topic_matches_names_exactly() -> None:
    from mns_callback_flow.topic import require_existing_topic

    assert require_existing_topic("orders", ["orders-2", "orders"]) == "orders"
    for found in (None, [], ["orders-2", "Orders"]):
        with pytest.raises(InvalidArgument) as caught:
            require_existing_topic("orders", found)
        assert caught.value.key == "topic_name" and caught.value.property_path == "topic_name"


def test_topic_lookup_takes_an_output_name() -> None:
    from mns_callback_flow.topic import CallbackTopic

    cloud = OfflineCloud(REGION, existing_topics=[])
    monitor = RecordingMonitor(cloud)

    def build() -> pulumi.Output:
        topic = CallbackTopic("solo", {
            "topic_name": pulumi.Output.from_input("late-topic"), "create_topic": False,
            "subscription_name": "late-sub", "endpoint": "https://example.com/",
            "notify_strategy": "BACKOFF_RETRY", "notify_content_format": "JSON",
        })
        return topic.topic_name

    with pytest.raises(ValueError, match="topic_name='late-topic': create_topic is false"):
        _run_component(build, monitor)


@pytest.mark.parametrize(("changes", "error"), [
    ({"function_compute": "2.0", "runtime": "python3.12"}, r"runtime='python3\.12': Function Compute 2\.0 offers"),
    ({"cpu": 0.3}, r"cpu=0\.3: with memory_size=128: .*1:1 and 1:4"),
    ({"cpu": 0.07}, r"cpu=0\.07: with memory_size=128: must be a multiple of 0\.05"),
    ({"function_compute": "2.0", "cpu": 0.1}, r"cpu=0\.1: FC 2\.0's fc\.Function takes no cpu"),
    ({"function_name": "solo.callback"}, r"function_name='solo\.callback': letters, .*fcv3_function\.go"),
    ({"timeout": 86401}, r"timeout=86401: an integer between 0 and 86400 \(alicloud_fcv3_function\.timeout"),
    ({"memory_size": 32832, "cpu": 16}, r"memory_size=32832: an integer between 64 and 32768"),
    ({"function_compute": "2.0", "function_name": "f" * 129}, r"function_name='f+': 1-128 characters \(alicloud_fc_function\.name"),
])
def test_function_component_refuses_what_the_provider_would(changes: dict, error: str, tmp_path: Path) -> None:
    (tmp_path / "index.py").write_text(
        "def handler(event, context):\n    return 'ok'\n\ndef wsgi_handler(environ, start_response):\n    return []\n")
    monitor = RecordingMonitor(OfflineCloud(REGION))
    args = {**_function_args(tmp_path), **changes}
    with pytest.raises(ValueError, match=error):
        _run_component(lambda: CallbackFunction("solo", args), monitor)
    assert monitor.registrations == []


def test_function_component_derives_cpu_when_none_is_given(tmp_path: Path) -> None:
    (tmp_path / "index.py").write_text("def handler(event, context):\n    return 'ok'\n")
    monitor = RecordingMonitor(OfflineCloud(REGION))
    _run_component(lambda: CallbackFunction("solo", {**_function_args(tmp_path), "memory_size": 2048}), monitor)
    assert monitor.one(T_V3_FUNCTION).inputs["cpu"] == 0.5
