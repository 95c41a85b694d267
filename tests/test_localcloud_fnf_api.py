"""The local FnF endpoint against the real aliyun-python-sdk-fnf client, over loopback HTTP."""

from __future__ import annotations

import http.client
import json
import time
from random import Random
from urllib.parse import urlencode

import pytest
from aliyunsdkcore.acs_exception.exceptions import ClientException, ServerException
from aliyunsdkcore.auth.credentials import AccessKeyCredential, StsTokenCredential
from aliyunsdkcore.client import AcsClient
from aliyunsdkfnf.request.v20190315.ReportTaskFailedRequest import (
    ReportTaskFailedRequest,
)
from aliyunsdkfnf.request.v20190315.ReportTaskSucceededRequest import (
    ReportTaskSucceededRequest,
)

from localcloud.fnf_api import FnFEndpoint, TokenRegistry, sign, string_to_sign


@pytest.fixture
def fnf():
    with FnFEndpoint() as endpoint:
        yield endpoint


def client_for(endpoint: FnFEndpoint, creds, *, timeout: int = 5) -> AcsClient:
    credential = StsTokenCredential(*creds) if len(creds) == 3 else AccessKeyCredential(*creds)
    return AcsClient(credential=credential, region_id="cn-hangzhou", port=endpoint.port,
                     auto_retry=False, timeout=timeout, connect_timeout=2)


def succeeded(token: str, output: str) -> ReportTaskSucceededRequest:
    request = ReportTaskSucceededRequest()
    request.set_endpoint("127.0.0.1")
    request.set_TaskToken(token)
    request.set_Output(output)
    return request


def failed(token: str, error: str, cause: str | None = None) -> ReportTaskFailedRequest:
    request = ReportTaskFailedRequest()
    request.set_endpoint("127.0.0.1")
    request.set_TaskToken(token)
    request.set_Error(error)
    if cause is not None:
        request.set_Cause(cause)
    return request


def server_error(client: AcsClient, request) -> ServerException:
    with pytest.raises(ServerException) as caught:
        client.do_action_with_exception(request)
    return caught.value


def test_sdk_report_succeeded_is_verified_and_recorded(fnf):
    creds = fnf.issue_sts_credentials()
    token = fnf.backend.issue("demo-flow", "exec-1")
    output = json.dumps({"status": "success", "odd": "a b*~/+é&="})
    request = succeeded(token, output)
    answer = json.loads(client_for(fnf, creds).do_action_with_exception(request))
    assert set(answer) == {"RequestId"}
    assert fnf.backend.report_of(token).output == output
    [call] = fnf.calls_of("ReportTaskSucceeded")
    assert call.signature_valid and call.status == 200
    # Our canonicalization equals the string the SDK signed (aliyunsdkcore rpc composer).
    assert string_to_sign("POST", call.params) == request.string_to_sign
    assert call.params["TaskToken"] == token and call.params["SecurityToken"] == creds.security_token


def test_second_report_is_task_already_completed(fnf):
    creds = fnf.issue_sts_credentials()
    token = fnf.backend.issue()
    client = client_for(fnf, creds)
    client.do_action_with_exception(succeeded(token, '{"status": "success"}'))
    err = server_error(client, failed(token, "Late", "after success"))
    assert (err.get_http_status(), err.get_error_code()) == (400, "TaskAlreadyCompleted")
    assert [r.kind for r in fnf.backend.reports] == ["succeeded"]


def test_report_failed_carries_error_and_cause(fnf):
    creds = fnf.issue_sts_credentials()
    token = fnf.backend.issue()
    client_for(fnf, creds).do_action_with_exception(failed(token, "Work.Failed", "disk full: é"))
    report = fnf.backend.report_of(token)
    assert (report.kind, report.error, report.cause) == ("failed", "Work.Failed", "disk full: é")


@pytest.mark.parametrize("request_factory, code", [
    (lambda t: succeeded(t, "[1, 2]"), "InvalidArgument"),
    (lambda t: succeeded(t, "not json"), "InvalidArgument"),
    (lambda t: succeeded(t, json.dumps({"x": "y" * 40000})), "EntityTooLarge"),
    (lambda t: failed(t, "E" * 129), "InvalidArgument"),
    (lambda t: failed(t, "E", "c" * 4097), "InvalidArgument"),
    (lambda t: succeeded("djEjZiNlIzEjMDAwMDAwMDAwMDAwMDAwMA==", "{}"), "InvalidArgument"),
    (lambda t: succeeded("not a token", "{}"), "InvalidArgument"),
])
def test_bad_parameters_are_refused_with_fnf_codes(fnf, request_factory, code):
    creds = fnf.issue_sts_credentials()
    token = fnf.backend.issue()
    err = server_error(client_for(fnf, creds), request_factory(token))
    assert (err.get_http_status(), err.get_error_code()) == (400, code)
    assert fnf.backend.reports == []


