"""The Celery app: Redis as broker and result backend; settings under CELERY_* in config/settings.py."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("hub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["integrations", "integrations.tools"])  # integrations.tools.tasks: agent tool calls


@signals.worker_ready.connect
def _worker_alive(sender: Any = None, **_: Any) -> None:
    """A heartbeat key in Redis per worker: /healthz and /metrics read liveness without a broadcast."""
    from integrations.observability import start_heartbeat

    start_heartbeat("worker", getattr(sender, "hostname", None))


@signals.beat_init.connect
def _beat_alive(sender: Any = None, **_: Any) -> None:
    from integrations.observability import start_heartbeat

    start_heartbeat("beat")


@signals.worker_process_shutdown.connect
def _close_connectors(**_: Any) -> None:
    """Close pools cleanly when a pool process exits (SIGKILL skips this; the server reaps those)."""
    from integrations.services import live_connectors

    live_connectors.close_all()
