"""The database tools against the real engines of this machine: PostgreSQL (db ``test``), MariaDB
(db ``test``) and a SQLite file, each with a table of its own. Every bypass attempt is refused and
leaves the table exactly as it was; a long query is stopped by the statement timeout; a huge result
is capped and flagged."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from integrations import services, tools
from integrations.tools import catalog
from integrations.tools.invocation import Principal, invoke
from integrations.tools.models import Outcome, ToolCall
from tests import factories

pytestmark = pytest.mark.django_db

ROWS = 40
PG_URL = os.environ.get("PG_URL", "postgres://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("MYSQL_URL", "mysql://root@127.0.0.1:3306/test")


@dataclass
class Engine:
    kind: str
    config: dict[str, Any]
    table: str
    run: Callable[[str], list[tuple[Any, ...]]]  # the raw driver, outside the hub: the ground truth
    sleep_sql: str

    def count(self) -> int:
        return int(self.run(f"SELECT count(*) FROM {self.table}")[0][0])

    def checksum(self) -> list[tuple[Any, ...]]:
        return self.run(f"SELECT id, name, salary FROM {self.table} ORDER BY id")


def _server_config(url: str) -> dict[str, Any]:
    parts = urlparse(url)
    return {
        "host": parts.hostname,
        "port": parts.port,
        "database": parts.path.lstrip("/"),
        "username": parts.username or "",
    }


def _pg(table: str) -> Iterator[Engine]:
    import psycopg

    conn = psycopg.connect(PG_URL, autocommit=True)

    def run(sql: str) -> list[tuple[Any, ...]]:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else []

    yield Engine("postgresql", {**_server_config(PG_URL), "sslmode": "disable"}, table, run, "SELECT pg_sleep(60)")
    conn.close()


def _mysql(table: str) -> Iterator[Engine]:
    import MySQLdb

    parts = urlparse(MYSQL_URL)
    conn = MySQLdb.connect(
        host=parts.hostname,
        port=parts.port or 3306,
        user=parts.username or "root",
        database=parts.path.lstrip("/"),
        autocommit=True,
    )

    def run(sql: str) -> list[tuple[Any, ...]]:
        cur = conn.cursor()
        cur.execute(sql)
        rows = list(cur.fetchall()) if cur.description else []
        cur.close()
        return rows

    yield Engine("mysql", _server_config(MYSQL_URL), table, run, "SELECT SLEEP(60)")
    conn.close()


def _sqlite(table: str, path: Path) -> Iterator[Engine]:
    def run(sql: str) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(path)
        try:
            rows = conn.execute(sql).fetchall()
            conn.commit()
            return rows
        finally:
            conn.close()

    # No sleep() in SQLite: an endless recursive query that only the statement deadline stops.
    endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    yield Engine("sqlite", {"path": str(path)}, table, run, endless)


@pytest.fixture(params=["postgresql", "mysql", "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    table = f"tools_{uuid.uuid4().hex[:10]}"
    if request.param == "postgresql":
        gen = _pg(table)
    elif request.param == "mysql":
        gen = _mysql(table)
    else:
        gen = _sqlite(table, tmp_path / f"{table}.sqlite3")
    eng = next(gen)
    eng.run(
        f"CREATE TABLE {eng.table} (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL, salary DECIMAL(10,2), "
        "hired DATE)"
    )
    values = ", ".join(f"({i}, 'person {i}', {1000 + i}.50, '2020-01-{1 + i % 28:02d}')" for i in range(1, ROWS + 1))
    eng.run(f"INSERT INTO {eng.table} (id, name, salary, hired) VALUES {values}")
    yield eng
    eng.run(f"DROP TABLE {eng.table}")
    with contextlib.suppress(StopIteration):
        next(gen)


def _integration(engine: Engine, **config: Any) -> str:
    settings = {**engine.config, "statement_timeout_seconds": 2, **config}
    return factories.database(engine.kind, settings, id=f"db_{uuid.uuid4().hex[:10]}", connect=True).id


@pytest.fixture
def db_id(engine: Engine) -> Iterator[str]:
    integration_id = _integration(engine)
    yield integration_id
    services.close_connector(integration_id, everywhere=False)


def _valid(name: str, envelope: dict[str, Any]) -> dict[str, Any]:
    errors = list(catalog.validator(name, "output").iter_errors(envelope))
    assert not errors, [e.message for e in errors]
    return envelope


def test_query_with_named_parameters(engine: Engine, db_id: str) -> None:
    out = _valid(
        "query_database",
        tools.query_database(
            db_id, f"SELECT id, name, salary, hired FROM {engine.table} WHERE id <= :top ORDER BY id", {"top": 3}
        ),
    )
    assert out["ok"], out
    result = out["result"]
    assert [c.lower() for c in result["columns"]] == ["id", "name", "salary", "hired"]
    first = result["rows"][0]
    assert first[:2] == [1, "person 1"] and first[3] == "2020-01-02"  # dates as ISO text
    # Servers' DECIMAL comes as exact text; SQLite has no decimal type and stores a float.
    assert first[2] == (1001.5 if engine.kind == "sqlite" else "1001.50")
    assert result["row_count"] == 3 and result["truncated"] is False


def test_list_and_describe_tables(engine: Engine, db_id: str) -> None:
    listed = _valid("list_tables", tools.list_tables(db_id))
    assert engine.table in listed["result"]["tables"]
    described = _valid("describe_table", tools.describe_table(db_id, engine.table))
    columns = {c["name"].lower(): c for c in described["result"]["columns"]}
    assert set(columns) == {"id", "name", "salary", "hired"}
    assert columns["id"]["primary_key"] is True and columns["name"]["nullable"] is False
    missing = _valid("describe_table", tools.describe_table(db_id, "no_such_table_here"))
    assert missing["ok"] is False and missing["error"]["category"] in ("not_found", "invalid")


def test_a_huge_result_is_capped_and_flagged(engine: Engine, db_id: str) -> None:
    huge = "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 200000) SELECT n FROM s"
    out = _valid("query_database", tools.query_database(db_id, huge))
    assert out["ok"], out
    assert out["result"]["row_count"] == 1000 and len(out["result"]["rows"]) == 1000
    assert out["result"]["truncated"] is True
    fewer = tools.query_database(db_id, huge, max_rows=7)
    assert fewer["result"]["row_count"] == 7 and fewer["result"]["truncated"] is True
    call = ToolCall.objects.filter(integration_ref=db_id, tool="query_database").order_by("id").first()
    assert call.row_count == 1000 and call.truncated is True


@pytest.mark.slow  # the target engines, not the hub database, are under test: once per CI run is enough
def test_a_long_query_is_stopped_by_the_statement_timeout(engine: Engine, db_id: str) -> None:
    started = time.monotonic()
    out = _valid("query_database", tools.query_database(db_id, engine.sleep_sql))
    elapsed = time.monotonic() - started
    assert out["ok"] is False, out
    assert out["error"]["category"] == "timeout", out
    assert elapsed < 20, elapsed  # 2 s statement timeout (retried at most a few times), never 60 s
    # The pool is still usable afterwards.
    assert tools.query_database(db_id, f"SELECT count(*) FROM {engine.table}")["result"]["rows"] == [[ROWS]]


BYPASSES = [
    "SELECT 1; DELETE FROM {t}",
    "COMMIT; DELETE FROM {t}",
    "select 1;\nCOMMIT;\nDELETE FROM {t} WHERE id > 0",
    "DELETE FROM {t}",
    "UPDATE {t} SET salary = 0",
    "INSERT INTO {t} (id, name) VALUES (9999, 'x')",
    "DROP TABLE {t}",
    "TRUNCATE {t}",
    "WITH d AS (DELETE FROM {t} RETURNING *) SELECT * FROM d",
    "WITH d AS (UPDATE {t} SET salary = 0 RETURNING id) SELECT count(*) FROM d",
    "SELECT * INTO {t}_copy FROM {t}",
    "SELECT * FROM {t} INTO OUTFILE '{file}'",
    "SELECT name FROM {t} INTO DUMPFILE '{file}'",
    "COPY (SELECT * FROM {t}) TO PROGRAM 'touch {file}'",
    "COPY {t} TO '{file}'",
    "ATTACH DATABASE '{file}' AS evil",
    "PRAGMA user_version = 7",
    "PRAGMA journal_mode = DELETE",
    "PRAGMA writable_schema(1)",
    "SELECT 1 /*! ; DELETE FROM {t} */",
    "SELECT '\\'; COMMIT; DELETE FROM {t}; --'",
    "SELECT set_config('transaction_read_only', 'off', false)",
    "SELECT * FROM {t} FOR UPDATE",
    "BEGIN; DELETE FROM {t}; COMMIT",
    "SET SESSION TRANSACTION READ WRITE",
    "CALL some_procedure()",
    "LOAD DATA INFILE '{file}' INTO TABLE {t}",
]


def test_bypass_attempts_are_refused_with_zero_writes(engine: Engine, db_id: str, tmp_path: Path) -> None:
    before = engine.checksum()
    version = engine.run("PRAGMA user_version")[0][0] if engine.kind == "sqlite" else None
    for template in BYPASSES:
        target = f"/tmp/hub-bypass-{uuid.uuid4().hex}"
        query = template.format(t=engine.table, file=target)
        out = _valid("query_database", tools.query_database(db_id, query))
        assert out["ok"] is False, (query, out)
        assert out["error"]["category"] in ("invalid", "permission"), (query, out)
        assert not Path(target).exists(), f"{query!r} created {target}"
    assert engine.checksum() == before
    if version is not None:
        assert engine.run("PRAGMA user_version")[0][0] == version
    assert engine.table + "_copy" not in tools.list_tables(db_id)["result"]["tables"]
    refused = ToolCall.objects.filter(integration_ref=db_id, tool="query_database", outcome=Outcome.REFUSED).count()
    assert refused == len(BYPASSES)


def test_the_database_itself_refuses_writes_when_the_parser_is_skipped(engine: Engine, db_id: str) -> None:
    """Defence in depth: the connector's read-only mode stops a write even without the guard."""
    from connectors.errors import ConnectorError

    before = engine.checksum()
    for sql in (f"DELETE FROM {engine.table}", f"UPDATE {engine.table} SET salary = 0"):
        with pytest.raises(ConnectorError):
            services.run_operation(db_id, "fetch", sql, {})
    if engine.kind == "postgresql":
        with pytest.raises(ConnectorError):
            services.run_operation(
                db_id, "fetch", f"WITH d AS (DELETE FROM {engine.table} RETURNING *) SELECT * FROM d", {}
            )
    assert engine.checksum() == before