def test_missing_output_is_a_missing_parameter(fnf):
    creds = fnf.issue_sts_credentials()
    request = ReportTaskSucceededRequest()
    request.set_endpoint("127.0.0.1")
    request.set_TaskToken(fnf.backend.issue())
    err = server_error(client_for(fnf, creds), request)
    assert (err.get_http_status(), err.get_error_code()) == (400, "MissingOutput")


def test_wrong_secret_is_reported_by_the_sdk_as_a_wrong_secret(fnf):
    ak, _secret, token = fnf.issue_sts_credentials()
    err = server_error(client_for(fnf, (ak, "not-the-secret", token)),
                       succeeded(fnf.backend.issue(), "{}"))
    # The SDK recognises the gateway's SignatureDoesNotMatch message when the
    # server's string to sign equals its own: only the secret can be wrong.
    assert (err.get_http_status(), err.get_error_code()) == (400, "InvalidAccessKeySecret")


def test_unknown_access_key_and_bad_security_tokens(fnf):
    ak, secret, token = fnf.issue_sts_credentials()
    request_token = fnf.backend.issue()
    cases = [
        ((ak + "x", secret, token), 404, "InvalidAccessKeyId.NotFound"),
        ((ak, secret, token + "x"), 400, "InvalidSecurityToken.MismatchWithAccessKey"),
        ((ak, secret), 400, "MissingSecurityToken"),
    ]
    for creds, status, code in cases:
        err = server_error(client_for(fnf, creds), succeeded(request_token, "{}"))
        assert (err.get_http_status(), err.get_error_code()) == (status, code), creds
    assert fnf.backend.reports == []


def test_expired_credentials_are_refused(fnf):
    creds = fnf.issue_sts_credentials(ttl_seconds=-1)
    err = server_error(client_for(fnf, creds), succeeded(fnf.backend.issue(), "{}"))
    assert (err.get_http_status(), err.get_error_code()) == (400, "InvalidSecurityToken.Expired")


def _signed_query(creds, action: str, extra: dict[str, str], *, method: str = "POST",
                  timestamp: str | None = None, version: str = "2019-03-15",
                  nonce: str = "nonce-1") -> dict[str, str]:
    params = {
        "Action": action, "Version": version, "Format": "JSON", "RegionId": "cn-hangzhou",
        "Timestamp": timestamp or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "SignatureMethod": "HMAC-SHA1", "SignatureType": "", "SignatureVersion": "1.0",
        "SignatureNonce": nonce, "AccessKeyId": creds.access_key_id,
        "SecurityToken": creds.security_token, **extra,
    }
    params["Signature"] = sign(method, params, creds.access_key_secret)
    return params


