"""MySQL / MariaDB passes the database contract against this machine's server (db from MYSQL_URL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import MySQLdb
import pytest

from tests.connectors.db.db_contract import SECRET, DatabaseContract, EngineSpec, Make


class MySQLSpec(EngineSpec):
    kind = "mysql"
    sleep_sql = "SELECT SLEEP(5)"
    backend_id_sql = "SELECT CONNECTION_ID() AS id"
    read_write_switches = (
        "SET SESSION TRANSACTION READ WRITE",
        "SET SESSION tx_read_only = 0",
        "SET autocommit = 0",
        "START TRANSACTION READ WRITE",
        "BEGIN",
        "XA START 'hub'",
    )
    no_rows_sql = ("SET @hub_mark = 1", "DO 1")
    read_only_bypasses = (
        "SET STATEMENT tx_read_only = 0 FOR DELETE FROM {table}",
        "SET STATEMENT tx_read_only = 0, max_statement_time = 0 FOR UPDATE {table} SET qty = 99",
    )

    def __init__(self, tmp_path: Any) -> None:
        url = urlsplit(os.environ.get("MYSQL_URL", "mysql://root@127.0.0.1:3306/test"))
        self.where = {
            "host": url.hostname or "127.0.0.1",
            "port": url.port or 3306,
            "database": url.path.lstrip("/") or "test",
            "username": url.username or "root",
        }
        self.password = url.password or ""
        self.conn = MySQLdb.connect(
            host=self.where["host"],
            port=self.where["port"],
            database=self.where["database"],
            user=self.where["username"],
            password=self.password,
            autocommit=True,
            # A connector that leaves a transaction open shows as a failed DROP TABLE, not a hang.
            init_command="SET SESSION lock_wait_timeout = 10",
        )

    def config(self) -> dict[str, Any]:
        return dict(self.where)

    def quote(self, name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    def admin(self, sql: str) -> list[tuple[Any, ...]]:
        cursor = self.conn.cursor()
        try:
            cursor.execute(sql)
            return list(cursor.fetchall()) if cursor.description else []
        finally:
            cursor.close()

    def ddl(self, table: str) -> str:
        return (
            f"CREATE TABLE `{table}` (id int AUTO_INCREMENT PRIMARY KEY, name varchar(100) NOT NULL UNIQUE, "
            "qty int, note varchar(50) DEFAULT 'x', `Display Name` varchar(100)) ENGINE=InnoDB"
        )

    def kill(self, backend_id: Any) -> None:
        self.admin(f"KILL {int(backend_id)}")

    def alive(self, backend_id: Any) -> bool:
        rows = self.admin(f"SELECT COUNT(*) FROM information_schema.processlist WHERE id = {int(backend_id)}")
        return bool(rows[0][0])

    def bad_login(self) -> tuple[dict[str, Any], dict[str, str]]:
        return {}, {"password": SECRET}  # the right user, the wrong password

    def close(self) -> None:
        self.conn.close()


class TestMySQL(DatabaseContract):
    spec_class = MySQLSpec

    # Below: what only MySQL/MariaDB has (issue 26: each found by a mutant the contract let live).
    @pytest.fixture
    def procedure(self, spec: EngineSpec, table: str) -> Iterator[str]:
        name = f"hub_proc_{uuid.uuid4().hex[:10]}"
        spec.admin(f"CREATE PROCEDURE `{name}`() BEGIN SELECT qty FROM `{table}`; SELECT 2 AS two; END")
        yield name
        spec.admin(f"DROP PROCEDURE IF EXISTS `{name}`")

    @pytest.mark.parametrize("read_only", [True, False])
    def test_a_procedure_with_several_results_leaves_the_connection_usable(
        self, make: Make, spec: EngineSpec, table: str, procedure: str, read_only: bool
    ) -> None:
        spec.admin(f"INSERT INTO `{table}` (name, qty) VALUES ('keep', 1)")
        db = make(pool_size=1, read_only=read_only)
        for _ in range(3):  # the same pooled connection (or its replacement) each time
            assert db.query(f"CALL `{procedure}`()") == [{"qty": 1}]
            assert db.query("SELECT 3 AS three") == [{"three": 3}]
