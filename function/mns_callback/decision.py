"""Pure: what MNS should do next, as an HTTP status and a short JSON body.

This is the one place that maps outcomes to statuses. MNS treats a 2xx within
5 s as delivered (its push backoff page: any status in [200, 400), so no answer
here is a 3xx) and redelivers anything else, 4xx included, under the
subscription's notify strategy (docs/platform-facts.md "MNS HTTP push"):

* 2xx handled: the task was reported, or FnF says it was already reported or
  its token is no longer valid, so a redelivery could never do more.
* 5xx retry: throttling, timeouts, FnF server errors, an unavailable signing
  certificate, a failing work function: MNS redelivers and nothing is lost.
* 4xx refuse: a push that can never succeed (bad body, wrong method, bad
  signature, another topic's push); nothing is run or reported. MNS still
  redelivers it until its retries run out, then drops it or dead-letters it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum


class Outcome(str, Enum):
    REPORTED = "reported"
    REPORTED_FAILURE = "reported_failure"
    ALREADY_REPORTED = "already_reported"
    TOKEN_INVALID = "token_invalid"
    BAD_PUSH = "bad_push"
    TOO_LARGE = "too_large"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    SIGNATURE_REJECTED = "signature_rejected"
    TOPIC_REJECTED = "topic_rejected"
    CERT_UNAVAILABLE = "cert_unavailable"
    THROTTLED = "throttled"
    TIMEOUT = "timeout"
    FNF_ERROR = "fnf_error"
    FNF_DENIED = "fnf_denied"
    WORK_ERROR = "work_error"
    CONFIG_ERROR = "config_error"
    INTERNAL_ERROR = "internal_error"


_STATUS: dict[Outcome, int] = {
    Outcome.REPORTED: 200,
    Outcome.REPORTED_FAILURE: 200,
    Outcome.ALREADY_REPORTED: 200,
    Outcome.TOKEN_INVALID: 200,
    Outcome.BAD_PUSH: 400,
    Outcome.SIGNATURE_REJECTED: 403,
    Outcome.TOPIC_REJECTED: 403,
    Outcome.METHOD_NOT_ALLOWED: 405,
    Outcome.TOO_LARGE: 413,
    Outcome.WORK_ERROR: 500,
    Outcome.CONFIG_ERROR: 500,
    Outcome.INTERNAL_ERROR: 500,
    Outcome.FNF_ERROR: 502,
    Outcome.FNF_DENIED: 502,
    Outcome.THROTTLED: 503,
    Outcome.CERT_UNAVAILABLE: 503,
    Outcome.TIMEOUT: 504,
}


@dataclass(frozen=True)
class Decision:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]

    @property
    def reason(self) -> str:
        from http import HTTPStatus
        return HTTPStatus(self.status).phrase


def status_of(outcome: Outcome) -> int:
    return _STATUS[outcome]


# A handled outcome's answer does not depend on the message: built once each.
_HANDLED: dict[Outcome, Decision] = {}


def decide(outcome: Outcome, message: str = "") -> Decision:
    """HTTP answer for an outcome; ``message`` says what went wrong, if anything."""
    answer = _HANDLED.get(outcome)
    if answer is None:
        answer = _decide(outcome, message)
        if answer.status < 300:
            _HANDLED[outcome] = answer
    return answer


def _decide(outcome: Outcome, message: str) -> Decision:
    status = _STATUS[outcome]
    if status < 300:
        document: dict[str, str] = {"result": outcome.value}
    else:
        document = {"error": outcome.value, "message": message or outcome.value.replace("_", " ")}
    body = json.dumps(document, sort_keys=True, ensure_ascii=True).encode("ascii")
    headers = (("Content-Type", "application/json"),)
    if outcome is Outcome.METHOD_NOT_ALLOWED:
        headers += (("Allow", "POST"),)
    return Decision(status, body, headers)
