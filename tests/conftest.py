"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.handler_stack import clean, stack  # noqa: F401 - fixtures of the handler over HTTP
from tests.mocks import OutputChecks


@pytest.fixture
def output_checks() -> Iterator[OutputChecks]:
    """Register Output checks with ``output_checks.check(...)``; the test fails if any never ran."""
    checks = OutputChecks()
    yield checks
    checks.verify()
