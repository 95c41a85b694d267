"""The Pulumi program itself, shared by ``__main__.py`` and ``infra.synth``.

Keeping it here means the offline render runs exactly what ``pulumi up`` runs.
"""

from __future__ import annotations

import pulumi

from infra.config import load_settings
from infra.pattern import CallbackPattern

PATTERN_NAME = "callback"


def define_stack() -> CallbackPattern:
    """Read and validate the config, declare the pattern, export its outputs (README "Stack outputs")."""
    settings = load_settings()  # raises ConfigError before any resource is registered
    pattern = CallbackPattern(PATTERN_NAME, {"settings": settings})
    for key, value in pattern.stack_outputs().items():
        pulumi.export(key, value)
    return pattern
