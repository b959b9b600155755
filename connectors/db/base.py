"""The database family: one choke point (``_execute``) through the runtime; engines add driver specifics.

Every call checks out a pooled connection, runs the engine's code and maps driver errors to
``ConnectorError`` with messages built here, never with a DSN or a password. A connection the server
closed while it sat in the pool is replaced: before a write it is spotted without a round trip (a
readable socket on an idle connection means the server hung up); a read simply fails on it and runs
again on another connection, which saves that check on the hot path.

Read-only integrations are enforced by the database (each engine says how), not by reading the SQL.
Writes are never retried by the runtime: a lost connection may have committed them.
"""

from __future__ import annotations

import contextlib
import select
import threading
from collections.abc import Callable, Mapping
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


@dataclass(frozen=True)
class CallScope:
    """One call's limits, set on the leased connection for that call only and undone before it
    goes back to the pool (an agent profile's, through the tools): ``allow`` a table/column
    allow-list the engine enforces (SQLite's authorizer), ``role`` a role the statement runs as
    (PostgreSQL ``SET LOCAL ROLE`` inside the call's transaction, MariaDB ``SET ROLE``). An engine
    that cannot honour a limit refuses the call rather than run it unlimited."""

    allow: Mapping[str, Any] | None = None
    role: str | None = None

    @property
    def empty(self) -> bool:
        return self.allow is None and not self.role


class Lease(Protocol):
    """A pooled connection on loan; ``release(discard=True)`` throws a broken one away."""

    connection: Any

    def release(self, *, discard: bool = False) -> None: ...


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
        self._connect_lock = threading.RLock()
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

    def _scoped(self, connection: Any, scope: CallScope, work: Callable[[bool], T], *, write: bool) -> T:
        """Run ``work(in_transaction)`` on ``connection`` under ``scope`` and undo it afterwards.
        Engines that honour a scope override this; the default refuses any limit."""
        raise self._fail(f"{self.label} cannot run a call under a table allow-list or role", Category.CONFIG)

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
            try:
                self._open_pool()
            except ConnectorError:
                raise
            except Exception as exc:
                raise self._error(exc) from None

    def _close(self) -> None:
        with self._connect_lock:
            self._close_pool_quietly()

    def _close_pool_quietly(self) -> None:
        with contextlib.suppress(Exception):  # closing a pool that is already gone must not hide the real error
            self._close_pool()

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

    def _execute(self, operation: str, work: Callable[[Any], T], *, write: bool = False) -> T:
        """Run ``work(connection)`` under the runtime (circuit, rate limit, retry, metrics)."""
        if write and self.config.read_only:
            raise self._fail(f"{operation} refused: this integration is read-only", Category.PERMISSION)

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
    def fetch(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        *,
        max_rows: int | None = None,
        scope: CallScope | None = None,
    ) -> QueryResult:
        limit = self.config.max_rows if max_rows is None else max(1, min(max_rows, self.config.max_rows))
        text, values = bind(sql, params, self.dialect, self.param_style)
        run_query = self._run_query
        if scope is None or scope.empty:
            return self._execute("query", lambda conn: run_query(conn, text, values, limit, in_transaction=False))
        return self._execute(
            "query",
            lambda conn: self._scoped(
                conn, scope, lambda in_tx: run_query(conn, text, values, limit, in_transaction=in_tx), write=False
            ),
        )

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return self.fetch(sql, params).rows

    def list_tables(self) -> list[str]:
        rows = self.fetch(self.list_tables_sql, max_rows=self.config.max_rows).rows
        return [str(row["name"]) for row in rows]

    def describe_table(self, name: str) -> list[dict[str, Any]]:
        if not isinstance(name, str) or not name:
            raise self._fail("table name must be a non-empty string", Category.INVALID)
        rows = self.fetch(self.describe_sql, {"table": name}).rows
        if not rows:
            raise self._fail(f"unknown table {name!r}", Category.INVALID)
        return [self._describe_row(row) for row in rows]

    # ---------------------------------------------------------------- writes
    def execute(self, sql: str, params: Mapping[str, Any] | None = None, *, scope: CallScope | None = None) -> int:
        text, values = bind(sql, params, self.dialect, self.param_style)
        if scope is None or scope.empty:
            count, _rows = self._execute("execute", lambda conn: self._run_write(conn, text, values), write=True)
            return count
        count, _rows = self._execute(
            "execute",
            lambda conn: self._scoped(conn, scope, lambda _in_tx: self._run_write(conn, text, values), write=True),
            write=True,
        )
        return count

    # ---------------------------------------------------------------- helpers for engines
    @staticmethod
    def _result(columns: list[str], rows: list[Any], limit: int) -> QueryResult:
        truncated = len(rows) > limit
        if truncated:
            rows = rows[:limit]
        return QueryResult(columns, [dict(zip(columns, row)) for row in rows], len(rows), truncated)  # noqa: B905
