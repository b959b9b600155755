"""The one answer to "may this integration be called now?", for the agent tools and ``run_operation``.

A refusal says why and whether only an operator can lift it (disabled, not connected, must be
reconnected) or time will (in error until the next health check, connecting, circuit open: with
``retry_after``). The circuit is read through the breaker's own read-only API, never its Redis layout.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from connectors.errors import wait_seconds
from integrations import connector_runtime
from integrations.models import Integration, Status

# Statuses that only an operator's action changes: nothing may call the outside system meanwhile.
OPERATOR_STATUSES = {Status.DISCONNECTED, Status.RECONNECT_REQUIRED}


@dataclass(frozen=True)
class Refusal:
    state: str  # "disabled", a status, or "circuit_open"
    message: str
    retry_after: float | None = None

    @property
    def needs_operator(self) -> bool:
        return self.state == "disabled" or self.state in OPERATOR_STATUSES


def call_refusal(integration: Integration, *, circuit: bool = True) -> Refusal | None:
    """Why ``integration`` may not be called now, or None when it may.

    ``circuit=False`` leaves the shared circuit unread (a worker about to call the connector, whose
    choke point checks it anyway).
    """
    name = repr(integration.id)
    if not integration.enabled:
        return Refusal("disabled", f"integration {name} is disabled")
    status = integration.status
    if status == Status.ERROR:
        retry_after = float(integration.health_check_interval)
        if integration.last_checked_at is not None:
            next_check = integration.last_checked_at + dt.timedelta(seconds=integration.health_check_interval)
            retry_after = max(1.0, (next_check - timezone.now()).total_seconds())
        reason = f": {integration.last_error}" if integration.last_error else ""
        return Refusal(status, f"integration {name} is in error{reason}", retry_after)
    if status == Status.RECONNECT_REQUIRED:
        return Refusal(status, f"integration {name} must be reconnected by an operator")
    if status == Status.DISCONNECTED:
        return Refusal(status, f"integration {name} is not connected; an operator must connect it")
    if status == Status.CONNECTING:
        return Refusal(status, f"integration {name} is connecting", 5.0)
    wait = connector_runtime.circuit_wait(integration.id) if circuit else None
    if wait is not None:
        return Refusal(
            "circuit_open",
            f"integration {name} is failing (circuit open); calls are refused for {wait_seconds(wait)} s",
            wait,
        )
    return None
