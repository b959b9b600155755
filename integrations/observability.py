"""What several processes must agree on, kept in Redis: live pushes, connector invalidation,
operation records, worker liveness, and the Prometheus exposition built from shared metrics.

Nothing here holds state that matters in one process's memory: a scrape of ``/metrics`` served by
any web process shows what every worker did, because it is built from Redis at scrape time.
"""

from __future__ import annotations

import asyncio
import atexit
import hmac
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlparse

import redis
from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse

from connectors.base import BaseConfig
from connectors.errors import Category, ConnectorError
from connectors.runtime import RetryPolicy, Runtime, TokenProvider

log = logging.getLogger(__name__)

# One channel-layer group carries every integration event; each consumer filters by visibility.
EVENTS_GROUP = "hub.integrations"
_ALIVE_TTL = 15  # seconds; heartbeats are written every third of that
_LATENCY_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)

# ---------------------------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------------------------

_client: redis.Redis | None = None
_client_pid = 0


def redis_client() -> redis.Redis:
    """One client per process (a fork gets its own: sockets must not be shared across processes)."""
    global _client, _client_pid
    if _client is None or _client_pid != os.getpid():
        _client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=2, health_check_interval=30
        )
        _client_pid = os.getpid()
    return _client


def _db_tag() -> str:
    """Pub/sub channels are not scoped by Redis database number; include it so hubs sharing a server don't mix."""
    path = urlparse(settings.REDIS_URL).path.strip("/") or "0"
    return path


def _unavailable() -> ConnectorError:
    return ConnectorError(
        "the task queue (Redis at REDIS_URL) is unreachable; is redis-server running?",
        category=Category.UNAVAILABLE,
        permanent=False,
        retry_after=5,
    )


# ---------------------------------------------------------------------------------------------
# Connector runtime
# ---------------------------------------------------------------------------------------------


def make_runtime(integration_id: str, typed_config: BaseConfig, token_provider: TokenProvider | None) -> Runtime:
    """The shared runtime (Redis rate limit, circuit and metrics), plus our Prometheus histogram."""
    from connectors.shared import make_runtime as connectors_runtime

    retry = RetryPolicy(
        max_retries=settings.CONNECTOR_MAX_RETRIES, initial_backoff=settings.CONNECTOR_RETRY_BACKOFF_MS / 1000
    )
    runtime = connectors_runtime(
        key=integration_id,
        rate_limit=typed_config.rate_limit,
        redis_url=settings.REDIS_URL,
        token_provider=token_provider,
        retry=retry,
        circuit_threshold=settings.CIRCUIT_FAILURE_THRESHOLD,
        circuit_cooldown=float(settings.CIRCUIT_COOLDOWN_SECONDS),
    )
    runtime.metrics = HistogramSink(runtime.metrics)
    return runtime


class HistogramSink:
    """Adds latency buckets per integration (Prometheus histograms) to the connectors' metrics sink.

    Like the connectors' sink, recording only adds to this process's pending counts; a daemon thread
    sends them to Redis in one pipeline every ``flush_interval`` seconds, so a call pays no round trip.
    """

    def __init__(self, inner: Any, flush_interval: float = 0.2) -> None:
        self.inner = inner
        self.flush_interval = flush_interval

    def record(self, key: str, *, ok: bool, latency_ms: float, error: str | None = None) -> None:
        if self.inner is not None:
            self.inner.record(key, ok=ok, latency_ms=latency_ms, error=error)
        bucket = next((str(b) for b in _LATENCY_BUCKETS_MS if latency_ms <= b), "inf")
        _histograms.add(key, bucket, latency_ms)

    def mark_connected(self, key: str) -> None:
        if self.inner is not None:
            self.inner.mark_connected(key)

    def __getattr__(self, name: str) -> Any:  # snapshot(), flush(), reset() of the connectors' sink
        return getattr(self.inner, name)


class _PendingHistograms:
    def __init__(self) -> None:
        self._after_fork()

    def _after_fork(self) -> None:
        self.lock = threading.Lock()
        self.pending: dict[str, dict[str, float]] = {}
        self.flusher: threading.Thread | None = None

    def add(self, key: str, bucket: str, latency_ms: float) -> None:
        with self.lock:
            counts = self.pending.setdefault(key, {})
            counts[bucket] = counts.get(bucket, 0) + 1
            counts["sum_ms"] = counts.get("sum_ms", 0.0) + latency_ms
            if self.flusher is None or not self.flusher.is_alive():
                self.flusher = threading.Thread(target=self._loop, name="hub-histogram-flush", daemon=True)
                self.flusher.start()

    def _loop(self) -> None:
        while True:
            time.sleep(0.2)
            self.flush()

    def flush(self) -> None:
        with self.lock:
            pending, self.pending = self.pending, {}
        if not pending:
            return
        try:
            pipe = redis_client().pipeline(transaction=False)
            for key, counts in pending.items():
                for field, value in counts.items():
                    if field == "sum_ms":
                        pipe.hincrbyfloat(f"hub:hist:{key}", field, value)
                    else:
                        pipe.hincrby(f"hub:hist:{key}", field, int(value))
            pipe.execute()
        except redis.RedisError:
            log.warning("latency histograms not recorded: Redis unreachable")


_histograms = _PendingHistograms()
os.register_at_fork(after_in_child=_histograms._after_fork)
atexit.register(_histograms.flush)


