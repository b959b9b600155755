"""Throttling: BambooHR's 503 + Retry-After is obeyed by the caller that got it and, through the
integration's shared rate limiter, by every other caller of the integration, so a throttled
integration sends no burst of requests into the throttle window."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis

from connectors.errors import Category, ConnectorError
from connectors.http.bamboohr import BambooHRConnector
from connectors.ratelimit import MemoryBucketStore, MemoryRateLimiter, RateLimitConfig, RedisRateLimiter
from connectors.retry import RetryPolicy
from connectors.runtime import RateLimiter, Runtime
from sandbox.bamboohr import BambooHRSandbox
from tests.connectors.policies import LOOPBACK

Make = Callable[..., BambooHRConnector]
# Fast enough not to be the bottleneck once the throttle lifts.
RATE = RateLimitConfig(requests=50, per_seconds=1, max_wait_seconds=10)


def _runtime(key: str, limiter: RateLimiter | None = None) -> Runtime:
    return Runtime(
        key=key, limiter=limiter, retry=RetryPolicy(max_retries=3, initial_backoff=0.05, jitter=0), policy=LOOPBACK
    )


def test_waits_for_retry_after_then_succeeds(make_bamboohr: Make, bamboohr_server: BambooHRSandbox) -> None:
    bamboohr_server.throttle(retry_after=1, count=1)
    started = time.monotonic()
    assert make_bamboohr(runtime=_runtime("throttle-1")).get_employee(1)["id"] == "1"
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 1.8
    assert bamboohr_server.stats()["by_status"] == {"200": 1, "503": 1}


def test_retry_after_as_an_http_date(make_bamboohr: Make, bamboohr_server: BambooHRSandbox) -> None:
    bamboohr_server.throttle(retry_after=1, count=1, http_date=True)
    started = time.monotonic()
    assert make_bamboohr(runtime=_runtime("throttle-date")).get_employee(1)["id"] == "1"
    # An HTTP-date has whole seconds: the wait is up to one second more than asked.
    assert 0.0 < time.monotonic() - started < 2.5
    assert bamboohr_server.requests == 2


def test_retry_after_beyond_the_clamp_fails_at_once(make_bamboohr: Make, bamboohr_server: BambooHRSandbox) -> None:
    bamboohr_server.throttle(retry_after=45, count=1)
    runtime = _runtime("throttle-long")
    runtime.retry.max_retry_after = 30
    started = time.monotonic()
    with pytest.raises(ConnectorError) as info:
        make_bamboohr(runtime=runtime).get_employee(1)
    assert time.monotonic() - started < 0.5  # no worker sleeps 45 s: the task reschedules instead
    error = info.value
    assert error.category == Category.RATE_LIMITED and not error.permanent and error.retry_after == 45
    assert bamboohr_server.requests == 1


def test_retries_are_bounded_while_throttled(make_bamboohr: Make, bamboohr_server: BambooHRSandbox) -> None:
    bamboohr_server.fail(503)  # 503 without Retry-After, forever: exponential backoff, then give up
    with pytest.raises(ConnectorError) as info:
        make_bamboohr(runtime=_runtime("throttle-forever")).get_employee(1)
    assert info.value.category == Category.RATE_LIMITED
    assert bamboohr_server.requests == 4  # one try and max_retries=3


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/2"))
    try:
        client.ping()
    except redis.RedisError as exc:  # pragma: no cover - Redis is part of this machine's setup
        pytest.fail(f"Redis is required for this test: {exc}")
    yield client
    client.close()


def _limiters(kind: str, client: redis.Redis | None, callers: int) -> list[RateLimiter]:
    """One limiter per caller, as separate workers have; they share state only through the store."""
    if kind == "memory":
        store = MemoryBucketStore()
        return [MemoryRateLimiter(RATE, store=store) for _ in range(callers)]
    assert client is not None
    prefix = f"test-bamboohr-{uuid.uuid4().hex[:8]}"
    return [RedisRateLimiter(redis.Redis(connection_pool=client.connection_pool), RATE, prefix) for _ in range(callers)]


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_parallel_callers_of_a_throttled_integration_wait_too(
    make_bamboohr: Make, bamboohr_server: BambooHRSandbox, redis_client: redis.Redis, kind: str
) -> None:
    callers, window = 6, 2.0
    key = f"bamboohr-shared-{uuid.uuid4().hex[:6]}"
    limiters = _limiters(kind, redis_client if kind == "redis" else None, callers)
    connectors = [make_bamboohr(runtime=_runtime(key, limiter)) for limiter in limiters]
    for connector in connectors:
        connector.connect()  # each connector proves its key before the throttle starts
    bamboohr_server.reset_stats()

    bamboohr_server.throttle(retry_after=window)
    throttle_started = time.monotonic()
    finished: list[float] = []
    errors: list[BaseException] = []

    def call(connector: BambooHRConnector) -> None:
        try:
            connector.get_employee(2)
            finished.append(time.monotonic())
        except BaseException as exc:  # reported below
            errors.append(exc)

    # The first caller meets the throttle; the others arrive while it is in force.
    first = threading.Thread(target=call, args=(connectors[0],))
    first.start()
    time.sleep(0.3)
    others = [threading.Thread(target=call, args=(c,)) for c in connectors[1:]]
    for thread in others:
        thread.start()
    for thread in [first, *others]:
        thread.join(timeout=15)

    assert not errors, errors
    assert len(finished) == callers
    # Nobody got through before BambooHR's window ended...
    assert min(finished) - throttle_started >= window - 0.05
    # ...and during it only the first caller's request reached BambooHR: the others waited at the
    # shared limiter instead of adding to the load (no amplification).
    during = [r for r in bamboohr_server.request_log if r.at < throttle_started + window]
    assert [r.status for r in during] == [503]
    stats = bamboohr_server.stats()
    assert stats["by_status"] == {"200": callers, "503": 1}


def test_without_a_shared_limiter_each_caller_hits_the_throttle(
    make_bamboohr: Make, bamboohr_server: BambooHRSandbox
) -> None:
    """The baseline the test above improves on: unshared callers each send into the window."""
    connectors = [make_bamboohr(runtime=_runtime(f"alone-{i}")) for i in range(3)]
    bamboohr_server.throttle(retry_after=1)
    threads = [threading.Thread(target=c.get_employee, args=(3,)) for c in connectors]
    for thread in threads:
        thread.start()
        time.sleep(0.1)
    for thread in threads:
        thread.join(timeout=10)
    assert bamboohr_server.stats()["by_status"] == {"200": 3, "503": 3}
