"""The local run deploys the offline render: the archive it ships, every flow, topic and function in it."""

from __future__ import annotations

import ast
import base64
import copy
import http.client
import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from localcloud import __main__ as cli
from localcloud.deployment import DeploymentError, deployment_of
from localcloud.fc_runtime import FcRuntime
from localcloud.run import ArchiveMismatch, LocalStack, crc64_xz, run_one
from tests.local_render import render_patterns, rendered, rendered_with_work

ROOT = Path(__file__).resolve().parent.parent
DEMO = '{"messageBody": "hello world"}'
FC3 = "alicloud:fc/v3Function:V3Function"
FC2 = "alicloud:fc/function:Function"

# Reports where the handler's modules were imported from, as the handler sees them.
WHERE_WORK = """
    import sys

    def work(message_body, notification):
        import aliyunsdkcore
        import aliyunsdkfnf
        import mns_callback

        return {"index": sys.modules["index"].__file__, "mns_callback": mns_callback.__file__,
                "aliyunsdkfnf": aliyunsdkfnf.__file__, "aliyunsdkcore": aliyunsdkcore.__file__,
                "work": __file__}
"""


def resource(document: dict, type_: str, name: str | None = None) -> dict:
    found = [r for r in document["resources"] if r["type"] == type_ and (name is None or r["name"] == name)]
    assert len(found) == 1, [r["name"] for r in found]
    return found[0]


