"""A function in an instance process of its own: the trigger here, the handler there, real HTTP in."""

from __future__ import annotations

import http.client
import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

from localcloud.fc_runtime import FcRuntime, FunctionMeta
from localcloud.run import LocalStack, run_many, run_one
from tests.local_render import rendered

CREDS = ("STS.testkey", "test-secret", "test-token")

HANDLER_SOURCE = textwrap.dedent('''
    import json
    import logging
    import os

    import sibling  # a module of the code directory, imported from there

    def handler(event, context):
        event = json.loads(event)
        logging.getLogger("mns_callback").info("handled %s", event["rawPath"])
        body = {"pid": os.getpid(), "greeting": os.environ.get("GREETING"), "path": event["rawPath"],
                "body": event["body"], "request_id": context.request_id, "sibling": sibling.NAME,
                "key": getattr(getattr(context, "credentials", None), "access_key_id", None)}
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}

    def failing(event, context):
        raise ValueError("the work failed")

    def wsgi_handler(environ, start_response):
        start_response("201 Created", [("Content-Type", "text/plain")])
        return [environ["fc.request_uri"].encode(), b"|", os.environ["GREETING"].encode(), b"|",
                environ["wsgi.input"].read()]
''')


@pytest.fixture
def code(tmp_path: Path) -> Path:
    (tmp_path / "index.py").write_text(HANDLER_SOURCE)
    (tmp_path / "sibling.py").write_text('NAME = "from the code directory"\n')
    return tmp_path


def post(url: str, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_the_handler_runs_in_another_process_with_the_functions_environment(code):
    with FcRuntime(source_dir=code, credentials=CREDS, environment={"GREETING": "hello"},
                   instance_process=True) as fc:
        assert fc.instance is not None and fc.instance.pid != os.getpid()
        status, headers, body = post(fc.url, "/invoke?x=1", b'{"Message": "hi"}')
        second = json.loads(post(fc.url, "/again", b"{}")[2])
        assert fc.invocations == 2
    answer = json.loads(body)
    assert status == 200
    assert answer["pid"] == second["pid"] != os.getpid()
    assert (answer["greeting"], answer["path"], answer["body"]) == ("hello", "/invoke", '{"Message": "hi"}')
    assert answer["request_id"] == headers["x-fc-request-id"]
    assert (answer["sibling"], answer["key"]) == ("from the code directory", "STS.testkey")
    # Nothing of the function was put into this process.
    assert "GREETING" not in os.environ
    assert "sibling" not in sys.modules and str(code) not in sys.path


def test_a_function_that_raises_is_answered_502_by_the_instance(code):
    with FcRuntime(source_dir=code, function=FunctionMeta(handler="index.failing"), instance_process=True) as fc:
        status, headers, body = post(fc.url, "/", b"{}")
    assert (status, headers["x-fc-error-type"]) == (502, "UnhandledInvocationError")
    assert json.loads(body)["errorType"] == "ValueError"
    assert json.loads(body)["errorMessage"] == "the work failed"


def test_fc2_wsgi_in_the_instance_process(code):
    with FcRuntime(source_dir=code, fc_version="2.0", environment={"GREETING": "hi"},
                   instance_process=True) as fc:
        status, _headers, body = post(fc.url, "/path?q=1", b"payload")
        assert (status, body) == (201, f"{fc.url}/path?q=1|hi|payload".encode())


def test_faults_and_the_outage_stay_with_the_trigger(code):
    with FcRuntime(source_dir=code, environment={"GREETING": "x"}, instance_process=True) as fc:
        fc.faults.inject("reset")
        with pytest.raises(ConnectionError):
            post(fc.url, "/", b"{}")
        fc.unavailable_until = float("inf")
        assert post(fc.url, "/", b"{}")[0] == 503
        assert fc.invocations == 0


def test_a_handler_that_cannot_be_imported_fails_the_start_by_name(code):
    (code / "index.py").write_text("import no_such_module_here\n")
    runtime = FcRuntime(source_dir=code, instance_process=True)
    with pytest.raises(RuntimeError, match="could not import its handler: ModuleNotFoundError"):
        runtime.start()
    assert runtime.instance is None


def test_a_callable_handler_cannot_run_in_an_instance_process():
    with pytest.raises(ValueError, match="instance_process"):
        FcRuntime(handler=lambda event, context: "", instance_process=True)


def test_the_stack_runs_its_function_from_the_archive_in_an_instance_process():
    with LocalStack.from_render(rendered(), function_processes=True) as stack:
        assert stack.fc.instance is not None and stack.fc.instance.pid != os.getpid()
        outcome = run_one(stack, '{"messageBody": "hello"}')
        assert (outcome.status, outcome.output) == ("Succeeded", {"status": "success"})
        summary = run_many(stack, '{"messageBody": "hello"}', 16, concurrency=8)
        assert summary["succeeded"] == 16 and summary["all_callbacks_arrived"]
        assert summary["duplicate_reports"] == 0
        assert stack.fc.invocations == 17


@pytest.mark.parametrize("shown", [False, True])
def test_the_instance_logs_the_handlers_records_as_this_process_would(code, capfd, shown):
    import logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    handler = logging.StreamHandler(sys.stderr) if shown else logging.NullHandler()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    try:
        with FcRuntime(source_dir=code, environment={"GREETING": "x"}, instance_process=True) as fc:
            assert post(fc.url, "/logged-path", b"{}")[0] == 200
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    assert ("handled /logged-path" in capfd.readouterr().err) is shown
