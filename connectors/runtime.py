"""The collaborators a connector is handed, and the one guarded call every family's choke point uses.

Connectors never build these themselves: the Django side (or a test) passes a ``Runtime`` whose
limiter, circuit breaker and metrics sink are shared through Redis or kept in memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from connectors.errors import Category, ConnectorError
from connectors.policy import TargetPolicy
from connectors.retry import RetryPolicy, retry_after_failure

T = TypeVar("T")


class RateLimiter(Protocol):
    def acquire(self, key: str) -> None:
        """Take one token for ``key``, waiting up to the limiter's bound; else raise rate_limited."""

    def pause(self, key: str, seconds: float) -> None:
        """A provider said Retry-After: no process takes a token for ``key`` until then."""


class CircuitBreaker(Protocol):
    def before_call(self, key: str) -> None:
        """Raise ConnectorError(category=unavailable, retry_after=...) while the circuit is open."""

    def record_success(self, key: str) -> None: ...

    def record_failure(self, key: str) -> None: ...


class MetricsSink(Protocol):
    def record(self, key: str, *, ok: bool, latency_ms: float, error: str | None = None) -> None: ...

    def mark_connected(self, key: str) -> None: ...


class TokenProvider(Protocol):
    """Gives a bearer token (OAuth2). ``invalidate`` is called after a 401: once for the token used,
    and once more if the fresh token it was replaced with is refused as well."""

    def get_token(self) -> str: ...

    def invalidate(self, token: str) -> None: ...


# Failures that say nothing about the remote system's health do not trip the circuit. A refused
# credential (AUTH) is not transient either: it waits for a person, and an open circuit would hide
# "reconnect the integration" behind "calls fail fast" and keep failing after the reconnect.
_NOT_CIRCUIT_FAILURES = {
    Category.AUTH,
    Category.INVALID,
    Category.NOT_FOUND,
    Category.CONFLICT,
    Category.RATE_LIMITED,
    Category.UNAVAILABLE,
    Category.PERMISSION,
}


@dataclass
class Runtime:
    """Shared state keyed by ``key`` (the integration id)."""

    key: str
    limiter: RateLimiter | None = None
    circuit: CircuitBreaker | None = None
    metrics: MetricsSink | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    token_provider: TokenProvider | None = None
    sleep: Callable[[float], None] = time.sleep
    # Where connections may go; the default refuses loopback and every SQLite file.
    policy: TargetPolicy = field(default_factory=TargetPolicy)

    def call(self, operation: str, fn: Callable[[], T], *, retry: bool = True) -> T:
        """Run ``fn`` under the circuit breaker, the shared rate limit, retry and metrics.

        ``retry=False``: one attempt only, for calls that must not run twice (a write whose
        outcome is unknown after a lost connection, a statement inside a transaction).
        """
        try:
            return self._attempt(operation, fn)
        except ConnectorError as exc:
            if not retry:
                raise
            # Almost every call succeeds first time, so tenacity is only reached after a failure.
            return retry_after_failure(self.retry, lambda: self._attempt(operation, fn), exc, sleep=self.sleep)

    def _attempt(self, operation: str, fn: Callable[[], T]) -> T:
        if self.circuit is not None:
            self.circuit.before_call(self.key)
        if self.limiter is not None:
            self.limiter.acquire(self.key)
        started = time.perf_counter()
        try:
            result = fn()
        except ConnectorError as exc:
            latency_ms = (time.perf_counter() - started) * 1000
            if exc.category == Category.RATE_LIMITED and exc.retry_after and self.limiter is not None:
                self.limiter.pause(self.key, exc.retry_after)
            if self.metrics is not None:
                self.metrics.record(self.key, ok=False, latency_ms=latency_ms, error=f"{exc.category}: {exc.message}")
            if self.circuit is not None:
                if exc.category in _NOT_CIRCUIT_FAILURES:
                    self.circuit.record_success(self.key)
                else:
                    self.circuit.record_failure(self.key)
            raise
        except Exception as exc:  # a bug or an unmapped error: counted, never shown with its text
            if self.metrics is not None:
                latency_ms = (time.perf_counter() - started) * 1000
                self.metrics.record(self.key, ok=False, latency_ms=latency_ms, error=f"unknown: {type(exc).__name__}")
            raise
        latency_ms = (time.perf_counter() - started) * 1000
        if self.metrics is not None:
            self.metrics.record(self.key, ok=True, latency_ms=latency_ms)
        if self.circuit is not None:
            self.circuit.record_success(self.key)
        return result
