"""Circuit breaker: opens after N consecutive failures, fails fast for the cool-down, one probe decides;
the Redis breaker is shared by processes and hands the probe to exactly one of them."""

from __future__ import annotations

import multiprocessing
import os
import socket
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


# Issue 26: the edges mutation testing found untested. The memory breaker takes a clock, so the exact
# boundaries (the cool-down's last instant, the probe's time-out) are checked without sleeping.
class Clock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _refusal(breaker: MemoryCircuitBreaker | RedisCircuitBreaker, key: str = "db") -> ConnectorError:
    with pytest.raises(ConnectorError) as info:
        breaker.before_call(key)
    return info.value


def test_memory_defaults_open_after_five_failures_for_thirty_seconds() -> None:
    clock = Clock()
    breaker = MemoryCircuitBreaker(clock=clock)
    assert breaker.state("db") == "closed"  # never seen
    for _ in range(4):
        breaker.record_failure("db")
    assert breaker.state("db") == "closed"
    breaker.before_call("db")
    breaker.record_failure("db")
    assert breaker.state("db") == "open"
    error = _refusal(breaker)
    assert error.message == "circuit open for db (too many consecutive failures); calls fail fast for 30.0 s more"
    assert error.category == Category.UNAVAILABLE and error.retry_after == 30.0 and error.permanent is False
    clock.now = 0.87655
    assert _refusal(breaker).retry_after == 29.123  # to the millisecond
    clock.now = 29.5
    assert _refusal(breaker).retry_after == 0.5
    clock.now = 30.0  # the cool-down's end: half-open, this caller probes
    assert breaker.state("db") == "half_open"
    breaker.before_call("db")
    clock.now = 59.0  # the probe is given up after probe_timeout = cooldown (30 s)...
    probing = _refusal(breaker)
    assert probing.message == "circuit open for db (another caller is probing it); calls fail fast for 1.0 s more"
    assert probing.retry_after == 1.0
    clock.now = 60.0  # ...and then the next caller gets it
    breaker.before_call("db")


def test_memory_probe_timeout_is_at_least_a_second_or_as_given() -> None:
    clock = Clock()
    short = MemoryCircuitBreaker(1, 0.3, clock=clock)
    short.record_failure("k")
    clock.now = 0.3
    short.before_call("k")  # the probe, at the cool-down's end (and not refused as "probing" before any probe)
    clock.now = 1.29
    assert "probing" in _refusal(short, "k").message
    clock.now = 1.3
    short.before_call("k")
    given = MemoryCircuitBreaker(1, 10, probe_timeout=2, clock=clock)
    clock.now = 100.0
    given.record_failure("k")
    clock.now = 110.0
    given.before_call("k")
    clock.now = 112.0
    given.before_call("k")


def test_memory_a_failure_after_the_cooldown_opens_it_again_without_a_probe() -> None:
    clock = Clock()
    breaker = MemoryCircuitBreaker(2, 10, clock=clock)
    breaker.record_failure("db")
    breaker.record_failure("db")
    clock.now = 10.0  # exactly the end of the cool-down
    breaker.record_failure("db")  # e.g. a caller that skipped before_call
    assert breaker.state("db") == "open"
    assert breaker.retry_after("db") == 10.0
    clock.now = 20.0
    assert breaker.state("db") == "half_open" and breaker.retry_after("db") is None


def test_redis_breaker_defaults(redis_client: redis.Redis, redis_prefix: str) -> None:
    breaker = RedisCircuitBreaker(redis_client, prefix=redis_prefix)
    for _ in range(4):
        breaker.record_failure("db")
    assert breaker.state("db") == "closed"
    breaker.record_failure("db")
    error = _refusal(breaker)
    assert error.message.startswith("circuit open for db (too many consecutive failures); calls fail fast for 3")
    assert error.retry_after is not None and 29 < error.retry_after <= 30


def test_redis_a_clean_closed_circuit_is_trusted_for_the_refresh_interval(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    # The documented trade: a process that saw the circuit closed and clean does not ask Redis again
    # for `refresh` seconds, so another process's opening reaches it that much later...
    here = RedisCircuitBreaker(redis_client, 2, 10, prefix=redis_prefix, refresh=30)
    elsewhere = RedisCircuitBreaker(redis_client, 2, 10, prefix=redis_prefix)
    here.before_call("db")
    elsewhere.record_failure("db")
    elsewhere.record_failure("db")
    assert elsewhere.state("db") == "open"
    here.before_call("db")  # still trusted
    # ...and its success does not reset a circuit it saw clean: the other process's opening stands.
    here.record_success("db")
    assert elsewhere.state("db") == "open"
    assert "too many consecutive failures" in _refusal(elsewhere).message
    # After its own failure it asks Redis every time.
    here.record_failure("db")
    assert "circuit open for db" in _refusal(here).message


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_redis_unreachable_refuses_calls_but_never_hides_a_result(caplog: pytest.LogCaptureFixture) -> None:
    down = redis.Redis(host="127.0.0.1", port=_closed_port(), socket_connect_timeout=0.5)
    breaker = RedisCircuitBreaker(down, prefix="nowhere")
    error = _refusal(breaker)
    assert error.message == "circuit-breaker store (Redis) is unreachable: ConnectionError"
    assert error.category == Category.UNAVAILABLE and error.retry_after == 5.0
    with caplog.at_level("WARNING", logger="connectors.circuit"):
        breaker.record_success("db")  # the call succeeded: no exception for the bookkeeping
        breaker.record_failure("db")
    assert [r.getMessage() for r in caplog.records] == [
        "circuit state for db not reset: Redis ConnectionError",
        "circuit failure for db not counted: Redis ConnectionError",
    ]


def test_redis_reset_closes_the_circuit_for_every_process(redis_client: redis.Redis, redis_prefix: str) -> None:
    breaker = RedisCircuitBreaker(redis_client, 1, 30, prefix=redis_prefix)
    other = RedisCircuitBreaker(redis_client, 1, 30, prefix=redis_prefix)
    breaker.record_failure("db")
    assert _refusal(breaker).category == Category.UNAVAILABLE
    breaker.reset("db")
    assert other.state("db") == "closed" and redis_client.exists(other.circuit_key("db")) == 0
    breaker.before_call("db")  # this process forgot what it had seen too
    other.before_call("db")


def test_redis_keys_probe_and_lifetime(redis_client: redis.Redis, redis_prefix: str) -> None:
    assert RedisCircuitBreaker(redis_client).circuit_key("db") == "hub:circuit:db"
    breaker = RedisCircuitBreaker(redis_client, 1, 0.3, prefix=redis_prefix)
    breaker.record_failure("db")
    # failures are forgotten after the cool-down, the probe time-out (at least 1 s) and 300 s more
    assert (0.3 + 1.0 + 300) * 1000 - 500 < redis_client.pttl(breaker.circuit_key("db")) <= (0.3 + 1.0 + 300) * 1000
    time.sleep(0.32)
    breaker.before_call("db")  # the probe
    probing = _refusal(breaker)
    assert probing.message.startswith("circuit open for db (another caller is probing it)")
    assert probing.retry_after is not None and 0.5 < probing.retry_after <= 1.0  # the probe time-out: 1 s
    given = RedisCircuitBreaker(redis_client, 1, 10, prefix=redis_prefix, probe_timeout=2)
    given.record_failure("other")
    assert 311_500 < redis_client.pttl(given.circuit_key("other")) <= 312_000
