"""What an agent profile's data policy costs per call, against the same call without a policy.

    PG_URL=... .venv/bin/python bench/bench_policy.py [--employees 200] [--runs 200]

query_hris-like calls, against the BambooHR sandbox in its own process:
  list employees   ``list_employees(unified=True)`` vs ``PolicedBambooHR`` with public+internal
                   fields and a department + active-only scope (field selection, scope fields
                   requested and dropped, records outside the scope left out);
  time off+notes   ``list_time_off_requests(unified=True)`` vs the same plus the redaction of every
                   request's notes (Presidio pattern recognizers, default entities).
query_database-like calls (a 50-row SELECT of allowed columns):
  sqlite           the connector vs the connector with an authorizer allow-list plus the sqlglot
                   check of the statement;
  postgresql       the connector vs the sqlglot check plus the connector (the role's privileges
                   are the server's own check, free per call; they are read at save and health check).

It also prints each piece alone (µs per call). Medians; variants take turns in short rounds so that
load from other processes weighs on both alike. Target (issue 16): at most 10% more per call.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402

from connectors import build  # noqa: E402
from connectors.datapolicy.hris_fields import BAMBOOHR_EMPLOYEES, FieldAccess, select_fields  # noqa: E402
from connectors.datapolicy.hris_scope import RecordScope  # noqa: E402
from connectors.datapolicy.pii import Redactor  # noqa: E402
from connectors.datapolicy.sql_check import check_select  # noqa: E402
from connectors.hris import Employee  # noqa: E402
from connectors.http.bamboohr import BambooHRConfig, BambooHRConnector  # noqa: E402
from connectors.http.bamboohr_policy import PolicedBambooHR  # noqa: E402
from connectors.policy import TargetPolicy  # noqa: E402
from connectors.runtime import Runtime  # noqa: E402

TARGET = 0.10
SQL = "SELECT e.id, e.name, e.department FROM {t} AS e WHERE e.department = 'Sales' ORDER BY e.id LIMIT 50"
NOTE = (
    "Out for a family matter from Monday; reach me on (801) 555-0199 or ann.lee@acme.example.com. "
    "Payroll: please use IBAN DE89 3704 0044 0532 0130 00 for the reimbursement. Back on the 14th."
)


def medians_us(variants: dict[str, Callable[[], Any]], runs: int, rounds: int = 10) -> dict[str, float]:
    for fn in variants.values():
        for _ in range(min(20, runs)):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in variants}
    per_round = max(1, runs // rounds)
    for _ in range(rounds):
        for name, fn in variants.items():
            for _ in range(per_round):
                started = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) * 1e6 for name, values in samples.items()}


def start_sandbox(employees: int, api_key: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.bamboohr", "--port", "0", "--api-key", api_key, "--employees", str(employees)],
        cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    match = re.search(r"at (http://\S+/api/v1/)", process.stdout.readline())
    if not match:
        process.kill()
        raise SystemExit("the sandbox did not start")
    return process, match.group(1)


def row(name: str, plain: float, policed: float) -> None:
    added = policed / plain - 1
    mark = "ok" if added <= TARGET else "over"
    print(f"{name:<18} {plain:>10.0f} {policed:>10.0f} {policed - plain:>10.0f} {added * 100:>7.1f}%  {mark}")


def hris(employees: int, runs: int) -> None:
    api_key = secrets.token_hex(20)
    process, url = start_sandbox(employees, api_key)
    try:
        config = BambooHRConfig.model_validate({"subdomain": "acme", "base_url": url, "allow_insecure_loopback": True})
        runtime = Runtime(key=f"bench-policy-{uuid.uuid4().hex[:6]}", policy=TargetPolicy(allow_loopback=True))
        connector = BambooHRConnector(config, {"api_key": api_key}, runtime)
        guard = PolicedBambooHR(
            connector,
            FieldAccess.build(["public", "internal"]),
            RecordScope.build(departments=["Engineering", "Sales", "Product"], active_only=True),
        )
        redactor = Redactor()
        today = dt.datetime.now(dt.UTC).date()
        window = {"start": today - dt.timedelta(days=120), "end": today + dt.timedelta(days=120)}

        def time_off_plain() -> Any:
            return [r.as_dict() for r in connector.list_time_off_requests(window, unified=True)]

        def time_off_policed() -> Any:
            return [
                redactor.redact_fields(r.as_dict(), ["notes"])
                for r in connector.list_time_off_requests(window, unified=True)
            ]

        requests = time_off_plain()
        noted = sum(1 for r in requests if r["notes"])
        print(
            f"\nquery_hris-like, sandbox with {employees} employees ({len(requests)} time-off requests, {noted} with notes)"
        )
        print(f"{'call':<18} {'plain µs':>10} {'policy µs':>10} {'added µs':>10} {'added':>8}")
        listing = medians_us(
            {
                "plain": lambda: [e.as_dict() for e in connector.list_employees(unified=True)],
                "policed": lambda: guard.list_employees(unified=True),
            },
            runs,
        )
        row("list employees", listing["plain"], listing["policed"])
        time_off = medians_us({"plain": time_off_plain, "policed": time_off_policed}, runs)
        row("time off+notes", time_off["plain"], time_off["policed"])

        records = [Employee(id=str(i), department="Sales", status="active") for i in range(employees)]
        scope = RecordScope.build(departments=["Sales"], active_only=True)
        wanted = ["firstName", "lastName", "workEmail", "department", "hireDate", "payRate", "ssn", "dateOfBirth"]
        access = FieldAccess.build(["public", "internal"])
        pieces = medians_us(
            {
                "select_fields": lambda: select_fields(BAMBOOHR_EMPLOYEES, access, wanted, scope_fields=["status"]),
                f"scope over {employees}": lambda: scope.keep(records),
                "redact one note": lambda: redactor.redact(NOTE),
                "redact clean note": lambda: redactor.redact("Family trip"),
            },
            runs,
        )
        print("pieces alone: " + ", ".join(f"{k} {v:.1f} µs" for k, v in pieces.items()))
        connector.disconnect()
    finally:
        process.terminate()
        process.wait(timeout=10)


def databases(runs: int) -> None:
    allow = {"employees": ["id", "name", "department"]}
    schema = {"employees": ["id", "name", "department", "salary", "ssn"]}
    print("\nquery_database-like: " + SQL.format(t="employees"))
    print(f"{'engine':<18} {'plain µs':>10} {'policy µs':>10} {'added µs':>10} {'added':>8}")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.sqlite3"
        admin = sqlite3.connect(path, isolation_level=None)
        admin.execute(
            "CREATE TABLE employees (id INTEGER PRIMARY KEY, name TEXT, department TEXT, salary INT, ssn TEXT)"
        )
        admin.executemany(
            "INSERT INTO employees VALUES (?, ?, ?, ?, ?)",
            [(i, f"n{i}", ["Sales", "Ops"][i % 2], 1000 * i, f"536-22-{i:04d}") for i in range(1, 1001)],
        )
        admin.close()
        policy = TargetPolicy.build(allow_loopback=True, sqlite_dirs=[folder])
        plain = build(
            "sqlite", {"path": str(path), "pool_size": 1}, runtime=Runtime(key="bench-sqlite-plain", policy=policy)
        )
        limited = build(
            "sqlite",
            {"path": str(path), "pool_size": 1, "allowed_columns": allow},
            runtime=Runtime(key="bench-sqlite-allow", policy=policy),
        )
        sql = SQL.format(t="employees")
        fresh = iter(range(10**9))

        def sqlite_policed() -> Any:
            check_select(sql, allow, dialect="sqlite", schema=schema)
            return limited.fetch(sql)

        def new_sql() -> str:  # a statement never seen before: no check kept, no prepared statement
            return sql + f" -- {next(fresh)}"

        def sqlite_policed_new() -> Any:
            text = new_sql()
            check_select(text, allow, dialect="sqlite", schema=schema)
            return limited.fetch(text)

        result = medians_us({"plain": lambda: plain.fetch(sql), "policed": sqlite_policed}, runs)
        row("sqlite (repeated)", result["plain"], result["policed"])
        result = medians_us({"plain": lambda: plain.fetch(new_sql()), "policed": sqlite_policed_new}, runs)
        row("sqlite (new SQL)", result["plain"], result["policed"])
        authorizer_only = medians_us(
            {"plain": lambda: plain.fetch(sql), "authorizer": lambda: limited.fetch(sql)}, runs
        )
        row("sqlite authorizer", authorizer_only["plain"], authorizer_only["authorizer"])
        check = medians_us(
            {
                "kept": lambda: check_select(sql, allow, dialect="sqlite", schema=schema),
                "new": lambda: check_select(new_sql(), allow, dialect="sqlite", schema=schema),
            },
            runs,
        )
        print(f"sqlglot check alone: {check['new']:.0f} µs for a new statement, {check['kept']:.1f} µs repeated")
        plain.disconnect()
        limited.disconnect()

    url = urlsplit(os.environ.get("PG_URL", "postgres://postgres@127.0.0.1:5432/test"))
    where = {"host": url.hostname or "127.0.0.1", "port": url.port or 5432, "database": url.path.lstrip("/") or "test"}
    table = f"bench_policy_{uuid.uuid4().hex[:8]}"
    admin_pg = psycopg.connect(
        host=where["host"],
        port=where["port"],
        dbname=where["database"],
        user=url.username or "postgres",
        autocommit=True,
    )
    try:
        admin_pg.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, name text, department text, salary int, ssn text)")
        admin_pg.execute(
            f"INSERT INTO {table} SELECT i, 'n' || i, CASE WHEN i % 2 = 0 THEN 'Sales' ELSE 'Ops' END, i * 1000, "
            "'536-22-' || lpad(i::text, 4, '0') FROM generate_series(1, 1000) AS i"
        )
        pg = build(
            "postgresql",
            {**where, "username": url.username or "postgres", "pool_size": 1},
            {"password": url.password or "trusted"},
            runtime=Runtime(key="bench-pg", policy=TargetPolicy(allow_loopback=True)),
        )
        sql = SQL.format(t=table)
        pg_allow = {table: allow["employees"]}
        pg_schema = {table: schema["employees"]}

        def pg_policed() -> Any:
            check_select(sql, pg_allow, dialect="postgresql", schema=pg_schema)
            return pg.fetch(sql)

        count = iter(range(10**9))

        def pg_new() -> str:
            return sql + f" -- {next(count)}"

        def pg_policed_new() -> Any:
            text = pg_new()
            check_select(text, pg_allow, dialect="postgresql", schema=pg_schema)
            return pg.fetch(text)

        result = medians_us({"plain": lambda: pg.fetch(sql), "policed": pg_policed}, runs)
        row("postgresql (rep.)", result["plain"], result["policed"])
        result = medians_us({"plain": lambda: pg.fetch(pg_new()), "policed": pg_policed_new}, runs)
        row("postgresql (new)", result["plain"], result["policed"])
        pg.disconnect()
    finally:
        admin_pg.execute(f"DROP TABLE IF EXISTS {table}")
        admin_pg.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--employees", type=int, default=200)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    hris(args.employees, args.runs)
    databases(args.runs * 5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
