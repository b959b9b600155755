"""The database tools under an agent profile's table/column allow-list, on the real engines: SQLite's
authorizer set for the call (through views, CTEs, aliases and SELECT *), PostgreSQL's operator-named
role (SET LOCAL ROLE) with sqlglot's check naming the refused column, and the role's privileges read
from the server at every health check (a role wider than its list is flagged and refused)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from connectors.db.base import CallScope
from connectors.errors import ConnectorError
from integrations import services
from integrations.agents.access import DatabaseRules, Grant
from integrations.models import Integration, IntegrationEvent
from integrations.tools import database, database_policy
from integrations.tools.context import ToolContext
from integrations.tools.errors import ToolError

pytestmark = pytest.mark.django_db

PG_URL = "postgres://postgres@127.0.0.1:5432/test"


def _refused(call: Any) -> str:
    with pytest.raises((ToolError, ConnectorError)) as caught:
        call()
    exc = caught.value
    category = exc.category if isinstance(exc, ToolError) else exc.category.value
    assert category == "permission", exc
    return str(exc)


def _make(kind: str, config: dict[str, Any]) -> Integration:
    integration_id = f"db_{uuid.uuid4().hex[:10]}"
    services.create_integration(
        actor="tests", id=integration_id, name="policy", kind=kind, auth_type="none", config=config
    )
    result = services.connect(integration_id)
    assert result["ok"], result
    return Integration.objects.get(pk=integration_id)


# ---------------------------------------------------------------------------------------------
# SQLite: the authorizer, per call
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    path = tmp_path / "people.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, salary REAL);"
        "INSERT INTO people VALUES (1, 'Ada', 9100.5), (2, 'Grace', 8800.0);"
        "CREATE TABLE secrets (id INTEGER PRIMARY KEY, token TEXT);"
        "CREATE VIEW v_people AS SELECT id, name, salary FROM people;"
    )
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def sqlite_hub(sqlite_file: Path) -> Iterator[Integration]:
    # One pooled connection: every call below leases the same one, restricted or not.
    integration = _make("sqlite", {"path": str(sqlite_file), "pool_size": 1, "read_only": False})
    yield integration
    services.close_connector(integration.id, everywhere=False)


ALLOW = {"people": ["id", "name"], "v_people": "*"}


def test_sqlite_column_outside_the_list_is_refused_however_written(sqlite_hub, policed_ctx) -> None:
    staff = ToolContext(integration=sqlite_hub, may_write=True, actor="staff")
    ctx = policed_ctx(sqlite_hub, database=DatabaseRules(allow=ALLOW))
    query = database.query_database
    sql = "SELECT id, salary FROM people ORDER BY id"
    assert query(staff, sqlite_hub.id, sql)["rows"][0] == [1, 9100.5]  # compiled and cached unrestricted

    ok = query(ctx, sqlite_hub.id, "SELECT id, name FROM people ORDER BY id")
    assert ok["rows"] == [[1, "Ada"], [2, "Grace"]]
    for bypass in (
        sql,  # the statement the connection cached without the authorizer
        "SELECT * FROM people",
        "SELECT p.salary AS pay FROM people AS p",
        "WITH c AS (SELECT salary AS s FROM people) SELECT s FROM c",
        "SELECT name FROM v_people",  # the view reads salary underneath
        "SELECT token FROM secrets",
    ):
        message = _refused(lambda bypass=bypass: query(ctx, sqlite_hub.id, bypass))
        assert "people.salary" in message or "secrets" in message, (bypass, message)

    # The connection goes back to the pool as it was: the staff call reads everything again.
    assert query(staff, sqlite_hub.id, sql)["rows"][1] == [2, 8800.0]


def test_sqlite_catalog_and_writes_follow_the_list(sqlite_hub, sqlite_file, policed_ctx) -> None:
    ctx = policed_ctx(sqlite_hub, write=True, database=DatabaseRules(allow=ALLOW))
    assert database.list_tables(ctx, sqlite_hub.id)["tables"] == ["people", "v_people"]
    described = database.describe_table(ctx, sqlite_hub.id, "people")
    assert [c["name"] for c in described["columns"]] == ["id", "name"]
    _refused(lambda: database.describe_table(ctx, sqlite_hub.id, "secrets"))

    out = database.query_database(ctx, sqlite_hub.id, "UPDATE people SET name = 'Ada L.' WHERE id = 1")
    assert out["row_count"] == 1
    message = _refused(lambda: database.query_database(ctx, sqlite_hub.id, "UPDATE people SET salary = 1"))
    assert "people.salary" in message
    _refused(lambda: database.query_database(ctx, sqlite_hub.id, "DELETE FROM secrets"))
    conn = sqlite3.connect(sqlite_file)
    assert conn.execute("SELECT name, salary FROM people WHERE id = 1").fetchone() == ("Ada L.", 9100.5)
    conn.close()


# ---------------------------------------------------------------------------------------------
# PostgreSQL: the operator's role, checked against the server
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def pg() -> Iterator[tuple[Any, str, str]]:
    """A table and a role of this test's own (dropped afterwards); the role may read id and name."""
    suffix = uuid.uuid4().hex[:8]
    table, role = f"pol_{suffix}", f"agent_{suffix}"
    conn = psycopg.connect(PG_URL, autocommit=True)
    conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, name text, salary numeric)")
    conn.execute(f"INSERT INTO {table} VALUES (1, 'Ada', 9100.50), (2, 'Grace', 8800)")
    conn.execute(f"CREATE ROLE {role} NOLOGIN")
    conn.execute(f"GRANT SELECT (id, name), UPDATE (name) ON {table} TO {role}")
    yield conn, table, role
    conn.execute(f"DROP TABLE {table}")
    conn.execute(f"DROP OWNED BY {role}")
    conn.execute(f"DROP ROLE {role}")
    conn.close()


