"""The one place that turns integration rows into live connectors, and results back into rows and events.

Views, viewsets, admin actions, tasks, consumers and agent tools call these functions; nothing else
builds a connector from a model. Write-side functions run in the web process and enqueue work after
commit (ids only, never credentials); worker-side functions run where the connector lives.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from connectors import registry
from connectors.base import BaseConfig, Connector
from connectors.errors import Category, ConfigError, ConnectorError
from integrations import connector_runtime, invalidation, live_events, operation_store, rules
from integrations.models import EventType, Integration, IntegrationEvent, Status
from integrations.target_policy import target_policy

log = logging.getLogger(__name__)

# Fields update_integration accepts; anything else is refused with a field error.
UPDATABLE_FIELDS = ("name", "config", "credentials", "enabled", "health_check_interval", "auth_type", "owner")
# Changing one of these makes every process rebuild its live connector.
_CONNECTOR_FIELDS = {"config", "credentials", "auth_type"}
# Statuses the scheduled health check watches: a disconnected integration is left alone on purpose.
CHECKED_STATUSES = (Status.CONNECTED, Status.DEGRADED, Status.ERROR)
# Statuses in which run_operation refuses to touch the outside system.
_NO_OPERATIONS = {Status.DISCONNECTED, Status.RECONNECT_REQUIRED}
# Connector methods that are lifecycle, not operations.
_NOT_OPERATIONS = {"connect", "disconnect", "ensure_connected", "credential"}


class OperationNotFound(LookupError):
    """An operation id that this hub never issued (or whose record has expired)."""


# ---------------------------------------------------------------------------------------------
# Live connectors, per process
# ---------------------------------------------------------------------------------------------


class LiveConnectors:
    """The connectors this process holds open, one per integration, tagged with its config_version.

    Bounded (least recently used closed first) so a worker serving thousands of integrations does not
    hold thousands of pools. Other processes ask us to close one through the invalidation
    channel (config change, disconnect, delete).
    """

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._lock = threading.RLock()
        self._items: OrderedDict[str, tuple[int, Connector[Any]]] = OrderedDict()

    def get(self, integration_id: str, version: int) -> Connector[Any] | None:
        stale: Connector[Any] | None = None
        with self._lock:
            item = self._items.get(integration_id)
            if item is None:
                return None
            if item[0] == version:
                self._items.move_to_end(integration_id)
                return item[1]
            stale = self._items.pop(integration_id)[1]
        _close_quietly(stale)
        return None

    def put(self, integration_id: str, version: int, connector: Connector[Any]) -> Connector[Any]:
        """Keep ``connector``; if another thread got there first, keep theirs and close ours."""
        to_close: list[Connector[Any]] = []
        with self._lock:
            item = self._items.get(integration_id)
            if item is not None and item[0] == version:
                to_close.append(connector)
                connector = item[1]
            else:
                if item is not None:
                    to_close.append(item[1])
                self._items[integration_id] = (version, connector)
                self._items.move_to_end(integration_id)
                while len(self._items) > self.max_size:
                    to_close.append(self._items.popitem(last=False)[1][1])
        for old in to_close:
            _close_quietly(old)
        invalidation.ensure_invalidation_listener(self.discard)
        return connector

    def discard(self, integration_id: str, keep_version: int | None = None) -> bool:
        """Close the held connector unless it already has ``keep_version``."""
        with self._lock:
            item = self._items.get(integration_id)
            if item is None or (keep_version is not None and item[0] == keep_version):
                return False
            del self._items[integration_id]
        _close_quietly(item[1])
        return True

    def close_all(self) -> None:
        with self._lock:
            items = list(self._items.values())
            self._items.clear()
        for _version, connector in items:
            _close_quietly(connector)

    def held(self) -> dict[str, int]:
        with self._lock:
            return {key: version for key, (version, _c) in self._items.items()}


def _close_quietly(connector: Connector[Any]) -> None:
    try:
        connector.disconnect()
    except Exception:  # closing must never take a worker down; the pool is gone either way
        log.warning("closing %r failed", connector, exc_info=True)


live_connectors = LiveConnectors(max_size=getattr(settings, "HUB_LIVE_CONNECTORS_MAX", 256))


def _build_connector(integration: Integration) -> Connector[Any]:
    """A new connector for the row, with the shared runtime (rate limit, circuit, metrics, tokens)."""
    typed = registry.validate_config(integration.kind, integration.config)
    token_provider = None
    if integration.auth_type == "oauth2":
        from integrations.oauth import token_provider_for

        token_provider = token_provider_for(integration)
    runtime = connector_runtime.make_runtime(integration.id, typed, token_provider)
    runtime.policy = target_policy()  # where it may connect: checked again at every connect
    credentials = {k: v for k, v in (integration.credentials or {}).items() if isinstance(v, str)}
    return registry.build(integration.kind, typed, credentials, runtime, auth_type=integration.auth_type)


def _connector_for(integration: Integration) -> Connector[Any]:
    connector = live_connectors.get(integration.id, integration.config_version)
    if connector is None:
        connector = live_connectors.put(integration.id, integration.config_version, _build_connector(integration))
    return connector


def close_connector(integration_id: str, *, everywhere: bool = True, keep_version: int | None = None) -> None:
    """Close this process's connector for the integration, and ask every other process to do so."""
    live_connectors.discard(integration_id, keep_version)
    if everywhere:
        transaction.on_commit(lambda: invalidation.publish_invalidation(integration_id, keep_version))


