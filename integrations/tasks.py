"""Celery tasks: thin adapters over services. They take integration ids only (never credentials),
are acknowledged late (a task whose worker dies runs again), have time limits, are safe to run twice,
and reschedule transient failures with the error's retry_after rather than sleeping a worker. What
every task shares (late acknowledgement, a redelivered finished run returns its result, the soft time
limit's timeout result) is in ``integrations.task_base.HubTask``.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from integrations import services
from integrations.models import EventType, Integration, IntegrationEvent, Status
from integrations.services.tokens import refresh_expiring_tokens
from integrations.task_base import hub_task

log = logging.getLogger(__name__)

MAX_COUNTDOWN_SECONDS = 300


def _reschedule(task: Any, result: dict[str, Any]) -> None:
    """Retry a transient failure later: the error's retry_after, else exponential backoff with jitter."""
    if not result.get("retryable") or task.request.retries >= task.max_retries:
        return
    countdown = result.get("retry_after") or min(60.0, 2.0**task.request.retries) * random.uniform(0.75, 1.25)
    # Beyond the broker's visibility timeout a waiting message would be delivered twice.
    raise task.retry(countdown=min(countdown, MAX_COUNTDOWN_SECONDS))


def _is_final(task: Any) -> bool:
    return bool(task.request.retries >= task.max_retries)


@hub_task("integrations.connect", max_retries=4, soft_time_limit=60, time_limit=90)
def connect_integration(self: Any, integration_id: str, actor: str = "") -> dict[str, Any]:
    try:
        result = services.connect(integration_id, final=_is_final(self), actor=actor)
    except SoftTimeLimitExceeded:
        integration = Integration.objects.filter(pk=integration_id).first()
        if integration is not None:
            services.set_status(integration, Status.ERROR, message="timeout: connect took too long")
        return {"ok": False, "category": "timeout", "message": "connect took too long", "retryable": False}
    _reschedule(self, result)
    return result


@hub_task("integrations.disconnect", max_retries=0, soft_time_limit=30, time_limit=60)
def disconnect_integration(self: Any, integration_id: str, actor: str = "") -> dict[str, Any]:
    return services.disconnect(integration_id, actor=actor)


@hub_task("integrations.test", max_retries=0, soft_time_limit=60, time_limit=90)
def test_integration(self: Any, integration_id: str, actor: str = "") -> dict[str, Any]:
    return services.test(integration_id, actor=actor)


@hub_task(
    "integrations.health_check",
    max_retries=0,
    soft_time_limit=30,
    time_limit=45,
    timeout_message="health check took too long",
    ignore_result=True,
    # A check is only worth running near its schedule: a backlog of stale ones would be noise.
    expires=120,
)
def health_check_integration(self: Any, integration_id: str) -> dict[str, Any]:
    result = services.health_check(integration_id)
    check_agent_roles([integration_id], {integration_id: result})
    return result


@hub_task(
    "integrations.health_check_batch",
    max_retries=0,
    soft_time_limit=60,
    time_limit=90,
    timeout_message="health checks took too long",
    ignore_result=True,
    expires=120,
)
def health_check_batch(self: Any, integration_ids: list[str]) -> dict[str, Any]:
    """Several checks in one task (what the dispatcher sends); same outcome as one task per integration."""
    results = services.health_check_many(list(integration_ids))
    check_agent_roles(list(integration_ids), results)
    return {"checked": sum(1 for r in results.values() if not r.get("skipped"))}


def check_agent_roles(integration_ids: list[str], results: dict[str, dict[str, Any]]) -> None:
    """After the health checks: the database roles of agent profiles on the healthy PostgreSQL and
    MariaDB integrations, read from the server; a role wider than its allow-list is flagged (an
    event) and its calls refused until a check finds it fixed (``tools.database_policy.check_roles``)."""
    from integrations.agents.services import database_grants
    from integrations.tools.database_policy import SERVER_ENGINES, check_roles

    healthy = [i for i in integration_ids if (results.get(i) or {}).get("ok")]
    for integration in Integration.objects.filter(pk__in=healthy, kind__in=SERVER_ENGINES):
        grants = database_grants(integration.id)
        if not grants:
            continue
        try:
            check_roles(integration, grants)
        except Exception as exc:  # a check that cannot run leaves the flags as they were
            log.warning("agent role check for %s failed: %s", integration.id, type(exc).__name__)