@pytest.fixture
def pg_hub() -> Iterator[Integration]:
    config = {"host": "127.0.0.1", "port": 5432, "database": "test", "username": "postgres", "sslmode": "disable"}
    integration = _make("postgresql", {**config, "read_only": False, "pool_size": 1})
    yield integration
    services.close_connector(integration.id, everywhere=False)


def test_postgresql_runs_as_the_role_and_sqlglot_names_the_column(pg, pg_hub, policed_ctx) -> None:
    conn, table, role = pg
    rules = DatabaseRules(allow={table: ["id", "name"]}, role=role)
    ctx = policed_ctx(pg_hub, write=True, database=rules)
    query = database.query_database

    out = query(ctx, pg_hub.id, f"SELECT id, name, current_user AS who FROM {table} ORDER BY id")
    assert out["rows"] == [[1, "Ada", role], [2, "Grace", role]]
    message = _refused(lambda: query(ctx, pg_hub.id, f"SELECT p.salary AS pay FROM {table} p"))
    assert f"{table}.salary" in message

    # Writes are not parsed: the role is what refuses them, and the connection is left as it was.
    assert query(ctx, pg_hub.id, f"UPDATE {table} SET name = 'Ada L.' WHERE id = 1")["row_count"] == 1
    _refused(lambda: query(ctx, pg_hub.id, f"UPDATE {table} SET salary = 1"))
    assert conn.execute(f"SELECT name, salary FROM {table} WHERE id = 1").fetchone() == ("Ada L.", 9100.5)
    staff = ToolContext(integration=pg_hub, may_write=True, actor="staff")
    assert query(staff, pg_hub.id, "SELECT current_user AS who")["rows"] == [["postgres"]]

    assert database.list_tables(ctx, pg_hub.id)["tables"] == [table]
    assert [c["name"] for c in database.describe_table(ctx, pg_hub.id, table)["columns"]] == ["id", "name"]


def test_a_postgresql_read_as_the_role_is_refused_by_the_server_and_leaves_the_connection_clean(pg, pg_hub) -> None:
    """The connector alone (no sqlglot layer): a read under the role (BEGIN READ ONLY and SET LOCAL
    ROLE in one message, the query, ROLLBACK): the server refuses a column the role lacks and any
    write, and the one pooled connection comes back as postgres, outside any transaction."""
    conn, table, role = pg
    connector = services.connector_for(pg_hub)
    scope = CallScope(role=role)
    assert connector.fetch(f"SELECT name, current_user AS who FROM {table} ORDER BY id", scope=scope).rows == [
        {"name": "Ada", "who": role},
        {"name": "Grace", "who": role},
    ]
    with pytest.raises(ConnectorError) as caught:
        connector.fetch(f"SELECT salary FROM {table}", scope=scope)
    assert caught.value.category.value == "permission" and "permission denied" in str(caught.value)
    with pytest.raises(ConnectorError) as caught:  # the role may update name, but a read is read-only
        connector.fetch(f"UPDATE {table} SET name = 'x' WHERE id = 1 RETURNING id", scope=scope)
    assert "read-only" in str(caught.value)
    assert conn.execute(f"SELECT name FROM {table} WHERE id = 1").fetchone() == ("Ada",)
    assert connector.fetch("SELECT current_user AS who, now() = statement_timestamp() AS fresh").rows == [
        {"who": "postgres", "fresh": True}
    ]


