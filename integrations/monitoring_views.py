"""/metrics (Prometheus exposition) and /healthz (database, Redis, worker liveness).

Both are built at request time from the database and Redis, so any web process shows what every
worker did: nothing that matters lives in one process's memory.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from integrations.connector_runtime import LATENCY_BUCKETS_MS, latency_histograms, metrics_snapshot
from integrations.liveness import alive
from integrations.models import Integration, Status
from integrations.redis_clients import redis_client

_HEALTH_VALUE = {"connected": 1.0, "degraded": 0.5}


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
        rows = list(Integration.objects.values_list("id", "kind", "status"))
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
            health.add_metric([integration_id, kind], _HEALTH_VALUE.get(current, 0.0))
            for value in Status.values:
                status.add_metric([integration_id, kind, value], 1.0 if value == current else 0.0)
        workers = GaugeMetricFamily("hub_workers_alive", "Celery worker processes with a fresh heartbeat.")
        workers.add_metric([], float(alive("worker")))
        return [requests, latency, health, status, workers]


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
