"""The mirror kept fresh: deliveries verified and recorded in the web process, employees re-read from the
provider in a worker (through the connector's choke point: rate limit, retry, metrics), reconciliation of
what webhooks missed through ``/employees/changed``, and the full sync.

A delivery only says *which* employee changed; the worker reads that employee's current state, so
deliveries arriving twice or out of order leave the same row (idempotent, and ordered per record by the
provider's own latest state).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable, Mapping
from typing import Any

import httpx
from celery import current_app
from django.db import IntegrityError, transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from connectors.errors import ConnectorError
from connectors.http import bamboohr_webhooks
from connectors.http.transport import checked_transport
from integrations import services
from integrations.models import Integration
from integrations.sync.models import (
    ChangeEvent,
    MirroredEmployee,
    OutboundDelivery,
    Subscription,
    SyncState,
    WebhookDelivery,
)
from integrations.target_policy import target_policy
from integrations.tools import scope_cache

log = logging.getLogger(__name__)

WEBHOOK_KEY = "webhook_private_key"  # the credential that holds the webhook's private key
REPLAY_MEMORY = dt.timedelta(seconds=2 * bamboohr_webhooks.WINDOW_SECONDS)
BATCH = 200
# BambooHR's change times have whole seconds: each reconciliation asks from a little before the last
# answer's "latest" (re-reading an employee is idempotent; missing one is not).
OVERLAP = dt.timedelta(seconds=2)


# --- receiving ---------------------------------------------------------------------------------
def receive(integration_id: str, headers: Mapping[str, str], body: bytes) -> tuple[int, str]:
    """Verify and record one delivery; an accepted one is refreshed by a worker. Returns (HTTP status, why)."""
    integration = Integration.objects.filter(pk=integration_id, kind="bamboohr").first()
    if integration is None:
        return 404, "no BambooHR integration with this id"
    signature = headers.get("X-BambooHR-Signature", "")
    digest = hashlib.sha256(signature.encode()).hexdigest() if signature else ""
    record = WebhookDelivery(integration=integration, integration_ref=integration.id, signature_digest=digest)
    try:
        bamboohr_webhooks.verify(
            str((integration.credentials or {}).get(WEBHOOK_KEY) or ""),
            body,
            headers.get("X-BambooHR-Timestamp", ""),
            signature,
            now=time.time(),
        )
        delivery = bamboohr_webhooks.parse(body, headers.get("Content-Type", ""))
        seen = WebhookDelivery.objects.filter(
            integration_ref=integration.id,
            signature_digest=digest,
            verdict=WebhookDelivery.Verdict.ACCEPTED,
            received_at__gte=timezone.now() - REPLAY_MEMORY,
        )
        if seen.exists():
            raise bamboohr_webhooks.DeliveryRefused("replayed: this signature was already accepted")
    except bamboohr_webhooks.DeliveryRefused as exc:
        record.verdict, record.reason = WebhookDelivery.Verdict.REFUSED, str(exc)
        record.save()
        log.warning("webhook delivery for %s refused: %s", integration.id, exc)
        return 401, str(exc)
    record.verdict = WebhookDelivery.Verdict.ACCEPTED
    record.event_type, record.employee_ids = delivery.event_type, delivery.employee_ids
    with transaction.atomic():
        record.save()
        SyncState.objects.update_or_create(integration=integration, defaults={"last_webhook_at": record.received_at})
        if delivery.employee_ids:
            ids = list(delivery.employee_ids)
            # Sent by name (services import no tasks); the registered task's own options apply.
            transaction.on_commit(
                lambda: current_app.signature("sync.refresh_employees", args=[integration.id, ids]).apply_async(),
                robust=True,
            )
    return 200, "accepted"


# --- the mirror ----------------------------------------------------------------------------------
def _upsert(integration: Integration, employees: Iterable[Any], *, at: dt.datetime) -> int:
    """Write each employee's current state; a real change (new, different, or back from a tombstone)
    becomes a ChangeEvent for the feed and the subscribers."""
    count = 0
    changes: list[ChangeEvent] = []
    for employee in employees:
        row = employee.as_dict()
        raw = row.pop("raw", None) or {}
        remote_id = str(employee.id)
        values = {
            "data": row,
            "raw": raw,
            "remote_updated_at": _parse_time(raw.get("lastChanged")),
            "synced_at": at,
            "deleted_at": None,
        }
        with transaction.atomic():
            current = (
                MirroredEmployee.objects.select_for_update()
                .filter(integration=integration, remote_id=remote_id)
                .first()
            )
            if current is None:
                try:
                    with transaction.atomic():  # two workers inserting the same new employee
                        MirroredEmployee.objects.create(integration=integration, remote_id=remote_id, **values)
                    changes.append(_change(integration, remote_id, "created", sorted(row)))
                except IntegrityError:
                    MirroredEmployee.objects.filter(integration=integration, remote_id=remote_id).update(**values)
            else:
                differ = sorted(k for k in set(row) | set(current.data) if row.get(k) != current.data.get(k))
                if differ or current.deleted_at is not None:
                    changes.append(_change(integration, remote_id, "updated", differ))
                for name, value in values.items():
                    setattr(current, name, value)
                current.save()
        count += 1
    _publish(changes)
    return count


def _change(integration: Integration, remote_id: str, action: str, fields: list[str]) -> ChangeEvent:
    return ChangeEvent(integration=integration, remote_id=remote_id, action=action, fields=fields)


def _tombstone(integration: Integration, remote_ids: Iterable[str], *, at: dt.datetime) -> int:
    with transaction.atomic():
        living = MirroredEmployee.objects.select_for_update().filter(
            integration=integration, remote_id__in=list(remote_ids), deleted_at__isnull=True
        )
        gone = list(living.values_list("remote_id", flat=True))
        MirroredEmployee.objects.filter(integration=integration, remote_id__in=gone).update(deleted_at=at, synced_at=at)
    _publish([_change(integration, remote_id, "deleted", []) for remote_id in gone])
    return len(gone)


def _parse_time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def refresh_employees(integration_id: str, employee_ids: list[str]) -> dict[str, int]:
    """Re-read these employees from the provider into the mirror; one the provider no longer has is a
    tombstone."""
    integration = Integration.objects.get(pk=integration_id)
    ids = sorted({str(i) for i in employee_ids})
    found = services.run_operation(
        integration_id, "list_employees", {"employee_ids": ids}, unified=True, include_raw=True
    )
    at = timezone.now()
    present = {str(e.id) for e in found}
    updated = _upsert(integration, found, at=at)
    gone = _tombstone(integration, [i for i in ids if i not in present], at=at)
    return {"updated": updated, "deleted": gone}


def reconcile(integration_id: str) -> dict[str, Any]:
    """What webhooks missed: every employee changed since the last answer's ``latest`` is read again."""
    integration = Integration.objects.get(pk=integration_id)
    state, _ = SyncState.objects.get_or_create(integration=integration)
    since = state.changes_since or (timezone.now() - dt.timedelta(days=1))
    answer = services.run_operation(integration_id, "changed_employees", since - OVERLAP)
    changes = answer.get("changes") or []
    deleted = [str(c["id"]) for c in changes if c.get("action") == "deleted"]
    others = [str(c["id"]) for c in changes if c.get("action") != "deleted"]
    updated = 0
    for start in range(0, len(others), BATCH):
        updated += refresh_employees(integration_id, others[start : start + BATCH])["updated"]
    at = timezone.now()
    gone = _tombstone(integration, deleted, at=at)
    latest = _parse_time(answer.get("latest")) or since
    SyncState.objects.filter(pk=state.pk).update(changes_since=latest, reconciled_at=at, last_error="")
    return {"changed": len(changes), "updated": updated, "deleted": gone, "since": latest.isoformat()}


