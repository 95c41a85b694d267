"""Settings: defaults, typed parsing and one test per rule, with its message."""

from __future__ import annotations

import dataclasses
import json

import pytest

from infra.config import (
    PROJECT_KEYS,
    CatchRule,
    ConfigError,
    OutputMapping,
    RetryRule,
    Settings,
    full_key,
    settings_from_mapping,
)

BASE = {"alicloud:region": "cn-hangzhou", "mns-callback-flow:topicName": "demo-topic"}


def settings(stack: str = "dev", **project: object) -> Settings:
    values = dict(BASE)
    values.update({full_key(k): v for k, v in project.items()})
    return settings_from_mapping(values, stack=stack)


def rejected(key: str, value: object, *fragments: str, stack: str = "dev", base: dict | None = None) -> ConfigError:
    values = dict(BASE if base is None else base)
    values[key] = value
    with pytest.raises(ConfigError) as caught:
        settings_from_mapping(values, stack=stack)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    return caught.value


def test_defaults() -> None:
    s = settings_from_mapping({"alicloud:region": "cn-hangzhou"}, stack="dev")
    assert s == Settings(
        stack="dev",
        region="cn-hangzhou",
        name_prefix="mns-callback-dev",
        topic_name="mns-callback-dev-topic",
        create_topic=True,
        subscription_name="mns-callback-dev-callback-sub",
        flow_name="mns-callback-dev-flow",
        function_name="mns-callback-dev-callback",
        function_compute="3.0",
        runtime="python3.10",
        memory_size=256,
        cpu=0.1,
        function_timeout_seconds=10,
        task_timeout_seconds=3600,
        task_retry=(),
        task_catch=(),
        notify_strategy="EXPONENTIAL_DECAY_RETRY",
        notify_content_format="JSON",
        verify_signature=True,
        signing_cert_url_prefixes=(),
        callback_work=None,
        log_project=None,
        log_store=None,
        dead_letter_queue_name="mns-callback-dev-dlq",
    )


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings().topic_name = "x"  # type: ignore[misc]


def test_pulumi_string_forms_are_parsed() -> None:
    s = settings(
        createTopic="false", verifySignature="False", taskTimeoutSeconds="600", memorySize="512",
        functionTimeoutSeconds="30", functionCompute="2.0", runtime="python3.9",
        notifyStrategy="BACKOFF_RETRY", notifyContentFormat="XML",
        logProject="my-logs", logStore="callback_store", namePrefix="shop",
    )
    assert (s.create_topic, s.verify_signature, s.task_timeout_seconds, s.memory_size) == (False, False, 600, 512)
    assert (s.function_timeout_seconds, s.function_compute, s.runtime, s.cpu) == (30, "2.0", "python3.9", None)
    assert (s.notify_strategy, s.notify_content_format) == ("BACKOFF_RETRY", "XML")
    assert (s.log_project, s.log_store) == ("my-logs", "callback_store")
    assert (s.flow_name, s.function_name, s.subscription_name) == ("shop-flow", "shop-callback", "shop-callback-sub")


def test_typed_values_are_accepted() -> None:
    s = settings(createTopic=True, verifySignature=True, taskTimeoutSeconds=60, memorySize=128)
    assert (s.create_topic, s.verify_signature, s.task_timeout_seconds, s.memory_size) == (True, True, 60, 128)


def test_name_prefix_defaults_to_the_stack() -> None:
    s = settings_from_mapping({"alicloud:region": "us-west-1"}, stack="prod")
    assert (s.name_prefix, s.topic_name, s.flow_name) == ("mns-callback-prod", "mns-callback-prod-topic",
                                                        "mns-callback-prod-flow")


def test_stack_name_that_makes_a_bad_prefix_asks_for_name_prefix() -> None:
    rejected("alicloud:region", "cn-hangzhou", "namePrefix", "'my.stack'", stack="my.stack")


@pytest.mark.parametrize("region", ["cn-hangzhou", "ap-southeast-1", "us-west-1", "eu-central-1",
                                    "cn-shanghai-finance-1"])
def test_regions_accepted(region: str) -> None:
    assert settings_from_mapping({"alicloud:region": region}).region == region


@pytest.mark.parametrize("region", ["hangzhou", "CN-HANGZHOU", "cn_hangzhou", "cn-hangzhou ", "1-2", ""])
def test_bad_region(region: str) -> None:
    rejected("alicloud:region", region, "alicloud:region")