def test_writes_need_a_writable_integration_and_a_write_token(engine: Engine, make_token) -> None:
    writable_id = _integration(engine, read_only=False)
    read_only_id = _integration(engine)
    insert = f"INSERT INTO {engine.table} (id, name, salary) VALUES (:id, :name, 1)"
    try:
        from integrations.models import Integration

        writable = Integration.objects.get(pk=writable_id)
        reader, _ = make_token(writable, access="read")
        writer, _ = make_token(writable, Integration.objects.get(pk=read_only_id), access="write")

        denied = invoke(
            "query_database",
            {"connector_id": writable_id, "query": insert, "params": {"id": 500, "name": "no"}},
            Principal.for_token(reader),
            via="rest",
            inline=True,
        )
        assert denied["ok"] is False and denied["error"]["category"] == "permission"

        on_read_only = invoke(
            "query_database",
            {"connector_id": read_only_id, "query": insert, "params": {"id": 501, "name": "no"}},
            Principal.for_token(writer),
            via="rest",
            inline=True,
        )
        assert on_read_only["ok"] is False and on_read_only["error"]["category"] == "invalid"

        done = invoke(
            "query_database",
            {"connector_id": writable_id, "query": insert, "params": {"id": 502, "name": "yes"}},
            Principal.for_token(writer),
            via="rest",
            inline=True,
        )
        assert done["ok"], done
        assert done["result"]["row_count"] == 1 and done["result"]["statement"] == "INSERT"
        assert engine.count() == ROWS + 1

        # Even with writes allowed: one statement, and never DDL.
        for query in (
            f"DELETE FROM {engine.table} WHERE id = 502; DROP TABLE {engine.table}",
            f"DROP TABLE {engine.table}",
            "COMMIT; DELETE FROM " + engine.table,
        ):
            out = invoke(
                "query_database",
                {"connector_id": writable_id, "query": query},
                Principal.for_token(writer),
                via="rest",
                inline=True,
            )
            assert out["ok"] is False, (query, out)
        assert engine.count() == ROWS + 1
    finally:
        services.close_connector(writable_id, everywhere=False)
        services.close_connector(read_only_id, everywhere=False)


def test_a_database_tool_on_an_hris_integration_is_refused(db_id: str) -> None:
    out = tools.query_hris(db_id, "employees")
    assert out["ok"] is False and out["error"]["category"] == "invalid"
    assert "hris" in out["error"]["message"]
