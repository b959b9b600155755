"""Live connectors: built from a row with the shared runtime, held per process, closed everywhere on change.

Nothing else builds a connector from a model. A connector gets its token provider from
``TOKEN_PROVIDERS`` by the integration's auth type; ``run_operation`` is how callers (the agent tools)
reach a connector's operations.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from typing import Any

from django.conf import settings
from django.db import transaction

from connectors import registry
from connectors.base import Connector
from connectors.errors import Category, ConnectorError
from integrations import connector_runtime, invalidation, live_events
from integrations.models import Integration
from integrations.services.availability import call_refusal
from integrations.services.tokens import TOKEN_PROVIDERS
from integrations.target_policy import target_policy

log = logging.getLogger(__name__)

# Connector methods that are lifecycle, not operations.
_NOT_OPERATIONS = {"connect", "disconnect", "ensure_connected", "credential"}


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

    def forget_after_fork(self) -> None:
        """A forked child (Celery prefork) must not share its parent's sockets, nor a lock held at fork time.

        Emptied in place, so that every module holding this object sees the child's (empty) set.
        """
        self._lock = threading.RLock()
        self._items = OrderedDict()


def _close_quietly(connector: Connector[Any]) -> None:
    try:
        connector.disconnect()
    except Exception:  # closing must never take a worker down; the pool is gone either way
        log.warning("closing %r failed", connector, exc_info=True)


live_connectors = LiveConnectors(max_size=getattr(settings, "HUB_LIVE_CONNECTORS_MAX", 256))
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=live_connectors.forget_after_fork)


def build_connector(integration: Integration) -> Connector[Any]:
    """A new connector for the row, with the shared runtime (rate limit, circuit, metrics, tokens)."""
    typed = registry.validate_config(integration.kind, integration.config)
    provider_for = TOKEN_PROVIDERS.get(integration.auth_type)
    token_provider = provider_for(integration) if provider_for is not None else None
    runtime = connector_runtime.make_runtime(integration.id, typed, token_provider)
    runtime.policy = target_policy()  # where it may connect: checked again at every connect
    credentials = {k: v for k, v in (integration.credentials or {}).items() if isinstance(v, str)}
    return registry.build(integration.kind, typed, credentials, runtime, auth_type=integration.auth_type)


def connector_for(integration: Integration) -> Connector[Any]:
    """This process's connector for the row's current config_version (built on first use)."""
    connector = live_connectors.get(integration.id, integration.config_version)
    if connector is None:
        connector = live_connectors.put(integration.id, integration.config_version, build_connector(integration))
    return connector


def close_connector(integration_id: str, *, everywhere: bool = True, keep_version: int | None = None) -> None:
    """Close this process's connector for the integration, and ask every other process to do so."""
    live_connectors.discard(integration_id, keep_version)
    if everywhere:
        transaction.on_commit(lambda: invalidation.publish_invalidation(integration_id, keep_version))


def load_integration(integration_id: str) -> Integration | None:
    return Integration.objects.filter(pk=integration_id).first()


def get_metrics(integration_id: str) -> dict[str, Any]:
    """total, successful, failed, success_rate, avg_latency_ms, p95_latency_ms, uptime_seconds, last_error."""
    return connector_runtime.metrics_snapshot(integration_id)


def run_operation(integration_id: str, method: str, *args: Any, **kwargs: Any) -> Any:
    """Call ``method`` on this process's live connector (built and connected on first use).

    Raises ConnectorError: unknown integration or method, an integration only an operator can make
    callable again (``availability.call_refusal``: disabled, disconnected, reconnect required), or
    whatever the outside system said. The connector's choke point checks the circuit itself.
    """
    integration = load_integration(integration_id)
    if integration is None:
        raise ConnectorError(f"no integration {integration_id!r}", category=Category.NOT_FOUND)
    refusal = call_refusal(integration, circuit=False)
    if refusal is not None and refusal.needs_operator:
        raise ConnectorError(
            f"integration {integration_id!r} is {refusal.state}; connect it first", category=Category.CONFIG
        )
    connector = connector_for(integration)
    if method.startswith("_") or method in _NOT_OPERATIONS or not callable(getattr(connector, method, None)):
        raise ConnectorError(f"{integration.kind} has no operation {method!r}", category=Category.INVALID)
    connector.ensure_connected()
    try:
        return getattr(connector, method)(*args, **kwargs)
    finally:
        live_events.maybe_push_metrics(integration.id, lambda: get_metrics(integration.id))
