"""The tests that drive the official aliyun-mns-sdk (requirements-dev.txt) need it installed.

Outside CI a missing SDK skips them (a shared environment without it); in CI,
which installs requirements-dev.txt, a missing SDK is a failure, never a skip.
"""

from __future__ import annotations

import importlib.util
import os

import pytest


def require_mns_sdk() -> None:
    if importlib.util.find_spec("mns") is not None:
        return
    if os.environ.get("CI"):
        pytest.fail("aliyun-mns-sdk is pinned in requirements-dev.txt but not installed")
    pytest.skip("aliyun-mns-sdk (requirements-dev.txt) is not installed")
