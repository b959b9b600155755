"""The database family: one choke point (``_execute``) through the runtime; engines add driver specifics.

Every call checks out a pooled connection, runs the engine's code and maps driver errors to
``ConnectorError`` with messages built here, never with a DSN or a password. A connection the server
closed while it sat in the pool is replaced: before a write or a transaction it is spotted without
a round trip (a readable socket on an idle connection means the server hung up); a read simply
fails on it and runs again on another connection, which saves that check on the hot path.

Read-only integrations are enforced by the database (each engine says how), not by reading the SQL.
Writes are never retried by the runtime: a lost connection may have committed them.
"""

from __future__ import annotations

import select
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, TypeVar

from pydantic import Field

from connectors.base import BaseConfig, Connector, ConnectorStatus, CredentialField
from connectors.db.params import Dialect, Style, bind
from connectors.errors import Category, ConnectorError

T = TypeVar("T")


class DatabaseOptions(BaseConfig):
    """What every engine accepts besides where the database is."""

    pool_size: int = Field(10, ge=1, le=100, description="Pooled connections per worker process.")
    connect_timeout: float = Field(10.0, gt=0, le=300, description="Seconds to open a connection.")
    statement_timeout_seconds: float = Field(30.0, gt=0, le=3600, description="Longest one statement may run.")
    read_only: bool = Field(True, description="Refuse writes; queries run in a database-enforced read-only mode.")
    max_rows: int = Field(1000, ge=1, le=100_000, description="Most rows a query returns (the rest is cut off).")


class DatabaseConfig(DatabaseOptions):
    """A database server (PostgreSQL, MySQL / MariaDB). The password lives in credentials."""

    host: str = Field(..., min_length=1, max_length=255)
    port: int | None = Field(None, ge=1, le=65535, description="Defaults to the engine's port.")
    database: str = Field(..., min_length=1, max_length=128)
    username: str = Field("", max_length=128)
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = "prefer"
    ssl_ca: str | None = Field(None, description="Path of the CA bundle (PEM) that signs the server certificate.")


@dataclass(slots=True)
class QueryResult:
    columns: list[str]
    rows: list[dict[str, Any]]
    row_count: int
    truncated: bool = False
    details: dict[str, Any] = field(default_factory=dict)


class Lease(Protocol):
    """A pooled connection on loan; ``release(discard=True)`` throws a broken one away."""

    connection: Any

    def release(self, *, discard: bool = False) -> None: ...


