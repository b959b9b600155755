"""The token bucket: bounded waits, refusals with retry_after, Retry-After pauses, and one bucket
shared by several OS processes through Redis."""

from __future__ import annotations

import math
import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import redis

from connectors.errors import Category, ConnectorError
from connectors.ratelimit import (
    MemoryBucketStore,
    MemoryRateLimiter,
    RateLimitConfig,
    RedisRateLimiter,
    _forget_leases_in_child,
)


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


# ----------------------------------------------------------------------------- exact waits (issue 26)
# The memory limiter takes its clock and sleep as arguments: with a clock that only moves when the
# limiter sleeps, every wait and retry_after is exact, and "a pause arrives while a caller sleeps" is
# a step of the test rather than a race.


class _Time:
    """A clock that advances only when the limiter sleeps; ``during_sleep`` runs at the start of the
    first sleep (another worker acting while this caller waits)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.during_sleep: list[Callable[[], None]] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        while self.during_sleep:
            self.during_sleep.pop(0)()
        self.now += seconds


def _memory(rate: RateLimitConfig, fake: _Time) -> MemoryRateLimiter:
    return MemoryRateLimiter(rate, clock=fake.clock, sleep=fake.sleep)


def test_a_refusal_names_the_integration_and_the_wait_to_the_millisecond() -> None:
    fake = _Time()
    limiter = _memory(_rate(requests=3, per_seconds=1, burst=1, max_wait_seconds=0.1), fake)
    limiter.acquire("crm-7")
    with pytest.raises(ConnectorError) as info:
        limiter.acquire("crm-7")
    assert info.value.retry_after == 0.333  # the next token is 1/3 s away
    assert str(info.value) == "rate limit reached for crm-7; next request allowed in 0.33 s"
    assert not info.value.permanent


def test_a_wait_of_exactly_max_wait_seconds_is_granted() -> None:
    fake = _Time()
    limiter = _memory(_rate(requests=1, per_seconds=1, burst=1, max_wait_seconds=1), fake)
    limiter.acquire("k")
    limiter.acquire("k")  # its token is due in exactly 1 s: the bound, not past it
    assert fake.now == 1.0


def test_a_pause_that_arrives_while_a_caller_sleeps_holds_it_until_the_pause_ends() -> None:
    """The caller booked the token due at t=1; at t=0 the provider says Retry-After 1.5 s. The caller
    must not go at t=1: it waits out the pause (its whole wait, 1.5 s, is within its 10 s bound)."""
    fake = _Time()
    limiter = _memory(_rate(requests=1, per_seconds=1, burst=1, max_wait_seconds=10), fake)
    limiter.acquire("k")
    fake.during_sleep.append(lambda: limiter.pause("k", 1.5))
    limiter.acquire("k")
    assert fake.now == 1.5


def test_a_pause_that_ends_exactly_at_the_bound_is_waited_out() -> None:
    fake = _Time()
    limiter = _memory(_rate(requests=1, per_seconds=1, burst=1, max_wait_seconds=2), fake)
    limiter.acquire("k")
    fake.during_sleep.append(lambda: limiter.pause("k", 2))
    limiter.acquire("k")  # slept 1 s, then 1 s of pause left: 2 s in all, the bound
    assert fake.now == 2.0


def test_the_bound_counts_the_sleep_already_done_when_a_pause_arrives() -> None:
    """Slept 1 s of a 2 s bound, then 1.5 s of pause left: 2.5 s in all, so the call is refused with
    the pause's remaining 1.5 s, though 1.5 s alone would fit the bound."""
    fake = _Time()
    limiter = _memory(_rate(requests=1, per_seconds=1, burst=1, max_wait_seconds=2), fake)
    limiter.acquire("crm-7")
    fake.during_sleep.append(lambda: limiter.pause("crm-7", 2.5))
    with pytest.raises(ConnectorError) as info:
        limiter.acquire("crm-7")
    assert info.value.category == Category.RATE_LIMITED
    assert info.value.retry_after == 1.5
    assert str(info.value) == "rate limit reached for crm-7; next request allowed in 1.50 s"
    assert fake.now == 1.0


def test_after_a_pause_the_bucket_restarts_with_one_token() -> None:
    """Retry-After 2 s: nothing before t=2, then one token, refilled at 1 a second; at t=3 two calls
    go (the one in hand and one refilled), not the burst of 5."""
    fake = _Time()
    limiter = _memory(_rate(requests=1, per_seconds=1, burst=5, max_wait_seconds=0), fake)
    limiter.pause("k", 2)
    fake.now = 3.0
    limiter.acquire("k")
    limiter.acquire("k")
    with pytest.raises(ConnectorError) as info:
        limiter.acquire("k")
    assert info.value.retry_after == 1.0


