"""SQLite passes the database contract on a file of its own."""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any

import pytest

from connectors import Runtime, build
from connectors.db.base import CallScope
from connectors.errors import Category, ConnectorError
from tests.connectors.db.db_contract import DatabaseContract, EngineSpec
from tests.connectors.policies import local


class SQLiteSpec(EngineSpec):
    kind = "sqlite"
    read_write_switches = ("PRAGMA query_only = 0", "BEGIN IMMEDIATE")
    sleep_sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c"
    no_rows_sql = ("PRAGMA cache_size = 100", "BEGIN")
    supports_kill = False

    def __init__(self, tmp_path: Any) -> None:
        self.path = str(tmp_path / "contract.sqlite3")
        self.conn = sqlite3.connect(self.path, isolation_level=None)

    def config(self) -> dict[str, Any]:
        return {"path": self.path}

    def admin(self, sql: str) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql).fetchall()

    def ddl(self, table: str) -> str:
        # STRICT: SQLite checks column types like the servers do.
        return (
            f'CREATE TABLE "{table}" (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, qty INTEGER, '
            "note TEXT DEFAULT 'x', \"Display Name\" TEXT) STRICT"
        )

    def bad_login(self) -> tuple[dict[str, Any], dict[str, str]]:
        return {"path": self.path + ".missing"}, {}

    def close(self) -> None:
        self.conn.close()


class TestSQLite(DatabaseContract):
    spec_class = SQLiteSpec

    def test_a_read_only_file_cannot_attach_another_database(self, make: Any, tmp_path: Any) -> None:
        other = tmp_path / "other.sqlite3"
        db = make()
        with pytest.raises(ConnectorError):
            db.query(f"ATTACH DATABASE '{other}' AS other")
        assert not other.exists()  # ATTACH would have created it, outside the read-only file

    def test_a_pooled_connection_serves_another_thread(self, make: Any) -> None:
        db = make(pool_size=1)
        assert db.query("SELECT 1 AS one") == [{"one": 1}]  # the connection is made in this thread
        results: list[Any] = []
        worker = threading.Thread(target=lambda: results.append(db.query("SELECT 2 AS two")))
        worker.start()
        worker.join()
        assert results == [[{"two": 2}]]

    def test_an_allow_list_refusal_names_the_engine(self, make: Any, spec: Any) -> None:
        spec.admin("CREATE TABLE people (name TEXT, salary INTEGER)")
        db = make(allowed_columns={"people": ["name"]})
        with pytest.raises(ConnectorError) as info:
            db.query("SELECT salary FROM people")
        assert info.value.message.startswith("SQLite: ") and info.value.category == Category.PERMISSION

    def test_a_call_under_an_allow_list_reads_only_the_listed_columns_and_only_for_that_call(
        self, make: Any, spec: Any
    ) -> None:
        # An agent profile's allow-list (CallScope) on the pooled connection, for one call (issue 26).
        spec.admin("CREATE TABLE people (name TEXT, salary INTEGER)")
        spec.admin("INSERT INTO people VALUES ('Ann', 90000), ('Bo', 70000), ('Cy', 50000)")
        db = make(pool_size=1, max_rows=2)
        scope = CallScope(allow={"people": ["name"]})
        got = db.fetch("SELECT name FROM people WHERE name <> :skip ORDER BY name", {"skip": "Bo"}, scope=scope)
        assert (got.rows, got.truncated) == ([{"name": "Ann"}, {"name": "Cy"}], False)
        capped = db.fetch("SELECT name FROM people ORDER BY name", scope=scope)
        assert (capped.rows, capped.row_count, capped.truncated) == ([{"name": "Ann"}, {"name": "Bo"}], 2, True)
        with pytest.raises(ConnectorError) as info:
            db.fetch("SELECT salary FROM people", scope=scope)
        assert info.value.category == Category.PERMISSION and "people.salary" in info.value.message
        # The same connection, without the call's scope, reads every column again.
        assert db.query("SELECT max(salary) AS top FROM people") == [{"top": 90000}]
        with pytest.raises(ConnectorError) as info:
            db.fetch("SELECT 1 AS one", scope=CallScope(role="reader"))
        assert info.value.category == Category.CONFIG

    def test_a_colon_inside_a_bracket_quoted_name_is_not_a_parameter(self, make: Any) -> None:
        # SQLite quotes names in [brackets] too: ":b" there is part of the name, not a placeholder.
        assert make().query("SELECT 1 AS [a:b]") == [{"a:b": 1}]

    def test_a_busy_query_within_the_time_limit_completes(self, make: Any) -> None:
        # Long enough for the progress handler to run many times, well inside the limit: only a query
        # past its deadline is interrupted (issue 26: the contract's queries were too short to show it).
        db = make(statement_timeout_seconds=5)
        busy = (
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000) SELECT max(x) AS n FROM c"
        )
        for _ in range(2):  # the second time on a connection whose handler was removed and set again
            assert db.query(busy) == [{"n": 200000}]


def test_a_locked_database_is_a_timeout_after_the_busy_wait(tmp_path: Any) -> None:
    path = tmp_path / "locked.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    holder.execute("BEGIN EXCLUSIVE")  # another writer holds the file
    runtime = Runtime(key="locked", policy=local(tmp_path))
    db = build("sqlite", {"path": str(path), "read_only": False, "connect_timeout": 0.3}, runtime=runtime)
    try:
        started = time.monotonic()
        with pytest.raises(ConnectorError) as info:
            db.execute("INSERT INTO t (v) VALUES (:v)", {"v": "x"})
        assert info.value.category == Category.TIMEOUT and not info.value.permanent
        assert 0.25 <= time.monotonic() - started < 2
        holder.execute("ROLLBACK")
        assert db.execute("INSERT INTO t (v) VALUES (:v)", {"v": "x"}) == 1
    finally:
        db.disconnect()
        holder.close()
