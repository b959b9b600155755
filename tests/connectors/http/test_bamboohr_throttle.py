"""Throttling: BambooHR's 429 + Retry-After (since 16 September 2026; 503 before) is obeyed by the
caller that got it and, through the integration's shared rate limiter, by every other caller of the
integration, so a throttled integration sends no burst of requests into the throttle window.

add-employee's other 429, "Limit Exceeded" without Retry-After (the account's employee limit), is
permanent: waiting does not help, so it is not retried. 503 now only means "unavailable": transient,
retried, its Retry-After honoured when sent (the sandbox's ``status=503`` switch throttles the old way).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
import redis

from connectors.errors import Category, ConnectorError
from connectors.http.bamboohr import BambooHRConnector
from connectors.ratelimit import MemoryBucketStore, MemoryRateLimiter, RateLimitConfig, RedisRateLimiter
from connectors.retry import RetryPolicy
from connectors.runtime import RateLimiter, Runtime
from sandbox.bamboohr import BambooHRSandbox
from tests.connectors.policies import LOOPBACK
from tests.sandbox.bamboohr_fixtures import API_KEY

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
    assert bamboohr_server.stats()["by_status"] == {"200": 1, "429": 1}


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
    bamboohr_server.fail(429)  # 429 without Retry-After, forever: exponential backoff, then give up
    with pytest.raises(ConnectorError) as info:
        make_bamboohr(runtime=_runtime("throttle-forever")).get_employee(1)
    assert info.value.category == Category.RATE_LIMITED and not info.value.permanent
    assert bamboohr_server.requests == 4  # one try and max_retries=3


# --- add-employee: a throttle is retried, the employee limit is not ----------------------------------
def _stats_over_http(server: BambooHRSandbox) -> dict[str, object]:
    """What the sandbox counted, read as a test in another process would (its control API)."""
    answer = httpx.get(f"{server.root_url}/__sandbox__/stats", auth=(server.api_key, "x"), timeout=5)
    answer.raise_for_status()
    stats: dict[str, object] = answer.json()
    return stats


def _named(server: BambooHRSandbox, first: str, last: str) -> list[int]:
    return [
        eid
        for eid, record in server.company.employees.items()
        if (record.get("firstName"), record.get("lastName")) == (first, last)
    ]


def test_throttled_create_employee_waits_then_creates_it_once(
    make_bamboohr: Make, bamboohr_server: BambooHRSandbox
) -> None:
    bamboohr_server.throttle(retry_after=1, count=1)
    started = time.monotonic()
    new_id = make_bamboohr(runtime=_runtime("throttle-create")).create_employee(
        {"firstName": "Throttled", "lastName": "Once"}
    )
    assert 1.0 <= time.monotonic() - started < 1.8  # BambooHR's Retry-After, not "employee limit reached"
    assert _named(bamboohr_server, "Throttled", "Once") == [int(new_id)]
    stats = _stats_over_http(bamboohr_server)
    assert stats["by_status"] == {"201": 1, "429": 1} and stats["throttled"] == 1


def test_employee_limit_429_is_permanent_and_sent_once(make_bamboohr: Make, bamboohr_server: BambooHRSandbox) -> None:
    bamboohr_server.hit_employee_limit()
    before = len(bamboohr_server.company.employees)
    started = time.monotonic()
    with pytest.raises(ConnectorError) as info:
        make_bamboohr(runtime=_runtime("employee-limit")).create_employee({"firstName": "One", "lastName": "Toomany"})
    error = info.value
    assert error.category == Category.CONFLICT and error.permanent and error.retry_after is None
    assert "Limit Exceeded" in error.message and "employee limit" in error.message
    assert time.monotonic() - started < 0.5
    stats = _stats_over_http(bamboohr_server)
    assert stats["requests"] == 1 and stats["by_status"] == {"429": 1} and stats["throttled"] == 0
    assert len(bamboohr_server.company.employees) == before
    # Reads are not refused by the employee limit.
    assert make_bamboohr(runtime=_runtime("employee-limit")).get_employee(1)["id"] == "1"


def test_employee_limit_is_told_apart_from_a_throttle_on_the_same_sandbox(make_bamboohr: Make) -> None:
    """A full account (the sandbox's data limit, not an injected fault) behind a throttle: the
    throttle is waited out, then the limit is reported, and nothing is sent a third time."""
    with BambooHRSandbox(api_key=API_KEY, employees=5, employee_limit=5) as server:
        server.throttle(retry_after=1, count=1)
        with pytest.raises(ConnectorError) as info:
            make_bamboohr(server, runtime=_runtime("full-and-throttled")).create_employee(
                {"firstName": "Six", "lastName": "Toomany"}
            )
        assert info.value.category == Category.CONFLICT and info.value.permanent
        assert _stats_over_http(server)["by_status"] == {"429": 2}
        assert [r.status for r in server.request_log] == [429, 429] and len(server.company.employees) == 5


# --- 503: "temporarily unavailable" (and the sandbox's switch back to the old 503 throttle) -----------
def test_503_throttle_switch_is_unavailable_and_transient(
    make_bamboohr: Make, bamboohr_server: BambooHRSandbox
) -> None:
    bamboohr_server.throttle(retry_after=1, count=1, status=503)
    started = time.monotonic()
    assert make_bamboohr(runtime=_runtime("throttle-503")).get_employee(1)["id"] == "1"
    assert 1.0 <= time.monotonic() - started < 1.8  # its Retry-After honoured
    assert bamboohr_server.stats()["by_status"] == {"200": 1, "503": 1}

    bamboohr_server.throttle(retry_after=45, count=1, status=503)
    with pytest.raises(ConnectorError) as info:
        make_bamboohr(runtime=_runtime("throttle-503-long")).get_employee(1)
    error = info.value
    assert error.category == Category.UNAVAILABLE and not error.permanent and error.retry_after == 45
    assert error.status_code == 503


def test_503_without_retry_after_is_retried_with_backoff_then_given_up(
    make_bamboohr: Make, bamboohr_server: BambooHRSandbox
) -> None:
    bamboohr_server.fail(503)
    with pytest.raises(ConnectorError) as info:
        make_bamboohr(runtime=_runtime("unavailable-forever")).get_employee(1)
    assert info.value.category == Category.UNAVAILABLE and not info.value.permanent
    assert bamboohr_server.requests == 4  # one try and max_retries=3


def test_create_employee_through_the_503_switch_is_retried_and_created_once(
    make_bamboohr: Make, bamboohr_server: BambooHRSandbox
) -> None:
    bamboohr_server.throttle(retry_after=1, count=1, status=503)
    new_id = make_bamboohr(runtime=_runtime("throttle-503-create")).create_employee(
        {"firstName": "Unavailable", "lastName": "Once"}
    )
    assert _named(bamboohr_server, "Unavailable", "Once") == [int(new_id)]
    assert bamboohr_server.stats()["by_status"] == {"201": 1, "503": 1}


# --- a 429 on a read holds back the integration's other callers --------------------------------------
def test_a_429_on_a_read_makes_the_next_call_wait(make_bamboohr: Make, bamboohr_server: BambooHRSandbox) -> None:
    limiter = MemoryRateLimiter(RATE)
    once = Runtime(key="read-429", limiter=limiter, retry=RetryPolicy(max_retries=0), policy=LOOPBACK)
    bamboohr_server.throttle(retry_after=1, count=1)
    with pytest.raises(ConnectorError) as info:
        make_bamboohr(runtime=once).get_employee(1)  # no retry of its own: the error reaches the caller
    assert info.value.category == Category.RATE_LIMITED and info.value.retry_after == 1
    throttled_at = time.monotonic()

    # Another caller of the same integration, with a sandbox that would answer at once.
    assert make_bamboohr(runtime=_runtime("read-429", limiter)).get_employee(2)["id"] == "2"
    assert time.monotonic() - throttled_at >= 0.95
    first, second = bamboohr_server.request_log
    assert (first.status, second.status) == (429, 200) and second.at - first.at >= 0.95


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
    assert [r.status for r in during] == [429]
    stats = bamboohr_server.stats()
    assert stats["by_status"] == {"200": callers, "429": 1}


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
    assert bamboohr_server.stats()["by_status"] == {"200": 3, "429": 3}
