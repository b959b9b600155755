"""Circuit breaker: opens after N consecutive failures, fails fast for the cool-down, one probe decides;
the Redis breaker is shared by processes and hands the probe to exactly one of them."""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest
import redis

from connectors.circuit import MemoryCircuitBreaker, RedisCircuitBreaker
from connectors.errors import Category, ConnectorError
from connectors.retry import RetryPolicy
from connectors.runtime import Runtime
from tests.connectors.policies import LOOPBACK


@pytest.fixture(params=["memory", "redis"])
def make_breaker(request: pytest.FixtureRequest, redis_client: redis.Redis, redis_prefix: str):
    def make(threshold: int = 3, cooldown: float = 0.3) -> MemoryCircuitBreaker | RedisCircuitBreaker:
        if request.param == "memory":
            return MemoryCircuitBreaker(threshold, cooldown)
        return RedisCircuitBreaker(redis_client, threshold, cooldown, prefix=redis_prefix)

    return make


class Remote:
    def __init__(self) -> None:
        self.calls = 0
        self.failing = True

    def __call__(self) -> str:
        self.calls += 1
        if self.failing:
            raise ConnectorError("connection refused", category=Category.NETWORK)
        return "ok"


def _runtime(breaker) -> Runtime:
    return Runtime(key="db", circuit=breaker, retry=RetryPolicy(max_retries=0), policy=LOOPBACK)


def _fail(runtime: Runtime, remote: Remote) -> ConnectorError:
    with pytest.raises(ConnectorError) as info:
        runtime.call("op", remote)
    return info.value


def test_opens_after_threshold_fails_fast_then_a_successful_probe_closes_it(make_breaker) -> None:
    runtime, remote = _runtime(make_breaker()), Remote()
    for _ in range(3):
        assert _fail(runtime, remote).category == Category.NETWORK
    error = _fail(runtime, remote)
    assert remote.calls == 3  # the 4th call never reached the remote system
    assert error.category == Category.UNAVAILABLE
    assert "circuit open" in error.message
    assert error.retry_after is not None and 0 < error.retry_after <= 0.3
    time.sleep(0.32)
    remote.failing = False
    assert runtime.call("op", remote) == "ok"  # the probe
    assert runtime.call("op", remote) == "ok"  # closed again
    assert remote.calls == 5


def test_a_failed_probe_opens_it_for_another_cooldown(make_breaker) -> None:
    runtime, remote = _runtime(make_breaker()), Remote()
    for _ in range(3):
        _fail(runtime, remote)
    time.sleep(0.32)
    assert _fail(runtime, remote).category == Category.NETWORK  # the probe went through and failed
    error = _fail(runtime, remote)
    assert error.category == Category.UNAVAILABLE and remote.calls == 4
    assert (error.retry_after or 0) > 0.2


def test_retry_after_reads_how_long_it_stays_open_without_taking_the_probe(make_breaker) -> None:
    breaker = make_breaker(threshold=2, cooldown=0.3)
    assert breaker.retry_after("db") is None  # never failed
    breaker.record_failure("db")
    assert breaker.retry_after("db") is None  # one failure: still closed
    breaker.record_failure("db")
    wait = breaker.retry_after("db")
    assert wait is not None and 0 < wait <= 0.3
    time.sleep(0.32)
    assert breaker.retry_after("db") is None  # the cool-down is over: half-open, callable again
    assert breaker.state("db") == "half_open"
    breaker.retry_after("db")  # reading it took nothing: the next caller still gets the probe
    breaker.before_call("db")
    with pytest.raises(ConnectorError) as probing:
        breaker.before_call("db")
    assert "probing" in probing.value.message


def test_only_one_caller_gets_the_probe(make_breaker) -> None:
    breaker = make_breaker()
    for _ in range(3):
        breaker.record_failure("db")
    time.sleep(0.32)
    breaker.before_call("db")  # this caller probes
    with pytest.raises(ConnectorError) as info:
        breaker.before_call("db")  # while the probe is out, everyone else fails fast
    assert info.value.category == Category.UNAVAILABLE and "probing" in info.value.message
    breaker.record_success("db")
    breaker.before_call("db")


def test_a_success_resets_the_count_of_consecutive_failures(make_breaker) -> None:
    breaker = make_breaker()
    runtime, remote = _runtime(breaker), Remote()
    _fail(runtime, remote)
    _fail(runtime, remote)
    remote.failing = False
    runtime.call("op", remote)
    remote.failing = True
    _fail(runtime, remote)
    _fail(runtime, remote)
    assert _fail(runtime, remote).category == Category.NETWORK  # still closed: only 2 in a row before


def test_bad_input_does_not_trip_the_circuit(make_breaker) -> None:
    runtime = _runtime(make_breaker(threshold=2))

    def bad_sql() -> None:
        raise ConnectorError("syntax error", category=Category.INVALID)

    for _ in range(5):
        with pytest.raises(ConnectorError) as info:
            runtime.call("op", bad_sql)
        assert info.value.category == Category.INVALID


COOLDOWN = 1.5  # long enough that six forked processes ask while it is open, even on a busy machine


def _race_for_probe(url: str, prefix: str, start_at: float, out: multiprocessing.Queue) -> None:
    breaker = RedisCircuitBreaker(redis.Redis.from_url(url), 3, COOLDOWN, prefix=prefix)
    time.sleep(max(0.0, start_at - time.time()))
    try:
        breaker.before_call("db")
        out.put("probe")
    except ConnectorError as exc:
        out.put(exc.category.value)


def test_across_processes_the_circuit_is_shared_and_one_process_probes(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    opener = RedisCircuitBreaker(redis_client, 3, COOLDOWN, prefix=redis_prefix)
    for _ in range(3):
        opener.record_failure("db")
    opened_at = time.time()
    context = multiprocessing.get_context("fork")
    for start_at, expected_probes in ((time.time() + 0.1, 0), (opened_at + COOLDOWN + 0.1, 1)):
        # while open: nobody gets through; after the cool-down: exactly one of six
        out: multiprocessing.Queue = context.Queue()
        procs = [context.Process(target=_race_for_probe, args=(url, redis_prefix, start_at, out)) for _ in range(6)]
        for proc in procs:
            proc.start()
        answers = [out.get(timeout=20) for _ in procs]
        for proc in procs:
            proc.join(timeout=10)
        if not expected_probes:
            assert time.time() < opened_at + COOLDOWN, "the machine was too slow to ask while open"
        assert answers.count("probe") == expected_probes
        assert answers.count("unavailable") == 6 - expected_probes
    assert opener.state("db") == "half_open"
