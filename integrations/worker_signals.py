"""Celery signal handlers of the hub's worker and beat processes, connected in IntegrationsConfig.ready()."""

from __future__ import annotations

from typing import Any

from celery import signals

from integrations import services
from integrations.liveness import start_heartbeat


def _worker_alive(sender: Any = None, **_: Any) -> None:
    """A heartbeat key in Redis per worker: /healthz and /metrics read liveness without a broadcast."""
    start_heartbeat("worker", getattr(sender, "hostname", None))


def _beat_alive(sender: Any = None, **_: Any) -> None:
    start_heartbeat("beat")


def _close_connectors(**_: Any) -> None:
    """Close pools cleanly when a pool process exits (SIGKILL skips this; the server reaps those)."""
    services.live_connectors.close_all()


def connect() -> None:
    signals.worker_ready.connect(_worker_alive, dispatch_uid="hub.worker_alive")
    signals.beat_init.connect(_beat_alive, dispatch_uid="hub.beat_alive")
    signals.worker_process_shutdown.connect(_close_connectors, dispatch_uid="hub.close_connectors")