def test_the_same_pause_reported_twice_keeps_the_tokens_already_booked() -> None:
    """Two workers get the same Retry-After at the same instant: the caller who booked the first token
    after the pause keeps it, so the next caller's token is one refill later (t=3), not at once."""
    fake = _Time()
    limiter = _memory(_rate(requests=1, per_seconds=1, burst=1, max_wait_seconds=10), fake)
    limiter.pause("k", 2)
    fake.during_sleep.append(lambda: limiter.pause("k", 2))
    limiter.acquire("k")
    assert fake.now == 2.0
    limiter.acquire("k")
    assert fake.now == 3.0


def test_a_shorter_pause_does_not_cut_a_longer_one(make_limiter) -> None:
    limiter = make_limiter(_rate(requests=100, per_seconds=1, max_wait_seconds=2))
    limiter.pause("k", 0.4)
    limiter.pause("k", 0.1)
    started = time.monotonic()
    limiter.acquire("k")
    assert time.monotonic() - started >= 0.35


@pytest.mark.parametrize("seconds", [0, -1])
def test_a_retry_after_of_zero_or_less_changes_nothing(make_limiter, seconds: float) -> None:
    limiter = make_limiter(_rate(requests=1, per_seconds=10, burst=3, max_wait_seconds=0))
    limiter.pause("k", seconds)
    for _ in range(3):  # the whole burst is still there
        limiter.acquire("k")
    with pytest.raises(ConnectorError):
        limiter.acquire("k")


@pytest.mark.parametrize("seconds", [math.inf, math.nan])
def test_a_retry_after_that_is_not_a_number_of_seconds_is_ignored(
    redis_client: redis.Redis, redis_prefix: str, seconds: float
) -> None:
    limiter = RedisRateLimiter(
        redis_client, _rate(requests=1, per_seconds=10, burst=3, max_wait_seconds=0), prefix=redis_prefix
    )
    limiter.pause("k", seconds)
    for _ in range(3):
        limiter.acquire("k")


def test_after_a_refusal_the_refilled_bucket_admits_all_it_holds(make_limiter) -> None:
    limiter = make_limiter(_rate(requests=10, per_seconds=1, burst=2, max_wait_seconds=0))
    limiter.acquire("k")
    limiter.acquire("k")
    with pytest.raises(ConnectorError):
        limiter.acquire("k")
    time.sleep(0.3)  # refills past the burst of 2 (capped there)
    limiter.acquire("k")
    limiter.acquire("k")
    with pytest.raises(ConnectorError):
        limiter.acquire("k")


