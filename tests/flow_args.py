"""The CloudFlow builder's keywords for a project's Settings: what the pattern component passes it."""

from typing import Any

from infra.config import Settings


def cloudflow_args(settings: Settings, account_id: str) -> dict[str, Any]:
    """``build_cloudflow_definition(***cloudflow_args(settings, account))``."""
    return {"task": settings.callback_task, "flow_name": settings.flow_name, "region": settings.region,
            "account_id": account_id}