def metrics_snapshot(integration_id: str) -> dict[str, Any]:
    from connectors.shared import metrics_snapshot as connectors_snapshot

    return connectors_snapshot(integration_id, redis_url=settings.REDIS_URL)


def forget_shared_state(integration_id: str) -> None:
    """A deleted integration's metrics, histogram, bucket and circuit go (a new one with its id starts clean)."""
    from connectors.shared import forget

    try:
        forget(integration_id, redis_url=settings.REDIS_URL)
        redis_client().delete(f"hub:hist:{integration_id}")
    except redis.RedisError:
        log.warning("shared state of deleted %s not removed: Redis unreachable", integration_id)


# ---------------------------------------------------------------------------------------------
# Live pushes (Channels) and connector invalidation (Redis pub/sub)
# ---------------------------------------------------------------------------------------------


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
        from channels.layers import get_channel_layer

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
    from django.utils import timezone

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


def _invalidation_channel() -> str:
    return f"hub:{_db_tag()}:connectors:invalidate"


def publish_invalidation(integration_id: str, keep_version: int | None) -> None:
    try:
        redis_client().publish(_invalidation_channel(), json.dumps({"id": integration_id, "keep": keep_version}))
    except redis.RedisError:
        log.warning("could not ask other processes to close %s's connector (Redis unreachable)", integration_id)


_listener_pid = 0
_listener_lock = threading.Lock()


def ensure_invalidation_listener(discard: Callable[[str, int | None], bool]) -> None:
    """Start (once per process) a daemon thread that closes connectors other processes invalidated."""
    global _listener_pid
    if _listener_pid == os.getpid():
        return
    with _listener_lock:
        if _listener_pid == os.getpid():
            return
        _listener_pid = os.getpid()
        threading.Thread(target=_listen, args=(discard,), name="hub-invalidation", daemon=True).start()


def _listen(discard: Callable[[str, int | None], bool]) -> None:
    while True:
        try:
            # No read timeout: the subscription is idle most of the time (redis-py 8 would cut it every 5 s).
            client = redis.Redis.from_url(
                settings.REDIS_URL,
                socket_connect_timeout=2,
                socket_timeout=None,
                socket_keepalive=True,
                health_check_interval=30,
            )
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe(_invalidation_channel())
            for message in pubsub.listen():
                try:
                    data = json.loads(message["data"])
                    if discard(str(data["id"]), data.get("keep")):
                        log.info("closed the connector of %s (changed elsewhere)", data["id"])
                except (ValueError, KeyError, TypeError):
                    continue
        except redis.RedisError:
            time.sleep(2)  # Redis restarting: try again; connectors are also checked on every use


# ---------------------------------------------------------------------------------------------
# Operations (Celery task ids) and liveness
# ---------------------------------------------------------------------------------------------


def _op_key(operation_id: str) -> str:
    return f"hub:op:{operation_id}"


def remember_operation(operation_id: str, operation: str, integration_id: str, actor: str) -> None:
    try:
        client = redis_client()
        client.hset(
            _op_key(operation_id),
            mapping={"operation": operation, "integration": integration_id, "actor": actor, "created": time.time()},
        )
        client.expire(_op_key(operation_id), int(settings.CELERY_RESULT_EXPIRES))
    except redis.RedisError:
        raise _unavailable() from None


def fail_operation(operation_id: str, message: str) -> None:
    try:
        redis_client().hset(_op_key(operation_id), "error", message)
    except redis.RedisError:
        pass


def operation_record(operation_id: str) -> dict[str, str] | None:
    try:
        raw = redis_client().hgetall(_op_key(operation_id))
    except redis.RedisError:
        raise _unavailable() from None
    if not raw:
        return None
    return {k.decode(): v.decode() for k, v in raw.items()}


def start_heartbeat(role: str, name: str | None = None) -> None:
    """Write hub:alive:<role>:<name> every few seconds from a daemon thread (worker or beat liveness)."""
    key = f"hub:alive:{role}:{name or socket.gethostname()}:{os.getpid()}"

    def beat() -> None:
        while True:
            try:
                redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).set(key, str(time.time()), ex=_ALIVE_TTL)
            except redis.RedisError:
                pass
            time.sleep(_ALIVE_TTL / 3)

    threading.Thread(target=beat, name=f"hub-heartbeat-{role}", daemon=True).start()


def alive(role: str) -> int:
    return sum(1 for _ in redis_client().scan_iter(f"hub:alive:{role}:*", count=100))


# ---------------------------------------------------------------------------------------------
# /metrics and /healthz
# ---------------------------------------------------------------------------------------------

_HEALTH_VALUE = {"connected": 1.0, "degraded": 0.5}


class HubCollector:
    """Builds every metric family from the database and Redis at scrape time (correct across processes)."""

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        from integrations.models import Integration, Status

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
        client = redis_client()
        pipe = client.pipeline(transaction=False)
        for integration_id, _kind, _status in rows:
            pipe.hgetall(f"hub:hist:{integration_id}")
        histograms = pipe.execute() if rows else []
        for (integration_id, kind, current), hist in zip(rows, histograms, strict=True):
            snap = metrics_snapshot(integration_id)
            requests.add_metric([integration_id, kind, "success"], float(snap.get("successful", 0)))
            requests.add_metric([integration_id, kind, "failure"], float(snap.get("failed", 0)))
            counts = {k.decode(): v.decode() for k, v in hist.items()}
            cumulative = 0
            buckets = []
            for bound in _LATENCY_BUCKETS_MS:
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
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

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
