"""Pulumi entry point: settings -> CallbackPattern -> stack outputs (see infra/program.py)."""

from infra.program import define_stack

define_stack()
