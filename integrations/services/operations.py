"""Operations a person asks for (connect, disconnect, test): requested in the web process, carried out by
a worker, followed by their id.

``request_*`` records the request and enqueues the task after commit, by the task's registered name
(``OPERATION_TASKS``): the service layer never imports the tasks that call it. ``connect`` and
``disconnect`` are what the worker runs; ``operation_status`` reads an operation's state.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from celery import current_app
from django.db import transaction
from django.utils import timezone

from connectors.errors import Category, ConfigError, ConnectorError
from integrations import operation_store
from integrations.models import AuthType, EventType, Integration, Status
from integrations.services.events import actor_name, record_event, set_status
from integrations.services.runtime import close_connector, connector_for, live_connectors, load_integration

log = logging.getLogger(__name__)

# operation -> the Celery task that carries it out (integrations/tasks.py), by its registered name.
OPERATION_TASKS = {
    "connect": "integrations.connect",
    "disconnect": "integrations.disconnect",
    "test": "integrations.test",
}


class OperationNotFound(LookupError):
    """An operation id that this hub never issued (or whose record has expired)."""


def _enqueue(
    operation: str, integration_id: str, actor: Any, *, prepare: Callable[[Integration], None] | None = None
) -> str:
    task_name = OPERATION_TASKS[operation]
    operation_id = str(uuid.uuid4())
    with transaction.atomic():
        integration = Integration.objects.select_for_update().filter(pk=integration_id).first()
        if integration is None:
            raise Integration.DoesNotExist(f"no integration {integration_id!r}")
        if prepare is not None:
            prepare(integration)
        who = actor_name(actor)
        operation_store.remember_operation(operation_id, operation, integration_id, who)
        transaction.on_commit(lambda: _send(task_name, integration_id, operation_id, who), robust=False)
    return operation_id


def _send(task_name: str, integration_id: str, operation_id: str, actor: str) -> None:
    # A signature by name runs the registered task's own apply_async (its options, eager mode in tests).
    try:
        # The requester's name (never a secret) goes along, so the worker's events say who asked.
        signature = current_app.signature(task_name, args=[integration_id], kwargs={"actor": actor})
        signature.apply_async(task_id=operation_id)
    except Exception as exc:  # the broker is down: say so on the operation instead of a 500
        log.error("could not enqueue %s for %s: %s", task_name, integration_id, type(exc).__name__)
        operation_store.fail_operation(operation_id, "the task queue (Redis) is unreachable; is the broker running?")


def request_connect(integration_id: str, *, actor: Any) -> str:
    """Mark connecting and enqueue the connect task after commit; returns the operation id."""
    who = actor_name(actor)

    def prepare(integration: Integration) -> None:
        if not integration.enabled:
            raise ConfigError(
                f"{integration.id} is disabled; enable it first", {"enabled": ["integration is disabled"]}
            )
        record_event(integration, EventType.CONNECT, actor=who, message="connect requested")
        set_status(integration, Status.CONNECTING, message="connect requested", actor=who)

    return _enqueue("connect", integration_id, actor, prepare=prepare)


def request_disconnect(integration_id: str, *, actor: Any) -> str:
    return _enqueue("disconnect", integration_id, actor)


def request_test(integration_id: str, *, actor: Any) -> str:
    return _enqueue("test", integration_id, actor)


_STATES = {
    "PENDING": "pending",
    "RECEIVED": "pending",
    "STARTED": "running",
    "RETRY": "running",
    "SUCCESS": "succeeded",
    "FAILURE": "failed",
    "REVOKED": "failed",
    "REJECTED": "failed",
}


def operation_status(operation_id: str) -> dict[str, Any]:
    """{"id", "state", "result", "operation", "integration"}. Raises OperationNotFound for unknown ids."""
    record = operation_store.operation_record(operation_id)
    if record is None:
        raise OperationNotFound(operation_id)
    status: dict[str, Any] = {
        "id": operation_id,
        "state": "pending",
        "result": None,
        "operation": record.get("operation"),
        "integration": record.get("integration"),
    }
    if record.get("error"):
        status.update(state="failed", result={"ok": False, "message": record["error"]})
        return status
    result = operation_store.task_result(operation_id)
    state = _STATES.get(result.state, "running")
    if state == "succeeded":
        value = result.result if isinstance(result.result, dict) else {"ok": True}
        status["result"] = value
        if value.get("ok") is False:
            state = "failed"
    elif state == "failed":
        exc = result.result
        message = exc.message if isinstance(exc, ConnectorError) else f"task failed ({type(exc).__name__})"
        status["result"] = {"ok": False, "message": message}
    status["state"] = state
    return status


def wait_for_operation(operation_id: str, timeout: float) -> dict[str, Any]:
    """Poll until the operation finishes or ``timeout`` seconds pass; same shape as operation_status."""
    deadline = time.monotonic() + max(0.0, timeout)
    delay = 0.02
    while True:
        status = operation_status(operation_id)
        if status["state"] in ("succeeded", "failed") or time.monotonic() >= deadline:
            return status
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 0.25)


def _error_result(exc: ConnectorError) -> dict[str, Any]:
    # Plain transient errors were already retried with backoff inside the connector's choke point; what
    # is left worth rescheduling is a failure that says when to come back (rate limit, open circuit).
    return {
        "ok": False,
        "category": exc.category.value,
        "message": exc.message,
        "retryable": not exc.permanent and exc.retry_after is not None,
        "retry_after": exc.retry_after,
    }


def connect(integration_id: str, *, final: bool = True, actor: str = "") -> dict[str, Any]:
    """Open (or reuse) this process's connector and mark the integration connected.

    A transient failure with ``final=False`` leaves the status ``connecting`` and returns
    ``retryable: True`` (with ``retry_after`` when known) so the task reschedules itself.
    """
    integration = load_integration(integration_id)
    if integration is None:
        return {"ok": False, "message": "integration not found", "retryable": False}
    if not integration.enabled:
        return {"ok": False, "message": "integration is disabled", "retryable": False, "status": integration.status}
    started = time.perf_counter()
    try:
        connector = connector_for(integration)
        connector.connect()
        test_result = connector.test_connection()
        if not test_result.ok:
            raise ConnectorError(
                test_result.message or "connection test failed",
                category=test_result.category or Category.UNKNOWN,
                retry_after=test_result.details.get("retry_after"),
            )
    except ConnectorError as exc:
        latency_ms = (time.perf_counter() - started) * 1000
        result = _error_result(exc) | {"latency_ms": round(latency_ms, 2)}
        if result["retryable"] and not final:
            record_event(
                integration,
                EventType.CONNECT,
                actor=actor,
                ok=False,
                latency_ms=latency_ms,
                message=f"{exc.category.value}: {exc.message} (will retry)",
                detail={"category": exc.category.value, "retry_after": exc.retry_after},
            )
            return result | {"status": integration.status}
        live_connectors.discard(integration.id)
        with transaction.atomic():
            record_event(
                integration,
                EventType.CONNECT,
                actor=actor,
                ok=False,
                latency_ms=latency_ms,
                message=f"{exc.category.value}: {exc.message}",
                detail={"category": exc.category.value},
            )
            status = (
                Status.RECONNECT_REQUIRED
                if (exc.category == Category.AUTH and integration.auth_type == AuthType.OAUTH2)
                else Status.ERROR
            )
            set_status(integration, status, message=f"{exc.category.value}: {exc.message}", actor=actor)
            Integration.objects.filter(pk=integration.pk).update(last_checked_at=timezone.now())
        return result | {"retryable": False, "status": integration.status}
    latency_ms = (time.perf_counter() - started) * 1000
    with transaction.atomic():
        Integration.objects.filter(pk=integration.pk).update(
            consecutive_failures=0, consecutive_successes=0, last_checked_at=timezone.now()
        )
        record_event(
            integration,
            EventType.CONNECT,
            actor=actor,
            ok=True,
            latency_ms=latency_ms,
            message="connected",
            detail=test_result.details,
        )
        set_status(integration, Status.CONNECTED, message="connected", actor=actor)
    return {"ok": True, "status": Status.CONNECTED.value, "latency_ms": round(latency_ms, 2)}


def disconnect(integration_id: str, *, actor: str = "") -> dict[str, Any]:
    """Close the connector everywhere and mark disconnected. Safe to run twice."""
    integration = load_integration(integration_id)
    close_connector(integration_id)
    if integration is None:
        return {"ok": True, "status": Status.DISCONNECTED.value, "message": "integration not found"}
    with transaction.atomic():
        if integration.status != Status.DISCONNECTED:
            record_event(integration, EventType.DISCONNECT, ok=True, message="disconnected", actor=actor)
        set_status(integration, Status.DISCONNECTED, message="disconnected", actor=actor)
    return {"ok": True, "status": Status.DISCONNECTED.value}