# ---------------------------------------------------------------------------------------------
# Events, status and live pushes
# ---------------------------------------------------------------------------------------------


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
    if isinstance(integration, str):
        linked = ref if Integration.objects.filter(pk=ref).exists() else None
    else:
        linked = ref
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
    record_event(
        integration,
        EventType.STATUS_CHANGE,
        ok=status == Status.CONNECTED,
        actor=actor,
        message=message or f"{previous} → {status}",
        detail={"from": previous, "to": status},
        batch=batch,
    )
    push("status_change", integration, status=status, ok=status == Status.CONNECTED, message=message, batch=batch)


def set_sharing(integration: Integration, groups: Iterable[Any], *, actor: Any) -> None:
    """Share with exactly ``groups`` (admin, API); a change is recorded as a config_change event."""
    before = sorted(integration.shared_with_groups.values_list("name", flat=True))
    integration.shared_with_groups.set(groups)
    after = sorted(integration.shared_with_groups.values_list("name", flat=True))
    if before != after:
        record_event(
            integration,
            EventType.CONFIG_CHANGE,
            actor=_actor_name(actor),
            message="changed: shared_with_groups",
            detail={"fields": ["shared_with_groups"], "changes": {"shared_with_groups": {"from": before, "to": after}}},
        )


# ---------------------------------------------------------------------------------------------
# Write side (web process)
# ---------------------------------------------------------------------------------------------


def _actor_name(actor: Any) -> str:
    if actor is None:
        return ""
    if isinstance(actor, str):
        return actor
    return getattr(actor, "get_username", lambda: str(actor))()


def validate_config(kind: str, config: Mapping[str, Any] | None) -> BaseConfig:
    """The registry's validation, then the target policy (hosts, URLs, files): field errors by config key."""
    typed = registry.validate_config(kind, config)
    registry.check_targets(kind, typed, target_policy())
    return typed


def _validate(kind: str, auth_type: str, config: Mapping[str, Any] | None, credentials: Mapping[str, Any]) -> None:
    validate_config(kind, config)
    registry.validate_credentials(kind, auth_type, {k: v for k, v in credentials.items() if v is not None})


def _refuse_hub_managed(kind: str, auth_type: str, given: Mapping[str, Any]) -> None:
    """Operators may not type hub-managed credentials (an OAuth2 token comes only from the flow)."""
    managed = {k: v for k, v in given.items() if k in registry.HUB_MANAGED_CREDENTIALS}
    if managed:
        registry.validate_credentials(kind, auth_type, managed, allow_managed=False)


def _full_clean(integration: Integration, exclude: list[str] | None = None) -> None:
    try:
        integration.full_clean(exclude=["credentials", "config", "kind", *(exclude or [])], validate_unique=False)
    except ValidationError as exc:
        errors = {field: [str(m) for m in messages] for field, messages in exc.message_dict.items()}
        raise ConfigError("invalid integration: " + ", ".join(sorted(errors)), errors) from None