def due_for_check(now: Any = None) -> list[tuple[str, Any]]:
    """(id, last_checked_at) of enabled, watched integrations whose own interval has elapsed.

    Compared in Python: interval arithmetic on a column differs on every database engine, and the
    rows are three small columns each.
    """
    now = now or timezone.now()
    rows = Integration.objects.filter(enabled=True, status__in=services.CHECKED_STATUSES).values_list(
        "id", "last_checked_at", "health_check_interval"
    )
    return [
        (integration_id, last)
        for integration_id, last, interval in rows
        if last is None or last + timedelta(seconds=interval) <= now
    ]


@hub_task("integrations.dispatch_health_checks", acks_late=False, soft_time_limit=20, time_limit=30, expires=30)
def dispatch_health_checks(self: Any) -> dict[str, Any]:
    """Beat calls this every few seconds: enqueue one check per due integration, once.

    Claiming is a conditional UPDATE of last_checked_at per row (only if unchanged), so two
    dispatchers racing (beat restarted, a slow run overlapping the next) never enqueue one check twice.
    """
    now = timezone.now()
    claimed_ids: list[str] = []
    by_last_check: dict[Any, list[str]] = {}
    for integration_id, last_checked_at in due_for_check(now):
        by_last_check.setdefault(last_checked_at, []).append(integration_id)
    with transaction.atomic():  # one commit for the whole batch, not one per row
        for last_checked_at, ids in by_last_check.items():
            # Rows checked together share their timestamp, so a group is usually claimed in one UPDATE.
            group = Integration.objects.filter(pk__in=ids)
            group = (
                group.filter(last_checked_at=last_checked_at)
                if last_checked_at
                else group.filter(last_checked_at__isnull=True)
            )
            if group.update(last_checked_at=now) == len(ids):
                claimed_ids.extend(ids)
                continue
            # Someone else touched part of the group: find out row by row which ones are ours.
            claimed_ids.extend(Integration.objects.filter(pk__in=ids, last_checked_at=now).values_list("id", flat=True))
    size = settings.HEALTH_CHECK_BATCH_SIZE
    for start in range(0, len(claimed_ids), size):
        health_check_batch.apply_async(args=[claimed_ids[start : start + size]])
    return {"enqueued": len(claimed_ids)}


@hub_task("integrations.refresh_oauth_tokens", acks_late=False, soft_time_limit=50, time_limit=60, expires=60)
def refresh_oauth_tokens(self: Any) -> dict[str, Any]:
    """Beat calls this every OAUTH2_REFRESH_BEAT_SECONDS: tokens about to enter their refresh margin are
    refreshed now (single-flight with the workers' on-demand refresh), not by the next call."""
    return refresh_expiring_tokens(within=float(settings.OAUTH2_REFRESH_BEAT_SECONDS))


@hub_task("integrations.prune_events", soft_time_limit=300, time_limit=360)
def prune_events(self: Any) -> dict[str, Any]:
    """Health-check events older than HEALTH_EVENT_RETENTION_DAYS go; config and status history stays."""
    cutoff = timezone.now() - timedelta(days=settings.HEALTH_EVENT_RETENTION_DAYS)
    deleted, _ = IntegrationEvent.objects.filter(type=EventType.HEALTH_CHECK, created_at__lt=cutoff).delete()
    return {"deleted": deleted}


@hub_task("integrations.release_stuck_connects", soft_time_limit=30, time_limit=60)
def release_stuck_connects(self: Any) -> dict[str, Any]:
    """A connect whose every delivery was lost (e.g. Redis wiped) must not stay `connecting` forever."""
    cutoff = timezone.now() - timedelta(seconds=settings.CONNECT_STUCK_SECONDS)
    released = 0
    for integration in Integration.objects.filter(status=Status.CONNECTING, updated_at__lt=cutoff):
        services.set_status(integration, Status.ERROR, message="connect did not finish; try connecting again")
        released += 1
    return {"released": released}
