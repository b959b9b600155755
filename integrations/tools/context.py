"""What a tool implementation is handed besides its arguments."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from integrations.models import Integration

if TYPE_CHECKING:
    from integrations.agents.access import AgentAccess, Grant


@dataclass
class ToolContext:
    integration: Integration
    may_write: bool  # the caller's scope allows writes on this integration
    actor: str
    call_id: int | None = None
    # The caller's profile and its grant on this integration; None: an unrestricted caller (staff,
    # trusted Python), today's behaviour. The tools enforce grant.hris / grant.database where the data is.
    access: AgentAccess | None = None
    grant: Grant | None = None


def jsonable(value: Any) -> Any:
    """Database and HRIS values as JSON: dates ISO-8601, decimals as strings (no precision lost),
    bytes as base64, anything else unknown as its text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if hasattr(value, "as_dict"):
        return jsonable(value.as_dict())
    return str(value)
