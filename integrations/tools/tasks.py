"""The agent tools' housekeeping task (found by config/celery.py's autodiscovery). The task that runs
a tool call, ``run_tool``, sits next to the code it runs, in integrations/tools/invocation.py."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import DatabaseError
from django.utils import timezone

from integrations.task_base import hub_task
from integrations.tools import conf, outbox
from integrations.tools.models import IntentState, Outcome, ToolCall, WriteIntent

log = logging.getLogger(__name__)


def lost_after_seconds() -> float:
    """A call still "running" this long after it was recorded lost its process (worker or web, e.g. a
    SIGKILL): it may wait up to the time limit in the queue (``expires``), then run up to the hard limit
    (the time limit + 5 s); 10 s more for the answer to be stored."""
    return conf.timeout_seconds() * 2 + 15


def close_lost_calls() -> int:
    now = timezone.now()
    return ToolCall.objects.filter(
        outcome=Outcome.RUNNING, created_at__lt=now - dt.timedelta(seconds=lost_after_seconds())
    ).update(
        outcome=Outcome.TIMEOUT,
        error_category="timeout",
        error_message="no result: the worker or web process running it stopped",
        finished_at=now,
    )


@hub_task("integrations.tools.release_lost_calls", soft_time_limit=25, time_limit=30)
def release_lost_calls(self: Any) -> dict[str, int]:
    """Every 30 s (beat): close calls whose process died, and write the audit rows journaled on this
    machine while the database was down (``outbox``)."""
    replayed = 0
    try:
        replayed = outbox.replay()
    except DatabaseError:  # still down: the journals stay for the next run
        log.warning("tool call outbox not replayed: the database is unreachable")
    return {"lost_calls": close_lost_calls(), "replayed": replayed}


@hub_task("integrations.tools.prune", soft_time_limit=120, time_limit=180)
def prune_tool_records(self: Any) -> dict[str, int]:
    """Hourly (beat): close calls whose process died, forget expired write intents and old calls."""
    now = timezone.now()
    lost = close_lost_calls()
    intents, _ = (
        WriteIntent.objects.filter(created_at__lt=now - dt.timedelta(seconds=conf.idempotency_ttl_seconds()))
        .exclude(state=IntentState.PENDING, lease_until__gt=now)
        .delete()
    )
    calls, _ = ToolCall.objects.filter(created_at__lt=now - dt.timedelta(days=conf.audit_retention_days())).delete()
    return {"lost_calls": lost, "intents_deleted": intents, "calls_deleted": calls}