def test_region_required() -> None:
    with pytest.raises(ConfigError, match="alicloud:region.*required"):
        settings_from_mapping({})


@pytest.mark.parametrize("name", ["a", "9lives", "topic-1", "A" * 255])
def test_topic_names_accepted(name: str) -> None:
    assert settings(topicName=name).topic_name == name


@pytest.mark.parametrize("name", ["-topic", "my_topic", "my.topic", "tópico", "A" * 256, "a b"])
def test_bad_topic_name(name: str) -> None:
    rejected(full_key("topicName"), name, "mns-callback-flow:topicName", "MNS topic name", "1-255")


def test_existing_topic_must_be_named() -> None:
    rejected(full_key("createTopic"), "false", "topicName", "createTopic is false",
             base={"alicloud:region": "cn-hangzhou"})


@pytest.mark.parametrize("key", ["createTopic", "verifySignature"])
@pytest.mark.parametrize("value", ["yes", "1", "TRUE", 1, "on"])
def test_bad_booleans(key: str, value: object) -> None:
    rejected(full_key(key), value, f"mns-callback-flow:{key}", "expected a boolean")


@pytest.mark.parametrize("value, rule", [("0", "between 1 and 31536000"), ("31536001", "between 1 and 31536000"),
                                         ("1h", "expected an integer"), (1.5, "expected an integer"),
                                         (True, "expected an integer")])
def test_bad_task_timeout(value: object, rule: str) -> None:
    rejected(full_key("taskTimeoutSeconds"), value, "mns-callback-flow:taskTimeoutSeconds", rule)


@pytest.mark.parametrize("value", ["3", "3.0 ", "1.0", 3.0])
def test_bad_function_compute(value: object) -> None:
    rejected(full_key("functionCompute"), value, "functionCompute")


@pytest.mark.parametrize("value", ["python3.11", "python3", "nodejs18"])
def test_bad_runtime(value: str) -> None:
    rejected(full_key("runtime"), value, "runtime", "python3.10, python3.9, python3.12")


@pytest.mark.parametrize("value, rule", [("64", "between 128 and 32768"), ("32832", "between 128 and 32768"),
                                         ("200", "multiple of 64")])
def test_bad_memory_size(value: str, rule: str) -> None:
    rejected(full_key("memorySize"), value, "memorySize", rule)


@pytest.mark.parametrize("value", ["5", "0", "86401"])
def test_bad_function_timeout(value: str) -> None:
    rejected(full_key("functionTimeoutSeconds"), value, "functionTimeoutSeconds", "between 6 and 86400")


def test_bad_notify_settings() -> None:
    rejected(full_key("notifyStrategy"), "LINEAR", "notifyStrategy", "EXPONENTIAL_DECAY_RETRY, BACKOFF_RETRY")
    rejected(full_key("notifyContentFormat"), "json", "notifyContentFormat", "JSON, XML, SIMPLIFIED")


def test_signing_cert_url_prefixes() -> None:
    s = settings(signingCertUrlPrefixes=" https://mns-cert.example.com/sg/ , https://mnstest.oss-cn-hangzhou.aliyuncs.com/")
    assert s.signing_cert_url_prefixes == ("https://mns-cert.example.com/sg/", "https://mnstest.oss-cn-hangzhou.aliyuncs.com/")
    key = full_key("signingCertUrlPrefixes")
    rejected(key, "http://127.0.0.1:8080/", key, "'http://127.0.0.1:8080/' is not an https://host/ URL prefix")
    rejected(key, "https:///certs/", key, "not an https://host/ URL prefix")
    rejected(key, "https://user@certs.example.com/", key, "not an https://host/ URL prefix")
    rejected(key, "https://certs.example.com", key, "must end with '/'")
    rejected(key, "https://certs.example.com/x.pem", key, "must end with '/'")
    rejected(key, "https://certs.example.com/?a=1/", key, "must end with '/'")


def test_callback_work() -> None:
    assert settings(callbackWork="orders.work:handle").callback_work == "orders.work:handle"
    assert settings(callbackWork="").callback_work is None
    key = full_key("callbackWork")
    for bad in ("mywork", "mywork:", ":work", "my-work:work", "mywork:work:x", "mywork:work()"):
        rejected(key, bad, key, "expected module:function of a module in function/")