@transaction.atomic
def create_integration(
    *,
    actor: Any,
    id: str | None = None,
    name: str,
    kind: str,
    auth_type: str = "none",
    config: Mapping[str, Any] | None = None,
    credentials: Mapping[str, Any] | None = None,
    owner: Any = None,
    enabled: bool = True,
    health_check_interval: int = 60,
) -> Integration:
    """Validate through the registry, store, record a config_change event. Raises ConfigError.

    ``id`` is exact for staff and the hub itself, a prefix for anyone else (``rules.new_id``); omitted, it
    is made from the name. The stored row says which id it got.
    """
    config = dict(config or {})
    clean_credentials = {k: v for k, v in dict(credentials or {}).items() if v not in (None, "")}
    _refuse_hub_managed(kind, auth_type, clean_credentials)
    _validate(kind, auth_type, config, clean_credentials)
    rules.check_file(actor=actor, kind=kind, config=config, owner_id=getattr(owner, "pk", None))
    id = rules.new_id(actor=actor, requested=id, name=name)
    integration = Integration(
        id=id,
        name=name,
        kind=kind,
        auth_type=auth_type,
        config=config,
        credentials=clean_credentials or None,
        owner=owner,
        enabled=enabled,
        health_check_interval=health_check_interval,
    )
    _full_clean(integration)
    integration.save(force_insert=True)
    record_event(
        integration,
        EventType.CONFIG_CHANGE,
        actor=_actor_name(actor),
        message="created",
        detail={
            "created": True,
            "fields": sorted(["name", "kind", "auth_type", "config", "enabled", "health_check_interval"]),
            "credentials": sorted(clean_credentials),
        },
    )
    push("created", integration, message=f"{integration.name} created")
    return integration


def _diff_config(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "config") -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            if isinstance(old.get(key), Mapping) and isinstance(new.get(key), Mapping):
                changes.update(_diff_config(old[key], new[key], f"{prefix}.{key}"))
            else:
                changes[f"{prefix}.{key}"] = {"from": old.get(key), "to": new.get(key)}
    return changes


@transaction.atomic
def update_integration(integration: Integration, *, actor: Any, **changes: Any) -> Integration:
    """Apply ``changes``; credentials merge (absent key kept, None clears). Raises ConfigError."""
    unknown = sorted(set(changes) - set(UPDATABLE_FIELDS))
    if unknown:
        raise ConfigError(f"cannot change: {', '.join(unknown)}", {name: ["not updatable"] for name in unknown})
    # Work on the current row, locked, so two editors do not lose each other's changes.
    current = Integration.objects.select_for_update().get(pk=integration.pk)
    diff: dict[str, Any] = {}
    for field in ("name", "enabled", "health_check_interval", "auth_type"):
        if field in changes and changes[field] != getattr(current, field):
            diff[field] = {"from": getattr(current, field), "to": changes[field]}
            setattr(current, field, changes[field])
    if "owner" in changes and changes["owner"] != current.owner:
        diff["owner"] = {"from": _actor_name(current.owner), "to": _actor_name(changes["owner"])}
        current.owner = changes["owner"]
    before_config = dict(current.config or {})
    if "config" in changes:
        new_config = dict(changes["config"] or {})
        diff.update(_diff_config(current.config or {}, new_config))
        current.config = new_config
    credentials = dict(current.credentials or {})
    if "credentials" in changes:
        given = changes["credentials"] or {}
        if not isinstance(given, Mapping):
            raise ConfigError("credentials must be an object", {"credentials": ["must be an object"]})
        _refuse_hub_managed(current.kind, current.auth_type, given)
        for key, value in given.items():
            if value is None or value == "":
                if key in credentials:
                    credentials.pop(key)
                    diff[f"credentials.{key}"] = "cleared"
            elif credentials.get(key) != value:
                diff[f"credentials.{key}"] = "changed" if key in credentials else "set"
                credentials[key] = value
    _validate(current.kind, current.auth_type, current.config, credentials)
    if "config" in changes or "owner" in diff:
        rules.check_file(
            actor=actor,
            kind=current.kind,
            config=current.config,
            owner_id=current.owner_id,
            integration_id=current.pk,
            before=before_config,
        )
    current.credentials = credentials or None
    _full_clean(current)
    if not diff:
        return current
    connector_changed = any(name.split(".")[0] in _CONNECTOR_FIELDS for name in diff)
    if connector_changed:
        current.config_version += 1
    current.save()
    record_event(
        current,
        EventType.CONFIG_CHANGE,
        actor=_actor_name(actor),
        message="changed: " + ", ".join(sorted(diff)),
        detail={"fields": sorted(diff), "changes": diff, "config_version": current.config_version},
    )
    if connector_changed:
        close_connector(current.id, keep_version=current.config_version)
    if "enabled" in diff and not current.enabled:
        close_connector(current.id)
        if current.status != Status.DISCONNECTED:
            set_status(current, Status.DISCONNECTED, message="disabled", actor=_actor_name(actor))
    push("updated", current, message="changed: " + ", ".join(sorted(diff)), fields=sorted(diff))
    return current


