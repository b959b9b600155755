"""The data policy's cost per agent tool call, end to end: the same call by an agent token whose
profile grants the integration with no data rules, and by one whose grant has them.

    .venv/bin/python bench/bench_policy_tools.py [--employees 200] [--runs 60]

Each call goes through ``invocation.invoke(..., inline=True)``: the token's profile is read from the
database (``access_for_token``), the call is audited (a ToolCall row), the tool runs in this process
and reaches the BambooHR sandbox (its own process) or the database. A hub database of its own
(SQLite in a temporary directory). Variants:

  query_hris employees   100 employees, public+internal fields and a department + active-only scope;
  query_hris time off    a year of time-off requests with notes, redacted (Presidio pattern recognizers);
  query_database sqlite  a 50-row SELECT under a table/column allow-list (the authorizer, per call);
  query_database pg      the same on PostgreSQL run as a role (SET LOCAL ROLE in its own transaction)
                         plus the sqlglot check.

Medians (µs per call), variants in turns (bench_policy.medians_us). Target (issue 16): at most 10% more.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import sqlite3
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_policy import medians_us, row, start_sandbox  # noqa: E402

PG_URL = os.environ.get("PG_URL", "postgres://postgres@127.0.0.1:5432/test")
# The connectors' rate limit (100 per minute by default) would pace a bench that calls back to back:
# it would measure the limiter's waits, not the policy.
UNTHROTTLED = {"requests": 1_000_000, "per_seconds": 1}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=200)
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench_policy_tools-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{workdir / 'hub.sqlite3'}")
    os.environ.setdefault("HUB_DATA_DIR", str(workdir))
    os.environ.setdefault("HUB_TEST_DB_NAME", "bench_policy_tools")
    os.environ["SQLITE_ALLOWED_DIRS"] = str(workdir)  # the bench's SQLite file lives there

    import logging

    import django

    django.setup()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    import psycopg
    from django.db import connection
    from django.test.utils import setup_test_environment

    from integrations import services
    from integrations.agents.models import AgentProfile
    from integrations.tools.invocation import Principal, invoke
    from integrations.tools.models import AgentToken, Via

    setup_test_environment()
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    api_key = secrets.token_hex(20)
    sandbox, url = start_sandbox(args.employees, api_key)
    suffix = uuid.uuid4().hex[:8]
    table, role = f"bench_{suffix}", f"bench_agent_{suffix}"
    pg = psycopg.connect(PG_URL, autocommit=True)
    try:
        hr = services.create_integration(
            actor="bench",
            id="bench_hr",
            name="HR",
            kind="bamboohr",
            auth_type="api_key",
            config={"subdomain": "acme", "base_url": url, "allow_insecure_loopback": True, "rate_limit": UNTHROTTLED},
            credentials={"api_key": api_key},
        )
        path = workdir / "people.sqlite3"
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, department TEXT, salary REAL)")
        db.executemany(
            "INSERT INTO people VALUES (?, ?, ?, ?)",
            [(i, f"person {i}", ("Sales", "IT")[i % 2], 1000.0 + i) for i in range(1, 1001)],
        )
        db.commit()
        db.close()
        lite = services.create_integration(
            actor="bench",
            id="bench_sqlite",
            name="db",
            kind="sqlite",
            auth_type="none",
            config={"path": str(path), "rate_limit": UNTHROTTLED},
        )
        pg.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, name text, department text, salary numeric)")
        pg.execute(
            f"INSERT INTO {table} SELECT i, 'person ' || i, (ARRAY['Sales','IT'])[1 + i % 2], 1000 + i "
            "FROM generate_series(1, 1000) i"
        )
        pg.execute(f"CREATE ROLE {role} NOLOGIN")
        pg.execute(f"GRANT SELECT (id, name, department) ON {table} TO {role}")
        pgi = services.create_integration(
            actor="bench",
            id="bench_pg",
            name="pg",
            kind="postgresql",
            auth_type="none",
            config={
                "host": "127.0.0.1",
                "port": 5432,
                "database": "test",
                "username": "postgres",
                "sslmode": "disable",
                "rate_limit": UNTHROTTLED,
            },
        )
        for integration in (hr, lite, pgi):
            assert services.connect(integration.id)["ok"]

        plain = AgentProfile.objects.create(name="no rules")
        policed = AgentProfile.objects.create(name="rules")
        for integration in (hr, lite, pgi):
            plain.grants.create(integration=integration)
        department = "Sales"
        policed.grants.create(
            integration=hr,
            hris={
                "classes": ["public", "internal", "special"],
                "scope": {"departments": [department], "active_only": True},
                "redact": True,
            },
        )
        policed.grants.create(integration=lite, database={"tables": {"people": ["id", "name", "department"]}})
        policed.grants.create(integration=pgi, database={"tables": {table: ["id", "name", "department"]}, "role": role})
        principals = {
            name: Principal.for_token(AgentToken.issue(name=name, profile=profile)[0])
            for name, profile in (("plain", plain), ("policed", policed))
        }

        def call(who: str, tool: str, **arguments: Any) -> Any:
            def run() -> None:
                envelope = invoke(tool, arguments, principals[who], via=Via.PYTHON, inline=True)
                assert envelope["ok"], envelope

            return run

        cases = {
            "query_hris employees": ("query_hris", {"connector_id": hr.id, "resource": "employees", "limit": 100}),
            "query_hris time off": (
                "query_hris",
                {
                    "connector_id": hr.id,
                    "resource": "time_off_requests",
                    "filters": {"start": "2000-01-01", "end": "2100-01-01"},
                    "limit": 100,
                },
            ),
            "query_database sqlite": (
                "query_database",
                {"connector_id": lite.id, "query": "SELECT id, name, department FROM people LIMIT 50"},
            ),
            "query_database pg": (
                "query_database",
                {"connector_id": pgi.id, "query": f"SELECT id, name, department FROM {table} ORDER BY id LIMIT 50"},
            ),
        }
        if os.environ.get("BENCH_PROFILE"):  # where a policed call's time goes
            import cProfile
            import pstats

            tool, arguments = cases[os.environ["BENCH_PROFILE"]]
            run = call(os.environ.get("BENCH_PROFILE_WHO", "policed"), tool, **arguments)
            run()
            cProfile.runctx("for _ in range(20): run()", globals(), {"run": run}, str(workdir / "prof"))
            sort = os.environ.get("BENCH_PROFILE_SORT", "tottime")
            pstats.Stats(str(workdir / "prof")).sort_stats(sort).print_stats(
                int(os.environ.get("BENCH_PROFILE_LINES", 12))
            )
            return 0
        print(f"{'call':<22} {'no rules':>10} {'rules':>10} {'added':>10} {'added':>8}")
        for name, (tool, arguments) in cases.items():
            medians = medians_us(
                {"plain": call("plain", tool, **arguments), "policed": call("policed", tool, **arguments)}, args.runs
            )
            row(name, medians["plain"], medians["policed"])
    finally:
        sandbox.kill()
        for statement in (f"DROP TABLE IF EXISTS {table}", f"DROP OWNED BY {role}", f"DROP ROLE IF EXISTS {role}"):
            with contextlib.suppress(psycopg.Error):
                pg.execute(statement)
        pg.close()
        for integration_id in ("bench_hr", "bench_sqlite", "bench_pg"):
            services.close_connector(integration_id, everywhere=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
