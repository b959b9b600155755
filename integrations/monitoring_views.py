"""/metrics (Prometheus exposition) and /healthz (database, Redis, worker liveness).

Both are built at request time from the database and Redis, so any web process shows what every
worker did: nothing that matters lives in one process's memory.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import redis
from celery import current_app
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from kombu.exceptions import OperationalError
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from integrations import services
from integrations.connector_runtime import (
    LATENCY_BUCKETS_MS,
    RATE_LIMIT_ACQUIRES,
    RATE_LIMIT_REFUSED_HUB,
    RATE_LIMIT_REFUSED_PROVIDER,
    latency_histograms,
    metrics_snapshot,
)
from integrations.liveness import alive
from integrations.models import Integration, Status
from integrations.redis_clients import redis_client

log = logging.getLogger(__name__)

_HEALTH_VALUE = {"connected": 1.0, "degraded": 0.5}


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def queue_lengths() -> dict[str, int]:
    """Messages waiting in each of the workers' queues, asked of the broker (Redis or RabbitMQ alike).

    A queue the broker does not know yet (Redis drops an empty list) is empty. An unreachable broker
    gives no figure at all (the gauge goes missing; the alert rules say what that means).
    """
    names = {current_app.conf.task_default_queue}
    names.update(queue.name for queue in current_app.conf.task_queues or ())
    lengths: dict[str, int] = {}
    with current_app.connection_for_read() as conn:
        try:
            conn.ensure_connection(max_retries=1, timeout=5)
            for name in sorted(names):
                try:
                    lengths[name] = int(conn.default_channel.queue_declare(queue=name, passive=True).message_count)
                except conn.channel_errors:
                    lengths[name] = 0
                    conn.close()  # AMQP closes the channel after a passive declare of a missing queue
        except (OperationalError, *conn.connection_errors) as exc:
            log.warning("queue lengths not read: broker unreachable (%s)", type(exc).__name__)
            return {}
    return lengths


class HubCollector:
    """Builds every metric family from the database and Redis at scrape time (correct across processes)."""

    def collect(self) -> Iterable[Any]:
        requests = CounterMetricFamily(
            "hub_integration_requests",
            "Requests made by connectors (all processes).",
            labels=["integration", "kind", "outcome"],
        )
        latency = HistogramMetricFamily(
            "hub_integration_request_latency_seconds",
            "Latency of connector requests (all processes).",
            labels=["integration", "kind"],
        )
        health = GaugeMetricFamily(
            "hub_integration_health", "1 connected, 0.5 degraded, 0 otherwise.", labels=["integration", "kind"]
        )
        status = GaugeMetricFamily(
            "hub_integration_status",
            "1 for the integration's current status.",
            labels=["integration", "kind", "status"],
        )
        rate_limit_acquires = CounterMetricFamily(
            "hub_integration_rate_limit_acquires",
            "Tokens asked of the integration's shared rate-limit bucket (all processes).",
            labels=["integration", "kind"],
        )
        rate_limit_refusals = CounterMetricFamily(
            "hub_integration_rate_limit_refusals",
            "Calls refused for rate limiting: by the hub's own bucket (source=hub) or the provider's 429.",
            labels=["integration", "kind", "source"],
        )
        uptime = GaugeMetricFamily(
            "hub_integration_uptime_ratio",
            "Share of the monitored time in the window the integration was up (connected or degraded).",
            labels=["integration", "kind", "window"],
        )
        down_since = GaugeMetricFamily(
            "hub_integration_down_since_seconds",
            "Unix time the current outage began; 0 while the integration is not down.",
            labels=["integration", "kind"],
        )
        last_success = GaugeMetricFamily(
            "hub_integration_last_success_seconds",
            "Unix time of the latest successful health check, test or connect.",
            labels=["integration", "kind"],
        )
        integrations = list(Integration.objects.only("id", "kind", "status", "created_at"))
        kinds = {integration.id: integration.kind for integration in integrations}
        for integration_id, figures in services.availability_many(integrations).items():
            kind = kinds[integration_id]
            for window, ratio in figures["uptime"].items():
                if ratio is not None:
                    uptime.add_metric([integration_id, kind, window], ratio)
            began = figures["down_since"]
            down_since.add_metric([integration_id, kind], _epoch(began) if began else 0.0)
            if figures["last_success"]:
                last_success.add_metric([integration_id, kind], _epoch(figures["last_success"]))
        rows = [(i.id, i.kind, i.status) for i in integrations]
        histograms = latency_histograms([integration_id for integration_id, _kind, _status in rows])
        for (integration_id, kind, current), counts in zip(rows, histograms, strict=True):
            snap = metrics_snapshot(integration_id)
            requests.add_metric([integration_id, kind, "success"], float(snap.get("successful", 0)))
            requests.add_metric([integration_id, kind, "failure"], float(snap.get("failed", 0)))
            cumulative = 0
            buckets = []
            for bound in LATENCY_BUCKETS_MS:
                cumulative += int(counts.get(str(bound), 0))
                buckets.append((str(bound / 1000), cumulative))
            cumulative += int(counts.get("inf", 0))
            buckets.append(("+Inf", cumulative))
            latency.add_metric([integration_id, kind], buckets, float(counts.get("sum_ms", 0)) / 1000)
            rate_limit_acquires.add_metric([integration_id, kind], float(counts.get(RATE_LIMIT_ACQUIRES, 0)))
            rate_limit_refusals.add_metric([integration_id, kind, "hub"], float(counts.get(RATE_LIMIT_REFUSED_HUB, 0)))
            rate_limit_refusals.add_metric(
                [integration_id, kind, "provider"], float(counts.get(RATE_LIMIT_REFUSED_PROVIDER, 0))
            )
            health.add_metric([integration_id, kind], _HEALTH_VALUE.get(current, 0.0))
            for value in Status.values:
                status.add_metric([integration_id, kind, value], 1.0 if value == current else 0.0)
        workers = GaugeMetricFamily("hub_workers_alive", "Celery worker processes with a fresh heartbeat.")
        workers.add_metric([], float(alive("worker")))
        beat = GaugeMetricFamily("hub_beat_alive", "Celery beat processes with a fresh heartbeat.")
        beat.add_metric([], float(alive("beat")))
        queued = GaugeMetricFamily(
            "hub_queue_messages", "Tasks waiting in the broker for a worker, per queue.", labels=["queue"]
        )
        for queue, length in queue_lengths().items():
            queued.add_metric([queue], float(length))
        return [
            requests,
            latency,
            health,
            status,
            uptime,
            down_since,
            last_success,
            rate_limit_acquires,
            rate_limit_refusals,
            workers,
            beat,
            queued,
        ]


def _metrics_allowed(request: HttpRequest) -> bool:
    if settings.METRICS_PUBLIC:
        return True
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        return True
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header.removeprefix("Bearer ").strip().encode(), token.encode())
    return False


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition; staff session or ``Authorization: Bearer $METRICS_TOKEN`` unless METRICS_PUBLIC."""
    if not _metrics_allowed(request):
        response = HttpResponse(
            "metrics need a staff login or Authorization: Bearer <METRICS_TOKEN>\n",
            status=401,
            content_type="text/plain",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector())
    try:
        body = generate_latest(registry)
    except redis.RedisError:
        return HttpResponse("metrics unavailable: Redis unreachable\n", status=503, content_type="text/plain")
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


def healthz_view(request: HttpRequest) -> JsonResponse:
    """Database, Redis and worker liveness; 200 when all three are fine, 503 otherwise. No secrets."""
    checks: dict[str, dict[str, Any]] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = {"ok": True, "vendor": connection.vendor}
    except Exception as exc:
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    try:
        redis_client().ping()
        checks["redis"] = {"ok": True}
        workers, beat = alive("worker"), alive("beat")
        checks["workers"] = {"ok": workers > 0, "alive": workers}
        checks["beat"] = {"ok": beat > 0, "alive": beat}
    except redis.RedisError as exc:
        checks["redis"] = {"ok": False, "error": type(exc).__name__}
        checks["workers"] = {"ok": False, "alive": None, "error": "unknown while Redis is unreachable"}
        checks["beat"] = {"ok": False, "alive": None}
    ok = all(checks[name]["ok"] for name in ("database", "redis", "workers"))
    return JsonResponse({"status": "ok" if ok else "unhealthy", "checks": checks}, status=200 if ok else 503)