@transaction.atomic
def delete_integration(integration_id: str, *, actor: Any) -> None:
    """Disconnect everywhere, then delete; the events stay (integration_ref keeps the id)."""
    integration = Integration.objects.select_for_update().filter(pk=integration_id).first()
    if integration is None:
        raise Integration.DoesNotExist(f"no integration {integration_id!r}")
    close_connector(integration_id)
    record_event(
        integration, EventType.CONFIG_CHANGE, actor=_actor_name(actor), message="deleted", detail={"deleted": True}
    )
    push("deleted", integration, status=Status.DISCONNECTED, message=f"{integration.name} deleted")
    integration.delete()
    transaction.on_commit(lambda: connector_runtime.forget_shared_state(integration_id))


def _enqueue(
    operation: str, integration_id: str, actor: Any, *, prepare: Callable[[Integration], None] | None = None
) -> str:
    from integrations import tasks

    task = {
        "connect": tasks.connect_integration,
        "disconnect": tasks.disconnect_integration,
        "test": tasks.test_integration,
    }[operation]
    operation_id = str(uuid.uuid4())
    with transaction.atomic():
        integration = Integration.objects.select_for_update().filter(pk=integration_id).first()
        if integration is None:
            raise Integration.DoesNotExist(f"no integration {integration_id!r}")
        if prepare is not None:
            prepare(integration)
        operation_store.remember_operation(operation_id, operation, integration_id, _actor_name(actor))
        transaction.on_commit(lambda: _send(task, integration_id, operation_id), robust=False)
    return operation_id


def _send(task: Any, integration_id: str, operation_id: str) -> None:
    try:
        task.apply_async(args=[integration_id], task_id=operation_id)
    except Exception as exc:  # the broker is down: say so on the operation instead of a 500
        log.error("could not enqueue %s for %s: %s", task.name, integration_id, type(exc).__name__)
        operation_store.fail_operation(operation_id, "the task queue (Redis) is unreachable; is the broker running?")


def request_connect(integration_id: str, *, actor: Any) -> str:
    """Mark connecting and enqueue the connect task after commit; returns the operation id."""
    actor_name = _actor_name(actor)

    def prepare(integration: Integration) -> None:
        if not integration.enabled:
            raise ConfigError(
                f"{integration.id} is disabled; enable it first", {"enabled": ["integration is disabled"]}
            )
        record_event(integration, EventType.CONNECT, actor=actor_name, message="connect requested")
        set_status(integration, Status.CONNECTING, message="connect requested", actor=actor_name)

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


# ---------------------------------------------------------------------------------------------
# Worker side
# ---------------------------------------------------------------------------------------------


def _load(integration_id: str) -> Integration | None:
    return Integration.objects.filter(pk=integration_id).first()


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


