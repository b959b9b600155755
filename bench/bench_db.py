"""What the connector stack costs per query, per engine, on this machine's real servers.

For each engine it times ``SELECT 1`` (median of many runs) through:
  raw       the driver on one held connection (the floor);
  pool      the connector with no collaborators: pool checkout, the engine's read-only mode, dict rows;
  memory    the full stack with in-process limiter, circuit breaker and metrics;
  redis     the full stack with the shared Redis limiter (on), circuit breaker and metrics (the target);
and prints redis / raw (target <= 1.15x). On PostgreSQL it also compares the pooled connector with
opening a connection for every call (target: pooled >= 10x faster).

Where the client and the server process run matters more than anything we do: on this 2-vCPU
virtual machine a loopback round trip between two CPUs costs ~80-90 us (waking an idle vCPU),
between two processes sharing one CPU ~15-20 us, and an unpinned run lands on either at random.
So each engine is measured twice, with this process and every server connection it uses pinned
first to one CPU ("same CPU": the smallest round trip, the hardest ratio), then to two ("two
CPUs": like a database on another core or host). Every connector has a pool of one connection, so
each variant talks to one known server process. Pinning needs root; without it the run is unpinned.

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
from connectors.db.base import DatabaseConnector  # noqa: E402
from connectors.policy import TargetPolicy  # noqa: E402
from connectors.ratelimit import RateLimitConfig  # noqa: E402
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
        return psycopg.connect(
            host=pg["host"],
            port=pg["port"],
            dbname=pg["database"],
            user=pg["username"],
            password=pg["password"] or None,
            autocommit=True,
        )

    def my_raw() -> Any:
        return MySQLdb.connect(
            host=my["host"],
            port=my["port"],
            database=my["database"],
            user=my["username"],
            password=my["password"],
            autocommit=True,
        )

    def sqlite_raw() -> Any:
        return sqlite3.connect(sqlite_path, isolation_level=None)

    def split(where: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str], str]:
        config = {k: v for k, v in where.items() if k != "password"}
        return (
            config,
            ({"password": where["password"]} if where["password"] else {}),
            ("basic" if where["password"] else "none"),
        )

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


def connector(
    kind: str, config: dict[str, Any], credentials: dict[str, str], auth_type: str, runtime: Runtime
) -> DatabaseConnector:
    # The servers are on this machine and the SQLite file in a temporary folder: the policy says so.
    folder = [str(Path(config["path"]).parent)] if "path" in config else []
    runtime.policy = TargetPolicy.build(allow_loopback=True, sqlite_dirs=folder)
    db = build(kind, config | {"pool_size": 1}, credentials, runtime, auth_type=auth_type)
    assert isinstance(db, DatabaseConnector)
    db.connect()
    return db


# The server process (PostgreSQL) or thread (MariaDB) behind a connection, for pinning it.
SERVER_TASK_SQL = {
    "postgresql": "SELECT pg_backend_pid() AS task",
    "mysql": "SELECT TID AS task FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()",
}


def raw_server_task(kind: str, connection: Any) -> int | None:
    if kind not in SERVER_TASK_SQL:
        return None
    cursor = connection.cursor()
    cursor.execute(SERVER_TASK_SQL[kind])
    task = cursor.fetchone()[0]
    cursor.close()
    return int(task)


def placements() -> list[tuple[str, int | None, int | None]]:
    """(label, client CPU, server CPU): one CPU for both, then two CPUs; unpinned if we cannot pin."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return [("unpinned", None, None)]
    try:
        os.sched_setaffinity(0, set(cpus))  # a no-op that fails where pinning is not allowed
    except OSError:
        return [("unpinned", None, None)]
    return [("same CPU", cpus[0], cpus[0]), ("two CPUs", cpus[0], cpus[1])]


