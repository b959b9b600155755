"""Request metrics per integration: counts, success rate, average and p95 latency, uptime, last error.

``MemoryMetrics`` serves one process. ``RedisMetrics`` adds up every process's calls in Redis: a
hash of counters per integration plus a capped list of the latest latencies (p95 over the last
``sample_size`` calls, so memory and the cost of a snapshot stay bounded).

Recording must cost next to nothing on the call path, so ``RedisMetrics.record`` only adds to this
process's pending totals; a daemon thread sends them in one pipeline every ``flush_interval``
seconds (and ``snapshot``/``flush`` send them at once). Another process's figures are therefore at
most ``flush_interval`` old; a process killed outright loses at most that much.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis

from connectors.ratelimit import store_unreachable

log = logging.getLogger(__name__)


def _percentile(values: Iterable[float], fraction: float) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(fraction * len(ordered)))  # nearest-rank: p95 of 20 values is the 19th
    return ordered[rank - 1]


def _iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).isoformat() if epoch else None


def _snapshot(
    *,
    total: int,
    successful: int,
    failed: int,
    latency_sum_ms: float,
    latencies: Iterable[float],
    connected_since: float | None,
    last_error: str | None,
    last_error_at: float | None,
) -> dict[str, Any]:
    p95 = _percentile(latencies, 0.95)
    return {
        "total": total,
        "successful": successful,
        "failed": failed,
        "success_rate": round(successful / total, 4) if total else None,  # a fraction, 0..1
        "avg_latency_ms": round(latency_sum_ms / total, 3) if total else None,
        "p95_latency_ms": round(p95, 3) if p95 is not None else None,
        "uptime_seconds": round(time.time() - connected_since, 3) if connected_since else None,
        "connected_since": _iso(connected_since),
        "last_error": last_error,
        "last_error_at": _iso(last_error_at),
    }


@dataclass
class _Totals:
    sample_size: int
    total: int = 0
    successful: int = 0
    failed: int = 0
    latency_sum_ms: float = 0.0
    latencies: deque[float] = field(init=False)
    last_error: str | None = None
    last_error_at: float | None = None

    def __post_init__(self) -> None:
        self.latencies = deque(maxlen=self.sample_size)

    def add(self, ok: bool, latency_ms: float, error: str | None) -> None:
        self.total += 1
        if ok:
            self.successful += 1
        else:
            self.failed += 1
            if error:
                self.last_error, self.last_error_at = error, time.time()
        self.latency_sum_ms += latency_ms
        self.latencies.append(latency_ms)


class MemoryMetrics:
    """Metrics of one process (no REDIS_URL)."""

    def __init__(self, *, sample_size: int = 1000) -> None:
        self.sample_size = sample_size
        self._lock = threading.Lock()
        self._totals: dict[str, _Totals] = {}
        self._connected_since: dict[str, float] = {}

    def record(self, key: str, *, ok: bool, latency_ms: float, error: str | None = None) -> None:
        with self._lock:
            totals = self._totals.get(key)
            if totals is None:
                totals = self._totals[key] = _Totals(self.sample_size)
            totals.add(ok, latency_ms, error)

    def mark_connected(self, key: str) -> None:
        with self._lock:
            self._connected_since[key] = time.time()

    def snapshot(self, key: str) -> dict[str, Any]:
        with self._lock:
            t = self._totals.get(key) or _Totals(self.sample_size)
            return _snapshot(
                total=t.total,
                successful=t.successful,
                failed=t.failed,
                latency_sum_ms=t.latency_sum_ms,
                latencies=list(t.latencies),
                connected_since=self._connected_since.get(key),
                last_error=t.last_error,
                last_error_at=t.last_error_at,
            )

    def reset(self, key: str) -> None:
        with self._lock:
            self._totals.pop(key, None)
            self._connected_since.pop(key, None)

    def flush(self) -> None:
        """Nothing is pending in memory; here so both sinks answer the same calls."""


_live_sinks: weakref.WeakSet[RedisMetrics] = weakref.WeakSet()


class RedisMetrics:
    """Metrics shared by every process through Redis."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str = "hub",
        *,
        sample_size: int = 1000,
        flush_interval: float = 0.2,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.sample_size = sample_size
        self.flush_interval = flush_interval
        self._after_fork()
        _live_sinks.add(self)

    def _after_fork(self) -> None:
        # A child must not resend its parent's pending totals nor wait on a lock its parent held.
        self._lock = threading.Lock()
        self._pending: dict[str, _Totals] = {}
        self._flusher: threading.Thread | None = None
        self._stop = threading.Event()

    def _key(self, key: str) -> str:
        return f"{self.prefix}:metrics:{key}"

    def _latency_key(self, key: str) -> str:
        return f"{self.prefix}:metrics:{key}:latency"

    def record(self, key: str, *, ok: bool, latency_ms: float, error: str | None = None) -> None:
        with self._lock:
            totals = self._pending.get(key)
            if totals is None:
                totals = self._pending[key] = _Totals(self.sample_size)
            totals.add(ok, latency_ms, error)
            flusher = self._flusher
        if self.flush_interval <= 0:
            self.flush()
        elif flusher is None:  # its loop survives errors, and a forked child gets None
            self._start_flusher()

    def _start_flusher(self) -> None:
        with self._lock:
            if self._flusher is not None and self._flusher.is_alive():
                return
            self._flusher = threading.Thread(target=self._flush_loop, name="hub-metrics-flush", daemon=True)
            self._flusher.start()

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_interval):
            try:
                self.flush()
            except Exception:  # keep flushing later; the figures wait in memory meanwhile
                log.warning("metrics flush failed", exc_info=True)

    def flush(self) -> None:
        """Send this process's pending totals now, in one pipeline."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        pipe = self.client.pipeline(transaction=False)
        for key, t in pending.items():
            name = self._key(key)
            pipe.hincrby(name, "total", t.total)
            if t.successful:
                pipe.hincrby(name, "successful", t.successful)
            if t.failed:
                pipe.hincrby(name, "failed", t.failed)
            pipe.hincrbyfloat(name, "latency_sum_ms", t.latency_sum_ms)
            if t.last_error is not None:
                pipe.hset(name, mapping={"last_error": t.last_error, "last_error_at": repr(t.last_error_at)})
            pipe.rpush(self._latency_key(key), *(repr(v) for v in t.latencies))
            pipe.ltrim(self._latency_key(key), -self.sample_size, -1)
        try:
            pipe.execute()
        except redis.RedisError:
            with self._lock:  # put them back (bounded: at most sample_size latencies per key)
                for key, t in pending.items():
                    newer = self._pending.get(key)
                    if newer is not None:
                        t.total += newer.total
                        t.successful += newer.successful
                        t.failed += newer.failed
                        t.latency_sum_ms += newer.latency_sum_ms
                        t.latencies.extend(newer.latencies)
                        if newer.last_error is not None:
                            t.last_error, t.last_error_at = newer.last_error, newer.last_error_at
                    self._pending[key] = t
            raise

    def mark_connected(self, key: str) -> None:
        try:
            self.client.hset(self._key(key), "connected_since", repr(time.time()))
        except redis.RedisError as exc:
            log.warning("connect time of %s not recorded: Redis %s", key, type(exc).__name__)

    def snapshot(self, key: str) -> dict[str, Any]:
        try:
            self.flush()
            pipe = self.client.pipeline(transaction=False)
            pipe.hgetall(self._key(key))
            pipe.lrange(self._latency_key(key), 0, -1)
            raw, latencies = pipe.execute()
        except redis.RedisError as exc:
            raise store_unreachable("metrics", exc) from None
        fields = {k.decode() if isinstance(k, bytes) else k: v for k, v in raw.items()}

        def number(name: str) -> float:
            return float(fields.get(name) or 0)

        def text(name: str) -> str | None:
            value = fields.get(name)
            return value.decode() if isinstance(value, bytes) else value

        return _snapshot(
            total=int(number("total")),
            successful=int(number("successful")),
            failed=int(number("failed")),
            latency_sum_ms=number("latency_sum_ms"),
            latencies=[float(v) for v in latencies],
            connected_since=number("connected_since") or None,
            last_error=text("last_error"),
            last_error_at=number("last_error_at") or None,
        )

    def reset(self, key: str) -> None:
        with self._lock:
            self._pending.pop(key, None)
        self.client.delete(self._key(key), self._latency_key(key))

    def close(self) -> None:
        """Stop the flusher after a last flush."""
        self._stop.set()
        try:
            self.flush()
        except redis.RedisError:
            log.warning("last metrics flush failed", exc_info=True)


def _reset_after_fork() -> None:
    for sink in list(_live_sinks):
        sink._after_fork()


def _flush_at_exit() -> None:
    for sink in list(_live_sinks):
        with contextlib.suppress(Exception):  # the interpreter is going away; nothing else to do
            sink.flush()


os.register_at_fork(after_in_child=_reset_after_fork)
atexit.register(_flush_at_exit)