def connect(integration_id: str, *, final: bool = True) -> dict[str, Any]:
    """Open (or reuse) this process's connector and mark the integration connected.

    A transient failure with ``final=False`` leaves the status ``connecting`` and returns
    ``retryable: True`` (with ``retry_after`` when known) so the task reschedules itself.
    """
    integration = _load(integration_id)
    if integration is None:
        return {"ok": False, "message": "integration not found", "retryable": False}
    if not integration.enabled:
        return {"ok": False, "message": "integration is disabled", "retryable": False, "status": integration.status}
    started = time.perf_counter()
    try:
        connector = _connector_for(integration)
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
                ok=False,
                latency_ms=latency_ms,
                message=f"{exc.category.value}: {exc.message}",
                detail={"category": exc.category.value},
            )
            status = (
                Status.RECONNECT_REQUIRED
                if (exc.category == Category.AUTH and integration.auth_type == "oauth2")
                else Status.ERROR
            )
            set_status(integration, status, message=f"{exc.category.value}: {exc.message}")
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
            ok=True,
            latency_ms=latency_ms,
            message="connected",
            detail=test_result.details,
        )
        set_status(integration, Status.CONNECTED, message="connected")
    return {"ok": True, "status": Status.CONNECTED.value, "latency_ms": round(latency_ms, 2)}


def disconnect(integration_id: str) -> dict[str, Any]:
    """Close the connector everywhere and mark disconnected. Safe to run twice."""
    integration = _load(integration_id)
    close_connector(integration_id)
    if integration is None:
        return {"ok": True, "status": Status.DISCONNECTED.value, "message": "integration not found"}
    with transaction.atomic():
        if integration.status != Status.DISCONNECTED:
            record_event(integration, EventType.DISCONNECT, ok=True, message="disconnected")
        set_status(integration, Status.DISCONNECTED, message="disconnected")
    return {"ok": True, "status": Status.DISCONNECTED.value}


def _probe(integration: Integration) -> Any:
    """test_connection() on this process's connector; building it may fail with a ConfigError."""
    from connectors.base import TestResult

    started = time.perf_counter()
    try:
        connector = _connector_for(integration)
    except ConnectorError as exc:
        return TestResult(
            ok=False,
            latency_ms=(time.perf_counter() - started) * 1000,
            category=exc.category.value,
            message=exc.message,
        )
    return connector.test_connection()


def test(integration_id: str) -> dict[str, Any]:
    """Run the kind's cheapest real round trip; an event and a push. Does not change the status."""
    integration = _load(integration_id)
    if integration is None:
        return {"ok": False, "message": "integration not found"}
    result = _probe(integration)
    message = "connection test passed" if result.ok else f"{result.category}: {result.message}"
    with transaction.atomic():
        Integration.objects.filter(pk=integration.pk).update(last_checked_at=timezone.now())
        record_event(
            integration,
            EventType.TEST,
            ok=result.ok,
            latency_ms=result.latency_ms,
            message=message,
            detail={"category": result.category, **result.details},
        )
        push(
            "test",
            integration,
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
    from django.db import connections

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


def run_operation(integration_id: str, method: str, *args: Any, **kwargs: Any) -> Any:
    """Call ``method`` on this process's live connector (built and connected on first use).

    Raises ConnectorError: unknown integration or method, a disabled or disconnected integration, or
    whatever the outside system said.
    """
    integration = _load(integration_id)
    if integration is None:
        raise ConnectorError(f"no integration {integration_id!r}", category=Category.NOT_FOUND)
    if not integration.enabled or integration.status in _NO_OPERATIONS:
        state = "disabled" if not integration.enabled else integration.status
        raise ConnectorError(f"integration {integration_id!r} is {state}; connect it first", category=Category.CONFIG)
    connector = _connector_for(integration)
    if method.startswith("_") or method in _NOT_OPERATIONS or not callable(getattr(connector, method, None)):
        raise ConnectorError(f"{integration.kind} has no operation {method!r}", category=Category.INVALID)
    connector.ensure_connected()
    try:
        return getattr(connector, method)(*args, **kwargs)
    finally:
        live_events.maybe_push_metrics(integration.id, lambda: get_metrics(integration.id))


def get_metrics(integration_id: str) -> dict[str, Any]:
    """total, successful, failed, success_rate, avg_latency_ms, p95_latency_ms, uptime_seconds, last_error."""
    return connector_runtime.metrics_snapshot(integration_id)


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


def _reset_for_fork() -> None:
    """A forked child (Celery prefork) must not share its parent's sockets."""
    global live_connectors
    live_connectors = LiveConnectors(max_size=live_connectors.max_size)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_for_fork)