def _raw(endpoint: FnFEndpoint, query: dict[str, str], body: dict[str, str]) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=5)
    try:
        connection.request("POST", "/?" + urlencode(query), body=urlencode(body),
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def _split(params: dict[str, str], body_keys: tuple[str, ...]):
    return ({k: v for k, v in params.items() if k not in body_keys},
            {k: v for k, v in params.items() if k in body_keys})


def test_replayed_nonce_stale_timestamp_tampered_body_and_wrong_version(fnf):
    creds = fnf.issue_sts_credentials()
    token = fnf.backend.issue()
    params = _signed_query(creds, "ReportTaskSucceeded", {"TaskToken": token, "Output": "{}"})
    query, body = _split(params, ("Output",))
    assert _raw(fnf, query, body)[0] == 200
    status, answer = _raw(fnf, query, body)
    assert (status, answer["Code"]) == (400, "SignatureNonceUsed")
    assert set(answer) == {"RequestId", "HostId", "Code", "Message"}

    stale = _signed_query(creds, "ReportTaskSucceeded", {"TaskToken": token, "Output": "{}"},
                          timestamp="2020-01-01T00:00:00Z", nonce="n2")
    assert _raw(fnf, *_split(stale, ("Output",)))[1]["Code"] == "InvalidTimeStamp.Expired"

    other = fnf.backend.issue()
    signed = _signed_query(creds, "ReportTaskSucceeded", {"TaskToken": other, "Output": "{}"},
                           nonce="n3")
    query, _ = _split(signed, ("Output",))
    status, answer = _raw(fnf, query, {"Output": '{"status": "forged"}'})
    assert (status, answer["Code"]) == (400, "SignatureDoesNotMatch")
    assert fnf.backend.report_of(other) is None

    wrong = _signed_query(creds, "ReportTaskSucceeded", {"TaskToken": other, "Output": "{}"},
                          version="2015-06-06", nonce="n4")
    assert _raw(fnf, *_split(wrong, ("Output",)))[0:1] == (404,)


@pytest.mark.parametrize("kind, status, code", [
    ("throttle", 429, "ResourceThrottled"),
    ("internal", 500, "InternalServerError"),
    ("invalid_state", 409, "TaskInvalidState"),
])
def test_injected_service_faults_answer_documented_errors(fnf, kind, status, code):
    creds = fnf.issue_sts_credentials()
    token = fnf.backend.issue()
    client = client_for(fnf, creds)
    fnf.faults.inject(kind, actions=("ReportTaskSucceeded",))
    err = server_error(client, succeeded(token, "{}"))
    assert (err.get_http_status(), err.get_error_code()) == (status, code)
    assert fnf.backend.report_of(token) is None
    client.do_action_with_exception(succeeded(token, "{}"))  # the retry goes through
    assert fnf.backend.report_of(token).kind == "succeeded"


def test_reset_and_lost_answer_and_slow(fnf):
    creds = fnf.issue_sts_credentials()
    client = client_for(fnf, creds, timeout=1)
    token = fnf.backend.issue()
    fnf.faults.inject("reset")
    with pytest.raises(ClientException):
        client.do_action_with_exception(succeeded(token, "{}"))
    assert fnf.backend.report_of(token) is None

    fnf.faults.inject("lost_answer")
    with pytest.raises(ClientException):
        client.do_action_with_exception(succeeded(token, "{}"))
    assert fnf.backend.report_of(token).kind == "succeeded"  # it took effect all the same
    err = server_error(client, succeeded(token, "{}"))
    assert err.get_error_code() == "TaskAlreadyCompleted"

    fnf.faults.delay = 1.5
    fnf.faults.inject("slow")
    with pytest.raises(ClientException):  # the client gives up after its 1 s read timeout
        client.do_action_with_exception(succeeded(fnf.backend.issue(), "{}"))


def test_random_faults_are_reproducible_from_the_seed():
    def run(seed: int) -> list[str | None]:
        endpoint = FnFEndpoint()
        endpoint.faults.at_random(0.5, Random(seed))
        return [endpoint.faults.next_for("ReportTaskSucceeded") for _ in range(40)]

    assert run(7) == run(7)
    assert run(7) != run(8)
    assert {kind for kind in run(7) if kind} <= {"throttle", "internal", "reset"}
    with pytest.raises(ValueError, match="fault kind"):
        FnFEndpoint().faults.inject("explode")


def test_registry_refuses_a_token_of_another_registry():
    mine, theirs = TokenRegistry(), TokenRegistry()
    token = theirs.issue("flow", "exec")
    with pytest.raises(Exception) as caught:
        mine.report_succeeded(token, "{}")
    assert caught.value.code == "InvalidArgument"
    assert theirs.parse(token) == ("flow", "exec", 1)


def test_a_long_term_access_key_needs_no_token_and_takes_none(fnf):
    key = fnf.issue_access_key()
    assert key.security_token == ""
    token = fnf.backend.issue()
    client_for(fnf, (key.access_key_id, key.access_key_secret)).do_action_with_exception(succeeded(token, "{}"))
    assert [r.token for r in fnf.backend.reports] == [token]
    err = server_error(client_for(fnf, (key.access_key_id, key.access_key_secret, "CAISforged")),
                       succeeded(fnf.backend.issue(), "{}"))
    assert (err.get_http_status(), err.get_error_code()) == (400, "InvalidSecurityToken.MismatchWithAccessKey")
    err = server_error(client_for(fnf, (key.access_key_id, "not-the-secret")), succeeded(fnf.backend.issue(), "{}"))
    assert err.get_error_code() == "InvalidAccessKeySecret"


def test_a_nonce_is_refused_within_twice_the_window_and_forgotten_after_it():
    clock = [time.time()]
    with FnFEndpoint(clock=lambda: clock[0]) as fnf:
        creds = fnf.issue_sts_credentials(ttl_seconds=10 ** 6)

        def report(nonce: str) -> tuple[int, dict]:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock[0]))
            params = _signed_query(creds, "ReportTaskSucceeded", {"TaskToken": fnf.backend.issue(),
                                                                  "Output": "{}"}, timestamp=stamp, nonce=nonce)
            return _raw(fnf, *_split(params, ("Output",)))

        assert [report(n)[0] for n in ("a", "b", "c")] == [200, 200, 200]
        clock[0] += 29 * 60  # under twice the 15-minute window: every nonce is still known
        assert report("a")[1]["Code"] == "SignatureNonceUsed"
        clock[0] += 2 * 60
        assert report("a")[0] == 200  # "a" expired and is taken again; "b" and "c" expired too
        assert sorted(fnf._nonces) == ["a"]
        assert report("b")[0] == 200 and report("a")[1]["Code"] == "SignatureNonceUsed"


@pytest.mark.parametrize("text", ["", "plain-Text_1.2~", "a b*c+d/e=f&g%h", "ünï €", "\x00\x7f~", "A" * 300 + "+/="])
def test_percent_encode_is_quote_with_nothing_safe(text):
    from urllib.parse import quote

    from localcloud.fnf_api import percent_encode

    assert percent_encode(text) == quote(text, safe="")


def test_string_to_sign_is_the_pop_form_encoded_twice_with_quote():
    from urllib.parse import quote

    params = {"Action": "ReportTaskSucceeded", "Output": '{"status": "ok ü"}', "SignatureType": "",
              "TaskToken": "djEj+/=", "Signature": "left out", "Timestamp": "2026-12-01T00:00:00Z"}
    canonical = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in sorted(params.items())
                         if k != "Signature")
    assert string_to_sign("post", params) == f"POST&%2F&{quote(canonical, safe='')}"
