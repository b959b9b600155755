"""Live pushes: every integration event goes to the browsers through the channel layer (Redis).

One channel-layer group carries every integration event; each consumer filters by visibility.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

log = logging.getLogger(__name__)

EVENTS_GROUP = "hub.integrations"


class _Publisher:
    """One event loop per process, on a daemon thread, that every group_send goes through.

    ``async_to_sync`` would start a fresh loop per call, and channels_redis keeps its connection pool
    per loop: each push would open a new Redis connection. Here the pool lives as long as the process.
    """

    def __init__(self) -> None:
        self._after_fork()

    def _after_fork(self) -> None:
        self.lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None

    def _loop(self) -> asyncio.AbstractEventLoop:
        with self.lock:
            if self.loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="hub-publisher", daemon=True).start()
                self.loop = loop
            return self.loop

    def send(self, group: str, message: dict[str, Any], timeout: float = 5.0) -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            # Wait for the send: a push that follows a commit must not be lost by a process exiting.
            asyncio.run_coroutine_threadsafe(layer.group_send(group, message), self._loop()).result(timeout)
        else:  # called from async code (a consumer, an async view): its own loop serves
            async_to_sync(layer.group_send)(group, message)


_publisher = _Publisher()
os.register_at_fork(after_in_child=_publisher._after_fork)


def publish_event(payload: dict[str, Any]) -> None:
    """group_send to every consumer; a push lost to a Redis outage must not fail the work that caused it."""
    try:
        _publisher.send(EVENTS_GROUP, {"type": "hub.event", "payload": payload})
    except Exception as exc:
        log.warning(
            "live push of %s for %s lost: %s", payload.get("event"), payload.get("integration"), type(exc).__name__
        )


def publish_events(payloads: list[dict[str, Any]]) -> None:
    """Several events in one channel-layer message (a batch of health checks); consumers fan them out."""
    if not payloads:
        return
    try:
        _publisher.send(EVENTS_GROUP, {"type": "hub.events", "payloads": payloads})
    except Exception as exc:
        log.warning("live push of %d events lost: %s", len(payloads), type(exc).__name__)


_last_metrics_push: dict[str, float] = {}


def maybe_push_metrics(integration_id: str, snapshot: Callable[[], dict[str, Any]], every: float = 1.0) -> None:
    """A metrics event at most once a second per integration and process: a busy agent must not flood browsers."""
    now = time.monotonic()
    if now - _last_metrics_push.get(integration_id, 0.0) < every:
        return
    _last_metrics_push[integration_id] = now
    try:
        metrics = snapshot()
    except Exception:
        return
    publish_event(
        {
            "event": "metrics",
            "integration": integration_id,
            "status": None,
            "ok": None,
            "latency_ms": metrics.get("avg_latency_ms"),
            "message": "",
            "at": timezone.now().isoformat(),
            "metrics": metrics,
        }
    )
