"""make_runtime wires Redis-backed collaborators when given a URL, process-wide memory ones otherwise."""

from __future__ import annotations

import os

import pytest
import redis

from connectors.circuit import MemoryCircuitBreaker, RedisCircuitBreaker
from connectors.errors import Category, ConnectorError
from connectors.metrics import MemoryMetrics, RedisMetrics
from connectors.ratelimit import MemoryRateLimiter, RateLimitConfig, RedisRateLimiter
from connectors.retry import RetryPolicy
from connectors.shared import forget, make_runtime, metrics_for, metrics_snapshot, redis_client

URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
ONE_PER_MINUTE = RateLimitConfig.model_validate({"requests": 1, "per_seconds": 60, "max_wait_seconds": 0})


def test_redis_backed_runtime_shares_one_client_per_url(redis_prefix: str) -> None:
    first = make_runtime("a", ONE_PER_MINUTE, redis_url=URL, prefix=redis_prefix)
    second = make_runtime("b", RateLimitConfig.model_validate({}), redis_url=URL, prefix=redis_prefix)
    assert isinstance(first.limiter, RedisRateLimiter) and isinstance(first.circuit, RedisCircuitBreaker)
    assert isinstance(first.metrics, RedisMetrics)
    assert first.limiter.client is second.limiter.client is redis_client(URL)  # type: ignore[union-attr]
    assert first.metrics is metrics_for(URL, prefix=redis_prefix)


def test_memory_runtime_state_is_shared_per_key_within_the_process() -> None:
    first = make_runtime("mem-key", ONE_PER_MINUTE, redis_url=None, retry=RetryPolicy(max_retries=0))
    second = make_runtime("mem-key", ONE_PER_MINUTE, redis_url=None, retry=RetryPolicy(max_retries=0))
    assert isinstance(first.limiter, MemoryRateLimiter) and isinstance(first.circuit, MemoryCircuitBreaker)
    assert isinstance(first.metrics, MemoryMetrics) and first.metrics is metrics_for(None)
    try:
        first.call("op", lambda: 1)
        with pytest.raises(ConnectorError) as info:
            second.call("op", lambda: 1)  # the same bucket: its one token is gone
        assert info.value.category == Category.RATE_LIMITED
        assert metrics_snapshot("mem-key", redis_url=None)["total"] == 1
    finally:
        forget("mem-key", redis_url=None)
    assert metrics_snapshot("mem-key", redis_url=None)["total"] == 0
    second.call("op", lambda: 1)  # forgetting refilled the bucket
    forget("mem-key", redis_url=None)


def test_calls_through_a_redis_runtime_show_in_the_snapshot_and_forget_clears_them(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    runtime = make_runtime("db", ONE_PER_MINUTE, redis_url=URL, prefix=redis_prefix, retry=RetryPolicy(max_retries=0))
    runtime.call("op", lambda: 1)
    with pytest.raises(ConnectorError):
        runtime.call("op", lambda: 1)  # refused by the limiter before the call: not a request
    snap = metrics_snapshot("db", redis_url=URL, prefix=redis_prefix)
    assert snap["total"] == 1 and snap["successful"] == 1
    forget("db", redis_url=URL, prefix=redis_prefix)
    assert metrics_snapshot("db", redis_url=URL, prefix=redis_prefix)["total"] == 0
    runtime.call("op", lambda: 1)  # the bucket is gone too
