"""The agent tools' housekeeping task (found by config/celery.py's autodiscovery). The task that runs
a tool call, ``run_tool``, sits next to the code it runs, in integrations/tools/invocation.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from integrations.task_base import hub_task
from integrations.tools import conf
from integrations.tools.models import IntentState, Outcome, ToolCall, WriteIntent


@hub_task("integrations.tools.prune", soft_time_limit=120, time_limit=180)
def prune_tool_records(self: Any) -> dict[str, int]:
    """Hourly (beat): close calls whose worker died, forget expired write intents and old calls."""
    now = timezone.now()
    # A call still "running" long after its hard time limit lost its worker (e.g. SIGKILL).
    lost = ToolCall.objects.filter(
        outcome=Outcome.RUNNING, created_at__lt=now - dt.timedelta(seconds=conf.timeout_seconds() * 2 + 60)
    ).update(
        outcome=Outcome.TIMEOUT,
        error_category="timeout",
        error_message="no result: its worker stopped",
        finished_at=now,
    )
    intents, _ = (
        WriteIntent.objects.filter(created_at__lt=now - dt.timedelta(seconds=conf.idempotency_ttl_seconds()))
        .exclude(state=IntentState.PENDING, lease_until__gt=now)
        .delete()
    )
    calls, _ = ToolCall.objects.filter(created_at__lt=now - dt.timedelta(days=conf.audit_retention_days())).delete()
    return {"lost_calls": lost, "intents_deleted": intents, "calls_deleted": calls}
