"""Retry through ``Runtime.call``: backoff with jitter, Retry-After, permanent errors tried once."""

from __future__ import annotations

import random

import pytest

from connectors.errors import Category, ConnectorError
from connectors.ratelimit import MemoryRateLimiter, RateLimitConfig
from connectors.retry import RetryPolicy, backoff_seconds
from connectors.runtime import Runtime


class Flaky:
    """Fails with the given errors in turn, then answers "ok"; counts its calls."""

    def __init__(self, *errors: ConnectorError) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def _runtime(**policy: float) -> tuple[Runtime, list[float]]:
    waits: list[float] = []
    return Runtime(key="k", retry=RetryPolicy(**policy), sleep=waits.append), waits  # type: ignore[arg-type]


def _network() -> ConnectorError:
    return ConnectorError("connection reset", category=Category.NETWORK)


def test_transient_errors_back_off_exponentially_within_the_jitter_bounds() -> None:
    runtime, waits = _runtime()
    flaky = Flaky(_network(), _network(), _network())
    assert runtime.call("op", flaky) == "ok"
    assert flaky.calls == 4
    assert len(waits) == 3
    for wait, base in zip(waits, (1.0, 2.0, 4.0), strict=True):
        assert base * 0.75 <= wait <= base * 1.25


def test_jitter_actually_varies_and_stays_in_bounds() -> None:
    policy = RetryPolicy()
    samples = [backoff_seconds(policy, 2, random.random) for _ in range(200)]
    assert min(samples) >= 1.5 and max(samples) <= 2.5
    assert max(samples) - min(samples) > 0.5  # not a constant: the jitter spreads retries out
    assert backoff_seconds(policy, 3, lambda: 0.0) == pytest.approx(3.0)
    assert backoff_seconds(policy, 3, lambda: 1.0) == pytest.approx(5.0)
    assert backoff_seconds(RetryPolicy(max_backoff=5), 10, lambda: 0.5) == pytest.approx(5.0)


def test_gives_up_after_max_retries_with_the_last_error() -> None:
    runtime, waits = _runtime(max_retries=2)
    flaky = Flaky(_network(), _network(), _network(), _network())
    with pytest.raises(ConnectorError) as info:
        runtime.call("op", flaky)
    assert info.value.category == Category.NETWORK
    assert flaky.calls == 3 and len(waits) == 2


@pytest.mark.parametrize("category", [Category.AUTH, Category.PERMISSION, Category.INVALID, Category.CONFIG])
def test_permanent_errors_are_tried_once(category: Category) -> None:
    runtime, waits = _runtime()
    flaky = Flaky(ConnectorError("no", category=category))
    with pytest.raises(ConnectorError):
        runtime.call("op", flaky)
    assert flaky.calls == 1 and waits == []


def test_retry_after_is_honoured_instead_of_the_backoff() -> None:
    runtime, waits = _runtime()
    flaky = Flaky(ConnectorError("slow down", category=Category.RATE_LIMITED, retry_after=7.5))
    assert runtime.call("op", flaky) == "ok"
    assert waits == [7.5]


def test_retry_after_beyond_the_maximum_fails_at_once_with_retry_after_set() -> None:
    runtime, waits = _runtime(max_retry_after=30)
    flaky = Flaky(ConnectorError("come back later", category=Category.RATE_LIMITED, retry_after=120))
    with pytest.raises(ConnectorError) as info:
        runtime.call("op", flaky)
    assert flaky.calls == 1 and waits == []
    assert info.value.retry_after == 120  # the task reschedules itself rather than a worker sleeping


def test_retry_after_from_a_provider_pauses_the_shared_bucket() -> None:
    limiter = MemoryRateLimiter(RateLimitConfig.model_validate({"max_wait_seconds": 0}))
    runtime, _ = _runtime(max_retries=0)
    runtime.limiter = limiter
    with pytest.raises(ConnectorError):
        runtime.call("op", Flaky(ConnectorError("429", category=Category.RATE_LIMITED, retry_after=60)))
    # Another caller of the same integration is now refused without reaching the provider.
    never_called = Flaky()
    with pytest.raises(ConnectorError) as info:
        runtime.call("op", never_called)
    assert never_called.calls == 0
    assert info.value.category == Category.RATE_LIMITED and 59 < (info.value.retry_after or 0) <= 60


def test_no_retry_flag_runs_once() -> None:
    runtime, waits = _runtime()
    flaky = Flaky(_network())
    with pytest.raises(ConnectorError):
        runtime.call("write", flaky, retry=False)
    assert flaky.calls == 1 and waits == []


def test_a_refusal_by_our_own_limiter_is_not_retried() -> None:
    limiter = MemoryRateLimiter(
        RateLimitConfig.model_validate({"requests": 1, "per_seconds": 20, "max_wait_seconds": 0})
    )
    runtime, waits = _runtime()
    runtime.limiter = limiter
    runtime.call("op", Flaky())
    started_calls = Flaky()
    with pytest.raises(ConnectorError) as info:
        runtime.call("op", started_calls)  # retry_after (20 s) is within max_retry_after, still no sleep
    assert info.value.category == Category.RATE_LIMITED and 19 < (info.value.retry_after or 0) <= 20
    assert waits == [] and started_calls.calls == 0


def test_our_own_unavailable_is_not_retried_but_a_providers_503_is() -> None:
    runtime, waits = _runtime()
    circuit_open = Flaky(ConnectorError("circuit open", category=Category.UNAVAILABLE, retry_after=20))
    with pytest.raises(ConnectorError):
        runtime.call("op", circuit_open)  # raised before the provider was asked: no worker sleeps on it
    assert circuit_open.calls == 1 and waits == []

    provider_503 = Flaky(ConnectorError("HTTP 503", category=Category.UNAVAILABLE, retry_after=4, status_code=503))
    assert runtime.call("op", provider_503) == "ok"
    assert provider_503.calls == 2 and waits == [4]