def rezipped(data: bytes, name: str, extra: bytes) -> bytes:
    """The archive with ``extra`` appended to the member ``name``."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            body = source.read(info)
            target.writestr(info, body + extra if info.filename == name else body)
    return out.getvalue()


@pytest.mark.parametrize("fc", ["3.0", "2.0"])
def test_the_handler_runs_the_archives_code_not_function_source(tmp_path, fc):
    import aliyunsdkcore

    before = aliyunsdkcore.__file__
    document = rendered_with_work(tmp_path, "where_work", WHERE_WORK, f"functionCompute={fc}")
    with LocalStack.from_render(document) as stack:
        outcome = run_one(stack, DEMO)
        code = stack.fc.source_dir
        assert code.is_dir() and not code.is_relative_to(ROOT)
    assert outcome.status == "Succeeded", outcome.output
    seen = {key: Path(value) for key, value in outcome.output.items()}
    assert seen["index"] == code / "index.py"
    assert seen["mns_callback"] == code / "mns_callback" / "__init__.py"
    assert seen["work"] == code / "where_work.py"
    # The vendored SDK, too: the archive's copy, not the one this process runs.
    assert seen["aliyunsdkfnf"] == code / "aliyunsdkfnf" / "__init__.py"
    assert seen["aliyunsdkcore"] == code / "aliyunsdkcore" / "__init__.py"
    assert not code.exists()  # the unzipped archive is removed on exit
    assert sys.modules["aliyunsdkcore"].__file__ == before  # and the process has its own modules back


def test_the_functions_environment_is_the_rendered_one_but_for_the_local_endpoints():
    document = rendered()
    with LocalStack.from_render(document) as stack:
        environment = dict(stack.fc.environment)
        fnf_url, cert_prefix = stack.fnf.url, stack.certs.url_prefix
    rendered_environment = resource(document, FC3)["inputs"]["environmentVariables"]
    assert environment == {**rendered_environment, "FNF_ENDPOINT": fnf_url, "MNS_CERT_URL_PREFIXES": cert_prefix}
    assert rendered_environment["MNS_TOPIC_OWNER"] == document["outputs"]["accountId"]


def test_the_topic_binding_is_not_overridden():
    """Pushes carry the render's account as TopicOwner: a function bound to another
    owner refuses them, as it would in the cloud."""
    document = copy.deepcopy(rendered("taskTimeoutSeconds=60", "taskRetry=[]", "taskCatch=[]"))
    resource(document, FC3)["inputs"]["environmentVariables"]["MNS_TOPIC_OWNER"] = "9999999999999999"
    with LocalStack.from_render(document, time_scale=0.01) as stack:
        outcome = run_one(stack, DEMO)
    assert outcome.output["error"] == "FnF.TaskTimeout"
    [pushed] = outcome.pushes
    assert set(pushed.delivery.statuses) == {"403"} and not pushed.delivery.delivered


def test_a_tampered_fc3_archive_is_refused_by_name():
    document = copy.deepcopy(rendered())
    code = resource(document, FC3)["inputs"]["code"]
    tampered = rezipped(base64.b64decode(code["zipFile"]), "index.py", b"\n# changed\n")
    code["zipFile"] = base64.b64encode(tampered).decode()
    with pytest.raises(ArchiveMismatch) as refused:
        LocalStack.from_render(document).__enter__()
    message = str(refused.value)
    assert "alicloud:fc/v3Function:V3Function::callback-function-function" in message
    assert f"CRC-64 is {crc64_xz(tampered)}" in message and f"code.checksum in the render is {code['checksum']}" in message


def test_the_cli_refuses_a_tampered_archive_in_one_line(monkeypatch, capsys):
    document = copy.deepcopy(rendered())
    resource(document, FC3)["inputs"]["code"]["checksum"] = "1"
    monkeypatch.setattr(cli, "render", lambda stack, overrides: document)
    assert cli.main(["run", "--input", DEMO]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: the render cannot run locally: ") and "\n" not in err
    assert "code.checksum in the render is 1" in err


def test_an_fc2_archive_is_read_relative_to_the_program_directory_and_checked(tmp_path):
    document = rendered("functionCompute=2.0")
    filename = resource(document, FC2)["inputs"]["filename"]
    assert not Path(filename).is_absolute()
    (tmp_path / filename).parent.mkdir(parents=True)
    shutil.copyfile(ROOT / filename, tmp_path / filename)
    with LocalStack.from_render(document, program_dir=tmp_path) as stack:
        assert run_one(stack, DEMO).output == {"status": "success"}
        assert stack.fc.fc_version == "2.0" and stack.fc.function.handler == "index.wsgi_handler"
    (tmp_path / filename).write_bytes(rezipped((tmp_path / filename).read_bytes(), "index.py", b"\n# changed\n"))
    with pytest.raises(ArchiveMismatch, match="codeChecksum in the render"):
        LocalStack.from_render(document, program_dir=tmp_path).__enter__()
    (tmp_path / filename).unlink()
    with pytest.raises(DeploymentError, match="filename .* cannot be read"):
        LocalStack.from_render(document, program_dir=tmp_path).__enter__()


def test_two_patterns_in_one_program_both_run_with_their_own_callbacks(tmp_path):
    """Each pattern's flow publishes to its topic, which pushes to its function; each
    function is bound to its own topic, so a crossed wire would be refused."""
    echo = """
        import os

        def work(message_body, notification):
            return {"status": "success", "topic": notification.topic_name,
                    "function": os.environ["FC_FUNCTION_NAME"], "echo": message_body}
    """
    from tests.local_render import work_with_module

    work = work_with_module(tmp_path, "echo_work", echo)
    document = render_patterns([("first", ("namePrefix=first", "topicName=first-topic",
                                           "callbackWork=echo_work:work")),
                                ("second", ("namePrefix=second", "topicName=second-topic",
                                            "callbackWork=echo_work:work",
                                            "functionCompute=2.0", "flowSpec=cloudflow"))],
                               work_dir=work, export=False)
    assert {f.name for f in deployment_of(document).flows} == {"first-flow", "second-flow"}
    with pytest.raises(DeploymentError, match="name one"):
        LocalStack.from_render(document)
    outputs = {}
    with LocalStack.from_render(document, flow_name="first-flow") as stack:
        assert sorted(stack.topics) == ["first-topic", "second-topic"]
        assert sorted(stack.runtimes) == ["first-callback", "second-callback"]
        for flow, body in (("first-flow", "one"), ("second-flow", "two"), ("first-flow", "three")):
            outcome = run_one(stack, json.dumps({"messageBody": body}), flow_name=flow)
            assert outcome.status == "Succeeded", outcome.output
            outputs[body] = outcome.output
        # Both functions at once: they take turns in the process, each with its own modules and environment.
        client = stack.client()
        names = [(flow, stack.start(client, json.dumps({"messageBody": f"{flow}-{i}"}), flow_name=flow))
                 for i in range(8) for flow in ("first-flow", "second-flow")]
        ended = {}
        for flow, name in names:
            description = stack.describe(client, name, wait_seconds=30, flow_name=flow)
            ended[name] = (flow, description["Status"], json.loads(description["Output"]))
    assert outputs == {
        "one": {"status": "success", "topic": "first-topic", "function": "first-callback", "echo": "one"},
        "two": {"status": "success", "topic": "second-topic", "function": "second-callback", "echo": "two"},
        "three": {"status": "success", "topic": "first-topic", "function": "first-callback", "echo": "three"},
    }
    for flow, status, output in ended.values():
        prefix = flow.split("-")[0]
        assert (status, output["function"], output["topic"]) == ("Succeeded", f"{prefix}-callback", f"{prefix}-topic")
        assert output["echo"].startswith(flow)
    assert len(ended) == 16


def test_subscriptions_are_matched_to_the_trigger_they_depend_on_else_by_component():
    document = copy.deepcopy(render_patterns([("a", ("namePrefix=a", "topicName=a-topic")),
                                                   ("b", ("namePrefix=b", "topicName=b-topic"))], export=False))
    matched = {s.topic_name: s.function for s in deployment_of(document).subscriptions}
    assert matched == {"a-topic": "a-callback", "b-topic": "b-callback"}
    for r in document["resources"]:  # an endpoint given as text: no dependsOn on the trigger
        if r["type"] == "alicloud:message/serviceSubscription:ServiceSubscription":
            r["dependsOn"] = [d for d in r["dependsOn"] if "Trigger" not in d]
    assert {s.topic_name: s.function for s in deployment_of(document).subscriptions} == matched
    for r in document["resources"]:  # nothing ties them any more
        if r["type"] == "alicloud:message/serviceSubscription:ServiceSubscription":
            r["parent"] = None
    with pytest.raises(DeploymentError, match="no function of the render serves its endpoint"):
        deployment_of(document)


def test_an_existing_topic_is_the_one_the_subscription_names():
    document = rendered("createTopic=false", "topicName=shared-topic")
    assert not [r for r in document["resources"] if r["type"] == "alicloud:message/serviceTopic:ServiceTopic"]
    with LocalStack.from_render(document) as stack:
        assert stack.topic_name == "shared-topic" and list(stack.mns.topics) == ["shared-topic"]
        assert run_one(stack, DEMO).output == {"status": "success"}


def test_the_trigger_config_is_the_rendered_one():
    document = copy.deepcopy(rendered())
    trigger = resource(document, "alicloud:fc/v3Trigger:V3Trigger")["inputs"]
    assert deployment_of(document).functions[0].trigger.methods == ("POST",)
    trigger["triggerConfig"] = json.dumps({"authType": "anonymous", "methods": ["GET", "POST"],
                                           "disableURLInternet": True})
    spec = deployment_of(document).functions[0].trigger
    assert (spec.methods, spec.auth_type, spec.url_internet_disabled) == (("GET", "POST"), "anonymous", True)
    trigger["triggerConfig"] = json.dumps({"methods": ["POST"]})  # FC's default authType: function
    assert deployment_of(document).functions[0].trigger.auth_type == "function"
    trigger["triggerConfig"] = "{not json"
    with pytest.raises(DeploymentError, match="triggerConfig is not JSON"):
        deployment_of(document)


def _request(url: str, method: str) -> int:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        connection.request(method, "/", body=b"{}")
        return connection.getresponse().status
    finally:
        connection.close()


def test_the_local_trigger_answers_methods_and_auth_as_configured():
    ran = []

    def handler(event, context):
        ran.append(event)
        return {"statusCode": 200, "body": "ran"}

    with FcRuntime(handler=handler, methods=["POST"]) as fc:
        assert (_request(fc.url, "GET"), _request(fc.url, "POST")) == (405, 200)
    with FcRuntime(handler=handler, auth_type="function") as fc:
        assert _request(fc.url, "POST") == 403
    with FcRuntime(handler=handler, url_internet_disabled=True) as fc:
        assert _request(fc.url, "POST") == 403
    assert len(ran) == 1


def test_a_trigger_that_refuses_mns_loses_the_callback():
    """A rendered trigger MNS cannot push to (authType function) runs no function locally either."""
    document = copy.deepcopy(rendered("taskTimeoutSeconds=60", "taskRetry=[]", "taskCatch=[]"))
    resource(document, "alicloud:fc/v3Trigger:V3Trigger")["inputs"]["triggerConfig"] = json.dumps(
        {"authType": "function", "methods": ["POST"]})
    with LocalStack.from_render(document, time_scale=0.01) as stack:
        outcome = run_one(stack, DEMO)
        invocations = stack.fc.invocations
    assert outcome.output["error"] == "FnF.TaskTimeout" and invocations == 0
    assert set(outcome.pushes[0].delivery.statuses) == {"403"}


def test_not_a_render_is_refused_naming_what_is_missing():
    with pytest.raises(DeploymentError, match="not a render"):
        LocalStack.from_render({"project": "x"})
    with pytest.raises(DeploymentError, match="not a render"):
        LocalStack.from_render(object())  # type: ignore[arg-type]


FORBIDDEN = ("infra.config", "infra.flow_definition", "infra.cloudflow_definition", "infra.function_environment",
             "mns_callback_flow")


def test_localcloud_imports_none_of_the_stack_builders():
    """localcloud reads the render only: it imports no module that builds the
    deployment (nor their library equivalents), so it cannot rebuild it differently."""
    imported = {}
    for path in sorted((ROOT / "localcloud").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                imported.update({alias.name: path.name for alias in node.names})
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported[node.module] = path.name
                imported.update({f"{node.module}.{alias.name}": path.name for alias in node.names})
    bad = {name: where for name, where in imported.items()
           if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)}
    assert bad == {}
    assert {name for name in imported if name.startswith("infra")} <= {
        "infra.synth", "infra.synth.USER_ERRORS", "infra.synth.render", "infra.redrive",
        "infra.redrive.PUBLISHED", "infra.redrive.redrive", "infra.command", "infra.command.run_command"}
    # Deploying a render loads no infra module at all (the CLI's render does, through infra.synth).
    probe = ("import sys, localcloud.run, localcloud.deployment; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('infra', 'mns_callback_flow')))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def _without(document: dict, type_: str) -> None:
    document["resources"] = [r for r in document["resources"] if r["type"] != type_]


@pytest.mark.parametrize("overrides, edit, message", [
    ((), lambda d: resource(d, FC3)["inputs"]["code"].update(checksum="abc"),
     "V3Function::callback-function-function: code.checksum must be the archive's CRC-64 as decimal digits"),
    ((), lambda d: resource(d, FC3)["inputs"]["code"].pop("zipFile"), "code.zipFile (the archive, base64) is missing"),
    ((), lambda d: _without(d, "alicloud:fc/v3Trigger:V3Trigger"), "exactly one HTTP trigger, the render gives it 0"),
    ((), lambda d: resource(d, "alicloud:fnf/flow:Flow")["inputs"].update(type="YAML"),
     "Flow::callback-flow-flow: type must be FDL or DEFAULT, got 'YAML'"),
    ((), lambda d: resource(d, FC3)["inputs"].update(handler=None), "input 'handler' must be str, got None"),
    (("functionCompute=2.0",), lambda d: _without(d, "alicloud:fc/service:Service"),
     "Function::callback-function-function: its service 'mns-callback-dev-callback-service' is not in the render"),
    ((), lambda d: (d["outputs"].pop("accountId"),
                    resource(d, FC3)["inputs"]["environmentVariables"].pop("MNS_TOPIC_OWNER")),
     "the render names no single account"),
])
def test_a_render_the_local_run_cannot_deploy_is_refused_naming_the_resource_and_input(overrides, edit, message):
    document = copy.deepcopy(rendered(*overrides))
    edit(document)
    with pytest.raises(DeploymentError) as refused:
        deployment_of(document)
    assert message in str(refused.value)


def test_a_flow_publishing_to_a_topic_the_render_does_not_deploy_cannot_run(monkeypatch, capsys):
    from localcloud import fdl

    document = copy.deepcopy(rendered())
    flow = resource(document, "alicloud:fnf/flow:Flow")["inputs"]
    flow["definition"] = flow["definition"].replace("/topics/mns-callback-dev-topic/", "/topics/elsewhere/")
    with pytest.raises(fdl.UnsupportedFlow, match="publishes to 'elsewhere', which the render neither creates"):
        LocalStack.from_render(document)
    monkeypatch.setattr(cli, "render", lambda stack, overrides: document)
    assert cli.main(["run", "--input", DEMO]) == 2
    assert "cannot run locally" in capsys.readouterr().err
