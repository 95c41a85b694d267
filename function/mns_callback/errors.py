"""The exceptions the core raises; each one maps to exactly one outcome."""

from __future__ import annotations


def _sendable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class TaskFailed(Exception):
    """Raised by a work function: the task is reported with ReportTaskFailed.

    ``error`` becomes the flow step's error name (FnF: 1-128 characters),
    ``cause`` its detail (FnF: up to 4096 characters); see the FnF API
    reference of ReportTaskFailed.
    """

    def __init__(self, error: str, cause: str = "") -> None:
        # Text, whatever the work function passed (TaskFailed(404), cause=None):
        # a non-string here would fail the same way on every redelivery.
        error, cause = str(error), ("" if cause is None else str(cause))
        # An unpaired surrogate (echoed from a "\ud800" JSON escape) cannot go to
        # FnF as UTF-8 and would fail every redelivery: it is kept, escaped.
        error, cause = _sendable(error), _sendable(cause)
        super().__init__(f"{error}: {cause}" if cause else error)
        self.error = error
        self.cause = cause


class BadPush(ValueError):
    """The push body can never succeed, whatever is retried (answered 4xx)."""

    def __init__(self, field: str, problem: str, status: int = 400) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem
        self.status = status


class SignatureRejected(Exception):
    """The push is not provably from MNS (answered 403, nothing reported)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class TopicRejected(Exception):
    """The push is from MNS, but not from our topic (answered 403, nothing run or reported)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class CertificateUnavailable(Exception):
    """The allowed signing certificate could not be fetched (answered 503)."""


class SettingsError(ValueError):
    """An environment variable of the function has an invalid value."""
