"""The contract every database connector passes against a real server (or file).

Each engine's test module subclasses ``DatabaseContract`` and supplies an ``EngineSpec``: how to
reach the database as an administrator (to create tables and kill connections behind the
connector's back), its DDL and its engine-specific SQL. Everything else is shared.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest

from connectors import build
from connectors.circuit import MemoryCircuitBreaker
from connectors.db.base import DatabaseConnector, QueryResult
from connectors.errors import Category, ConnectorError
from connectors.metrics import MemoryMetrics
from connectors.ratelimit import RateLimitConfig
from connectors.retry import RetryPolicy
from connectors.runtime import Runtime
from connectors.shared import make_runtime, metrics_snapshot
from tests.connectors.policies import local

SECRET = "Sup3r-Secret-pw"


class EngineSpec:
    kind: ClassVar[str]
    auth_type: ClassVar[str] = "none"
    sleep_sql: ClassVar[str]  # runs for several seconds
    backend_id_sql: ClassVar[str | None] = None  # SELECT ... AS id: the server's id of this connection
    # Statements that try to make the session (the pooled connection) read-write for later queries.
    read_write_switches: ClassVar[tuple[str, ...]] = ()
    # Single statements that write while overriding the session's read-only mode ({table} is quoted).
    read_only_bypasses: ClassVar[tuple[str, ...]] = ()
    # Statements that return no rows (no result columns) and that a read-only integration may run.
    no_rows_sql: ClassVar[tuple[str, ...]] = ()
    supports_kill: ClassVar[bool] = True

    def config(self) -> dict[str, Any]:
        raise NotImplementedError

    def admin(self, sql: str) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def ddl(self, table: str) -> str:
        raise NotImplementedError

    def quote(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def kill(self, backend_id: Any) -> None:
        raise NotImplementedError

    def alive(self, backend_id: Any) -> bool:
        raise NotImplementedError

    def unreachable(self, port: int) -> dict[str, Any]:
        return self.config() | {"host": "127.0.0.1", "port": port, "connect_timeout": 1}

    def bad_login(self) -> tuple[dict[str, Any], dict[str, str]]:
        raise NotImplementedError

    def close(self) -> None:
        pass


Make = Callable[..., DatabaseConnector]


class DatabaseContract:
    spec_class: ClassVar[type[EngineSpec]]

    @pytest.fixture
    def spec(self, tmp_path: Any) -> Iterator[EngineSpec]:
        spec = self.spec_class(tmp_path)  # type: ignore[call-arg]
        yield spec
        spec.close()

    @pytest.fixture
    def make(self, spec: EngineSpec, tmp_path: Any) -> Iterator[Make]:
        made: list[DatabaseConnector] = []

        def make(credentials: dict[str, str] | None = None, *, auth_type: str | None = None, **overrides: Any):
            runtime = Runtime(
                key=f"contract-{uuid.uuid4().hex[:8]}",
                metrics=MemoryMetrics(),
                retry=RetryPolicy(initial_backoff=0.01, max_backoff=0.05),
                policy=local(tmp_path),
            )
            connector = build(
                spec.kind, spec.config() | overrides, credentials or {}, runtime, auth_type=auth_type or spec.auth_type
            )
            assert isinstance(connector, DatabaseConnector)
            made.append(connector)
            return connector

        yield make
        for connector in made:
            connector.disconnect()

    @pytest.fixture
    def table(self, spec: EngineSpec) -> Iterator[str]:
        name = f"hub_contract_{uuid.uuid4().hex[:10]}"
        spec.admin(spec.ddl(name))
        yield name
        spec.admin(f"DROP TABLE IF EXISTS {spec.quote(name)}")

    def _count(self, spec: EngineSpec, table: str) -> int:
        return int(spec.admin(f"SELECT COUNT(*) FROM {spec.quote(table)}")[0][0])

    def _error(self, fn: Callable[[], Any]) -> ConnectorError:
        with pytest.raises(ConnectorError) as info:
            fn()
        return info.value

    # ----------------------------------------------------------------- lifecycle
    def test_connection_test_reports_ok(self, make: Make) -> None:
        result = make().test_connection()
        assert result.ok, result
        assert result.latency_ms > 0 and result.details["server_version"]

    def test_disconnect_closes_the_pool(self, make: Make, spec: EngineSpec) -> None:
        if not spec.backend_id_sql:
            pytest.skip("no server: SQLite connections are file handles")
        db = make(pool_size=2)
        backend = db.query(spec.backend_id_sql)[0]["id"]
        assert spec.alive(backend)
        db.disconnect()
        deadline = time.monotonic() + 3
        while spec.alive(backend) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not spec.alive(backend)

    # ----------------------------------------------------------------- writes and parameters
    def _insert(self, db: DatabaseConnector, table: str, **values: Any) -> int:
        names = list(values)
        columns = ", ".join(db.quote(n) for n in names)
        sql = f"INSERT INTO {db.quote(table)} ({columns}) VALUES ({', '.join(f':{n}' for n in names)})"
        return db.execute(sql, values)

    def test_execute_returns_rows_affected(self, make: Make, table: str) -> None:
        db = make(read_only=False)
        for n in range(3):
            assert self._insert(db, table, name=f"n{n}", qty=n) == 1
        assert db.execute(f"UPDATE {db.quote(table)} SET qty = qty + 1 WHERE qty >= :low", {"low": 1}) == 2
        assert db.execute(f"DELETE FROM {db.quote(table)} WHERE name = :name", {"name": "none"}) == 0
        rows = db.query(f"SELECT name, qty, note FROM {db.quote(table)} ORDER BY qty")
        assert rows == [
            {"name": "n0", "qty": 0, "note": "x"},
            {"name": "n1", "qty": 2, "note": "x"},
            {"name": "n2", "qty": 3, "note": "x"},
        ]

    def test_named_parameters(self, make: Make, table: str) -> None:
        db = make(read_only=False)
        self._insert(db, table, name="it's :x", qty=5)
        rows = db.query(
            f"SELECT name, ':x' AS literal, '100%' AS pct FROM {db.quote(table)} "
            "WHERE qty >= :n AND qty <= :n AND name = :name",
            {"n": 5, "name": "it's :x"},
        )
        assert rows == [{"name": "it's :x", "literal": ":x", "pct": "100%"}]
        assert db.query(f"SELECT name FROM {db.quote(table)} WHERE name = :name", {"name": "' OR '1'='1"}) == []
        for params, needle in (({}, ":n"), ({"n": 1, "extra": 2}, "extra")):
            error = self._error(lambda p=params: db.query("SELECT :n AS n", p))
            assert error.category == Category.INVALID and needle in error.message
        assert self._error(lambda: db.query("SELECT :n AS n", [1])).category == Category.INVALID  # type: ignore[arg-type]

    # ----------------------------------------------------------------- introspection
    def test_introspection(self, make: Make, table: str) -> None:
        db = make()
        assert table in db.list_tables()
        columns = db.describe_table(table)
        assert [c["name"] for c in columns] == ["id", "name", "qty", "note", "Display Name"]
        by_name = {c["name"]: c for c in columns}
        assert by_name["id"]["primary_key"] and not by_name["name"]["primary_key"]
        assert by_name["name"]["nullable"] is False and by_name["qty"]["nullable"] is True
        assert "x" in str(by_name["note"]["default"]) and by_name["qty"]["default"] is None
        assert all(c["type"] for c in columns)
        assert self._error(lambda: db.describe_table("no_such_table_here")).category == Category.INVALID

    # ----------------------------------------------------------------- bad input
    def test_bad_input_is_typed_and_the_pool_stays_usable(self, make: Make, table: str) -> None:
        db = make(read_only=False)
        self._insert(db, table, name="taken")
        cases: list[tuple[Callable[[], Any], Category]] = [
            (lambda: self._insert(db, "no_such_table", name="x"), Category.INVALID),
            (lambda: self._insert(db, table, nope=1), Category.INVALID),
            (lambda: db.query("SELEC 1"), Category.INVALID),
            (lambda: db.query(f"SELECT nope FROM {db.quote(table)}"), Category.INVALID),
            (lambda: self._insert(db, table, name="y", qty="not a number"), Category.INVALID),
            (lambda: self._insert(db, table, name=None), Category.INVALID),
            (lambda: self._insert(db, table, name="taken"), Category.CONFLICT),
        ]
        for call, category in cases:
            error = self._error(call)
            assert error.category == category, (error, category)
            assert error.permanent
        assert table in db.list_tables()
        assert db.query("SELECT 1 AS one") == [{"one": 1}]

    # ----------------------------------------------------------------- read-only mode
    def test_read_only_is_enforced_by_the_database(self, make: Make, spec: EngineSpec, table: str) -> None:
        spec.admin(f"INSERT INTO {spec.quote(table)} (name, qty) VALUES ('keep', 1)")
        db = make()  # read_only is the default
        assert db.config.read_only is True
        quoted = db.quote(table)
        for call in (
            lambda: db.execute(f"DELETE FROM {quoted}"),
            lambda: self._insert(db, table, name="x"),
        ):
            assert self._error(call).category == Category.PERMISSION
        # Refused by the connector before any connection is used, saying why (issue 26).
        refusal = self._error(lambda: db.execute(f"DELETE FROM {quoted}"))
        assert refusal.message == f"{db.label}: execute refused: this integration is read-only", refusal
        # The same writes sent as "queries" reach the database, which refuses them.
        for sql in (
            f"DELETE FROM {quoted}",
            f"UPDATE {quoted} SET qty = 99",
            f"INSERT INTO {quoted} (name) VALUES ('x')",
        ):
            error = self._error(lambda s=sql: db.query(s))
            assert error.category == Category.PERMISSION, error
        # Nor a statement that overrides the read-only mode for itself.
        for sql in spec.read_only_bypasses:
            error = self._error(lambda s=sql: db.query(s.format(table=quoted)))
            assert error.category == Category.PERMISSION, (sql, error)
            assert self._count(spec, table) == 1, sql
        # Neither can a second statement smuggled behind a harmless one.
        error = self._error(lambda: db.query(f"SELECT 1; DELETE FROM {quoted}"))
        assert error.category in (Category.INVALID, Category.PERMISSION)
        error = self._error(lambda: db.query(f"COMMIT; DELETE FROM {quoted}"))
        assert error.category in (Category.INVALID, Category.PERMISSION)
        assert self._count(spec, table) == 1
        assert db.query(f"SELECT qty FROM {quoted}") == [{"qty": 1}]

    def test_a_bypass_as_the_first_statement_of_a_new_connection_writes_nothing(
        self, make: Make, spec: EngineSpec, table: str
    ) -> None:
        # Issue 26: a new connection must be read-only before its first statement, not only after the
        # first query ended (MariaDB: START TRANSACTION READ ONLY at connect, not just the session default).
        spec.admin(f"INSERT INTO {spec.quote(table)} (name, qty) VALUES ('keep', 1)")
        for sql in (*spec.read_only_bypasses, "DELETE FROM {table}"):
            db = make(pool_size=1)  # a new connector: a new pool, a new connection, nothing run on it yet
            error = self._error(lambda d=db, s=sql: d.query(s.format(table=d.quote(table))))
            assert error.category == Category.PERMISSION, (sql, error)
            assert self._count(spec, table) == 1, sql
            assert spec.admin(f"SELECT qty FROM {spec.quote(table)}") == [(1,)], sql

    @pytest.mark.parametrize("read_only", [True, False])
    def test_a_statement_without_rows_returns_an_empty_result(
        self, make: Make, spec: EngineSpec, read_only: bool
    ) -> None:
        db = make(pool_size=1, read_only=read_only)
        for sql in spec.no_rows_sql:
            assert db.fetch(sql) == QueryResult(columns=[], rows=[], row_count=0), sql
            assert db.query("SELECT 1 AS one") == [{"one": 1}], sql

    def test_a_writable_integration_writes_at_once_after_a_query(
        self, make: Make, spec: EngineSpec, table: str
    ) -> None:
        # A read-only connection may wait inside a read-only transaction; a writable one must not wait in
        # any transaction, or its writes would stay invisible (and uncommitted) to everyone else.
        db = make(pool_size=1, read_only=False)
        assert db.query(f"SELECT COUNT(*) AS n FROM {db.quote(table)}") == [{"n": 0}]
        assert self._insert(db, table, name="now", qty=7) == 1
        assert spec.admin(f"SELECT name, qty FROM {spec.quote(table)}") == [("now", 7)]

    def test_a_query_cannot_switch_the_session_to_read_write(self, make: Make, spec: EngineSpec, table: str) -> None:
        spec.admin(f"INSERT INTO {spec.quote(table)} (name, qty) VALUES ('keep', 1)")
        db = make(pool_size=1)  # every call below runs on the same pooled connection, or its replacement
        quoted = db.quote(table)
        for switch in spec.read_write_switches:
            with contextlib.suppress(ConnectorError):  # refused outright is fine too
                db.query(switch)
            error = self._error(lambda: db.query(f"DELETE FROM {quoted}"))
            assert error.category == Category.PERMISSION, (switch, error)
            assert self._count(spec, table) == 1, switch
        assert self._count(spec, table) == 1
        assert db.query(f"SELECT qty FROM {quoted}") == [{"qty": 1}]

    def test_row_cap_flags_truncation(self, make: Make, spec: EngineSpec, table: str) -> None:
        for n in range(5):
            spec.admin(f"INSERT INTO {spec.quote(table)} (name, qty) VALUES ('r{n}', {n})")
        db = make(max_rows=3)
        result = db.fetch(f"SELECT qty FROM {db.quote(table)} ORDER BY qty")
        assert result.truncated and result.row_count == 3 and [r["qty"] for r in result.rows] == [0, 1, 2]
        assert result.columns == ["qty"]
        assert db.fetch(f"SELECT qty FROM {db.quote(table)} ORDER BY qty", max_rows=2).row_count == 2
        # a caller's cap of 1 (or less) still returns one row, flagged as cut (issue 26)
        for cap in (1, 0, -5):
            one = db.fetch(f"SELECT qty FROM {db.quote(table)} ORDER BY qty", max_rows=cap)
            assert (one.row_count, one.truncated, one.rows) == (1, True, [{"qty": 0}]), cap
        # and never more than the integration's own cap
        assert db.fetch(f"SELECT qty FROM {db.quote(table)} ORDER BY qty", max_rows=50).row_count == 3
        assert not db.fetch(f"SELECT qty FROM {db.quote(table)} WHERE qty < 3").truncated
        assert len(db.query(f"SELECT qty FROM {db.quote(table)}")) == 3

    # ----------------------------------------------------------------- timeouts
    def test_statement_timeout(self, make: Make) -> None:
        for read_only in (True, False):
            db = make(statement_timeout_seconds=0.5, read_only=read_only)
            started = time.monotonic()
            error = self._error(lambda d=db: d.query(type(self).spec_class.sleep_sql))
            assert error.category == Category.TIMEOUT, error
            assert error.permanent  # the same statement would time out again: tried once
            assert time.monotonic() - started < 1.4
            assert db.query("SELECT 1 AS one") == [{"one": 1}]

    def test_repeated_failures_do_not_poison_a_pooled_connection(self, make: Make, table: str) -> None:
        db = make(pool_size=1, statement_timeout_seconds=0.1)  # every call shares the one connection
        quoted = db.quote(table)
        sleep_sql = type(self).spec_class.sleep_sql
        # Each failure repeated past any driver's "prepare after N uses" threshold.
        for _ in range(6):
            assert self._error(lambda: db.query(sleep_sql)).category == Category.TIMEOUT
        assert db.query(f"SELECT COUNT(*) AS n FROM {quoted}") == [{"n": 0}]
        for _ in range(6):
            assert self._error(lambda: db.query(f"DELETE FROM {quoted}")).category == Category.PERMISSION
        for _ in range(6):
            assert self._error(lambda: db.query("SELEC 1")).category == Category.INVALID
        assert db.query(f"SELECT COUNT(*) AS n FROM {quoted}") == [{"n": 0}]

    def test_connect_timeout_against_a_silent_server(self, make: Make, spec: EngineSpec) -> None:
        if not spec.backend_id_sql:
            pytest.skip("no server to wait for")
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts the TCP connection, never says a word
        try:
            db = make(**spec.unreachable(silent.getsockname()[1]))
            started = time.monotonic()
            result = db.test_connection()
            assert not result.ok and result.category == Category.TIMEOUT.value, result
            assert time.monotonic() - started < 5
        finally:
            silent.close()

    # ----------------------------------------------------------------- connection failures
    def test_unreachable_host_is_a_network_error(self, make: Make, spec: EngineSpec) -> None:
        if not spec.backend_id_sql:
            pytest.skip("no host")
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        closed.close()  # nothing listens there now
        result = make(**spec.unreachable(port)).test_connection()
        assert not result.ok and result.category == Category.NETWORK.value, result

    def test_wrong_login_is_an_auth_error_without_the_password(self, make: Make, spec: EngineSpec) -> None:
        overrides, credentials = spec.bad_login()
        db = make(credentials, auth_type="basic" if credentials else None, **overrides)
        result = db.test_connection()
        assert not result.ok and result.category in (Category.AUTH.value, Category.CONFIG.value), result
        assert SECRET not in (result.message or "") and SECRET not in repr(db)
        error = self._error(db.connect)
        assert SECRET not in str(error) and SECRET not in repr(error)

    # ----------------------------------------------------------------- pooling and recovery
    def test_pool_reuses_a_bounded_set_of_connections(self, make: Make, spec: EngineSpec) -> None:
        if not spec.backend_id_sql:
            pytest.skip("SQLite has no server-side connection id")
        db = make(pool_size=3)
        seen: set[Any] = set()
        lock = threading.Lock()

        def work() -> None:
            for _ in range(10):
                backend = db.query(spec.backend_id_sql)[0]["id"]
                with lock:
                    seen.add(backend)

        threads = [threading.Thread(target=work) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert 1 <= len(seen) <= 3  # 60 queries, at most pool_size connections

    def test_recovers_after_the_server_kills_pooled_connections(self, make: Make, spec: EngineSpec, table: str) -> None:
        if not spec.supports_kill:
            pytest.skip("no server to kill connections")
        assert spec.backend_id_sql
        db = make(pool_size=1, read_only=False)
        first = db.query(spec.backend_id_sql)[0]["id"]
        spec.kill(first)
        time.sleep(0.1)
        second = db.query(spec.backend_id_sql)[0]["id"]  # a read: transparently on a fresh connection
        assert second != first
        spec.kill(second)
        time.sleep(0.1)
        assert self._insert(db, table, name="after-kill") == 1  # a write too
        assert self._count(spec, table) == 1

    def test_a_read_on_a_connection_the_server_closed_is_replaced_within_the_call(
        self, make: Make, spec: EngineSpec
    ) -> None:
        # Issue 26: the replacement happens inside one call, not by the runtime's retry (which would
        # count a failed call, wait a backoff, and is off here).
        if not spec.supports_kill:
            pytest.skip("no server to kill connections")
        assert spec.backend_id_sql
        db = make(pool_size=1)
        db.runtime.retry = RetryPolicy(max_retries=0)
        first = db.query(spec.backend_id_sql)[0]["id"]
        spec.kill(first)
        time.sleep(0.1)
        assert db.query(spec.backend_id_sql)[0]["id"] != first
        assert db.query("SELECT 1 AS one") == [{"one": 1}]  # the new connection went back to the pool
        snap = db.runtime.metrics.snapshot(db.runtime.key)  # type: ignore[union-attr]
        assert (snap["total"], snap["failed"]) == (3, 0)

    def test_server_going_away_mid_query(self, make: Make, spec: EngineSpec) -> None:
        if not spec.supports_kill:
            pytest.skip("no server to go away")
        assert spec.backend_id_sql
        db = make(pool_size=1, read_only=False)  # read-write: the query is not re-run elsewhere
        backend = db.query(spec.backend_id_sql)[0]["id"]
        killer = threading.Timer(0.4, spec.kill, args=(backend,))
        killer.start()
        try:
            error = self._error(lambda: db.execute(spec.sleep_sql))
        finally:
            killer.join()
        assert error.category == Category.NETWORK, error
        assert db.query("SELECT 1 AS one") == [{"one": 1}]

    # ----------------------------------------------------------------- the choke point
    def test_shared_rate_limit_and_metrics_through_redis(
        self, spec: EngineSpec, redis_prefix: str, tmp_path: Any
    ) -> None:
        url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        rate = RateLimitConfig.model_validate({"requests": 2, "per_seconds": 60, "max_wait_seconds": 0})
        key = f"contract-{uuid.uuid4().hex[:8]}"
        # Two connectors of one integration (as in two workers) draw on one bucket.
        dbs = [
            build(
                spec.kind,
                spec.config() | {"rate_limit": rate.model_dump()},
                {},
                make_runtime(key, rate, redis_url=url, prefix=redis_prefix, policy=local(tmp_path)),
                auth_type=spec.auth_type,
            )
            for _ in range(2)
        ]
        try:
            assert dbs[0].query("SELECT 1 AS one") == [{"one": 1}]
            assert dbs[1].query("SELECT 1 AS one") == [{"one": 1}]
            error = self._error(lambda: dbs[1].query("SELECT 1 AS one"))
            assert error.category == Category.RATE_LIMITED and (error.retry_after or 0) > 20
            snap = metrics_snapshot(key, redis_url=url, prefix=redis_prefix)
            assert (snap["total"], snap["successful"]) == (2, 2)
        finally:
            for db in dbs:
                db.disconnect()

    def test_every_call_goes_through_the_runtime(self, make: Make) -> None:
        db = make()
        db.query("SELECT 1 AS one")
        with pytest.raises(ConnectorError):
            db.query("SELEC 1")
        metrics = db.runtime.metrics
        assert isinstance(metrics, MemoryMetrics)
        snap = metrics.snapshot(db.runtime.key)
        assert (snap["total"], snap["failed"]) == (2, 1)
        assert snap["last_error"].startswith("invalid: ")
        assert snap["uptime_seconds"] is not None

    def test_an_unreachable_server_opens_the_circuit(self, make: Make, spec: EngineSpec) -> None:
        if not spec.backend_id_sql:
            pytest.skip("no server")
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        closed.close()
        db = make(**spec.unreachable(port))
        db.runtime.circuit = MemoryCircuitBreaker(threshold=2, cooldown=30)
        db.runtime.retry = RetryPolicy(max_retries=0)
        for _ in range(2):
            assert self._error(lambda: db.query("SELECT 1")).category == Category.NETWORK
        error = self._error(lambda: db.query("SELECT 1"))
        assert error.category == Category.UNAVAILABLE and (error.retry_after or 0) > 25  # no connect attempted
        assert db.runtime.metrics.snapshot(db.runtime.key)["failed"] == 2  # type: ignore[union-attr]