def test_log_settings_come_together() -> None:
    rejected(full_key("logProject"), "my-logs", "mns-callback-flow:logStore", "together")
    rejected(full_key("logStore"), "store", "mns-callback-flow:logProject", "together")


def test_bad_log_names() -> None:
    base = dict(BASE, **{full_key("logStore"): "store"})
    rejected(full_key("logProject"), "My-Logs", "logProject", "3-63 lowercase", base=base)
    base = dict(BASE, **{full_key("logProject"): "my-logs"})
    rejected(full_key("logStore"), "-store", "logStore", "2-63 lowercase", base=base)


def test_bad_name_prefix() -> None:
    rejected(full_key("namePrefix"), "9shop", "namePrefix", "starting with a letter")
    rejected(full_key("namePrefix"), "a" * 41, "namePrefix", "1-40")


def test_unknown_project_key_is_refused() -> None:
    rejected(full_key("topicname"), "x", "mns-callback-flow:topicname", "unknown key")


def test_other_namespaces_are_left_alone() -> None:
    assert settings_from_mapping(dict(BASE, **{"alicloud:profile": "default"})).region == "cn-hangzhou"


def test_non_string_text_is_named() -> None:
    rejected(full_key("topicName"), 123, "topicName", "expected a string, got int")


def test_retry_rules_json_text_and_structured() -> None:
    text = '[{"errors": ["FnF.ALL"], "intervalSeconds": 2, "maxAttempts": 5, "multiplier": 1.5, ' \
           '"maxIntervalSeconds": 60}]'
    expected = (RetryRule(("FnF.ALL",), 2, 5, 1.5, 60),)
    assert settings(taskRetry=text).task_retry == expected
    assert settings(taskRetry=[{"errors": ["FnF.ALL"], "intervalSeconds": 2, "maxAttempts": 5,
                                "multiplier": 1.5, "maxIntervalSeconds": 60}]).task_retry == expected
    assert settings(taskRetry='[{"errors": ["FC.ResourceThrottled"]}]').task_retry == (
        RetryRule(("FC.ResourceThrottled",), 1, 3, 2, None),)
    assert settings(taskRetry="").task_retry == ()


@pytest.mark.parametrize("value, fragments", [
    ("{not json", ("taskRetry", "JSON list")),
    ('{"errors": ["FnF.ALL"]}', ("taskRetry", "list of objects")),
    ('["FnF.ALL"]', ("taskRetry[0]", "expected an object")),
    ('[{"intervalSeconds": 1}]', ("taskRetry[0].errors", "required")),
    ('[{"errors": []}]', ("taskRetry[0].errors", "non-empty list")),
    ('[{"errors": "FnF.ALL"}]', ("taskRetry[0].errors", "non-empty list")),
    ('[{"errors": ["bad name"]}]', ("taskRetry[0].errors[0]", "error name")),
    ('[{"errors": ["FnF.ALL"], "intervalSeconds": 0}]', ("intervalSeconds", "between 1 and 86400")),
    ('[{"errors": ["FnF.ALL"], "intervalSeconds": 10, "maxIntervalSeconds": 5}]',
     ("maxIntervalSeconds", "between 10 and 86400")),
    ('[{"errors": ["FnF.ALL"], "maxAttempts": 0}]', ("maxAttempts", "between 1 and 100")),
    ('[{"errors": ["FnF.ALL"], "multiplier": 0.5}]', ("multiplier", "between 1 and 100")),
    ('[{"errors": ["FnF.ALL"], "multiplier": "x"}]', ("multiplier", "expected a number")),
    ('[{"errors": ["FnF.ALL"], "backoff": 2}]', ("taskRetry[0].backoff", "unknown field")),
])
def test_bad_retry_rules(value: str, fragments: tuple[str, ...]) -> None:
    rejected(full_key("taskRetry"), value, *fragments)


def test_catch_rules() -> None:
    s = settings(taskCatch='[{"errors": ["FnF.TaskTimeout"], "status": "timeout"}, '
                           '{"errors": ["FnF.ALL"], "fail": {"error": "CallbackFailed", "cause": "why"}}, '
                           '{"errors": ["X"], "fail": {"error": "Y"}}]')
    assert s.task_catch == (
        CatchRule(("FnF.TaskTimeout",), status="timeout"),
        CatchRule(("FnF.ALL",), fail_error="CallbackFailed", fail_cause="why"),
        CatchRule(("X",), fail_error="Y"),
    )


