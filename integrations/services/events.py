"""The one path for a status change (row, event, push), the event rows and the live pushes.

Everything that changes an integration's status calls ``set_status``; a batch of health checks hands it
an ``EventBatch`` so that the rows go in with one statement and the pushes in one channel-layer message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from integrations import live_events
from integrations.models import EventType, Integration, IntegrationEvent, Status


def actor_name(actor: Any) -> str:
    """Who did it, as an event names them: a user's name, a string as given, or nobody."""
    if actor is None:
        return ""
    if isinstance(actor, str):
        return actor
    return getattr(actor, "get_username", lambda: str(actor))()


def _integration_id(integration: Integration | str) -> str:
    return integration if isinstance(integration, str) else integration.id


def _payload(event: str, integration: Integration | str, **fields: Any) -> dict[str, Any]:
    """A live event as the browsers receive it."""
    payload: dict[str, Any] = {
        "event": event,
        "integration": _integration_id(integration),
        "status": fields.pop("status", None if isinstance(integration, str) else integration.status),
        "ok": fields.pop("ok", None),
        "latency_ms": fields.pop("latency_ms", None),
        "message": fields.pop("message", ""),
        "at": timezone.now().isoformat(),
    }
    payload.update(fields)
    return payload


class EventBatch:
    """Events and pushes of many integrations in one transaction (a batch of health checks): given to
    ``record_event``, ``push`` and ``set_status``, it inserts the rows with one statement and sends the
    pushes in one channel-layer message after commit (``flush``, inside the transaction)."""

    def __init__(self) -> None:
        self.at = timezone.now()
        self.events: list[IntegrationEvent] = []
        self.payloads: list[dict[str, Any]] = []

    def flush(self) -> None:
        IntegrationEvent.objects.bulk_create(self.events)
        payloads = self.payloads
        transaction.on_commit(lambda: live_events.publish_events(payloads))


def record_event(
    integration: Integration | str,
    type: str,
    *,
    ok: bool | None = None,
    latency_ms: float | None = None,
    actor: str = "",
    message: str = "",
    detail: Mapping[str, Any] | None = None,
    batch: EventBatch | None = None,
) -> IntegrationEvent:
    """Store one event row (at ``batch``'s flush when given). ``message`` and ``detail`` must already be
    free of secrets."""
    ref = _integration_id(integration)
    # A reference by id alone may name an integration deleted since: the event keeps the id, not the link.
    linked = ref if not isinstance(integration, str) or Integration.objects.filter(pk=ref).exists() else None
    row = IntegrationEvent(
        integration_id=linked,
        integration_ref=ref,
        type=type,
        ok=ok,
        latency_ms=None if latency_ms is None else round(latency_ms, 2),
        actor=str(actor or "")[:150],
        message=message,
        detail=dict(detail or {}),
    )
    if batch is None:
        row.save(force_insert=True)
    else:
        row.created_at = batch.at
        batch.events.append(row)
    return row


def push(event: str, integration: Integration | str, *, batch: EventBatch | None = None, **fields: Any) -> None:
    """Publish a live event to every allowed WebSocket client, after the current transaction commits
    (with ``batch``'s other pushes, in one message, when given)."""
    payload = _payload(event, integration, **fields)
    if batch is None:
        transaction.on_commit(lambda: live_events.publish_event(payload))
    else:
        batch.payloads.append(payload)


# What a status change says in the event log: into a working state "ok", into a failing one "failed", and
# neither for a person's disconnect or a connect under way (those are not failures).
_OUTCOME: dict[str, bool] = {
    Status.CONNECTED: True,
    Status.DEGRADED: False,
    Status.ERROR: False,
    Status.RECONNECT_REQUIRED: False,
}


def set_status(
    integration: Integration,
    status: str,
    *,
    message: str = "",
    actor: str = "",
    batch: EventBatch | None = None,
    **columns: Any,
) -> None:
    """Move to ``status``: the row, and when the status changed an event and a push (into ``batch`` when
    given). last_error follows error states; ``columns`` are other fields written in the same UPDATE."""
    previous = integration.status
    changes: dict[str, Any] = {"status": status, "updated_at": batch.at if batch else timezone.now(), **columns}
    if status in (Status.ERROR, Status.DEGRADED, Status.RECONNECT_REQUIRED):
        changes["last_error"] = message
    elif status == Status.CONNECTED:
        changes["last_error"] = ""
    Integration.objects.filter(pk=integration.pk).update(**changes)
    for name, value in changes.items():
        setattr(integration, name, value)
    if previous == status:
        return
    ok = _OUTCOME.get(status)
    record_event(
        integration,
        EventType.STATUS_CHANGE,
        ok=ok,
        actor=actor,
        message=message or f"{previous} → {status}",
        detail={"from": previous, "to": status},
        batch=batch,
    )
    push("status_change", integration, status=status, ok=ok, message=message, actor=actor, batch=batch)
