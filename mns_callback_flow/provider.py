"""The package's components for every Pulumi language: a component provider with its schema.

``pulumi.provider.experimental``'s analyzer derives the package schema from the
components' type annotations (their args TypedDicts and ``pulumi.Output``
attributes), so the schema, the generated SDKs and the Python API cannot drift
apart. ``component_provider/`` (``PulumiPlugin.yaml``, runtime python) serves
these components through ``serve``; ``python -m mns_callback_flow.provider
schema`` prints the schema that ``make schema`` commits.
"""

import json
import sys
from collections.abc import Sequence
from typing import Any

import pulumi

from mns_callback_flow import __version__
from mns_callback_flow.callback_function import CallbackFunction
from mns_callback_flow.flow import CallbackFlow
from mns_callback_flow.pattern import CallbackPattern
from mns_callback_flow.topic import CallbackTopic

PACKAGE_NAME = "mns-callback-flow"
# The pattern, and each part that stands on its own: a topic pushing to any HTTPS
# endpoint, a callback function behind its trigger, a flow publishing to one topic.
COMPONENTS: tuple[type[pulumi.ComponentResource], ...] = (CallbackPattern, CallbackTopic, CallbackFunction, CallbackFlow)


def component_provider() -> Any:
    """The provider that serves ``COMPONENTS`` (it analyzes them when built)."""
    from pulumi.provider.experimental.component import ComponentProvider

    return ComponentProvider(list(COMPONENTS), PACKAGE_NAME, version=__version__)


def package_schema() -> dict[str, Any]:
    """The package schema, as ``pulumi package get-schema`` would print it for the plugin."""
    return json.loads(component_provider().schema)


def schema_text() -> str:
    """The schema as committed: sorted keys, two-space indent, final newline."""
    return json.dumps(package_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def serve() -> None:
    """Run as the plugin (``component_provider/__main__.py``): the engine passes its address in argv."""
    from pulumi.provider.experimental import component_provider_host

    component_provider_host(list(COMPONENTS), PACKAGE_NAME, version=__version__)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] != ["schema"] or len(args) > 2:
        print("usage: python -m mns_callback_flow.provider schema [PATH]", file=sys.stderr)
        return 2
    text = schema_text()
    if len(args) == 2:
        with open(args[1], "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