def pin(client_cpu: int | None, server_cpu: int | None, server_tasks: list[int]) -> str:
    """Pin this process and the server tasks; returns "" or why the servers could not be pinned."""
    everywhere = set(range(os.cpu_count() or 1))
    try:
        os.sched_setaffinity(0, {client_cpu} if client_cpu is not None else everywhere)
        for task in server_tasks:
            os.sched_setaffinity(task, {server_cpu} if server_cpu is not None else everywhere)
    except OSError as exc:  # not root, or the server runs elsewhere
        return f"server not pinned ({type(exc).__name__})"
    return ""


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
    print("  ro = read_only (the default: database-enforced read-only mode), rw = read-write")
    print("  placement: this process and the server on one CPU, or on two (see the module docstring)\n")
    header = (
        f"{'engine':<11} {'placement':<9} {'raw':>6} {'pool ro':>8} {'mem ro':>7} {'redis ro':>9} {'pool rw':>8}"
        f" {'redis rw':>9}  {'added':>6}  {'redis ro/raw':>12}  target <= 1.15x"
    )
    print(header)
    print("-" * len(header))
    pooled_pg: float | None = None
    everywhere = set(range(os.cpu_count() or 1))
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
            "mem ro": connector(kind, config, credentials, auth_type, make_runtime(key, UNTHROTTLED, redis_url=None)),
            "redis ro": connector(
                kind, config, credentials, auth_type, make_runtime(key, UNTHROTTLED, redis_url=redis_url, prefix=prefix)
            ),
            "pool rw": connector(kind, rw, credentials, auth_type, Runtime(key=f"{key}-bare-rw")),
            "redis rw": connector(
                kind, rw, credentials, auth_type, make_runtime(key, UNTHROTTLED, redis_url=redis_url, prefix=prefix)
            ),
        }
        server_tasks: list[int] = []
        if kind in SERVER_TASK_SQL:
            server_tasks = [raw_server_task(kind, held) or 0]
            server_tasks += [int(db.query(SERVER_TASK_SQL[kind])[0]["task"]) for db in dbs.values()]
        variants: dict[str, Callable[[], Any]] = {"raw": raw_select(held)}
        variants |= {name: (lambda db=db: db.query("SELECT 1")) for name, db in dbs.items()}
        for label, client_cpu, server_cpu in placements():
            if not server_tasks:
                if label == "two CPUs":
                    continue  # SQLite runs in this process: there is no server to place
                label = "in process"
            why = pin(client_cpu, server_cpu, server_tasks)
            m = medians_us(variants, args.runs)
            ratio = m["redis ro"] / m["raw"]
            print(
                f"{kind:<11} {label:<9} {m['raw']:6.1f} {m['pool ro']:8.1f} {m['mem ro']:7.1f} {m['redis ro']:9.1f} "
                f"{m['pool rw']:8.1f} {m['redis rw']:9.1f}  {m['redis ro'] - m['raw']:6.1f}  {ratio:11.2f}x  "
                f"{'ok' if ratio <= 1.15 else 'MISSED'} {why}".rstrip()
            )
            if kind == "postgresql" and label != "same CPU":
                pooled_pg = m["pool ro"]
        pin(None, None, server_tasks)  # give the server its CPUs back (MariaDB reuses its threads)
        os.sched_setaffinity(0, everywhere)
        held.close()
        for db in dbs.values():
            db.disconnect()

    if pooled_pg is not None:
        config, credentials, auth_type, raw_factory = engines(sqlite_path)["postgresql"]

        def connect_per_call() -> Any:
            with raw_factory() as conn:
                return conn.execute("SELECT 1").fetchall()

        pooled = connector("postgresql", config, credentials, auth_type, Runtime(key=f"{prefix}-pooled"))
        m = medians_us(
            {"per call": connect_per_call, "pooled": lambda: pooled.query("SELECT 1")},
            max(50, args.runs // 20),
            rounds=5,
        )
        pooled.disconnect()
        per_call, pooled_pg = m["per call"], m["pooled"]
        verdict = "ok" if per_call / pooled_pg >= 10 else "MISSED"
        print(
            f"\nPostgreSQL, unpinned: connect per call {per_call:.0f} us vs pooled connector {pooled_pg:.0f} us: "
            f"pooled is {per_call / pooled_pg:.1f}x faster (target >= 10x) {verdict}"
        )
    redis.Redis.from_url(redis_url).delete(
        *[
            f"{prefix}:{what}:{prefix}-{kind}"
            for what in ("ratelimit", "circuit")
            for kind in ("postgresql", "mysql", "sqlite")
        ]
    )
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
