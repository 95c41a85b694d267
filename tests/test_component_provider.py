"""The component provider: its schema is the committed one, it offers only what a
non-Python program can give, and its construct path registers exactly what the
Python API registers."""

import contextvars
import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from infra.offline_cloud import OfflineCloud, RecordingMonitor, run_offline
from mns_callback_flow import CallbackFlow, CallbackFunction, CallbackPattern, CallbackTopic, provider
from tests.mocks import REGION

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "component_provider" / "schema.json"
TOKEN = "mns-callback-flow:index:"
SCHEMA = provider.package_schema()


def test_the_committed_schema_is_the_components_schema() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == provider.schema_text(), (
        "component_provider/schema.json is stale: run `make schema` and commit it")


def test_every_component_is_served_under_the_package_name() -> None:
    assert SCHEMA["name"] == "mns-callback-flow"
    assert sorted(SCHEMA["resources"]) == sorted(TOKEN + c.__name__ for c in provider.COMPONENTS)
    assert all(r["isComponent"] for r in SCHEMA["resources"].values())


def _types_of(prop: dict[str, Any], where: str) -> list[tuple[str, str]]:
    """(path, type) of a property and of everything inside it."""
    if "$ref" in prop:
        name = prop["$ref"].removeprefix("#/types/")
        assert name in SCHEMA["types"], f"{where}: dangling {prop['$ref']}"
        inner = SCHEMA["types"][name]
        return [(where, "object")] + [pair for key, sub in inner["properties"].items()
                                      for pair in _types_of(sub, f"{where}.{key}")]
    found = [(where, prop["type"])]
    if prop["type"] == "array":
        found += _types_of(prop["items"], f"{where}[]")
    if prop["type"] == "object":
        found += _types_of(prop["additionalProperties"], f"{where}{{}}")
    return found


def test_inputs_are_only_what_a_non_python_program_can_give() -> None:
    for token, resource in SCHEMA["resources"].items():
        for name, prop in resource["inputProperties"].items():
            assert prop.get("description"), f"{token}.{name} has no description"
            for path, kind in _types_of(prop, f"{token}.{name}"):
                assert kind in {"string", "number", "integer", "boolean", "array", "object"}, (path, kind)
        for name, prop in resource["properties"].items():
            assert prop.get("type") in {"string", "number", "integer", "boolean"}, (token, name, prop)
            assert name in resource["required"], f"{token}.{name}: outputs are always set"


def test_work_code_is_given_as_plain_strings() -> None:
    inputs = SCHEMA["resources"][TOKEN + "CallbackPattern"]["inputProperties"]
    assert inputs["workDir"]["type"] == inputs["work"]["type"] == "string"
    assert SCHEMA["resources"][TOKEN + "CallbackPattern"]["requiredInputs"] == []


def test_descriptions_come_from_the_args_docstrings() -> None:
    described = SCHEMA["resources"][TOKEN + "CallbackPattern"]["inputProperties"]["taskTimeoutSeconds"]["description"]
    assert described == "Seconds the task step waits for its callback (default 3600)."
    retry = SCHEMA["types"][TOKEN + "TaskRetryArgs"]
    assert retry["required"] == ["errors"] and "intervalSeconds" in retry["properties"]


# ---- construct: the provider's path against the Python API -----------------------

def _registered(program) -> list[dict[str, Any]]:
    monitor = RecordingMonitor(OfflineCloud(REGION))
    contextvars.Context().run(run_offline, program, project="consumer", stack="dev",
                              config={"alicloud:region": REGION}, region=REGION, monitor=monitor)
    return sorted((r.as_render() for r in monitor.registrations), key=lambda r: (r["type"], r["name"]))


def _construct(component: type, name: str, schema_inputs: dict[str, Any]):
    served = provider.component_provider()

    def program() -> None:
        served.construct(name, TOKEN + component.__name__, schema_inputs, pulumi.ResourceOptions())
    return program


PATTERN_CASES = {
    "fc3-defaults": ({}, {}),
    "fc2-rules": (
        {"function_compute": "2.0", "task_timeout_seconds": 900, "notify_content_format": "XML",
         "task_retry": [{"errors": ["FnF.TaskTimeout"], "interval_seconds": 2, "max_attempts": 2}],
         "task_catch": [{"errors": ["FnF.ALL"], "fail": {"error": "Callback.Lost", "cause": "no answer"}}],
         "task_output_mappings": [{"target": "status", "source": "$local.status"}],
         "tags": {"team": "ledger"}, "log_project": "team-logs", "log_store": "callbacks"},
        {"functionCompute": "2.0", "taskTimeoutSeconds": 900, "notifyContentFormat": "XML",
         "taskRetry": [{"errors": ["FnF.TaskTimeout"], "intervalSeconds": 2, "maxAttempts": 2}],
         "taskCatch": [{"errors": ["FnF.ALL"], "fail": {"error": "Callback.Lost", "cause": "no answer"}}],
         "taskOutputMappings": [{"target": "status", "source": "$local.status"}],
         "tags": {"team": "ledger"}, "logProject": "team-logs", "logStore": "callbacks"},
    ),
    "fc3-cloudflow": (
        {"flow_spec": "cloudflow", "cpu": 0.25, "resource_group_id": "rg-1", "dead_letter_queue": False},
        {"flowSpec": "cloudflow", "cpu": 0.25, "resourceGroupId": "rg-1", "deadLetterQueue": False},
    ),
}


