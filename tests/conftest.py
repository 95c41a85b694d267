"""Shared pytest fixtures."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tests.handler_stack import clean, stack  # noqa: F401 - fixtures of the handler over HTTP
from tests.mocks import OutputChecks


def pytest_collection_finish(session: pytest.Session) -> None:
    """The test modules and what they imported (pulumi's SDK and provider among them) live
    until the run ends: frozen, so the collector's full passes during the tests skip them
    (infra/command.py does the same for the project's commands)."""
    gc.freeze()


@pytest.fixture
def output_checks() -> Iterator[OutputChecks]:
    """Register Output checks with ``output_checks.check(...)``; the test fails if any never ran."""
    checks = OutputChecks()
    yield checks
    checks.verify()
