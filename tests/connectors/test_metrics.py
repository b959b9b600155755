"""Metrics: the figures a dashboard shows, added up across processes through Redis, cheaply."""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest
import redis

from connectors.errors import Category, ConnectorError
from connectors.metrics import MemoryMetrics, RedisMetrics
from connectors.retry import RetryPolicy
from connectors.runtime import Runtime
from tests.connectors.policies import LOOPBACK


@pytest.fixture(params=["memory", "redis"])
def sink(request: pytest.FixtureRequest, redis_client: redis.Redis, redis_prefix: str):
    if request.param == "memory":
        yield MemoryMetrics()
        return
    metrics = RedisMetrics(redis_client, prefix=redis_prefix)
    yield metrics
    metrics.close()


def test_snapshot_of_no_calls(sink) -> None:
    snap = sink.snapshot("db")
    assert snap["total"] == 0 and snap["success_rate"] is None and snap["p95_latency_ms"] is None
    assert snap["uptime_seconds"] is None and snap["last_error"] is None


def test_counts_rates_latencies_and_last_error(sink) -> None:
    for latency in range(1, 21):  # 1..20 ms; the 19th value is the p95 by nearest rank
        sink.record(
            "db",
            ok=latency % 5 != 0,
            latency_ms=float(latency),
            error=None if latency % 5 else f"network: failure {latency}",
        )
    snap = sink.snapshot("db")
    assert (snap["total"], snap["successful"], snap["failed"]) == (20, 16, 4)
    assert snap["success_rate"] == 0.8
    assert snap["avg_latency_ms"] == pytest.approx(10.5)
    assert snap["p95_latency_ms"] == pytest.approx(19.0)
    assert snap["last_error"] == "network: failure 20"
    assert sink.snapshot("other")["total"] == 0


def test_uptime_counts_from_the_last_connect(sink) -> None:
    sink.mark_connected("db")
    time.sleep(0.2)
    snap = sink.snapshot("db")
    assert 0.19 <= snap["uptime_seconds"] < 5
    assert snap["connected_since"] is not None
    sink.mark_connected("db")
    assert sink.snapshot("db")["uptime_seconds"] < 0.15


def test_reset_forgets_an_integration(sink) -> None:
    sink.record("db", ok=True, latency_ms=1.0)
    sink.reset("db")
    assert sink.snapshot("db")["total"] == 0


def test_runtime_records_successes_and_typed_failures(sink) -> None:
    runtime = Runtime(key="db", metrics=sink, retry=RetryPolicy(max_retries=0), policy=LOOPBACK)
    runtime.call("op", lambda: 1)

    def refused() -> None:
        raise ConnectorError("connection refused", category=Category.NETWORK)

    with pytest.raises(ConnectorError):
        runtime.call("op", refused)
    snap = sink.snapshot("db")
    assert (snap["total"], snap["failed"]) == (2, 1)
    assert snap["last_error"] == "network: connection refused"


def test_latency_sample_is_bounded(redis_client: redis.Redis, redis_prefix: str) -> None:
    sink = RedisMetrics(redis_client, prefix=redis_prefix, sample_size=50)
    for i in range(200):
        sink.record("db", ok=True, latency_ms=1000.0 if i < 150 else 1.0)
    snap = sink.snapshot("db")
    assert snap["total"] == 200
    assert redis_client.llen(f"{redis_prefix}:metrics:db:latency") == 50
    assert snap["p95_latency_ms"] == 1.0  # p95 of the latest 50 calls, all fast


def test_recording_is_cheap(redis_client: redis.Redis, redis_prefix: str) -> None:
    sink = RedisMetrics(redis_client, prefix=redis_prefix)
    started = time.perf_counter()
    for _ in range(2000):
        sink.record("db", ok=True, latency_ms=1.0)
    per_call_ms = (time.perf_counter() - started) * 1000 / 2000
    assert per_call_ms < 0.1  # the seed promises under 1 ms; the call path does no Redis round trip
    assert sink.snapshot("db")["total"] == 2000
    sink.close()


def test_the_flusher_sends_pending_figures_without_being_asked(redis_client: redis.Redis, redis_prefix: str) -> None:
    sink = RedisMetrics(redis_client, prefix=redis_prefix, flush_interval=0.05)
    sink.record("db", ok=True, latency_ms=3.0)
    reader = RedisMetrics(redis_client, prefix=redis_prefix)  # another process's view
    deadline = time.monotonic() + 2
    while reader.snapshot("db")["total"] != 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert reader.snapshot("db")["total"] == 1
    sink.close()


def _worker(url: str, prefix: str, index: int) -> None:
    sink = RedisMetrics(redis.Redis.from_url(url), prefix=prefix)
    for i in range(25):
        ok = i % 5 != 0
        sink.record("db", ok=ok, latency_ms=float(index * 100 + i), error=None if ok else f"timeout: worker {index}")
    sink.close()


def test_figures_add_up_across_processes(redis_client: redis.Redis, redis_prefix: str) -> None:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    # The parent has pending figures when it forks: the children must not send them again.
    parent = RedisMetrics(redis_client, prefix=redis_prefix, flush_interval=60)
    parent.record("db", ok=True, latency_ms=1.0)
    context = multiprocessing.get_context("fork")
    procs = [context.Process(target=_worker, args=(url, redis_prefix, n)) for n in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0
    snap = parent.snapshot("db")
    assert (snap["total"], snap["successful"], snap["failed"]) == (101, 81, 20)
    assert snap["success_rate"] == pytest.approx(81 / 101, abs=1e-4)
    assert snap["last_error"].startswith("timeout: worker ")
    assert snap["p95_latency_ms"] >= 300  # the slowest worker's latencies are in the sample
    parent.close()