@pytest.mark.parametrize("value, fragments", [
    ('[{"errors": ["FnF.ALL"]}]', ("taskCatch[0]", "exactly one of")),
    ('[{"errors": ["FnF.ALL"], "status": "a", "fail": {"error": "E"}}]', ("taskCatch[0]", "exactly one of")),
    ('[{"errors": ["FnF.ALL"], "status": "$local.x"}]', ("taskCatch[0].status", "not starting with $")),
    ('[{"errors": ["FnF.ALL"], "status": ""}]', ("taskCatch[0].status", "1-256")),
    ('[{"errors": ["FnF.ALL"], "fail": "E"}]', ("taskCatch[0].fail", "expected an object")),
    ('[{"errors": ["FnF.ALL"], "fail": {"cause": "c"}}]', ("taskCatch[0].fail.error", "expected a string")),
    ('[{"errors": ["FnF.ALL"], "fail": {"error": "has space"}}]', ("taskCatch[0].fail.error", "1-128")),
    ('[{"errors": ["FnF.ALL"], "fail": {"error": "E", "code": 1}}]', ("taskCatch[0].fail.code", "unknown field")),
    ('[{"errors": ["FnF.ALL"], "goto": "x", "status": "s"}]', ("taskCatch[0].goto", "unknown field")),
    ('[{"status": "s"}]', ("taskCatch[0].errors", "required")),
])
def test_bad_catch_rules(value: str, fragments: tuple[str, ...]) -> None:
    rejected(full_key("taskCatch"), value, *fragments)


def test_long_fail_cause_is_refused() -> None:
    value = [{"errors": ["FnF.ALL"], "fail": {"error": "E", "cause": "c" * 4097}}]
    rejected(full_key("taskCatch"), value, "taskCatch[0].fail.cause", "at most 4096")


def test_output_mappings_default_to_none_the_whole_output() -> None:
    assert settings().task_output_mappings == ()
    assert settings(taskOutputMappings="").task_output_mappings == ()
    assert settings(taskOutputMappings="[]").task_output_mappings == ()


def test_output_mappings_from_json_text_or_structured() -> None:
    text = ('[{"target": "status", "source": "$local.status"}, {"target": "all", "source": "$local"},'
            ' {"target": "body", "source": "$input.messageBody"}, {"target": "via", "source": "mns"}]')
    expected = (OutputMapping("status", "$local.status"), OutputMapping("all", "$local"),
                OutputMapping("body", "$input.messageBody"), OutputMapping("via", "mns"))
    assert settings(taskOutputMappings=text).task_output_mappings == expected
    assert settings(taskOutputMappings=json.loads(text)).task_output_mappings == expected


@pytest.mark.parametrize("value, fragments", [
    ("{", ("taskOutputMappings", "expected a JSON list of objects")),
    ('{"target": "a", "source": "$local.a"}', ("taskOutputMappings", "expected a list of objects")),
    ('["$local.a"]', ("taskOutputMappings[0]", "expected an object")),
    ('[{"source": "$local.a"}]', ("taskOutputMappings[0].target", "required")),
    ('[{"target": "a"}]', ("taskOutputMappings[0].source", "required")),
    ('[{"target": "a", "source": "$local.a", "as": "x"}]', ("taskOutputMappings[0].as", "unknown field")),
    ('[{"target": "a.b", "source": "$local.a"}]', ("taskOutputMappings[0].target", "one field name")),
    ('[{"target": "", "source": "$local.a"}]', ("taskOutputMappings[0].target", "1-128")),
    ('[{"target": 1, "source": "$local.a"}]', ("taskOutputMappings[0].target", "expected a string")),
    ('[{"target": "a", "source": "$local.a"}, {"target": "a", "source": "$local.b"}]',
     ("taskOutputMappings[1].target", "given twice")),
    ('[{"target": "a", "source": "$local[0]"}]', ("taskOutputMappings[0].source", "$local, $input or $context")),
    ('[{"target": "a", "source": "$output.a"}]', ("taskOutputMappings[0].source", "$local, $input or $context")),
    ('[{"target": "a", "source": "$"}]', ("taskOutputMappings[0].source", "$local, $input or $context")),
    ('[{"target": "a", "source": ""}]', ("taskOutputMappings[0].source", "1-256")),
    ('[{"target": "a", "source": 5}]', ("taskOutputMappings[0].source", "expected a string")),
])
def test_bad_output_mappings(value: str, fragments: tuple[str, ...]) -> None:
    rejected(full_key("taskOutputMappings"), value, *fragments)