def full_sync(integration_id: str) -> dict[str, Any]:
    """Every employee into the mirror; rows the provider no longer has become tombstones. Safe to run
    again after an interruption (it upserts), with progress on the SyncState row."""
    integration = Integration.objects.get(pk=integration_id)
    started = timezone.now()
    SyncState.objects.update_or_create(
        integration=integration,
        defaults={"full_sync_started_at": started, "full_sync_finished_at": None, "full_sync_done": 0},
    )
    # The changes cursor starts before the read, so a change made during it is reconciled later.
    employees = services.run_operation(integration_id, "list_employees", {}, unified=True, include_raw=True)
    SyncState.objects.filter(integration=integration).update(full_sync_total=len(employees))
    done = 0
    for start in range(0, len(employees), BATCH):
        chunk = employees[start : start + BATCH]
        with transaction.atomic():
            done += _upsert(integration, chunk, at=started)
            SyncState.objects.filter(integration=integration).update(full_sync_done=done)
    present = {str(e.id) for e in employees}
    stale = MirroredEmployee.objects.filter(integration=integration, deleted_at__isnull=True).exclude(
        remote_id__in=present
    )
    gone = _tombstone(integration, stale.values_list("remote_id", flat=True), at=timezone.now())
    SyncState.objects.filter(integration=integration).update(
        full_sync_finished_at=timezone.now(), changes_since=started, last_error=""
    )
    return {"employees": done, "deleted": gone}


