"""Celery tasks of the mirror: thin adapters over integrations.sync.services (ids only, never payloads
with secrets). A transient provider error (429 with Retry-After, 5xx) is retried after the wait it names."""

from __future__ import annotations

from typing import Any

from connectors.errors import ConnectorError
from integrations.models import Integration
from integrations.sync import services
from integrations.task_base import hub_task


def _retry_later(task: Any, integration_id: str, exc: ConnectorError) -> None:
    services.record_failure(integration_id, exc)
    if exc.permanent or task.request.retries >= task.max_retries:
        raise exc
    raise task.retry(countdown=min(300.0, exc.retry_after or 2.0 ** (task.request.retries + 1)), exc=exc)


@hub_task("sync.refresh_employees", max_retries=5, soft_time_limit=60, time_limit=90)
def refresh_employees(self: Any, integration_id: str, employee_ids: list[str]) -> dict[str, int]:
    try:
        return services.refresh_employees(integration_id, employee_ids)
    except ConnectorError as exc:
        _retry_later(self, integration_id, exc)
        raise


@hub_task("sync.reconcile", max_retries=3, soft_time_limit=300, time_limit=330)
def reconcile(self: Any, integration_id: str) -> dict[str, Any]:
    try:
        return services.reconcile(integration_id)
    except ConnectorError as exc:
        _retry_later(self, integration_id, exc)
        raise


@hub_task("sync.full_sync", max_retries=5, soft_time_limit=1800, time_limit=1860)
def full_sync(self: Any, integration_id: str) -> dict[str, Any]:
    try:
        return services.full_sync(integration_id)
    except ConnectorError as exc:
        _retry_later(self, integration_id, exc)
        raise


@hub_task("sync.reconcile_all", max_retries=0, soft_time_limit=60, time_limit=90, ignore_result=True)
def reconcile_all(self: Any) -> int:
    """Beat's entry: one reconciliation per connected BambooHR integration that has a mirror."""
    ids = list(
        Integration.objects.filter(kind="bamboohr", enabled=True, sync_state__isnull=False).values_list("id", flat=True)
    )
    for integration_id in ids:
        reconcile.delay(integration_id)
    return len(ids)


@hub_task("sync.deliver_pending", max_retries=0, soft_time_limit=240, time_limit=270, ignore_result=True)
def deliver_pending(self: Any) -> dict[str, int]:
    """Outbound webhooks that are due; beat runs it too, for retries whose time has come."""
    return services.deliver_pending()