def test_error_names_key_value_and_rule() -> None:
    err = rejected(full_key("memorySize"), "200", "mns-callback-flow:memorySize='200'")
    assert (err.key, err.value) == ("mns-callback-flow:memorySize", "200")
    assert isinstance(err, ValueError)


BAD_VALUE = {
    "namePrefix": "-x", "topicName": "_x", "createTopic": "yes", "functionCompute": "4.0", "runtime": "go",
    "memorySize": "1", "cpu": "0.07", "functionTimeoutSeconds": "1", "taskTimeoutSeconds": "0", "taskRetry": "{",
    "taskCatch": "{", "notifyStrategy": "x", "notifyContentFormat": "x", "verifySignature": "x",
    "logProject": "X", "logStore": "X", "signingCertUrlPrefixes": "http://certs.example.com/",
    "callbackWork": "mywork.work", "deadLetterQueue": "maybe",
}
BAD_VALUE["taskOutputMappings"] = "{"
BAD_VALUE["flowSpec"] = "asl"


@pytest.mark.parametrize("key", PROJECT_KEYS)
def test_every_project_key_is_validated(key: str) -> None:
    # A key that is known but never consulted would be silently ignored.
    base = dict(BASE, **{full_key("logProject"): "my-logs", full_key("logStore"): "store"})
    rejected(full_key(key), BAD_VALUE[key], f"mns-callback-flow:{key}", base=base)


def test_types_of_structured_values_are_named() -> None:
    rejected(full_key("createTopic"), 1, "createTopic", "expected a boolean", "got int")
    rejected(full_key("memorySize"), [256], "memorySize", "expected an integer", "got list")


def test_load_settings_reads_pulumi_config() -> None:
    # The one Pulumi-touching function, run in a real (mocked) Pulumi runtime.
    import contextvars

    from infra.config import load_settings
    from infra.offline_cloud import run_offline

    config = {"alicloud:region": "ap-southeast-1", full_key("taskTimeoutSeconds"): "90",
              full_key("createTopic"): "false", full_key("topicName"): "existing-topic",
              full_key("taskCatch"): '[{"errors": ["FnF.TaskTimeout"], "status": "timeout"}]'}
    _, _, s = contextvars.copy_context().run(
        run_offline, load_settings, project="mns-callback-flow", stack="staging", config=config,
        region="ap-southeast-1",
    )
    assert (s.stack, s.region, s.task_timeout_seconds, s.create_topic, s.topic_name) == (
        "staging", "ap-southeast-1", 90, False, "existing-topic")
    assert s.flow_name == "mns-callback-staging-flow"
    assert s.task_catch == (CatchRule(("FnF.TaskTimeout",), status="timeout"),)