def status(integration: Integration) -> dict[str, Any]:
    state = SyncState.objects.filter(integration=integration).first()
    mirrored = MirroredEmployee.objects.filter(integration=integration)
    return {
        "employees": mirrored.filter(deleted_at__isnull=True).count(),
        "deleted": mirrored.filter(deleted_at__isnull=False).count(),
        "full_sync": None
        if state is None or state.full_sync_started_at is None
        else {
            "started_at": state.full_sync_started_at,
            "finished_at": state.full_sync_finished_at,
            "done": state.full_sync_done,
            "total": state.full_sync_total,
        },
        "reconciled_at": state.reconciled_at if state else None,
        "last_webhook_at": state.last_webhook_at if state else None,
        "webhook_refusals_24h": WebhookDelivery.objects.filter(
            integration_ref=integration.id,
            verdict=WebhookDelivery.Verdict.REFUSED,
            received_at__gte=timezone.now() - dt.timedelta(hours=24),
        ).count(),
    }


def record_failure(integration_id: str, exc: ConnectorError) -> None:
    SyncState.objects.filter(integration_id=integration_id).update(last_error=f"{exc.category.value}: {exc.message}")


# --- the change feed and outbound webhooks -------------------------------------------------------
# Attempts after the first, in seconds: about 15 hours in all (Standard Webhooks' suggested schedule),
# then the delivery is failed and the subscription marked failing.
RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000)
FEED_PAGE = 500


def _publish(changes: list[ChangeEvent]) -> None:
    """Store the changes; each active subscription of their integration gets a pending delivery, sent
    after commit by a worker."""
    if not changes:
        return
    # A record scope's cached employee ids may have changed with them (an employee moved department).
    for integration_id in {c.integration_id for c in changes}:
        scope_cache.forget(integration_id)
    with transaction.atomic():
        saved = ChangeEvent.objects.bulk_create(changes)  # ids set (PostgreSQL, MariaDB, SQLite >= 3.35)
        by_integration: dict[str, list[ChangeEvent]] = {}
        for change in saved:
            by_integration.setdefault(change.integration_id, []).append(change)
        pending = [
            OutboundDelivery(subscription=subscription, change=change)
            for integration_id, found in by_integration.items()
            for subscription in Subscription.objects.filter(integration_id=integration_id, active=True)
            for change in found
        ]
        if pending:
            OutboundDelivery.objects.bulk_create(pending, ignore_conflicts=True)
            transaction.on_commit(lambda: current_app.signature("sync.deliver_pending").apply_async(), robust=True)


