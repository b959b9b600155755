"""The Celery app: Redis as broker and result backend; settings under CELERY_* in config/settings.py.

The hub's worker and beat signal handlers (heartbeats, closing connectors) are connected in
IntegrationsConfig.ready() (integrations/worker_signals.py), so this module imports nothing of the hub.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("hub")
app.config_from_object("django.conf:settings", namespace="CELERY")
# integrations.tools.tasks: agent tool calls; integrations.sync.tasks: the HR data mirror
app.autodiscover_tasks(["integrations", "integrations.tools", "integrations.sync"])