class _ThreadTransaction(threading.local):
    lease: Lease | None = None  # a class default: reading it costs no AttributeError


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class DatabaseConnector(Connector[Any]):
    family: ClassVar[str] = "database"
    dialect: ClassVar[Dialect]
    param_style: ClassVar[Style] = "pyformat"
    credential_fields: ClassVar[tuple[CredentialField, ...]] = (
        CredentialField("password", "Password", secret=True, required_for=("basic",)),
    )
    auth_types: ClassVar[tuple[str, ...]] = ("basic",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._local = _ThreadTransaction()  # the open transaction of this thread, if any
        self._connect_lock = threading.RLock()
        self._tables: set[str] | None = None
        self._columns: dict[str, list[dict[str, Any]]] = {}
        self.server_version: str | None = None

    # ---------------------------------------------------------------- engine hooks
    def _open_pool(self) -> None:
        raise NotImplementedError

    def _close_pool(self) -> None:
        raise NotImplementedError

    def _acquire(self) -> Lease:
        raise NotImplementedError

    def _socket(self, connection: Any) -> int | None:
        """The connection's socket, to spot one the server closed while it sat in the pool."""
        return None

    def _session_intact(self, connection: Any) -> bool:
        """False for a connection whose session a query changed so that it must not be reused."""
        return True

    def _run_query(self, connection: Any, sql: str, values: Any, limit: int, *, in_transaction: bool) -> QueryResult:
        raise NotImplementedError

    def _run_write(self, connection: Any, sql: str, values: Any) -> tuple[int, list[dict[str, Any]]]:
        raise NotImplementedError

    def _begin(self, connection: Any) -> None:
        raise NotImplementedError

    def _end(self, connection: Any, *, commit: bool) -> None:
        raise NotImplementedError

    def _map_error(self, exc: BaseException) -> ConnectorError | None:
        """A ConnectorError for a driver error; None for anything else (a bug: re-raised as it is)."""
        raise NotImplementedError

    def _is_disconnect(self, exc: BaseException, connection: Any) -> bool:
        raise NotImplementedError

    list_tables_sql: ClassVar[str]
    describe_sql: ClassVar[str]  # takes :table

    def _describe_row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "name": row["name"],
            "type": row["type"],
            "nullable": bool(row["nullable"]),
            "default": row["default"],
            "primary_key": bool(row["primary_key"]),
        }

    def quote(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    # ---------------------------------------------------------------- lifecycle
    def _open(self) -> None:
        with self._connect_lock:
            self._close_pool_quietly()
            self._forget_schema()
            try:
                self._open_pool()
            except ConnectorError:
                raise
            except Exception as exc:
                raise self._error(exc) from None

    def _close(self) -> None:
        with self._connect_lock:
            self._close_pool_quietly()
            self._forget_schema()

    def _close_pool_quietly(self) -> None:
        try:
            self._close_pool()
        except Exception:  # closing a pool that is already gone must not hide the real error
            pass

    def ensure_connected(self) -> None:
        with self._connect_lock:
            super().ensure_connected()

    def _probe(self) -> dict[str, Any] | None:
        self.fetch("SELECT 1 AS ok")
        return {"server_version": self.server_version, "read_only": self.config.read_only}

    # ---------------------------------------------------------------- errors
    def _scrub(self, text: str) -> str:
        # Imported here, not at the top, so that this edit stays inside _scrub (the rest of the file is
        # being changed in parallel); the module is tiny and already loaded by the HTTP family.
        from connectors.redact import mask_secrets

        secrets = [self._credentials.get(f.name) for f in self.credential_fields if f.secret]
        return _one_line(mask_secrets(text, secrets))

    def _error(self, exc: BaseException) -> ConnectorError:
        mapped = self._map_error(exc)
        if mapped is None:
            mapped = ConnectorError(f"{self.label}: unexpected {type(exc).__name__}", category=Category.UNKNOWN)
        mapped.message = self._scrub(mapped.message)
        mapped.args = (mapped.message,)
        return mapped

    def _fail(self, what: str, category: Category, detail: str = "", **kwargs: Any) -> ConnectorError:
        text = f"{self.label}: {what}" + (f" — {detail}" if detail else "")
        return ConnectorError(self._scrub(text), category=category, **kwargs)

    # ---------------------------------------------------------------- the choke point
    def _stale(self, connection: Any) -> bool:
        fd = self._socket(connection)
        if fd is None or fd < 0:
            return False
        try:
            readable, _, _ = select.select([fd], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def _acquire_live(self, *, check_socket: bool = True) -> Lease:
        for _ in range(self.config.pool_size + 1):
            lease = self._acquire()
            connection = lease.connection
            if self._session_intact(connection) and not (check_socket and self._stale(connection)):
                return lease
            lease.release(discard=True)
        raise self._fail("every pooled connection was closed by the server", Category.NETWORK)

    def _transaction_lease(self) -> Lease | None:
        return self._local.lease

    def _execute(
        self, operation: str, work: Callable[[Any], T], *, write: bool = False, tx: Lease | None | bool = False
    ) -> T:
        """Run ``work(connection)`` under the runtime (circuit, rate limit, retry, metrics).

        ``tx``: the caller already looked up this thread's transaction (a lease or None).
        """
        if write and self.config.read_only:
            raise self._fail(f"{operation} refused: this integration is read-only", Category.PERMISSION)
        lease_in_tx = self._transaction_lease() if tx is False else tx
        if lease_in_tx is not None:
            held: Lease = lease_in_tx  # type: ignore[assignment]

            def in_transaction() -> T:
                try:
                    return work(held.connection)
                except Exception as exc:
                    raise self._error(exc) from None

            return self.runtime.call(operation, in_transaction, retry=False)

        def attempt() -> T:
            # (Re)connecting happens inside the attempt, so an unreachable server counts towards
            # the circuit breaker and the metrics like any other failed call.
            if self.status is not ConnectorStatus.READY:
                self.ensure_connected()
            # A connection that died in the pool between the staleness check and use is replaced
            # at once for reads; writes report the failure (they may have reached the server).
            rounds = self.config.pool_size + 1
            for round_ in range(rounds):
                try:
                    lease = self._acquire_live(check_socket=write)
                except ConnectorError:
                    raise
                except Exception as exc:
                    raise self._error(exc) from None
                try:
                    result = work(lease.connection)
                except Exception as exc:
                    dead = self._is_disconnect(exc, lease.connection)
                    lease.release(discard=dead)
                    if dead and not write and round_ < rounds - 1:
                        continue
                    raise self._error(exc) from None
                lease.release()
                return result
            raise self._fail("no live connection", Category.NETWORK)  # unreachable: the loop returns or raises

        return self.runtime.call(operation, attempt, retry=not write)

    # ---------------------------------------------------------------- reads
    def fetch(self, sql: str, params: Mapping[str, Any] | None = None, *, max_rows: int | None = None) -> QueryResult:
        limit = self.config.max_rows if max_rows is None else max(1, min(max_rows, self.config.max_rows))
        text, values = bind(sql, params, self.dialect, self.param_style)
        tx = self._transaction_lease()
        in_tx, run_query = tx is not None, self._run_query
        return self._execute("query", lambda conn: run_query(conn, text, values, limit, in_transaction=in_tx), tx=tx)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return self.fetch(sql, params).rows

    def list_tables(self) -> list[str]:
        rows = self.fetch(self.list_tables_sql, max_rows=self.config.max_rows).rows
        names = [str(row["name"]) for row in rows]
        self._tables = set(names)
        return names

    def describe_table(self, name: str) -> list[dict[str, Any]]:
        if not isinstance(name, str) or not name:
            raise self._fail("table name must be a non-empty string", Category.INVALID)
        rows = self.fetch(self.describe_sql, {"table": name}).rows
        if not rows:
            raise self._fail(f"unknown table {name!r}", Category.INVALID)
        columns = [self._describe_row(row) for row in rows]
        self._columns[name] = columns
        return columns

    # ---------------------------------------------------------------- writes
    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        text, values = bind(sql, params, self.dialect, self.param_style)
        try:
            count, _rows = self._execute("execute", lambda conn: self._run_write(conn, text, values), write=True)
        finally:
            self._forget_schema()  # the statement may have been DDL
        return count

    def create(self, table: str, data: Mapping[str, Any]) -> dict[str, Any]:
        self._refuse_if_read_only("create")
        self._check_columns(table, data, "create")
        return self._execute("create", lambda conn: self._insert(conn, table, dict(data)), write=True)

    def update(self, table: str, id: Any, data: Mapping[str, Any]) -> dict[str, Any]:
        self._refuse_if_read_only("update")
        self._check_columns(table, data, "update")
        pk = self._primary_key(table)
        row = self._execute("update", lambda conn: self._update(conn, table, pk, id, dict(data)), write=True)
        if row is None:
            raise self._fail(f"no row in {table!r} with {pk} = {id!r}", Category.NOT_FOUND)
        return row

    def delete(self, table: str, id: Any) -> bool:
        self._refuse_if_read_only("delete")
        pk = self._primary_key(table)
        sql = f"DELETE FROM {self.quote(table)} WHERE {self.quote(pk)} = :id"
        text, values = bind(sql, {"id": id}, self.dialect, self.param_style)
        count, _rows = self._execute("delete", lambda conn: self._run_write(conn, text, values), write=True)
        return count > 0

    def _refuse_if_read_only(self, operation: str) -> None:
        if self.config.read_only:
            raise self._fail(f"{operation} refused: this integration is read-only", Category.PERMISSION)

    # Engines without INSERT/UPDATE ... RETURNING override these two.
    def _insert(self, conn: Any, table: str, data: dict[str, Any]) -> dict[str, Any]:
        names = list(data)
        sql = (
            f"INSERT INTO {self.quote(table)} ({', '.join(self.quote(n) for n in names)}) "
            f"VALUES ({', '.join(f':p{i}' for i in range(len(names)))}) RETURNING *"
        )
        text, values = bind(sql, {f"p{i}": data[n] for i, n in enumerate(names)}, self.dialect, self.param_style)
        _count, rows = self._run_write(conn, text, values)
        return rows[0]

    def _update(self, conn: Any, table: str, pk: str, id: Any, data: dict[str, Any]) -> dict[str, Any] | None:
        names = list(data)
        assignments = ", ".join(f"{self.quote(n)} = :p{i}" for i, n in enumerate(names))
        sql = f"UPDATE {self.quote(table)} SET {assignments} WHERE {self.quote(pk)} = :id RETURNING *"
        params = {f"p{i}": data[n] for i, n in enumerate(names)} | {"id": id}
        text, values = bind(sql, params, self.dialect, self.param_style)
        _count, rows = self._run_write(conn, text, values)
        return rows[0] if rows else None

    # ---------------------------------------------------------------- schema checks
    def _forget_schema(self) -> None:
        self._tables = None
        self._columns = {}

    def _known_columns(self, table: str) -> list[dict[str, Any]]:
        if not isinstance(table, str) or not table:
            raise self._fail("table name must be a non-empty string", Category.INVALID)
        if table in self._columns:
            return self._columns[table]
        if self._tables is None or table not in self._tables:
            self.list_tables()  # refreshed once: the table may be new
        if self._tables is None or table not in self._tables:
            raise self._fail(f"unknown table {table!r}", Category.INVALID)
        return self.describe_table(table)

    def _check_columns(self, table: str, data: Mapping[str, Any], operation: str) -> None:
        if not isinstance(data, Mapping) or not data:
            raise self._fail(f"{operation} needs a non-empty mapping of column names to values", Category.INVALID)
        unknown = self._unknown(table, data)
        if unknown:
            self._columns.pop(table, None)  # the table may have changed since we looked
            unknown = self._unknown(table, data)
        if unknown:
            raise self._fail(f"unknown column(s) in {table!r}: {', '.join(map(repr, unknown))}", Category.INVALID)

    def _unknown(self, table: str, names: Iterable[Any]) -> list[str]:
        known = {column["name"] for column in self._known_columns(table)}
        return sorted(str(n) for n in names if n not in known)

    def _primary_key(self, table: str) -> str:
        keys = [column["name"] for column in self._known_columns(table) if column["primary_key"]]
        if len(keys) != 1:
            raise self._fail(f"table {table!r} has no single-column primary key", Category.INVALID)
        return str(keys[0])

    # ---------------------------------------------------------------- transactions
    @contextmanager
    def transaction(self) -> Iterator[DatabaseConnector]:
        """Statements in the block share one connection and commit together (roll back on error).

        In a read-only integration the transaction is read-only. Nested blocks join the outer one.
        """
        if self._transaction_lease() is not None:
            yield self
            return
        self.ensure_connected()
        try:
            lease = self._acquire_live()
        except ConnectorError:
            raise
        except Exception as exc:
            raise self._error(exc) from None
        self._local.lease = lease
        broken = False
        try:
            self._execute("begin", self._begin)
            yield self
        except BaseException as exc:
            broken = isinstance(exc, ConnectorError) and exc.category in (Category.NETWORK, Category.TIMEOUT)
            try:
                self._end(lease.connection, commit=False)
            except Exception:
                broken = True  # a connection that cannot roll back is not given to anyone else
            raise
        else:
            try:
                self._execute("commit", lambda conn: self._end(conn, commit=not self.config.read_only))
            except ConnectorError:
                broken = True
                raise
        finally:
            self._local.lease = None
            lease.release(discard=broken)

    # ---------------------------------------------------------------- helpers for engines
    @staticmethod
    def _result(columns: list[str], rows: list[Any], limit: int) -> QueryResult:
        truncated = len(rows) > limit
        if truncated:
            rows = rows[:limit]
        return QueryResult(columns, [dict(zip(columns, row)) for row in rows], len(rows), truncated)  # noqa: B905
