"""Retry with tenacity: exponential backoff with jitter, Retry-After honoured up to a bound."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import tenacity

from connectors.errors import Category, ConnectorError
from connectors.ratelimit import RateLimitExceeded

T = TypeVar("T")


@dataclass
class RetryPolicy:
    max_retries: int = 3
    initial_backoff: float = 1.0  # then 2 s, 4 s ...
    max_backoff: float = 30.0
    jitter: float = 0.25  # each wait is backoff * uniform(1 - jitter, 1 + jitter)
    max_retry_after: float = 30.0  # a longer Retry-After fails at once with retry_after set


# Errors raised before the remote system was asked (an open circuit, an unreachable Redis): retrying
# here would only block a worker. The remote system's own "unavailable" (an HTTP 503, which carries
# its status code) is an answer like any transient one, retried after its Retry-After or a backoff.
_NEVER_RETRIED = {Category.UNAVAILABLE}


def is_retryable(exc: BaseException, policy: RetryPolicy) -> bool:
    if not isinstance(exc, ConnectorError) or exc.permanent:
        return False
    if exc.category in _NEVER_RETRIED and exc.status_code is None:
        return False
    if isinstance(exc, RateLimitExceeded):
        return False  # the limiter already waited up to its bound; past it the call fails
    # Past max_retry_after the caller (a task) reschedules itself instead of a worker sleeping.
    return exc.retry_after is None or exc.retry_after <= policy.max_retry_after


def backoff_seconds(policy: RetryPolicy, attempt_number: int, rng: Callable[[], float] = random.random) -> float:
    """Backoff before retry ``attempt_number`` (1-based): initial * 2^(n-1), times a jitter factor."""
    base = min(policy.initial_backoff * (2 ** (attempt_number - 1)), policy.max_backoff)
    factor = 1 - policy.jitter + 2 * policy.jitter * rng()
    return base * factor


def _wait_after(policy: RetryPolicy, exc: BaseException | None, attempt_number: int) -> float:
    """Seconds to wait after failed attempt ``attempt_number``: the provider's word, else backoff."""
    if isinstance(exc, ConnectorError) and exc.retry_after is not None:
        return min(exc.retry_after, policy.max_retry_after)
    return backoff_seconds(policy, attempt_number)


def retry_after_failure(
    policy: RetryPolicy, fn: Callable[[], T], first: ConnectorError, *, sleep: Callable[[float], None]
) -> T:
    """The first attempt of ``fn`` failed with ``first``: re-raise it, or retry under the policy.

    The first attempt runs outside tenacity (in ``Runtime.call``): building its state machine costs
    more than a database round trip, and almost every call succeeds first time."""
    if policy.max_retries < 1 or not is_retryable(first, policy):
        raise first
    sleep(_wait_after(policy, first, 1))

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return _wait_after(policy, exc, state.attempt_number + 1)

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.max_retries),
        wait=wait,
        retry=tenacity.retry_if_exception(lambda exc: is_retryable(exc, policy)),
        sleep=sleep,
        reraise=True,
    )
    return retrying(fn)
