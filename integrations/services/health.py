"""Is it healthy: the connection test, the scheduled health checks (batched, with hysteresis) and the summary.

Worker-side: a probe is the kind's cheapest real round trip on this process's live connector. Results
become events, counters and status changes through ``events.set_status``, and live pushes.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Count, F
from django.utils import timezone

from connectors.base import TestResult
from connectors.errors import Category, ConnectorError
from integrations.models import EventType, Integration, Status
from integrations.services.events import EventBatch, push, record_event, set_status
from integrations.services.runtime import connector_for, get_metrics, load_integration

# Statuses the scheduled health check watches: a disconnected integration is left alone on purpose.
CHECKED_STATUSES = (Status.CONNECTED, Status.DEGRADED, Status.ERROR)


def _probe(integration: Integration) -> TestResult:
    """test_connection() on this process's connector; building it may fail with a ConfigError."""
    started = time.perf_counter()
    try:
        connector = connector_for(integration)
    except ConnectorError as exc:
        return TestResult.failed(exc, started)
    return connector.test_connection()


def test(integration_id: str, *, actor: str = "") -> dict[str, Any]:
    """Run the kind's cheapest real round trip; an event and a push. Does not change the status."""
    integration = load_integration(integration_id)
    if integration is None:
        return {"ok": False, "message": "integration not found"}
    result = _probe(integration)
    message = "connection test passed" if result.ok else f"{result.category}: {result.message}"
    with transaction.atomic():
        Integration.objects.filter(pk=integration.pk).update(last_checked_at=timezone.now())
        record_event(
            integration,
            EventType.TEST,
            actor=actor,
            ok=result.ok,
            latency_ms=result.latency_ms,
            message=message,
            detail={"category": result.category, **result.details},
        )
        push(
            "test",
            integration,
            actor=actor,
            ok=result.ok,
            latency_ms=round(result.latency_ms, 2),
            message=message,
            metrics=get_metrics(integration.id),
        )
    return result.as_dict() | {"status": integration.status}


def _next_status(current: str, ok: bool, failures: int, successes: int, category: str | None) -> str:
    """Hysteresis: one failure degrades, N in a row is an error; M successes in a row recover."""
    if ok:
        if current in (Status.DEGRADED, Status.ERROR) and successes >= settings.HEALTH_SUCCESSES_TO_RECOVER:
            return Status.CONNECTED
        return current
    if category in (Category.AUTH.value, Category.CONFIG.value) or failures >= settings.HEALTH_FAILURES_TO_ERROR:
        return Status.ERROR
    if current == Status.CONNECTED:
        return Status.DEGRADED
    return current


def health_check(integration_id: str) -> dict[str, Any]:
    """A scheduled check: event row, counters, status with hysteresis, push. Skips unwatched states."""
    return health_check_many([integration_id])[integration_id]


def _probe_and_measure(integration: Integration) -> tuple[Any, dict[str, Any] | None]:
    """The probe, then the shared metrics including it (both Redis round trips overlap across threads)."""
    try:
        result = _probe(integration)
        try:
            metrics: dict[str, Any] | None = get_metrics(integration.id)
        except ConnectorError:
            metrics = None  # Redis hiccup: the check result still goes out
        return result, metrics
    finally:
        connections.close_all()  # this thread's own connections (an OAuth token read, say)