def test_a_pause_from_redis_holds_a_caller_that_was_already_sleeping(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    """The Redis twin of the test above: the caller's token was due in 0.1 s; a 0.5 s pause that
    arrives meanwhile holds it until the pause is over."""
    limiter: RedisRateLimiter

    def sleep(seconds: float) -> None:
        if not paused:
            paused.append(True)
            limiter.pause("k", 0.5)
        time.sleep(seconds)

    paused: list[bool] = []
    limiter = RedisRateLimiter(
        redis_client, _rate(requests=10, per_seconds=1, burst=1, max_wait_seconds=3), prefix=redis_prefix, sleep=sleep
    )
    limiter.acquire("k")
    started = time.monotonic()
    limiter.acquire("k")
    assert time.monotonic() - started >= 0.45


def test_unreachable_redis_is_transient_and_says_when_to_try_again() -> None:
    client = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    limiter = RedisRateLimiter(client, _rate(), prefix="x")
    for call in (lambda: limiter.acquire("k"), lambda: limiter.pause("k", 3)):
        with pytest.raises(ConnectorError) as info:
            call()
        assert str(info.value) == "rate-limit store (Redis) is unreachable: ConnectionError"
        assert info.value.category == Category.UNAVAILABLE
        assert info.value.permanent is False
        assert info.value.retry_after == 5.0


def test_reset_gives_a_drained_integration_its_whole_bucket_back(redis_client: redis.Redis, redis_prefix: str) -> None:
    limiter = RedisRateLimiter(redis_client, _rate(requests=2, per_seconds=10, max_wait_seconds=0), prefix=redis_prefix)
    for _round in range(2):
        limiter.acquire("k")
        limiter.acquire("k")
        with pytest.raises(ConnectorError):
            limiter.acquire("k")
        limiter.reset("k")


# ----------------------------------------------------------------------------- leases (issue 26)


@dataclass
class _Ask:
    """One run of the acquire script: the lease the process held when it asked, what it asked for,
    what the shared bucket gave."""

    held: tuple[int, int, bool] | None  # (size, tokens left, expired) or no lease
    lease: object  # the lease itself, to count what an expired one drops once
    want: int
    granted: bool
    taken: int


def _spy_on_the_bucket(limiter: RedisRateLimiter, key: str) -> list[_Ask]:
    """Record every run of the acquire script (the real one runs; this only watches)."""
    asks: list[_Ask] = []
    script = limiter._acquire

    def watched(*, keys: list[str], args: list[str]) -> object:
        lease = limiter._leases.get(key)
        held = (lease.size, lease.tokens, time.monotonic() >= lease.expires) if lease else None
        granted, wait, taken = script(keys=keys, args=args)
        asks.append(_Ask(held, lease, int(args[-1]), bool(int(granted)), int(taken)))
        return granted, wait, taken

    limiter._acquire = watched  # type: ignore[assignment]
    return asks


def _check_leases(limiter: RedisRateLimiter, asks: list[_Ask], admitted: int, key: str) -> None:
    """What the module docstring promises of leases: a process asks for a new lease only when the
    last one is used up or expired; it asks for twice the last one when it used it up in time (up to
    the largest lease), for what it used when it expired; and every token the bucket handed out was
    admitted once, or dropped with an expired lease."""
    dropped = 0
    seen: list[object] = []
    for ask in asks:
        if ask.held is None:
            assert ask.want == 1
            continue
        size, left, expired = ask.held
        assert left >= 0, ask
        if not expired:  # (an expiry seen here may have been seen a moment earlier by acquire)
            assert left == 0, f"asked for more with {left} leased tokens unspent"
            assert ask.want == min(limiter._max_lease, size * 2), ask
        elif left > 0:
            assert ask.want == max(1, size - left), ask
        else:
            assert ask.want in {size, min(limiter._max_lease, size * 2)}, ask
        if expired and not any(ask.lease is other for other in seen):  # a refused ask keeps the old lease
            dropped += left
            seen.append(ask.lease)
    lease = limiter._leases.get(key)
    remaining = lease.tokens if lease else 0
    assert remaining >= 0
    taken = sum(ask.taken for ask in asks if ask.granted)
    assert admitted + dropped + remaining == taken, (admitted, dropped, remaining, taken)


def test_a_process_admits_exactly_the_tokens_it_leased(redis_client: redis.Redis, redis_prefix: str) -> None:
    """2,000 a second, no waiting: the process drains the bucket lease by lease until it is refused;
    no token is admitted twice or lost, and a refusal books no lease."""
    limiter = RedisRateLimiter(
        redis_client, _rate(requests=2000, per_seconds=1, max_wait_seconds=0), prefix=redis_prefix
    )
    assert limiter.lease_ttl > 0
    asks = _spy_on_the_bucket(limiter, "k")
    admitted = refused = 0
    while refused < 3 and admitted < 20_000:
        try:
            limiter.acquire("k")
        except ConnectorError:
            refused += 1
        else:
            admitted += 1
    assert refused == 3 and admitted < 5000  # the bucket ran dry
    _check_leases(limiter, asks, admitted, "k")


def test_an_expired_lease_shrinks_to_what_was_used(redis_client: redis.Redis, redis_prefix: str) -> None:
    asks: list[_Ask] = []
    for _attempt in range(3):  # a stall of the machine (> the 50 ms lease) spoils the sequence: try again
        limiter = RedisRateLimiter(redis_client, _rate(requests=1_000_000, per_seconds=1), prefix=redis_prefix)
        key = f"k{_attempt}"
        asks = _spy_on_the_bucket(limiter, key)
        for _ in range(5):  # leases of 1, 2 and 4: the last with 2 of 4 left
            limiter.acquire(key)
        time.sleep(limiter.lease_ttl + 0.01)
        limiter.acquire(key)  # used 2 of 4: asks for 2
        time.sleep(limiter.lease_ttl + 0.01)
        limiter.acquire(key)  # used 1 of 2: asks for 1
        _check_leases(limiter, asks, 7, key)
        expired = [(ask.held, ask.want) for ask in asks if ask.held and ask.held[2]]
        if expired[-2:] == [((4, 2, True), 2), ((2, 1, True), 1)]:
            return
    pytest.fail(f"the lease sequence never ran undisturbed: {asks}")


def test_a_pause_drops_the_lease_a_process_holds(redis_client: redis.Redis, redis_prefix: str) -> None:
    limiter = RedisRateLimiter(
        redis_client, _rate(requests=1_000_000, per_seconds=1, max_wait_seconds=2), prefix=redis_prefix
    )
    for _ in range(20):
        limiter.acquire("k")  # the last lease (of 16) has tokens left
    limiter.pause("k", 0.3)
    started = time.monotonic()
    limiter.acquire("k")
    assert time.monotonic() - started >= 0.25


def test_reset_drops_the_lease_so_the_next_call_draws_from_the_new_bucket(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    limiter = RedisRateLimiter(redis_client, _rate(requests=1_000_000, per_seconds=1), prefix=redis_prefix)
    for _ in range(20):
        limiter.acquire("k")
    limiter.reset("k")
    assert not redis_client.exists(limiter.bucket_key("k"))
    limiter.acquire("k")
    assert redis_client.exists(limiter.bucket_key("k"))


def test_the_fork_hook_empties_every_live_limiters_leases(redis_client: redis.Redis, redis_prefix: str) -> None:
    """What a forked child runs first (registered with os.register_at_fork), called here in the test
    process so that the mutation run sees a test reach it (the fork test above checks it in a child)."""
    limiter = RedisRateLimiter(redis_client, _rate(requests=1_000_000, per_seconds=1), prefix=redis_prefix)
    for _ in range(20):
        limiter.acquire("k")
    assert limiter._leases
    _forget_leases_in_child()
    assert limiter._leases == {}
