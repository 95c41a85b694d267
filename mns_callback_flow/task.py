"""The callback task step: what both flow specs render, as one value.

Pure data. ``flow_definition`` (FDL) and ``cloudflow_definition`` (CloudFlow)
each take a ``CallbackTask``; the components build one from their args, the
project's config from its keys.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class RetryRule:
    """One FDL `retry` policy of the task step."""

    errors: tuple[str, ...]
    interval_seconds: int = 1
    max_attempts: int = 3
    multiplier: float = 2
    max_interval_seconds: int | None = None


@dataclass(frozen=True)
class CatchRule:
    """One FDL `catch` policy: on these errors, end the flow in a recognisable way.

    Exactly one of `status` (end successfully with output `{"status": status}`)
    and `fail_error` (end failed with that error and `fail_cause`) is set.
    """

    errors: tuple[str, ...]
    status: str | None = None
    fail_error: str | None = None
    fail_cause: str | None = None


@dataclass(frozen=True)
class OutputMapping:
    """One FDL `outputMappings` entry of the task step: `target` of the step's output from `source`."""

    target: str
    source: str




@dataclass(frozen=True)
class CallbackTask:
    """The wait-for-callback task step: the topic it publishes to and how it waits."""

    topic_name: str
    timeout_seconds: int
    retry: tuple[RetryRule, ...] = ()
    catch: tuple[CatchRule, ...] = ()
    # Empty: the task step has no outputMappings, so its output (and the flow's)
    # is the whole Output the work function reported (docs/platform-facts.md
    # "FDL output mappings").
    output_mappings: tuple[OutputMapping, ...] = ()
