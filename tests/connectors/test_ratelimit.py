"""The token bucket: bounded waits, refusals with retry_after, Retry-After pauses, and one bucket
shared by several OS processes through Redis."""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest
import redis

from connectors.errors import Category, ConnectorError
from connectors.ratelimit import MemoryBucketStore, MemoryRateLimiter, RateLimitConfig, RedisRateLimiter


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


def _assert_within_bucket_bound(times: list[float], burst: float, refill: float, slack: float) -> None:
    """Every window [times[i], times[j]] holds at most burst + refill * (width + slack) admissions.
    (j - i + 1) - refill * (t_j - t_i) = f(j) - f(i) + 1 with f(k) = k - refill * t_k, so each i only
    needs the largest f(j) after it: linear, even for thousands of admissions."""
    f = [k - refill * t for k, t in enumerate(times)]
    best_after = f[:]
    for k in range(len(f) - 2, -1, -1):
        best_after[k] = max(f[k], best_after[k + 1])
    worst = max(best_after[i] - f[i] + 1 for i in range(len(f)))
    assert worst <= burst + refill * slack, f"{worst:.1f} admissions over the bound's {burst} + refill x window"


@pytest.mark.parametrize(
    ("requests", "per_seconds", "slack"),
    [(20, 2, 0.05), (2000, 1, 0.01)],
    ids=["20-per-2s", "2000-per-s-leased"],
)
def test_four_processes_share_one_bucket(redis_prefix: str, requests: int, per_seconds: float, slack: float) -> None:
    """20 requests per 2 s (bucket of 20): in any window of w seconds the four processes together
    get at most 20 + 10 w tokens — the token bucket's bound — and callers wait instead of failing.
    At 2000 a second the processes lease tokens ahead, and the same bound holds."""
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    rate = _rate(requests=requests, per_seconds=per_seconds, max_wait_seconds=5)
    context = multiprocessing.get_context("fork")
    out: multiprocessing.Queue = context.Queue()
    start_at = time.time() + 0.3
    duration = 2.0 if requests < 100 else 1.0
    workers = [
        context.Process(
            target=_hammer, args=(url, redis_prefix, rate.model_dump_json(), start_at, start_at + duration, out)
        )
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

    burst, refill = float(requests), requests / per_seconds  # tokens, tokens per second
    _assert_within_bucket_bound(times, burst, refill, slack)
    # The limit is used, not starved: the burst plus the refill over the run (the last reserved
    # tokens may land a little after the stop time; a leased bucket holds up to 5% back).
    expected = burst + refill * duration
    assert 0.93 * expected - 3 <= len(times) <= expected + 4 + refill * slack


def test_fast_limits_take_tokens_in_leases(redis_client: redis.Redis, redis_prefix: str) -> None:
    limiter = RedisRateLimiter(redis_client, _rate(requests=1_000_000, per_seconds=1), prefix=redis_prefix)
    assert limiter.lease_ttl > 0
    runs = 0
    script = limiter._acquire

    def counted(*args: object, **kwargs: object) -> object:
        nonlocal runs
        runs += 1
        return script(*args, **kwargs)

    limiter._acquire = counted  # type: ignore[assignment]
    for _ in range(3000):
        limiter.acquire("k")
    assert runs < 3000 / 20, f"{runs} Redis round trips for 3000 tokens"
    # A slow limit asks Redis for every token.
    slow = RedisRateLimiter(redis_client, _rate(requests=100, per_seconds=1), prefix=redis_prefix)
    assert slow.lease_ttl == 0


def test_leased_tokens_plus_what_refills_meanwhile_stay_within_the_burst(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    """The worst case of leasing: every token leased at once, spent at the last moment of the leases,
    while the tokens that refilled during their lifetime are taken too. That is still at most the
    burst plus what refills in the window, because a leased bucket holds rate x lease-time back."""
    rate = _rate(requests=2000, per_seconds=1, max_wait_seconds=0)
    limiter = RedisRateLimiter(redis_client, rate, prefix=redis_prefix)
    bucket = [limiter.bucket_key("k")]
    args = limiter._args
    leased, first_asked = 0, time.monotonic()
    while True:  # many processes, each taking the largest lease there is
        granted, _wait, taken = limiter._acquire(keys=bucket, args=[*args, "100"])
        if not int(granted):
            break
        leased += int(taken)
    window_start = first_asked + limiter.lease_ttl - 0.002  # every lease is still valid here
    time.sleep(max(0.0, window_start - time.monotonic()))
    free = 0
    while int(limiter._acquire(keys=bucket, args=[*args, "1"])[0]):
        free += 1
    window = time.monotonic() - window_start
    assert leased + free <= 2000 + 2000 * window + 1, f"{leased} leased + {free} free in {window * 1000:.1f} ms"


def _lease_in_child(limiter: RedisRateLimiter, out: multiprocessing.Queue) -> None:
    out.put(dict(limiter._leases))


def test_a_forked_child_does_not_spend_its_parents_lease(redis_client: redis.Redis, redis_prefix: str) -> None:
    limiter = RedisRateLimiter(redis_client, _rate(requests=1_000_000, per_seconds=1), prefix=redis_prefix)
    for _ in range(50):
        limiter.acquire("k")
    assert limiter._leases["k"].tokens > 0
    context = multiprocessing.get_context("fork")
    out: multiprocessing.Queue = context.Queue()
    child = context.Process(target=_lease_in_child, args=(limiter, out))
    child.start()
    assert out.get(timeout=10) == {}
    child.join(timeout=10)
