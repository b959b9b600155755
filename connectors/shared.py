"""Builds the runtime of an integration: Redis-backed collaborators when a Redis URL is given
(shared by every process), in-memory ones otherwise (shared by every connector of this process).

One Redis client (one connection pool) per URL per process; redis-py's pool notices a fork and
opens fresh connections in the child, so Celery's prefork workers can inherit it.
"""

from __future__ import annotations

import os
import threading

import redis

from connectors.circuit import MemoryCircuitBreaker, RedisCircuitBreaker
from connectors.metrics import MemoryMetrics, RedisMetrics
from connectors.policy import TargetPolicy
from connectors.ratelimit import MemoryBucketStore, MemoryRateLimiter, RateLimitConfig, RedisRateLimiter
from connectors.retry import RetryPolicy
from connectors.runtime import Runtime, TokenProvider

_lock = threading.Lock()
_clients: dict[str, redis.Redis] = {}
_redis_metrics: dict[tuple[str, str], RedisMetrics] = {}
_redis_circuits: dict[tuple[str, str, int, float], RedisCircuitBreaker] = {}
_redis_limiters: dict[tuple[str, str, RateLimitConfig], RedisRateLimiter] = {}
_memory_buckets = MemoryBucketStore()
_memory_circuits: dict[tuple[int, float], MemoryCircuitBreaker] = {}
_memory_metrics = MemoryMetrics()


def _after_fork_in_child() -> None:
    # A prefork worker must not inherit a lock that another thread of its parent held at fork time.
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def redis_client(url: str) -> redis.Redis:
    with _lock:
        client = _clients.get(url)
        if client is None:
            # Bounded waits: a Redis outage must surface as an error, not a hung worker.
            client = _clients[url] = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        return client


def metrics_for(redis_url: str | None, *, prefix: str = "hub") -> MemoryMetrics | RedisMetrics:
    if not redis_url:
        return _memory_metrics
    client = redis_client(redis_url)
    with _lock:
        sink = _redis_metrics.get((redis_url, prefix))
        if sink is None:
            sink = _redis_metrics[(redis_url, prefix)] = RedisMetrics(client, prefix)
        return sink


def metrics_snapshot(key: str, *, redis_url: str | None, prefix: str = "hub") -> dict[str, object]:
    return metrics_for(redis_url, prefix=prefix).snapshot(key)


def circuit_for(
    redis_url: str | None, prefix: str = "hub", threshold: int = 5, cooldown: float = 30.0
) -> MemoryCircuitBreaker | RedisCircuitBreaker:
    """The breaker the runtimes of ``redis_url`` share (in-memory, this process's, without a URL)."""
    with _lock:
        if not redis_url:
            memory = _memory_circuits.get((threshold, cooldown))
            if memory is None:
                memory = _memory_circuits[(threshold, cooldown)] = MemoryCircuitBreaker(threshold, cooldown)
            return memory
    client = redis_client(redis_url)
    with _lock:
        shared = _redis_circuits.get((redis_url, prefix, threshold, cooldown))
        if shared is None:
            shared = RedisCircuitBreaker(client, threshold, cooldown, prefix)
            _redis_circuits[(redis_url, prefix, threshold, cooldown)] = shared
        return shared


def _limiter(redis_url: str | None, prefix: str, rate: RateLimitConfig) -> MemoryRateLimiter | RedisRateLimiter:
    if not redis_url:
        return MemoryRateLimiter(rate, store=_memory_buckets)
    client = redis_client(redis_url)
    with _lock:
        limiter = _redis_limiters.get((redis_url, prefix, rate))
        if limiter is None:
            limiter = _redis_limiters[(redis_url, prefix, rate)] = RedisRateLimiter(client, rate, prefix)
        return limiter


def make_runtime(
    key: str,
    rate_limit: RateLimitConfig,
    *,
    redis_url: str | None,
    retry: RetryPolicy | None = None,
    circuit_threshold: int = 5,
    circuit_cooldown: float = 30.0,
    token_provider: TokenProvider | None = None,
    prefix: str = "hub",
    policy: TargetPolicy | None = None,
) -> Runtime:
    return Runtime(
        key=key,
        limiter=_limiter(redis_url, prefix, rate_limit),
        circuit=circuit_for(redis_url, prefix, circuit_threshold, circuit_cooldown),
        metrics=metrics_for(redis_url, prefix=prefix),
        retry=retry or RetryPolicy(),
        token_provider=token_provider,
        policy=policy or TargetPolicy(),
    )


def forget(key: str, *, redis_url: str | None, prefix: str = "hub") -> None:
    """Drop an integration's shared state (metrics, bucket, circuit), e.g. when it is deleted."""
    metrics_for(redis_url, prefix=prefix).reset(key)
    if redis_url:
        client = redis_client(redis_url)
        RedisRateLimiter(client, RateLimitConfig.model_validate({}), prefix).reset(key)
        RedisCircuitBreaker(client, prefix=prefix).reset(key)
    else:
        with _memory_buckets.lock:
            _memory_buckets.buckets.pop(key, None)
        for circuit in list(_memory_circuits.values()):
            circuit.record_success(key)