def test_an_over_privileged_postgresql_role_is_flagged_and_refused_until_fixed(pg, pg_hub, policed_ctx) -> None:
    conn, table, role = pg
    rules = DatabaseRules(allow={table: ["id", "name"]}, role=role)
    grant = Grant(integration_id=pg_hub.id, write=False, database=rules)
    ctx = policed_ctx(pg_hub, database=rules)
    sql = f"SELECT id, name FROM {table} ORDER BY id"

    assert database_policy.check_roles(pg_hub, [("limited", grant)]) == [
        {"profile": "limited", "role": role, "ok": True}
    ]
    assert database.query_database(ctx, pg_hub.id, sql)["row_count"] == 2

    conn.execute(f"GRANT SELECT ON {table} TO {role}")  # now the whole table, salary included
    reports = database_policy.check_roles(pg_hub, [("limited", grant)])
    assert reports[0]["ok"] is False and f"{table} (salary)" in reports[0]["message"]
    event = IntegrationEvent.objects.filter(integration_ref=pg_hub.id, ok=False).latest("pk")
    assert role in event.message and "salary" in event.message
    message = _refused(lambda: database.query_database(ctx, pg_hub.id, sql))
    assert "salary" in message and role in message

    conn.execute(f"REVOKE SELECT ON {table} FROM {role}")
    conn.execute(f"GRANT SELECT (id, name) ON {table} TO {role}")
    assert database_policy.check_roles(pg_hub, [("limited", grant)])[0]["ok"] is True
    assert database.query_database(ctx, pg_hub.id, sql)["row_count"] == 2


def test_a_postgresql_allow_list_without_a_role_is_refused(pg, pg_hub, policed_ctx) -> None:
    _conn, table, _role = pg
    ctx = policed_ctx(pg_hub, database=DatabaseRules(allow={table: ["id"]}))
    message = _refused(lambda: database.query_database(ctx, pg_hub.id, f"SELECT id FROM {table}"))
    assert "role" in message


def test_role_errors_at_save_time_say_what_the_role_reads_beyond_the_list(pg, pg_hub) -> None:
    conn, table, role = pg
    assert database_policy.role_errors(pg_hub, {table: ["id", "name"]}, role) == []
    errors = database_policy.role_errors(pg_hub, {table: ["id"]}, role)
    assert len(errors) == 1 and f"{table} (name)" in errors[0] and role in errors[0]
    missing = database_policy.role_errors(pg_hub, {table: ["id"]}, f"{role}_missing")
    assert missing and "does not exist" in missing[0]


# ---------------------------------------------------------------------------------------------
# MariaDB: SET ROLE for the call, for a login that reads nothing by itself
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def maria() -> Iterator[tuple[Any, str, str, str]]:
    """A table, a login user with no privileges of its own, and a role granted to it that may read
    id and name (MariaDB adds a role's privileges to the user's: the user must read nothing itself)."""
    import MySQLdb

    suffix = uuid.uuid4().hex[:8]
    table, role, user = f"pol_{suffix}", f"agent_{suffix}", f"hub_{suffix}"
    conn = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", database="test", autocommit=True)

    def run(sql: str) -> list[tuple[Any, ...]]:
        cur = conn.cursor()
        cur.execute(sql)
        rows = list(cur.fetchall()) if cur.description else []
        cur.close()
        return rows

    run(f"CREATE TABLE {table} (id INT PRIMARY KEY, name VARCHAR(50), salary DECIMAL(10,2))")
    run(f"INSERT INTO {table} VALUES (1, 'Ada', 9100.50), (2, 'Grace', 8800)")
    run(f"CREATE USER '{user}'@'%'")
    run(f"GRANT SHOW VIEW ON test.* TO '{user}'@'%'")  # lets it open the database, reads no rows
    run(f"CREATE ROLE {role}")
    run(f"GRANT SELECT (id, name) ON test.{table} TO {role}")
    run(f"GRANT {role} TO '{user}'@'%'")
    yield run, table, role, user
    run(f"DROP TABLE {table}")
    run(f"DROP ROLE {role}")
    run(f"DROP USER '{user}'@'%'")
    conn.close()


def test_mariadb_runs_as_the_role_and_an_over_privileged_role_is_refused(maria, policed_ctx) -> None:
    run, table, role, user = maria
    config = {"host": "127.0.0.1", "port": 3306, "database": "test", "username": user, "pool_size": 1}
    hub = _make("mysql", config)
    try:
        rules = DatabaseRules(allow={table: ["id", "name"]}, role=role)
        ctx = policed_ctx(hub, database=rules)
        grant = Grant(integration_id=hub.id, write=False, database=rules)
        sql = f"SELECT id, name FROM {table} ORDER BY id"
        assert database.query_database(ctx, hub.id, sql)["rows"] == [[1, "Ada"], [2, "Grace"]]
        message = _refused(lambda: database.query_database(ctx, hub.id, f"SELECT salary FROM {table}"))
        assert f"{table}.salary" in message
        # The role was put back: without it the login reads nothing.
        staff = ToolContext(integration=hub, may_write=False, actor="staff")
        _refused(lambda: database.query_database(staff, hub.id, sql))

        assert database_policy.check_roles(hub, [("limited", grant)])[0]["ok"] is True
        run(f"GRANT SELECT ON test.{table} TO {role}")
        report = database_policy.check_roles(hub, [("limited", grant)])[0]
        assert report["ok"] is False and "salary" in report["message"]
        message = _refused(lambda: database.query_database(ctx, hub.id, sql))
        assert "salary" in message
    finally:
        services.close_connector(hub.id, everywhere=False)
