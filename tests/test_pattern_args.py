"""CallbackPattern's args as the public API: defaults from the name, Inputs from other
resources and stacks, tags and resource group, the user's own work code, and errors
that name the arg. Each program runs under the offline cloud; assertions read the
real resource inputs it registered."""

import base64
import contextvars
import io
import zipfile
from pathlib import Path

import pulumi
import pulumi_alicloud
import pytest

from infra.offline_cloud import ACCOUNT_ID, OfflineCloud, RecordingMonitor, run_offline
from mns_callback_flow import CallbackPattern, InvalidArgument
from mns_callback_flow.packaging import PackagingError
from tests.mocks import (
    REGION,
    T_FLOW,
    T_FUNCTION,
    T_POLICY,
    T_QUEUE,
    T_ROLE,
    T_SERVICE,
    T_SUBSCRIPTION,
    T_TOPIC,
    T_V3_FUNCTION,
)

# Resources of the pattern whose provider arguments include `tags` (pulumi_alicloud 4.0.0:
# fc.V3Function, fc.Service, message.ServiceTopic, message.ServiceQueue, ram.Role, ram.Policy;
# fc.Function, the triggers, the subscription, the attachments and fnf.Flow take none).
TAGGABLE = {T_V3_FUNCTION, T_SERVICE, T_TOPIC, T_QUEUE, T_ROLE, T_POLICY}


def run(program, *, existing_topics=None) -> RecordingMonitor:
    monitor = RecordingMonitor(OfflineCloud(REGION, existing_topics=existing_topics))
    contextvars.Context().run(run_offline, program, project="consumer", stack="dev",
                              config={"alicloud:region": REGION}, region=REGION, monitor=monitor)
    return monitor


def test_a_name_is_a_whole_pattern_and_the_region_is_the_providers() -> None:
    monitor = run(lambda: CallbackPattern("orders"))
    function = monitor.one(T_V3_FUNCTION).inputs
    assert function["functionName"] == "orders-callback"
    assert function["environmentVariables"]["ALIBABA_CLOUD_REGION"] == REGION
    assert function["environmentVariables"]["MNS_TOPIC_NAME"] == "orders-topic"
    assert monitor.one(T_FLOW).inputs["name"] == "orders-flow"
    assert monitor.one(T_QUEUE).inputs["queueName"] == "orders-dlq"
    flow_policy = next(p for p in monitor.of_type(T_POLICY) if p.name == "orders-flow-policy")
    assert f"acs:mns:{REGION}:{ACCOUNT_ID}:/topics/orders-topic/messages" in flow_policy.inputs["policyDocument"]


def test_an_explicit_region_wins_over_the_providers() -> None:
    monitor = run(lambda: CallbackPattern("orders", {"region": "ap-southeast-1"}))
    assert monitor.one(T_V3_FUNCTION).inputs["environmentVariables"]["FNF_ENDPOINT"] == \
        "https://ap-southeast-1.fnf.aliyuncs.com"


def test_an_existing_topic_from_another_stack_is_an_output() -> None:
    def program() -> None:
        shared = pulumi.Output.from_input("shared-orders").apply(lambda name: name)  # as a StackReference gives it
        CallbackPattern("orders", {"topic_name": shared, "create_topic": False})

    monitor = run(program, existing_topics=["shared-orders"])
    assert monitor.of_type(T_TOPIC) == []
    assert monitor.one(T_SUBSCRIPTION).inputs["topicName"] == "shared-orders"
    assert "/topics/shared-orders/messages" in monitor.one(T_FLOW).inputs["definition"]
    assert monitor.one(T_V3_FUNCTION).inputs["environmentVariables"]["MNS_TOPIC_NAME"] == "shared-orders"


def test_log_names_may_be_outputs_and_are_checked_when_they_resolve() -> None:
    def program() -> None:
        CallbackPattern("orders", {"log_project": pulumi.Output.from_input("team-logs"),
                                   "log_store": pulumi.Output.from_input("callbacks")})

    monitor = run(program)
    assert monitor.one(T_V3_FUNCTION).inputs["logConfig"] == {"project": "team-logs", "logstore": "callbacks"}
    log_policy = next(p for p in monitor.of_type(T_POLICY) if p.name.endswith("log-policy"))
    assert f"acs:log:{REGION}:{ACCOUNT_ID}:project/team-logs/logstore/callbacks" in \
        log_policy.inputs["policyDocument"]

    with pytest.raises(Exception, match=r"log_project='Team_Logs': a log project name"):
        run(lambda: CallbackPattern("orders", {"log_project": pulumi.Output.from_input("Team_Logs"),
                                               "log_store": "callbacks"}))


@pytest.mark.parametrize("function_compute", ["3.0", "2.0"])
def test_tags_reach_every_resource_that_takes_them(function_compute: str, tmp_path: Path) -> None:
    tags = {"team": "payments", "cost-center": "42"}
    monitor = run(lambda: CallbackPattern("orders", {
        "function_compute": function_compute, "tags": tags, "resource_group_id": "rg-123",
        "build_dir": str(tmp_path),
    }))
    taggable = [r for r in monitor.registrations if r.type in TAGGABLE]
    assert {r.type for r in taggable} == TAGGABLE - ({T_SERVICE} if function_compute == "3.0" else {T_V3_FUNCTION})
    assert all(r.inputs.get("tags") == tags for r in taggable), [(r.type, r.inputs.get("tags")) for r in taggable]
    if function_compute == "3.0":
        assert monitor.one(T_V3_FUNCTION).inputs["resourceGroupId"] == "rg-123"
    else:
        assert Path(monitor.one(T_FUNCTION).inputs["filename"]).parent == tmp_path


