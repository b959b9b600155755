"""The token bucket: bounded waits, refusals with retry_after, Retry-After pauses, and one bucket
shared by several OS processes through Redis."""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest
import redis

from connectors.base import RateLimitConfig
from connectors.errors import Category, ConnectorError
from connectors.ratelimit import MemoryBucketStore, MemoryRateLimiter, RedisRateLimiter


def _rate(**kwargs: float) -> RateLimitConfig:
    return RateLimitConfig.model_validate(kwargs)


@pytest.fixture(params=["memory", "redis"])
def make_limiter(request: pytest.FixtureRequest, redis_client: redis.Redis, redis_prefix: str):
    def make(rate: RateLimitConfig) -> MemoryRateLimiter | RedisRateLimiter:
        if request.param == "memory":
            return MemoryRateLimiter(rate)
        return RedisRateLimiter(redis_client, rate, prefix=redis_prefix)

    return make


def test_burst_is_admitted_at_once_then_calls_wait_for_the_refill(make_limiter) -> None:
    limiter = make_limiter(_rate(requests=4, per_seconds=1, burst=3, max_wait_seconds=1))
    started = time.monotonic()
    for _ in range(3):
        limiter.acquire("k")
    assert time.monotonic() - started < 0.15  # the burst needs no wait
    limiter.acquire("k")  # the 4th token arrives 0.25 s later
    waited = time.monotonic() - started
    assert 0.23 <= waited < 0.6


def test_a_token_beyond_the_bound_fails_at_once_with_retry_after(make_limiter) -> None:
    limiter = make_limiter(_rate(requests=2, per_seconds=1, burst=1, max_wait_seconds=0.1))
    limiter.acquire("k")
    started = time.monotonic()
    with pytest.raises(ConnectorError) as info:
        limiter.acquire("k")
    assert time.monotonic() - started < 0.2  # refused without sleeping the ~0.5 s
    assert info.value.category == Category.RATE_LIMITED
    assert info.value.retry_after is not None and 0.4 <= info.value.retry_after <= 0.5
    # A refusal reserves nothing: after the advertised wait the token is there.
    time.sleep(info.value.retry_after)
    limiter.acquire("k")


def test_keys_have_separate_buckets(make_limiter) -> None:
    limiter = make_limiter(_rate(requests=1, per_seconds=10, max_wait_seconds=0))
    limiter.acquire("a")
    limiter.acquire("b")
    with pytest.raises(ConnectorError):
        limiter.acquire("a")


def test_pause_holds_every_caller_until_the_retry_after_is_over(make_limiter) -> None:
    limiter = make_limiter(_rate(requests=100, per_seconds=1, max_wait_seconds=1))
    limiter.pause("k", 0.3)
    started = time.monotonic()
    limiter.acquire("k")
    assert 0.27 <= time.monotonic() - started < 0.5
    # A pause longer than the wait bound is a refusal that says how long to wait.
    limiter.pause("k", 5)
    with pytest.raises(ConnectorError) as info:
        limiter.acquire("k")
    assert info.value.category == Category.RATE_LIMITED
    assert 4.5 < (info.value.retry_after or 0) <= 5


def test_memory_limiters_sharing_a_store_share_the_bucket() -> None:
    store = MemoryBucketStore()
    rate = _rate(requests=1, per_seconds=10, max_wait_seconds=0)
    MemoryRateLimiter(rate, store=store).acquire("k")
    with pytest.raises(ConnectorError):
        MemoryRateLimiter(rate, store=store).acquire("k")


def test_a_pause_from_one_redis_client_holds_another(redis_client: redis.Redis, redis_prefix: str) -> None:
    rate = _rate(requests=100, per_seconds=1, max_wait_seconds=2)
    other = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    try:
        RedisRateLimiter(redis_client, rate, prefix=redis_prefix).pause("k", 0.4)
        started = time.monotonic()
        RedisRateLimiter(other, rate, prefix=redis_prefix).acquire("k")
        assert time.monotonic() - started >= 0.37
    finally:
        other.close()


def test_unreachable_redis_is_a_typed_error_without_the_url() -> None:
    client = redis.Redis.from_url("redis://:hunter2pw@127.0.0.1:1/0", socket_connect_timeout=0.5)
    limiter = RedisRateLimiter(client, _rate(), prefix="x")
    with pytest.raises(ConnectorError) as info:
        limiter.acquire("k")
    assert info.value.category == Category.UNAVAILABLE
    assert "hunter2pw" not in str(info.value) and "127.0.0.1:1" not in str(info.value)


# ----------------------------------------------------------------------------- four processes


def _hammer(url: str, prefix: str, rate_json: str, start_at: float, stop_at: float, out: multiprocessing.Queue) -> None:
    client = redis.Redis.from_url(url)
    limiter = RedisRateLimiter(client, RateLimitConfig.model_validate_json(rate_json), prefix=prefix)
    admitted: list[float] = []
    refused = 0
    time.sleep(max(0.0, start_at - time.time()))
    while time.time() < stop_at:
        try:
            limiter.acquire("shared")
        except ConnectorError:
            refused += 1
            continue
        admitted.append(time.time())
    out.put((os.getpid(), admitted, refused))


def test_four_processes_share_one_bucket(redis_prefix: str) -> None:
    """20 requests per 2 s (bucket of 20): in any window of w seconds the four processes together
    get at most 20 + 10 w tokens — the token bucket's bound — and callers wait instead of failing."""
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    rate = _rate(requests=20, per_seconds=2, max_wait_seconds=5)
    context = multiprocessing.get_context("fork")
    out: multiprocessing.Queue = context.Queue()
    start_at = time.time() + 0.3
    duration = 2.0
    workers = [
        context.Process(target=_hammer, args=(url, redis_prefix, rate.model_dump_json(), start_at, start_at + duration, out))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    results = [out.get(timeout=30) for _ in workers]
    for worker in workers:
        worker.join(timeout=10)
    assert len({pid for pid, _, _ in results}) == 4
    assert sum(refused for _, _, refused in results) == 0  # every token came within the 5 s bound
    times = sorted(t for _, admitted, _ in results for t in admitted)
    assert all(admitted for _, admitted, _ in results)  # every process got tokens

    burst, refill = 20, 10.0  # tokens, tokens per second
    slack = 0.05  # seconds between a token's reserved instant and the process noting it
    for i in range(len(times)):
        for j in range(i, len(times)):
            window = times[j] - times[i]
            assert j - i + 1 <= burst + refill * (window + slack), (
                f"{j - i + 1} admissions within {window:.3f} s"
            )
    # The limit is used, not starved: the burst plus the refill over the run (the last reserved
    # tokens may land a little after the stop time).
    expected = burst + refill * duration
    assert expected - 3 <= len(times) <= expected + 4 + refill * slack
