"""What the connector stack costs per query, per engine, on this machine's real servers.

For each engine it times ``SELECT 1`` (median of many runs) through:
  raw       the driver on one held connection (the floor);
  pool      the connector with no collaborators: pool checkout, the engine's read-only mode, dict rows;
  memory    the full stack with in-process limiter, circuit breaker and metrics;
  redis     the full stack with the shared Redis limiter (on), circuit breaker and metrics (the target);
and prints redis / raw (target <= 1.15x). On PostgreSQL it also compares the pooled connector with
opening a connection for every call (target: pooled >= 10x faster).

    PG_URL=... MYSQL_URL=... REDIS_URL=redis://127.0.0.1:6379/1 .venv/bin/python bench/bench_db.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import MySQLdb  # noqa: E402
import psycopg  # noqa: E402
import redis  # noqa: E402

from connectors import build  # noqa: E402
from connectors.base import RateLimitConfig  # noqa: E402
from connectors.db.base import DatabaseConnector  # noqa: E402
from connectors.runtime import Runtime  # noqa: E402
from connectors.shared import make_runtime  # noqa: E402

# A limit high enough never to make a call wait: what is measured is the limiter's cost, not its waits.
UNTHROTTLED = RateLimitConfig.model_validate({"requests": 10_000_000, "per_seconds": 1})


def medians_us(variants: dict[str, Callable[[], Any]], runs: int, rounds: int = 10) -> dict[str, float]:
    """Median latency of each variant. The variants take turns in short rounds, so that load from
    other processes on the machine weighs on all of them alike instead of skewing the ratios."""
    for fn in variants.values():
        for _ in range(min(200, runs)):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in variants}
    per_round = max(1, runs // rounds)
    for _ in range(rounds):
        for name, fn in variants.items():
            timings = samples[name]
            for _ in range(per_round):
                started = time.perf_counter()
                fn()
                timings.append(time.perf_counter() - started)
    return {name: statistics.median(values) * 1e6 for name, values in samples.items()}


def server_where(url: str, default_port: int) -> dict[str, Any]:
    parts = urlsplit(url)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or default_port,
        "database": parts.path.lstrip("/") or "test",
        "username": parts.username or "",
        "password": parts.password or "",
    }


def engines(sqlite_path: str) -> dict[str, tuple[dict[str, Any], dict[str, str], str, Callable[[], Any]]]:
    """kind -> (config, credentials, auth type, raw-connection factory)."""
    pg = server_where(os.environ.get("PG_URL", "postgres://postgres@127.0.0.1:5432/test"), 5432)
    my = server_where(os.environ.get("MYSQL_URL", "mysql://root@127.0.0.1:3306/test"), 3306)

    def pg_raw() -> Any:
        return psycopg.connect(host=pg["host"], port=pg["port"], dbname=pg["database"], user=pg["username"],
                               password=pg["password"] or None, autocommit=True)

    def my_raw() -> Any:
        return MySQLdb.connect(host=my["host"], port=my["port"], database=my["database"], user=my["username"],
                               password=my["password"], autocommit=True)

    def sqlite_raw() -> Any:
        return sqlite3.connect(sqlite_path, isolation_level=None)

    def split(where: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str], str]:
        config = {k: v for k, v in where.items() if k != "password"}
        return config, ({"password": where["password"]} if where["password"] else {}), (
            "basic" if where["password"] else "none")

    return {
        "postgresql": (*split(pg), pg_raw),
        "mysql": (*split(my), my_raw),
        "sqlite": ({"path": sqlite_path}, {}, "none", sqlite_raw),
    }


def raw_select(connection: Any) -> Callable[[], Any]:
    def run() -> Any:
        cursor = connection.cursor()
        cursor.execute("SELECT 1")
        rows = cursor.fetchall()
        cursor.close()
        return rows

    return run


def connector(kind: str, config: dict[str, Any], credentials: dict[str, str], auth_type: str,
              runtime: Runtime) -> DatabaseConnector:
    db = build(kind, config, credentials, runtime, auth_type=auth_type)
    assert isinstance(db, DatabaseConnector)
    db.connect()
    return db


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3000, help="timed calls per measurement")
    args = parser.parse_args()
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        print(f"bench_db: Redis at REDIS_URL is unreachable ({type(exc).__name__})", file=sys.stderr)
        return 2

    tmp = tempfile.TemporaryDirectory()
    sqlite_path = str(Path(tmp.name) / "bench.sqlite3")
    sqlite3.connect(sqlite_path).close()
    print(f"SELECT 1: median of {args.runs} calls per column, in microseconds; machine load {os.getloadavg()[0]:.1f}")
    print("  raw: driver, one held connection | pool: connector, no limiter/circuit/metrics")
    print("  memory / redis: full stack (limiter on, circuit breaker, metrics) in process / shared via Redis")
    print("  ro = read_only (the default: a database-enforced read-only transaction per query), rw = read-write\n")
    header = (f"{'engine':<11} {'raw':>7} {'pool ro':>8} {'mem ro':>8} {'redis ro':>9} {'pool rw':>8} {'redis rw':>9}"
              f"   {'redis ro/raw':>12}  target <= 1.15x")
    print(header)
    print("-" * len(header))
    pooled_pg: float | None = None
    for kind, (config, credentials, auth_type, raw_factory) in engines(sqlite_path).items():
        try:
            held = raw_factory()
        except Exception as exc:  # a server that is not running: say so and go on
            print(f"{kind:<11} skipped: cannot connect ({type(exc).__name__})")
            continue
        key = f"{prefix}-{kind}"
        rw = config | {"read_only": False}
        dbs = {
            "pool ro": connector(kind, config, credentials, auth_type, Runtime(key=f"{key}-bare")),
            "mem ro": connector(kind, config, credentials, auth_type,
                                make_runtime(key, UNTHROTTLED, redis_url=None)),
            "redis ro": connector(kind, config, credentials, auth_type,
                                  make_runtime(key, UNTHROTTLED, redis_url=redis_url, prefix=prefix)),
            "pool rw": connector(kind, rw, credentials, auth_type, Runtime(key=f"{key}-bare-rw")),
            "redis rw": connector(kind, rw, credentials, auth_type,
                                  make_runtime(key, UNTHROTTLED, redis_url=redis_url, prefix=prefix)),
        }
        variants: dict[str, Callable[[], Any]] = {"raw": raw_select(held)}
        variants |= {name: (lambda db=db: db.query("SELECT 1")) for name, db in dbs.items()}
        m = medians_us(variants, args.runs)
        held.close()
        ratio = m["redis ro"] / m["raw"]
        print(f"{kind:<11} {m['raw']:7.1f} {m['pool ro']:8.1f} {m['mem ro']:8.1f} {m['redis ro']:9.1f} "
              f"{m['pool rw']:8.1f} {m['redis rw']:9.1f}   {ratio:11.2f}x  {'ok' if ratio <= 1.15 else 'MISSED'}")
        if kind == "postgresql":
            pooled_pg = m["pool ro"]
        for db in dbs.values():
            db.disconnect()

    if pooled_pg is not None:
        config, credentials, auth_type, raw_factory = engines(sqlite_path)["postgresql"]

        def connect_per_call() -> Any:
            with raw_factory() as conn:
                return conn.execute("SELECT 1").fetchall()

        pooled = connector("postgresql", config, credentials, auth_type, Runtime(key=f"{prefix}-pooled"))
        m = medians_us({"per call": connect_per_call, "pooled": lambda: pooled.query("SELECT 1")},
                       max(50, args.runs // 20), rounds=5)
        pooled.disconnect()
        per_call, pooled_pg = m["per call"], m["pooled"]
        verdict = "ok" if per_call / pooled_pg >= 10 else "MISSED"
        print(f"\nPostgreSQL: connect per call {per_call:.0f} us vs pooled connector {pooled_pg:.0f} us: "
              f"pooled is {per_call / pooled_pg:.1f}x faster (target >= 10x) {verdict}")
    redis.Redis.from_url(redis_url).delete(*[f"{prefix}:{what}:{prefix}-{kind}" for what in ("ratelimit", "circuit")
                                             for kind in ("postgresql", "mysql", "sqlite")])
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