@pytest.mark.parametrize("environment", [False, True], ids=["runtime-config", "PULUMI_CONFIG"])
def test_load_settings_refuses_a_misspelt_key(environment: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    # pulumi.Config is asked for keys by name: an unknown one must still be seen, and refused.
    import contextvars

    from infra.config import load_settings
    from infra.offline_cloud import run_offline

    config = {"alicloud:region": "cn-hangzhou", full_key("taskTimeoutSecs"): "90"}
    if environment:  # how the language host may hand the config over instead
        monkeypatch.setenv("PULUMI_CONFIG", json.dumps(config))
        config = {}
    with pytest.raises(ConfigError, match=r"mns-callback-flow:taskTimeoutSecs='90': unknown key"):
        contextvars.copy_context().run(
            run_offline, load_settings, project="mns-callback-flow", stack="dev", config=config,
            region="cn-hangzhou",
        )


# ---- Function Compute: runtime per generation, vCPU with memory ----------------


def test_fc2_refuses_python312_with_its_source() -> None:
    # FC 2.0's runtime list has no python3.12; the provider's fc_function has no runtime rule
    # to catch it, so the config must.
    error = rejected(full_key("runtime"), "python3.12", "mns-callback-flow:runtime", "functionCompute=2.0",
                     "python3.10, python3.9", "fc-2-0/user-guide/overview-of-runtimes",
                     base=dict(BASE, **{full_key("functionCompute"): "2.0"}))
    assert error.key == full_key("runtime")


@pytest.mark.parametrize(("function_compute", "runtime"), [
    ("2.0", "python3.10"), ("2.0", "python3.9"), ("3.0", "python3.12"), ("3.0", "python3.9"),
])
def test_each_generation_accepts_its_runtimes(function_compute: str, runtime: str) -> None:
    assert settings(functionCompute=function_compute, runtime=runtime).runtime == runtime


def test_fc3_runtimes_are_all_in_the_providers_runtime_rule() -> None:
    from infra.config import RUNTIMES, RUNTIMES_BY_FC
    from mns_callback_flow.provider_limits import FCV3_RUNTIMES

    assert set(RUNTIMES_BY_FC["3.0"]) <= set(FCV3_RUNTIMES)
    assert set(RUNTIMES) == set(RUNTIMES_BY_FC["3.0"]) | set(RUNTIMES_BY_FC["2.0"])


def test_fc3_runtime_refusal_cites_the_provider_rule() -> None:
    rejected(full_key("runtime"), "python3.11", "functionCompute=3.0", "python3.10, python3.9, python3.12",
             "resource_alicloud_fcv3_function.go")


@pytest.mark.parametrize(("memory", "cpu"), [
    (128, 0.05), (256, 0.1), (512, 0.15), (1024, 0.25), (1088, 0.3), (4096, 1.0), (32768, 8.0),
])
def test_cpu_default_is_the_least_the_ratio_allows(memory: int, cpu: float) -> None:
    from infra.config import cpu_refusal, vcpu

    s = settings(memorySize=memory)
    assert s.cpu == cpu
    assert cpu_refusal(s.cpu, memory) is None
    # one step less breaks the 1:4 bound (or the 0.05 minimum)
    assert cpu_refusal(vcpu(round(cpu * 20) - 1), memory) is not None


@pytest.mark.parametrize(("memory", "cpu"), [
    ("256", "0.25"), ("256", "0.1"), ("4096", "1"), ("4096", "4"), ("1024", 0.5), ("32768", 16), ("128", 0.1),
])
def test_cpu_accepted_edges(memory: str, cpu: object) -> None:
    assert settings(memorySize=memory, cpu=cpu).cpu == float(cpu)


@pytest.mark.parametrize(("memory", "cpu", "bounds"), [
    ("256", "0.3", "between 0.1 and 0.25"),   # 0.3 vCPU : 0.25 GB is past 1:1
    ("256", "0.05", "between 0.1 and 0.25"),  # 0.05 vCPU : 0.25 GB is past 1:4
    ("4096", "0.95", "between 1 and 4"),
    ("4096", "4.05", "between 1 and 4"),
])
def test_cpu_out_of_ratio_names_both_keys(memory: str, cpu: str, bounds: str) -> None:
    error = rejected(full_key("cpu"), cpu, "mns-callback-flow:cpu", "mns-callback-flow:memorySize", "1:1 and 1:4",
                     bounds, "CreateFunctionInput", base=dict(BASE, **{full_key("memorySize"): memory}))
    assert error.key == full_key("cpu")


@pytest.mark.parametrize(("cpu", "rule"), [
    ("0.12", "multiple of 0.05"), ("0.051", "multiple of 0.05"), ("0", "between 0.05 and 16"),
    ("16.05", "between 0.05 and 16"), ("-0.05", "between 0.05 and 16"), ("many", "expected a number"),
    ("nan", "finite"),
])
def test_bad_cpu(cpu: str, rule: str) -> None:
    rejected(full_key("cpu"), cpu, "mns-callback-flow:cpu", rule, base=dict(BASE, **{full_key("memorySize"): "32768"}))


def test_cpu_applies_to_fc3_only() -> None:
    assert settings(functionCompute="2.0").cpu is None
    rejected(full_key("cpu"), "0.1", "mns-callback-flow:cpu", "functionCompute 3.0 only",
             base=dict(BASE, **{full_key("functionCompute"): "2.0"}))


def test_config_bounds_stay_inside_the_providers_rules() -> None:
    # The config refuses first: each of its ranges lies within the provider's.
    from infra import config
    from mns_callback_flow import limits, provider_limits

    low, high = provider_limits.FCV3_MEMORY_RANGE  # checks.memory_size, which the config calls
    assert low <= limits.MIN_MEMORY_MB and limits.MAX_MEMORY_MB <= high
    assert provider_limits.FC2_MEMORY_RANGE[0] <= limits.MIN_MEMORY_MB <= limits.MAX_MEMORY_MB \
        <= provider_limits.FC2_MEMORY_RANGE[1]
    low, high = provider_limits.FCV3_TIMEOUT_RANGE
    assert low <= config.MNS_ANSWER_BUDGET_SECONDS + 1 and config.MAX_FUNCTION_TIMEOUT_SECONDS <= high
    assert (config.vcpu(limits.MIN_CPU_STEPS), config.vcpu(limits.MAX_CPU_STEPS)) == provider_limits.FCV3_CPU_RANGE


def test_names_derived_from_the_longest_prefix_pass_the_provider_rules() -> None:
    import re

    from mns_callback_flow import provider_limits

    s = settings(namePrefix="P" + "x-" * 19 + "z")  # 40 characters, the longest the prefix rule allows
    assert len(s.name_prefix) == 40
    assert provider_limits.refusals("alicloud:fc/v3Function:V3Function", {"functionName": s.function_name}) == []
    for token in ("alicloud:fc/service:Service", "alicloud:fc/function:Function", "alicloud:fc/trigger:Trigger"):
        assert provider_limits.refusals(token, {"name": f"{s.function_name}-service"}) == []
    # FC 3.0 CreateFunctionInput functionName: 1-64 letters, digits, _ or -, not starting with a digit or -.
    assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]{0,63}", s.function_name)