def health_check_many(integration_ids: list[str], *, probe_threads: int = 8) -> dict[str, dict[str, Any]]:
    """Check several integrations: probes run in parallel threads, results land in ONE transaction
    (event rows, counters, statuses) and ONE channel-layer message after commit.

    The dispatcher sends batches so that 1,000 checks cost 40 task round trips, not 1,000.
    """
    skipped = {"ok": None, "skipped": True}
    outcome: dict[str, dict[str, Any]] = {integration_id: dict(skipped) for integration_id in integration_ids}
    rows = list(Integration.objects.filter(pk__in=integration_ids, enabled=True, status__in=CHECKED_STATUSES))
    if not rows:
        return outcome
    with ThreadPoolExecutor(max_workers=min(probe_threads, len(rows)), thread_name_prefix="hub-probe") as pool:
        measured = dict(zip([r.id for r in rows], pool.map(_probe_and_measure, rows), strict=True))
    probes = {integration_id: result for integration_id, (result, _m) in measured.items()}

    with transaction.atomic():
        batch = EventBatch()
        now = batch.at
        current = {r.id: r for r in Integration.objects.select_for_update().filter(pk__in=list(probes))}
        failed_steady: list[Integration] = []  # status unchanged, counters changed
        steady_ok: list[str] = []  # healthy and unchanged: one UPDATE for all of them
        for integration_id, result in probes.items():
            row = current.get(integration_id)
            if row is None or not row.enabled or row.status not in CHECKED_STATUSES:
                continue  # deleted or disconnected while we were probing
            message = "healthy" if result.ok else f"{result.category}: {result.message}"
            row.consecutive_failures = 0 if result.ok else row.consecutive_failures + 1
            row.consecutive_successes = row.consecutive_successes + 1 if result.ok else 0
            record_event(
                row,
                EventType.HEALTH_CHECK,
                ok=result.ok,
                latency_ms=result.latency_ms,
                message=message,
                detail={
                    "category": result.category,
                    "consecutive_failures": row.consecutive_failures,
                    "consecutive_successes": row.consecutive_successes,
                },
                batch=batch,
            )
            status = _next_status(
                row.status, result.ok, row.consecutive_failures, row.consecutive_successes, result.category
            )
            if status != row.status:
                set_status(
                    row,
                    status,
                    message=message,
                    batch=batch,
                    consecutive_failures=row.consecutive_failures,
                    consecutive_successes=row.consecutive_successes,
                    last_checked_at=now,
                )
            elif result.ok:
                steady_ok.append(row.id)
            else:
                failed_steady.append(row)
            push(
                "health_check",
                row,
                ok=result.ok,
                latency_ms=round(result.latency_ms, 2),
                message=message,
                metrics=measured[integration_id][1],
                batch=batch,
            )
            outcome[integration_id] = result.as_dict() | {"status": row.status}
        # The rows are locked (select_for_update; SQLite's IMMEDIATE transaction), so F() + 1 here equals
        # the counters computed above. Django's bulk_update builds a CASE per row and costs more than this.
        Integration.objects.filter(pk__in=steady_ok).update(
            consecutive_failures=0, consecutive_successes=F("consecutive_successes") + 1, last_checked_at=now
        )
        for row in failed_steady:
            Integration.objects.filter(pk=row.pk).update(
                consecutive_failures=row.consecutive_failures,
                consecutive_successes=row.consecutive_successes,
                last_checked_at=now,
            )
        batch.flush()
    return outcome


# A watched integration whose last check is older than this many intervals is "stale": checks are not
# running (beat stopped, no worker, broker down), so its status is older news than it looks.
STALE_AFTER_INTERVALS = 3


def check_is_stale(status: str, enabled: bool, last_checked_at: Any, interval: int, now: Any = None) -> bool:
    if not enabled or status not in CHECKED_STATUSES or last_checked_at is None:
        return False
    now = now or timezone.now()
    return bool((now - last_checked_at).total_seconds() > STALE_AFTER_INTERVALS * interval)


def health_summary(user: Any) -> dict[str, Any]:
    """Counts per status among what ``user`` may see, an overall word, and a brief per integration
    (``stale``: its scheduled checks stopped happening; ``stale`` at the top counts those)."""
    visible = Integration.objects.visible_to(user)
    counts = {status.value: 0 for status in Status}
    for row in visible.values("status").annotate(n=Count("id")).order_by():
        counts[row["status"]] = row["n"]
    enabled = visible.filter(enabled=True)
    if counts[Status.ERROR] or counts[Status.RECONNECT_REQUIRED]:
        overall = "unhealthy"
    elif counts[Status.DEGRADED] or counts[Status.CONNECTING]:
        overall = "degraded"
    elif enabled.exists():
        overall = "healthy"
    else:
        overall = "empty"
    now = timezone.now()
    integrations = [
        {
            "id": row["id"],
            "name": row["name"],
            "kind": row["kind"],
            "status": row["status"],
            "enabled": row["enabled"],
            "last_checked_at": row["last_checked_at"].isoformat() if row["last_checked_at"] else None,
            "last_error": row["last_error"],
            "stale": check_is_stale(
                row["status"], row["enabled"], row["last_checked_at"], row["health_check_interval"], now
            ),
        }
        for row in visible.values(
            "id", "name", "kind", "status", "enabled", "last_checked_at", "last_error", "health_check_interval"
        )
    ]
    return {
        "overall": overall,
        "total": len(integrations),
        "counts": counts,
        "stale": sum(1 for row in integrations if row["stale"]),
        "integrations": integrations,
    }
