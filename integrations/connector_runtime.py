"""The runtime every live connector gets (shared Redis rate limit, circuit and metrics, plus the
hub's latency histograms), and the shared per-integration state read back from Redis.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from typing import Any

import redis
from django.conf import settings

from connectors.base import BaseConfig
from connectors.circuit import RedisCircuitBreaker
from connectors.errors import Category, ConnectorError
from connectors.retry import RetryPolicy
from connectors.runtime import RateLimiter, Runtime, TokenProvider
from connectors.shared import circuit_for, forget
from connectors.shared import make_runtime as connectors_runtime
from connectors.shared import metrics_snapshot as connectors_snapshot
from integrations.redis_clients import redis_client

log = logging.getLogger(__name__)

LATENCY_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)


def make_runtime(integration_id: str, typed_config: BaseConfig, token_provider: TokenProvider | None) -> Runtime:
    """The shared runtime (Redis rate limit, circuit and metrics), plus our Prometheus histogram."""
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
    if runtime.limiter is not None:
        runtime.limiter = CountingLimiter(runtime.limiter)
    return runtime


# Fields of the histogram hash that count rate limiting (Prometheus: hub_integration_rate_limit_*).
RATE_LIMIT_ACQUIRES = "rl_acquires"
RATE_LIMIT_REFUSED_HUB = "rl_refused_hub"
RATE_LIMIT_REFUSED_PROVIDER = "rl_refused_provider"


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
        bucket = next((str(b) for b in LATENCY_BUCKETS_MS if latency_ms <= b), "inf")
        _histograms.add(key, bucket, latency_ms)
        if not ok and error is not None and error.startswith(f"{Category.RATE_LIMITED.value}:"):
            _histograms.count(key, RATE_LIMIT_REFUSED_PROVIDER)  # the provider said 429

    def mark_connected(self, key: str) -> None:
        if self.inner is not None:
            self.inner.mark_connected(key)

    def __getattr__(self, name: str) -> Any:  # snapshot(), flush(), reset() of the connectors' sink
        return getattr(self.inner, name)


class CountingLimiter:
    """Counts every token asked for and every refusal of the shared bucket, for the saturation alert.

    Counting rides on the histograms' pending counts: no Redis round trip on the call path.
    """

    def __init__(self, inner: RateLimiter) -> None:
        self.inner = inner

    def acquire(self, key: str) -> None:
        _histograms.count(key, RATE_LIMIT_ACQUIRES)
        try:
            self.inner.acquire(key)
        except ConnectorError as exc:
            if exc.category == Category.RATE_LIMITED:
                _histograms.count(key, RATE_LIMIT_REFUSED_HUB)
            raise

    def pause(self, key: str, seconds: float) -> None:
        self.inner.pause(key, seconds)

    def __getattr__(self, name: str) -> Any:  # reset() and the like of the connectors' limiter
        return getattr(self.inner, name)


def _histogram_key(integration_id: str) -> str:
    return f"hub:hist:{integration_id}"


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
            self._start_flusher()

    def count(self, key: str, field: str) -> None:
        with self.lock:
            counts = self.pending.setdefault(key, {})
            counts[field] = counts.get(field, 0) + 1
            self._start_flusher()

    def _start_flusher(self) -> None:  # under self.lock
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
                        pipe.hincrbyfloat(_histogram_key(key), field, value)
                    else:
                        pipe.hincrby(_histogram_key(key), field, int(value))
            pipe.execute()
        except redis.RedisError:
            log.warning("latency histograms not recorded: Redis unreachable")


_histograms = _PendingHistograms()
os.register_at_fork(after_in_child=_histograms._after_fork)
atexit.register(_histograms.flush)


def latency_histograms(integration_ids: list[str]) -> list[dict[str, str]]:
    """Each integration's histogram counts (bucket bound in ms, "inf" or "sum_ms" → value), in one round trip.

    Raises ``redis.RedisError`` when Redis is unreachable.
    """
    if not integration_ids:
        return []
    pipe = redis_client().pipeline(transaction=False)
    for integration_id in integration_ids:
        pipe.hgetall(_histogram_key(integration_id))
    return [{k.decode(): v.decode() for k, v in raw.items()} for raw in pipe.execute()]


def circuit_wait(integration_id: str) -> float | None:
    """Seconds the integration's shared circuit stays open (None: closed, or nothing shared to read)."""
    if not settings.REDIS_URL:
        return None  # each process has its own breaker: the worker's decides
    breaker = circuit_for(
        settings.REDIS_URL,
        threshold=settings.CIRCUIT_FAILURE_THRESHOLD,
        cooldown=float(settings.CIRCUIT_COOLDOWN_SECONDS),
    )
    try:
        return breaker.retry_after(integration_id)
    except (redis.RedisError, ValueError):  # Redis down: the worker's own circuit check decides
        return None


def reset_circuit(integration_id: str) -> None:
    """Close the integration's circuit now (a person fixed what failed, e.g. re-authorized it)."""
    breaker = circuit_for(
        settings.REDIS_URL,
        threshold=settings.CIRCUIT_FAILURE_THRESHOLD,
        cooldown=float(settings.CIRCUIT_COOLDOWN_SECONDS),
    )
    try:
        if isinstance(breaker, RedisCircuitBreaker):
            breaker.reset(integration_id)
        else:
            breaker.record_success(integration_id)  # the in-memory breaker forgets the key on success
    except redis.RedisError:
        log.warning("circuit of %s not reset: Redis unreachable", integration_id)


def metrics_snapshot(integration_id: str) -> dict[str, Any]:
    return connectors_snapshot(integration_id, redis_url=settings.REDIS_URL)


def forget_shared_state(integration_id: str) -> None:
    """A deleted integration's metrics, histogram, bucket and circuit go (a new one with its id starts clean)."""
    try:
        forget(integration_id, redis_url=settings.REDIS_URL)
        redis_client().delete(_histogram_key(integration_id))
    except redis.RedisError:
        log.warning("shared state of deleted %s not removed: Redis unreachable", integration_id)