@pytest.mark.parametrize("case", sorted(PATTERN_CASES))
def test_construct_registers_what_the_python_api_registers(case: str) -> None:
    python_args, schema_inputs = PATTERN_CASES[case]
    expected = _registered(lambda: CallbackPattern("orders", python_args))
    assert expected, "the Python API registered nothing"
    assert _registered(_construct(CallbackPattern, "orders", schema_inputs)) == expected


@pytest.mark.parametrize("function_compute", ["3.0", "2.0"])
def test_construct_of_each_part_matches_the_python_api(function_compute: str) -> None:
    function = {"function_name": "solo-callback", "function_compute": function_compute, "region": REGION,
                "account_id": "1234567890123456", "runtime": "python3.10", "memory_size": 256, "timeout": 10,
                "verify_signature": True, "topic_name": "solo-topic", "notify_content_format": "JSON"}
    camel = {"functionName": "solo-callback", "functionCompute": function_compute, "region": REGION,
             "accountId": "1234567890123456", "runtime": "python3.10", "memorySize": 256, "timeout": 10,
             "verifySignature": True, "topicName": "solo-topic", "notifyContentFormat": "JSON"}
    assert _registered(_construct(CallbackFunction, "solo", camel)) == \
        _registered(lambda: CallbackFunction("solo", function))  # type: ignore[arg-type]

    topic = {"topic_name": "solo-topic", "create_topic": True, "subscription_name": "solo-sub",
             "endpoint": "https://example.com/", "notify_strategy": "BACKOFF_RETRY", "notify_content_format": "JSON",
             "dead_letter_queue_name": "solo-dlq"}
    camel_topic = {"topicName": "solo-topic", "createTopic": True, "subscriptionName": "solo-sub",
                   "endpoint": "https://example.com/", "notifyStrategy": "BACKOFF_RETRY",
                   "notifyContentFormat": "JSON", "deadLetterQueueName": "solo-dlq"}
    assert _registered(_construct(CallbackTopic, "solo", camel_topic)) == \
        _registered(lambda: CallbackTopic("solo", topic))  # type: ignore[arg-type]

    arn = f"acs:mns:{REGION}:1234567890123456:/topics/solo-topic/messages"
    flow = {"flow_name": "solo-flow", "description": "d", "topic_arn": arn,
            "definition": "version: v1\ntype: flow\nsteps: []\n"}
    camel_flow = {"flowName": "solo-flow", "description": "d", "topicArn": arn,
                  "definition": "version: v1\ntype: flow\nsteps: []\n"}
    assert _registered(_construct(CallbackFlow, "solo", camel_flow)) == \
        _registered(lambda: CallbackFlow("solo", flow))  # type: ignore[arg-type]


def test_a_bad_input_through_construct_names_the_arg() -> None:
    with pytest.raises(Exception, match="memory_size=100: must be between 128 and 32768"):
        _registered(_construct(CallbackPattern, "orders", {"memorySize": 100}))


# ---- the YAML example against the schema ----------------------------------------

def test_the_yaml_example_uses_only_what_the_schema_declares() -> None:
    program = yaml.safe_load((ROOT / "examples" / "yaml" / "Pulumi.yaml").read_text(encoding="utf-8"))
    assert program["runtime"] == "yaml"
    declared = {name: r for name, r in program["resources"].items() if r["type"].startswith(TOKEN)}
    assert len([r for r in declared.values() if r["type"] == TOKEN + "CallbackPattern"]) == 2
    kinds = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "array": list, "object": dict}
    for name, resource in declared.items():
        spec = SCHEMA["resources"][resource["type"]]
        properties = resource.get("properties") or {}
        missing = set(spec.get("requiredInputs", [])) - set(properties)
        assert not missing, f"{name}: required {sorted(missing)}"
        for key, value in properties.items():
            assert key in spec["inputProperties"], f"{name}.{key} is not an input of {resource['type']}"
            _check_value(value, spec["inputProperties"][key], f"{name}.{key}", kinds)
    outputs = json.dumps(program.get("outputs", {}))
    for ref in ("${orders.flowName}", "${billing.triggerUrl}"):
        assert ref in outputs


def _check_value(value: Any, prop: dict[str, Any], where: str, kinds: dict[str, Any]) -> None:
    if isinstance(value, str) and value.startswith("${"):
        return  # an interpolation: typed by what it refers to
    if "$ref" in prop:
        shape = SCHEMA["types"][prop["$ref"].removeprefix("#/types/")]
        assert isinstance(value, dict), where
        assert set(shape.get("required", [])) <= set(value), where
        for key, inner in value.items():
            assert key in shape["properties"], f"{where}.{key} is not a field of {prop['$ref']}"
            _check_value(inner, shape["properties"][key], f"{where}.{key}", kinds)
        return
    assert isinstance(value, kinds[prop["type"]]) and not (prop["type"] != "boolean" and isinstance(value, bool)), \
        f"{where}: {value!r} is not {prop['type']}"
    if prop["type"] == "array":
        for index, item in enumerate(value):
            _check_value(item, prop["items"], f"{where}[{index}]", kinds)
    if prop["type"] == "object":
        for key, item in value.items():
            _check_value(item, prop["additionalProperties"], f"{where}.{key}", kinds)