def feed(integrations: Any, cursor: int, limit: int = FEED_PAGE) -> dict[str, Any]:
    """Changes after ``cursor`` (an id from an earlier page; 0 from the start) of these integrations."""
    rows = list(ChangeEvent.objects.filter(integration__in=integrations, pk__gt=cursor).order_by("pk")[:limit])
    return {
        "changes": [row.as_dict() for row in rows],
        "next_cursor": rows[-1].pk if rows else cursor,
        "has_more": len(rows) == limit,
    }


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def deliver_pending(*, now: dt.datetime | None = None, limit: int = 200) -> dict[str, int]:
    """Send what is due, oldest first, one POST per change, signed with the subscription's secret."""
    now = now or timezone.now()
    due = list(
        OutboundDelivery.objects.select_related("subscription", "change")
        .filter(state=OutboundDelivery.State.PENDING, next_attempt_at__lte=now, subscription__active=True)
        .order_by("change_id")[:limit]
    )
    counts = {"delivered": 0, "retrying": 0, "failed": 0}
    if not due:
        return counts
    with httpx.Client(transport=checked_transport(target_policy()), timeout=10, follow_redirects=False) as client:
        for delivery in due:
            # Claim it: another worker that picked the same row leaves it alone.
            claimed = OutboundDelivery.objects.filter(
                pk=delivery.pk, state=OutboundDelivery.State.PENDING, attempts=delivery.attempts
            ).update(attempts=delivery.attempts + 1, next_attempt_at=now + dt.timedelta(minutes=5))
            if not claimed:
                continue
            delivery.attempts += 1
            body = json.dumps(
                {"type": f"{delivery.change.entity}.{delivery.change.action}", **delivery.change.as_dict()}
            )
            message_id = f"msg_{delivery.change_id}"
            sent_at = timezone.now()
            headers = {
                "content-type": "application/json",
                "webhook-id": message_id,
                "webhook-timestamp": str(int(sent_at.timestamp())),
                "webhook-signature": Webhook(delivery.subscription.secret).sign(message_id, sent_at, body),
            }
            status, error = 0, ""
            try:
                status = client.post(delivery.subscription.url, content=body, headers=headers).status_code
            except ConnectorError as exc:  # refused by the network policy
                error = exc.message[:200]
            except httpx.HTTPError as exc:
                error = type(exc).__name__
            outcome = _settle(delivery, status, error, now=now)
            counts[outcome] += 1
    return counts


def _settle(delivery: OutboundDelivery, status: int, error: str, *, now: dt.datetime) -> str:
    subscription = delivery.subscription
    if 200 <= status < 300:
        OutboundDelivery.objects.filter(pk=delivery.pk).update(
            state=OutboundDelivery.State.DELIVERED, delivered_at=now, last_status=status, last_error=""
        )
        Subscription.objects.filter(pk=subscription.pk, failing_since__isnull=False).update(failing_since=None)
        return "delivered"
    retries = delivery.attempts - 1
    give_up = retries >= len(RETRY_SCHEDULE)
    OutboundDelivery.objects.filter(pk=delivery.pk).update(
        state=OutboundDelivery.State.FAILED if give_up else OutboundDelivery.State.PENDING,
        last_status=status or None,
        last_error=error or f"HTTP {status}",
        next_attempt_at=now + dt.timedelta(seconds=0 if give_up else RETRY_SCHEDULE[retries]),
    )
    Subscription.objects.filter(pk=subscription.pk, failing_since__isnull=True).update(failing_since=now)
    return "failed" if give_up else "retrying"


def replay(delivery_id: int) -> None:
    """Send a delivery again (a failed or delivered one): pending now, with a fresh retry budget."""
    OutboundDelivery.objects.filter(pk=delivery_id).update(
        state=OutboundDelivery.State.PENDING, attempts=0, next_attempt_at=timezone.now()
    )
