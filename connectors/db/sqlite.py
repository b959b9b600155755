"""SQLite through the standard library, pooled by SQLAlchemy's QueuePool.

A read-only integration opens the file with ``mode=ro`` (SQLite itself refuses every write, and
no other database can be attached); otherwise ``mode=rw``, so a mistyped path is an error instead
of a new empty database. The statement timeout is a progress handler that interrupts the query.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import Field, field_validator

from connectors.db.base import CallScope, DatabaseConnector, DatabaseOptions, QueryResult
from connectors.db.params import Dialect
from connectors.db.queuepool import QueuePoolMixin
from connectors.db.sqlite_authorizer import ColumnAuthorizer, normalise
from connectors.errors import Category, ConnectorError
from connectors.policy import Target


class SQLiteConfig(DatabaseOptions):
    path: str = Field(..., min_length=1, max_length=4096, description="Path of the database file on the worker.")
    pool_size: int = Field(5, ge=1, le=100, description="Pooled connections per worker process.")
    allowed_columns: dict[str, list[str] | Literal["*"]] | None = Field(
        None,
        description='Table -> columns (or "*") that statements may read, enforced by SQLite\'s authorizer '
        "through views, CTEs, aliases and SELECT * (connectors.db.sqlite_authorizer). None: no limit.",
    )

    @field_validator("allowed_columns")
    @classmethod
    def _allow_list(cls, value: Any) -> Any:
        if value is not None:
            normalise(value)  # a ValueError names the bad entry
        return value


# Primary result codes (https://sqlite.org/rescode.html) -> category.
_CODES: dict[int, tuple[Category, str]] = {
    1: (Category.INVALID, "invalid SQL"),  # SQLITE_ERROR: syntax, unknown table or column
    3: (Category.PERMISSION, "access denied"),  # SQLITE_PERM
    5: (Category.TIMEOUT, "the database is locked"),  # SQLITE_BUSY
    6: (Category.TIMEOUT, "a table is locked"),  # SQLITE_LOCKED
    8: (Category.PERMISSION, "the database refused a write (opened read-only)"),  # SQLITE_READONLY
    9: (Category.TIMEOUT, "statement timed out"),  # SQLITE_INTERRUPT (our progress handler)
    13: (Category.UNAVAILABLE, "the disk is full"),  # SQLITE_FULL
    14: (Category.CONFIG, "cannot open the database file"),  # SQLITE_CANTOPEN
    18: (Category.INVALID, "value too big"),  # SQLITE_TOOBIG
    19: (Category.INVALID, "constraint violated"),  # SQLITE_CONSTRAINT
    20: (Category.INVALID, "wrong type"),  # SQLITE_MISMATCH
    23: (Category.PERMISSION, "not authorized"),  # SQLITE_AUTH
    25: (Category.INVALID, "parameter out of range"),  # SQLITE_RANGE
    26: (Category.CONFIG, "the file is not a database"),  # SQLITE_NOTADB
}
_UNIQUE = {1555, 2067}  # SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE
_TRANSIENT = {5, 6}


T = TypeVar("T")


class _Both:
    """Two allow-lists at once (the integration's and a call's): a read must pass both."""

    def __init__(self, first: ColumnAuthorizer, second: ColumnAuthorizer) -> None:
        self.first, self.second = first, second

    def __call__(self, *args: Any) -> int:
        verdict: int = self.first(*args)
        return verdict if verdict != sqlite3.SQLITE_OK else self.second(*args)

    def take(self, label: str) -> ConnectorError | None:
        first, second = self.first.take(label), self.second.take(label)
        return first or second


class _Connection(sqlite3.Connection):
    authorizer: ColumnAuthorizer | _Both | None = None


class SQLiteConnector(QueuePoolMixin, DatabaseConnector):
    kind = "sqlite"
    label = "SQLite"
    config_class = SQLiteConfig
    dialect: ClassVar[Dialect] = "sqlite"
    param_style = "named"  # sqlite3 binds :name itself
    credential_fields = ()
    auth_types = ("none",)

    list_tables_sql = (
        "SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name"
    )
    describe_sql = (
        'SELECT name, type, NOT "notnull" AS nullable, dflt_value AS "default", pk > 0 AS primary_key '
        "FROM pragma_table_info(:table) ORDER BY cid"
    )

    @classmethod
    def targets(cls, config: Any) -> list[Target]:
        return [Target("path", "sqlite", config.path)]

    def _new_connection(self) -> sqlite3.Connection:
        mode = "ro" if self.config.read_only else "rw"
        # Every new connection resolves the path again (symlinks included) and opens what was checked.
        real = self.runtime.policy.check_sqlite_path(self.config.path)
        uri = Path(real).as_uri() + f"?mode={mode}"
        connection = sqlite3.connect(
            uri,
            uri=True,
            timeout=self.config.connect_timeout,  # how long to wait for another writer's lock
            isolation_level=None,  # autocommit: every statement is its own transaction
            check_same_thread=False,  # the pool hands a connection to one thread at a time
            factory=_Connection,
        )
        if self.config.allowed_columns is not None:
            connection.authorizer = ColumnAuthorizer(self.config.allowed_columns)
            connection.set_authorizer(connection.authorizer)
        if self.config.read_only:
            connection.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        return connection

    def _open_pool(self) -> None:
        probe = self._new_connection()
        try:
            probe.execute("SELECT count(*) FROM sqlite_schema").fetchone()  # NOTADB shows on the first read
        finally:
            probe.close()
        self.server_version = sqlite3.sqlite_version
        self._start_pool(self._new_connection, self.config)

    def _with_deadline(self, connection: _Connection, run: Any) -> Any:
        deadline = time.monotonic() + self.config.statement_timeout_seconds
        connection.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 10_000)
        try:
            return run()
        except sqlite3.DatabaseError:
            refusal = connection.authorizer.take(self.label) if connection.authorizer else None
            if refusal is not None:
                raise refusal from None
            raise
        finally:
            connection.set_progress_handler(None, 0)

    def _scoped(self, connection: Any, scope: CallScope, work: Callable[[bool], T], *, write: bool) -> T:
        """A call's allow-list as the connection's authorizer for this call only (on top of the
        integration's own ``allowed_columns``), put back before the connection returns to the pool.
        Setting an authorizer expires the connection's prepared statements, so a statement cached by
        an earlier, unrestricted call is compiled again and checked."""
        if scope.role:
            raise self._fail("SQLite has no roles: use a table allow-list", Category.CONFIG)
        if scope.allow is None:
            return work(False)
        previous = connection.authorizer
        call = ColumnAuthorizer(scope.allow)
        connection.authorizer = call if previous is None else _Both(previous, call)
        connection.set_authorizer(connection.authorizer)
        try:
            return work(False)
        finally:
            connection.authorizer = previous
            connection.set_authorizer(previous)

    def _run_query(self, connection: Any, sql: str, values: Any, limit: int, *, in_transaction: bool) -> QueryResult:
        def run() -> QueryResult:
            cursor = connection.execute(sql, values)
            try:
                if cursor.description is None:
                    return QueryResult(columns=[], rows=[], row_count=0)
                columns = [column[0] for column in cursor.description]
                return self._result(columns, cursor.fetchmany(limit + 1), limit)
            finally:
                cursor.close()

        result: QueryResult = self._with_deadline(connection, run)
        if not in_transaction and connection.in_transaction:
            connection.execute("ROLLBACK")  # a "query" that was BEGIN: no transaction outlives its call
        return result

    def _run_write(self, connection: Any, sql: str, values: Any) -> tuple[int, list[dict[str, Any]]]:
        def run() -> tuple[int, list[dict[str, Any]]]:
            cursor = connection.execute(sql, values)
            try:
                rows: list[dict[str, Any]] = []
                if cursor.description is not None:
                    columns = [column[0] for column in cursor.description]
                    rows = [dict(zip(columns, row, strict=False)) for row in cursor.fetchall()]
                return cursor.rowcount, rows
            finally:
                cursor.close()

        outcome: tuple[int, list[dict[str, Any]]] = self._with_deadline(connection, run)
        return outcome

    def _is_disconnect(self, exc: BaseException, connection: Any) -> bool:
        return isinstance(exc, sqlite3.ProgrammingError) and "closed" in str(exc).lower()

    def _map_error(self, exc: BaseException) -> ConnectorError | None:
        if isinstance(exc, ConnectorError):
            return exc  # the allow-list's refusal, already in words
        if (pool_error := self._map_pool_error(exc, self.config)) is not None:
            return pool_error
        if not isinstance(exc, sqlite3.Error):
            return None
        code = getattr(exc, "sqlite_errorcode", None)
        text = str(exc)
        if code is not None:
            if code in _UNIQUE:
                return self._fail("duplicate key", Category.CONFLICT, text)
            primary = code & 0xFF
            if primary in _CODES:
                category, what = _CODES[primary]
                # An interrupted (timed-out) statement would time out again: not worth a retry.
                permanent = False if primary in _TRANSIENT else True if primary == 9 else None
                return self._fail(what, category, text, permanent=permanent)
        if isinstance(exc, sqlite3.ProgrammingError | sqlite3.InterfaceError):
            return self._fail("invalid statement", Category.INVALID, text)  # e.g. a missing :param binding
        if isinstance(exc, sqlite3.IntegrityError):
            return self._fail("constraint violated", Category.INVALID, text)
        return self._fail("database error", Category.UNKNOWN, text)
