"""What a PostgreSQL role or MariaDB user can read, asked of the real servers: a role with SELECT on
one column passes a one-column allow-list, a role with SELECT on the whole table is reported
over-privileged, naming the columns. Roles, users and tables are unique per run and dropped after."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import MySQLdb
import psycopg
import pytest

from connectors import Runtime, build
from connectors.db.base import DatabaseConnector
from connectors.db.privileges import beyond, check_role, readable
from connectors.errors import Category, ConnectorError
from tests.connectors.policies import LOOPBACK

PASSWORD = "h13-" + uuid.uuid4().hex[:12]


def _connector(kind: str, where: dict[str, Any], user: str, password: str) -> DatabaseConnector:
    config = {**where, "username": user}
    return build(kind, config, {"password": password}, runtime=Runtime(key=f"priv-{user}", policy=LOOPBACK))


# --- PostgreSQL ------------------------------------------------------------------------------------
@pytest.fixture
def pg() -> Iterator[dict[str, Any]]:
    url = urlsplit(os.environ.get("PG_URL", "postgres://postgres@127.0.0.1:5432/test"))
    where = {"host": url.hostname or "127.0.0.1", "port": url.port or 5432, "database": url.path.lstrip("/") or "test"}
    tag = uuid.uuid4().hex[:8]
    names = {"table": f"h13_staff_{tag}", "narrow": f"h13_narrow_{tag}", "wide": f"h13_wide_{tag}"}
    admin = psycopg.connect(
        host=where["host"],
        port=where["port"],
        dbname=where["database"],
        user=url.username or "postgres",
        autocommit=True,
    )
    t, narrow, wide = names["table"], names["narrow"], names["wide"]
    admin.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, name text, salary int, ssn text)")
    admin.execute(f"INSERT INTO {t} VALUES (1, 'Ann', 90000, '536-22-8751')")
    for role in (narrow, wide):
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
    admin.execute(f"GRANT SELECT (name) ON {t} TO {narrow}")
    admin.execute(f"GRANT SELECT ON {t} TO {wide}")
    made: list[DatabaseConnector] = []
    try:
        yield {"where": where, "names": names, "made": made}
    finally:
        for db in made:
            db.disconnect()
        admin.execute(f"DROP TABLE IF EXISTS {t}")
        for role in (narrow, wide):
            admin.execute(f"DROP ROLE IF EXISTS {role}")
        admin.close()


def test_postgresql_column_grant_passes_and_table_grant_is_over_privileged(pg: dict[str, Any]) -> None:
    t, narrow, wide = pg["names"]["table"], pg["names"]["narrow"], pg["names"]["wide"]
    allow = {t: ["name"]}
    narrow_db = _connector("postgresql", pg["where"], narrow, PASSWORD)
    wide_db = _connector("postgresql", pg["where"], wide, PASSWORD)
    pg["made"] += [narrow_db, wide_db]
    mine = [c for c in readable(narrow_db).columns if c[1] == t]
    assert mine == [("public", t, "name")]
    assert check_role(narrow_db, allow).role == narrow
    privileges = readable(wide_db)
    assert beyond(privileges, allow) == [(f"public.{t}", "id"), (f"public.{t}", "salary"), (f"public.{t}", "ssn")]
    with pytest.raises(ConnectorError) as info:
        check_role(wide_db, allow)
    assert info.value.category is Category.PERMISSION
    assert wide in info.value.message and "salary" in info.value.message and "ssn" in info.value.message
    # The report agrees with the server: the narrow role really cannot read salary.
    with pytest.raises(ConnectorError) as denied:
        narrow_db.query(f"SELECT salary FROM {t}")
    assert denied.value.category is Category.PERMISSION


def test_postgresql_superuser_can_read_everything(pg: dict[str, Any]) -> None:
    url = urlsplit(os.environ.get("PG_URL", "postgres://postgres@127.0.0.1:5432/test"))
    db = _connector("postgresql", pg["where"], url.username or "postgres", url.password or "trusted")
    pg["made"].append(db)
    t = pg["names"]["table"]
    assert (f"public.{t}", "ssn") in beyond(readable(db), {t: ["name"]})


# --- MariaDB ---------------------------------------------------------------------------------------
@pytest.fixture
def maria() -> Iterator[dict[str, Any]]:
    url = urlsplit(os.environ.get("MYSQL_URL", "mysql://root@127.0.0.1:3306/test"))
    where = {"host": url.hostname or "127.0.0.1", "port": url.port or 3306, "database": url.path.lstrip("/") or "test"}
    tag = uuid.uuid4().hex[:8]
    names = {"table": f"h13_staff_{tag}", "narrow": f"h13n_{tag}", "wide": f"h13w_{tag}"}
    admin = MySQLdb.connect(
        host=where["host"],
        port=where["port"],
        database=where["database"],
        user=url.username or "root",
        password=url.password or "",
        autocommit=True,
    )
    cursor = admin.cursor()
    t, narrow, wide = names["table"], names["narrow"], names["wide"]
    cursor.execute(f"CREATE TABLE {t} (id int PRIMARY KEY, name varchar(50), salary int, ssn varchar(11))")
    for user in (narrow, wide):
        cursor.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{PASSWORD}'")
        cursor.execute(f"CREATE USER '{user}'@'localhost' IDENTIFIED BY '{PASSWORD}'")
        for host in ("%", "localhost"):
            if user == narrow:
                cursor.execute(f"GRANT SELECT (name) ON {where['database']}.{t} TO '{user}'@'{host}'")
            else:
                cursor.execute(f"GRANT SELECT ON {where['database']}.{t} TO '{user}'@'{host}'")
    made: list[DatabaseConnector] = []
    try:
        yield {"where": where, "names": names, "made": made}
    finally:
        for db in made:
            db.disconnect()
        cursor.execute(f"DROP TABLE IF EXISTS {t}")
        for user in (narrow, wide):
            for host in ("%", "localhost"):
                cursor.execute(f"DROP USER IF EXISTS '{user}'@'{host}'")
        cursor.close()
        admin.close()


def test_mariadb_column_grant_passes_and_table_grant_is_over_privileged(maria: dict[str, Any]) -> None:
    t, narrow, wide = maria["names"]["table"], maria["names"]["narrow"], maria["names"]["wide"]
    database = maria["where"]["database"]
    allow = {t: ["name"]}
    narrow_db = _connector("mysql", maria["where"], narrow, PASSWORD)
    wide_db = _connector("mysql", maria["where"], wide, PASSWORD)
    maria["made"] += [narrow_db, wide_db]
    privileges = check_role(narrow_db, allow)
    assert [c for c in privileges.columns if c[1] == t] == [(database, t, "name")]
    assert any("SELECT (`name`)" in g or "SELECT (name)" in g for g in privileges.grants), privileges.grants
    assert beyond(readable(wide_db), allow) == [
        (f"{database}.{t}", "id"),
        (f"{database}.{t}", "salary"),
        (f"{database}.{t}", "ssn"),
    ]
    with pytest.raises(ConnectorError) as info:
        check_role(wide_db, allow)
    assert info.value.category is Category.PERMISSION and "salary" in info.value.message
