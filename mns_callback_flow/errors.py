"""The one error a component raises for a bad argument."""

import pulumi


class InvalidArgument(pulumi.InputPropertyError, ValueError):
    """An argument broke a rule; the message names the argument, the value and the rule.

    A ``pulumi.InputPropertyError`` (``property_path``, ``reason``), so a component
    provider reports it against the property, and a ``ValueError`` for Python callers.
    """

    def __init__(self, key: str, value: object, rule: str) -> None:
        pulumi.InputPropertyError.__init__(self, key, f"{value!r}: {rule}")
        ValueError.__init__(self, self.describe(key, value, rule))
        self.key, self.value, self.rule = key, value, rule

    @staticmethod
    def describe(key: str, value: object, rule: str) -> str:
        return f"{key}={value!r}: {rule}"

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