@pytest.mark.parametrize(("args", "message"), [
    ({"memory_size": 100}, "memory_size=100: must be between 128 and 32768"),
    ({"cpu": 0.07}, "cpu=0.07: must be a multiple of 0.05"),
    ({"function_compute": "2.0", "runtime": "python3.12"}, "runtime='python3.12': with function_compute=2.0"),
    ({"task_retry": [{"errors": ["FnF.ALL"], "max_attempts": 0}]}, r"task_retry\[0\].max_attempts=0"),
    ({"task_catch": [{"errors": ["FnF.ALL"]}]}, r"task_catch\[0\]=.*exactly one of"),
    ({"topic_name": "bad_name"}, "topic_name='bad_name': an MNS topic name"),
    ({"create_topic": False}, "topic_name=None: required when create_topic is false"),
    ({"log_project": "logs"}, "log_store=None: log_project and log_store are given together"),
    ({"task_timeout_seconds": 700000}, "task_timeout_seconds=700000: must be at most 604800 while dead_letter_queue"),
    ({"flow_spec": "cloudflow", "task_output_mappings": [{"target": "a", "source": "$context.x"}]},
     r"task_output_mappings\[0\].source='\$context.x'"),
    ({"signing_cert_url_prefixes": ["http://example.com/"]}, "is not an https://host/ URL prefix"),
    ({"work_dir": "somewhere"}, "work=None: required with work_dir"),
    ({"memory": 256}, "memory=256: unknown argument"),
    ({"task_retry": {"errors": ["FnF.ALL"]}}, "task_retry=.*expected a list of objects"),
    ({"signing_cert_url_prefixes": "http://example.com/"}, "'http://example.com/' is not an https://host/ URL prefix"),
])
def test_a_bad_arg_is_named_before_anything_is_registered(args: dict, message: str) -> None:
    monitor = RecordingMonitor(OfflineCloud(REGION))
    with pytest.raises(InvalidArgument, match=message) as caught:
        contextvars.Context().run(run_offline, lambda: CallbackPattern("orders", args), project="consumer",
                                  stack="dev", config={"alicloud:region": REGION}, region=REGION, monitor=monitor)
    assert isinstance(caught.value, pulumi.InputPropertyError) and caught.value.property_path.split("[")[0] in str(
        caught.value)
    assert monitor.registrations == []


def test_a_name_that_cannot_be_a_prefix_says_to_pass_one() -> None:
    with pytest.raises(InvalidArgument, match=r"derived from the component's name '9-lives'; pass name_prefix"):
        run(lambda: CallbackPattern("9-lives"))
    assert run(lambda: CallbackPattern("9-lives", {"name_prefix": "lives"})).one(T_FLOW).inputs["name"] == "lives-flow"


def _archive_names(monitor: RecordingMonitor) -> list[str]:
    data = base64.b64decode(monitor.one(T_V3_FUNCTION).inputs["code"]["zipFile"])
    return zipfile.ZipFile(io.BytesIO(data)).namelist()


def test_the_users_work_code_travels_beside_the_handler_with_its_requirements(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "pricing").mkdir(parents=True)
    (work / "pricing" / "__init__.py").write_text("")
    (work / "pricing" / "quote.py").write_text(
        "from packaging.version import Version\n\n"
        "def work(message_body, notification):\n    return {'status': str(Version('1.0'))}\n")
    (work / "requirements.txt").write_text("packaging\n")
    monitor = run(lambda: CallbackPattern("orders", {"work_dir": str(work), "work": "pricing.quote:work"}))
    names = _archive_names(monitor)
    assert {"index.py", "pricing/__init__.py", "pricing/quote.py", "packaging/version.py"} <= set(names)
    assert "requirements.txt" not in names
    assert monitor.one(T_V3_FUNCTION).inputs["environmentVariables"]["CALLBACK_WORK"] == "pricing.quote:work"


@pytest.mark.parametrize("clash", ["index.py", "mns_callback/__init__.py"])
def test_work_code_that_would_shadow_the_handler_is_refused_by_name(clash: str, tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / clash).parent.mkdir(parents=True, exist_ok=True)
    (work / clash).write_text("def work(message_body, notification):\n    return {}\n")
    (work / "mine.py").write_text("def work(message_body, notification):\n    return {}\n")
    name = clash.split("/")[0].removesuffix(".py")
    with pytest.raises(PackagingError, match=f"'{name}' is a name of the handler's own code"):
        run(lambda: CallbackPattern("orders", {"work_dir": str(work), "work": "mine:work"}))


def test_a_missing_work_function_is_refused_at_preview(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text("def other(message_body, notification):\n    return {}\n")
    with pytest.raises(PackagingError, match="defines no top-level 'work'"):
        run(lambda: CallbackPattern("orders", {"work_dir": str(tmp_path), "work": "mine:work"}))


def test_a_trigger_without_a_public_url_is_refused_by_name() -> None:
    # pulumi_alicloud types http_trigger and its url_internet as optional; MNS cannot push without one.
    from mns_callback_flow.callback_function import _public_url

    with pytest.raises(InvalidArgument, match="no public URL"):
        _public_url(None)
    assert _public_url(pulumi_alicloud.fc.outputs.V3TriggerHttpTrigger(url_internet="https://x.fcapp.run")) == \
        "https://x.fcapp.run"


def test_sequences_may_be_tuples_or_one_text() -> None:
    from mns_callback_flow.pattern_spec import resolve

    spec = resolve("orders", {"task_retry": ({"errors": ["FnF.ALL"], "max_attempts": 2},),
                              "signing_cert_url_prefixes": "https://certs.example.com/"})
    assert spec.task_retry[0].max_attempts == 2
    assert spec.signing_cert_url_prefixes == ("https://certs.example.com/",)
