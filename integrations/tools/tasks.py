"""The Celery task that runs agent tool calls (found by config/celery.py's autodiscovery)."""

from __future__ import annotations

from typing import Any

from celery import shared_task


# Acknowledged on receipt, unlike the hub's other tasks: a tool call is interactive, its caller
# retries it (HRIS writes with the same idempotency key, which makes that safe), and a query that
# killed its worker must not be handed to the next one.
@shared_task(name="integrations.tools.run", acks_late=False, reject_on_worker_lost=False, max_retries=0)
def run_tool(call_id: int, name: str, arguments: dict[str, Any], may_write: bool) -> dict[str, Any]:
    from integrations.tools.invocation import execute

    return execute(call_id, name, arguments, may_write)


@shared_task(name="integrations.tools.prune", acks_late=True, soft_time_limit=120, time_limit=180)
def prune_tool_records() -> dict[str, int]:
    """Hourly (beat): close calls whose worker died, forget expired write intents and old calls."""
    import datetime as dt

    from django.conf import settings
    from django.utils import timezone

    from integrations.tools import conf
    from integrations.tools.models import IntentState, Outcome, ToolCall, WriteIntent

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
    days = int(getattr(settings, "TOOLS_AUDIT_RETENTION_DAYS", 90))
    calls, _ = ToolCall.objects.filter(created_at__lt=now - dt.timedelta(days=days)).delete()
    return {"lost_calls": lost, "intents_deleted": intents, "calls_deleted": calls}