# One rule each for the project's config and the component's args (mns_callback_flow.checks):
# the same values are refused by both, with the same rule, each naming its own keys.
SAME_RULE = [
    ({"memorySize": "200"}, {"memory_size": 200}, "memorySize", "memory_size", "must be a multiple of 64 MB"),
    ({"functionCompute": "2.0", "runtime": "python3.12"}, {"function_compute": "2.0", "runtime": "python3.12"},
     "runtime", "runtime", "with {fc}=2.0: "),
    ({"topicName": "-bad"}, {"topic_name": "-bad"}, "topicName", "topic_name", "an MNS topic name is 1-255"),
    ({"logProject": "logs"}, {"log_project": "logs"}, "logStore", "log_store",
     "{project} and {store} are given together or not at all"),
    ({"logProject": "Logs", "logStore": "store"}, {"log_project": "Logs", "log_store": "store"}, "logProject",
     "log_project", "a log project name is 3-63 lowercase"),
    ({"taskTimeoutSeconds": "700000"}, {"task_timeout_seconds": 700000}, "taskTimeoutSeconds",
     "task_timeout_seconds", "must be at most 604800 while {dlq} is true: the dead-letter queue keeps"),
    ({"taskTimeoutSeconds": "700000", "deadLetterQueue": "false", "flowSpec": "cloudflow"},
     {"task_timeout_seconds": 700000, "dead_letter_queue": False, "flow_spec": "cloudflow"},
     "taskTimeoutSeconds", "task_timeout_seconds", "with {spec}=cloudflow at most 604800"),
    ({"flowSpec": "cloudflow", "taskOutputMappings": '[{"target": "t", "source": "$context.task.token"}]'},
     {"flow_spec": "cloudflow", "task_output_mappings": [{"target": "t", "source": "$context.task.token"}]},
     "taskOutputMappings[0].source", "task_output_mappings[0].source", "with {spec}=cloudflow a source is $local"),
]


@pytest.mark.parametrize("config, args, config_key, arg_key, rule", SAME_RULE)
def test_config_and_component_args_refuse_alike(config, args, config_key, arg_key, rule) -> None:
    from mns_callback_flow import InvalidArgument, pattern_spec

    with pytest.raises(ConfigError) as by_config:
        settings(**config)
    with pytest.raises(InvalidArgument) as by_args:
        pattern_spec.resolve("callback", args)
    assert by_config.value.key == full_key(config_key)
    assert by_args.value.key == arg_key
    assert rule.format(fc="functionCompute", project="logProject", store="logStore", dlq="deadLetterQueue",
                       spec="flowSpec") in by_config.value.rule
    assert rule.format(fc="function_compute", project="log_project", store="log_store", dlq="dead_letter_queue",
                       spec="flow_spec") in by_args.value.rule
