"""PostgreSQL passes the database contract against this machine's server (db from PG_URL)."""

from __future__ import annotations

import os
import uuid
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from connectors.db.base import CallScope
from connectors.db.postgresql import PostgreSQLConnector
from connectors.errors import Category, ConnectorError
from tests.connectors.db.db_contract import SECRET, DatabaseContract, EngineSpec


class PostgreSQLSpec(EngineSpec):
    kind = "postgresql"
    sleep_sql = "SELECT pg_sleep(5)"
    no_rows_sql = ("SET application_name = 'hub-contract'", "DO $$ BEGIN END $$", "LISTEN hub_contract")
    backend_id_sql = "SELECT pg_backend_pid() AS id"
    read_write_switches = (
        "SET default_transaction_read_only = off",
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
        "SELECT set_config('default_transaction_read_only', 'off', false)",
        "SET transaction_read_only = off",
        "BEGIN READ WRITE",
    )

    def __init__(self, tmp_path: Any) -> None:
        url = urlsplit(os.environ.get("PG_URL", "postgres://postgres@127.0.0.1:5432/test"))
        self.where = {
            "host": url.hostname or "127.0.0.1",
            "port": url.port or 5432,
            "database": url.path.lstrip("/") or "test",
            "username": url.username or "postgres",
        }
        self.conn = psycopg.connect(
            host=self.where["host"],
            port=self.where["port"],
            dbname=self.where["database"],
            user=self.where["username"],
            password=url.password,
            autocommit=True,
        )

    def config(self) -> dict[str, Any]:
        return dict(self.where)

    def admin(self, sql: str) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall() if cursor.description else []

    def ddl(self, table: str) -> str:
        return (
            f'CREATE TABLE "{table}" (id serial PRIMARY KEY, name text NOT NULL UNIQUE, qty integer, '
            "note text DEFAULT 'x', \"Display Name\" text)"
        )

    def kill(self, backend_id: Any) -> None:
        self.admin(f"SELECT pg_terminate_backend({int(backend_id)})")

    def alive(self, backend_id: Any) -> bool:
        return bool(self.admin(f"SELECT count(*) FROM pg_stat_activity WHERE pid = {int(backend_id)}")[0][0])

    def bad_login(self) -> tuple[dict[str, Any], dict[str, str]]:
        # This machine trusts local logins, so an unknown role is what the server turns away.
        return {"username": f"nobody_{uuid.uuid4().hex[:8]}"}, {"password": SECRET}

    def close(self) -> None:
        self.conn.close()


class TestPostgreSQL(DatabaseContract):
    spec_class = PostgreSQLSpec

    def test_a_read_under_a_role_runs_as_that_role_and_writes_nothing(self, make: Any, spec: Any, table: str) -> None:
        # An agent profile's role (CallScope), on a WRITABLE integration: the read runs as the role and
        # stays read-only though the role may delete (issue 26).
        role = f"hub_reader_{uuid.uuid4().hex[:8]}"
        spec.admin(f"CREATE ROLE {role} NOLOGIN")
        try:
            spec.admin(f'GRANT SELECT, DELETE ON "{table}" TO {role}')
            spec.admin(f"INSERT INTO \"{table}\" (name, qty) VALUES ('keep', 1)")
            db = make(pool_size=1, read_only=False)
            scope = CallScope(role=role)
            got = db.fetch(
                "SELECT current_user AS who, qty FROM " + db.quote(table) + " WHERE name = :n",
                {"n": "keep"},
                scope=scope,
            )
            assert got.rows == [{"who": role, "qty": 1}]
            with pytest.raises(ConnectorError) as info:
                db.fetch(f"DELETE FROM {db.quote(table)}", scope=scope)
            assert info.value.category == Category.PERMISSION
            assert spec.admin(f'SELECT count(*) FROM "{table}"') == [(1,)]
            assert db.query("SELECT current_user AS who") == [{"who": spec.where["username"]}]  # the role ended
        finally:
            spec.admin(f'REVOKE ALL ON "{table}" FROM {role}')
            spec.admin(f"DROP ROLE {role}")

    def test_a_colon_inside_a_dollar_quoted_string_is_not_a_parameter(self, make: Any) -> None:
        assert make().query("SELECT $$a:b$$ AS t") == [{"t": "a:b"}]

    def test_a_set_in_a_read_only_query_does_not_outlive_it(self, make: Any) -> None:
        """A plain SET (statement_timeout here) is undone before the connection serves anyone else."""
        db = make(pool_size=1, statement_timeout_seconds=0.5)
        db.query("SET statement_timeout = 0")
        assert db.query("SHOW statement_timeout") == [{"statement_timeout": "500ms"}]
        error = self._error(lambda: db.query("SELECT pg_sleep(3)"))
        assert error.category.value == "timeout"

    def test_only_a_plain_set_is_followed_by_reset_all(self, make: Any) -> None:
        # RESET ALL costs a round trip, so it follows a SET only. What a function changes (set_config)
        # lasts for the session, as the module says: that is why query_database refuses set_config.
        db = make(pool_size=1)
        db.query("SELECT set_config('hub.mark', 'kept', false)")
        db.query("DO $$ BEGIN END $$")
        assert db.query("SELECT current_setting('hub.mark', true) AS mark") == [{"mark": "kept"}]
        db.query("SET hub.mark = 'reset'")
        assert db.query("SELECT current_setting('hub.mark', true) AS mark") == [{"mark": ""}]

    def test_a_read_only_pool_never_reuses_a_session_switched_to_read_write(self, make: Any) -> None:
        db = make(pool_size=1)
        before = db.query("SELECT pg_backend_pid() AS pid")[0]["pid"]
        db.query("SELECT set_config('default_transaction_read_only', 'off', false)")
        after = db.query("SELECT pg_backend_pid() AS pid, current_setting('default_transaction_read_only') AS ro")[0]
        assert after["pid"] != before and after["ro"] == "on"  # a fresh connection, read-only again


class TestPostgreSQLWithoutTheReportedSetting(TestPostgreSQL):
    """The whole contract again as a server before 14 (or PgBouncer) would be served: it does not
    report default_transaction_read_only, so each read-only query gets its own read-only transaction."""

    @pytest.fixture(autouse=True)
    def unreported(self, monkeypatch: pytest.MonkeyPatch) -> None:
        opened = PostgreSQLConnector._open_pool

        def open_as_if_unreported(connector: PostgreSQLConnector) -> None:
            opened(connector)
            assert connector._per_query_transaction is False  # this machine's server reports it
            connector._per_query_transaction = True

        monkeypatch.setattr(PostgreSQLConnector, "_open_pool", open_as_if_unreported)

    def test_only_a_plain_set_is_followed_by_reset_all(self, make: Any) -> None:
        db = make(pool_size=1)  # here each query's ROLLBACK undoes even what set_config changed
        db.query("SELECT set_config('hub.mark', 'kept', false)")
        assert db.query("SELECT current_setting('hub.mark', true) AS mark") == [{"mark": ""}]

    def test_a_read_only_pool_never_reuses_a_session_switched_to_read_write(self, make: Any) -> None:
        db = make(pool_size=1)  # no setting to watch: the switch is undone by the query's ROLLBACK
        db.query("SELECT set_config('default_transaction_read_only', 'off', false)")
        assert db.query("SELECT current_setting('default_transaction_read_only') AS ro") == [{"ro": "on"}]
