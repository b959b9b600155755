"""PostgreSQL through psycopg 3 and psycopg_pool.

A read-only integration's connections open with ``default_transaction_read_only=on`` (and the
statement_timeout) in the startup packet, and run in autocommit: every statement is its own
read-only transaction, enforced by the server, in exactly the round trip the query needs. psycopg
always uses the extended protocol, so one call is one statement: ``SELECT 1; COMMIT; DELETE ...``
is refused by the server, not by us.

A query could try to turn the session default off (``SET default_transaction_read_only = off``,
``SET SESSION CHARACTERISTICS ...``, ``set_config(...)``). PostgreSQL 14+ reports every change of
that setting to the client (it is a GUC_REPORT parameter), so the pool never hands out a connection
whose reported default is not ``on``: it is closed and replaced. A statement that is a plain ``SET``
is followed by ``RESET ALL`` (back to the startup values, statement_timeout included); the
``set_config`` function can still raise statement_timeout for the rest of a session, which is why
query_database refuses it.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import psycopg
import psycopg_pool
from psycopg import pq, sql

from connectors.db.base import CallScope, DatabaseConfig, DatabaseConnector, QueryResult
from connectors.errors import Category, ConnectorError
from connectors.policy import Target

_READ_ONLY_DEFAULT = b"default_transaction_read_only"
T = TypeVar("T")

# SQLSTATE (or its two-letter class) -> category; the first match wins, longest first.
_SQLSTATE: dict[str, tuple[Category, str]] = {
    "25006": (Category.PERMISSION, "the database refused a write in a read-only transaction"),
    "42501": (Category.PERMISSION, "permission denied"),
    "57014": (Category.TIMEOUT, "statement timed out"),  # permanent: the same statement would time out again
    "55P03": (Category.TIMEOUT, "lock not available"),
    "57P01": (Category.NETWORK, "the server terminated the connection"),
    "57P02": (Category.NETWORK, "the server is shutting down"),
    "57P03": (Category.NETWORK, "the server is not accepting connections yet"),
    "40001": (Category.CONFLICT, "serialization failure"),
    "40P01": (Category.CONFLICT, "deadlock detected"),
    "23505": (Category.CONFLICT, "duplicate key"),
    "3D000": (Category.CONFIG, "database does not exist"),
    "08": (Category.NETWORK, "connection failure"),
    "28": (Category.AUTH, "authentication failed"),
    "53": (Category.NETWORK, "the server is out of resources"),
    "23": (Category.INVALID, "constraint violated"),
    "22": (Category.INVALID, "invalid value"),
    "42": (Category.INVALID, "invalid SQL"),
    "0A": (Category.INVALID, "feature not supported"),
    "25": (Category.INVALID, "invalid transaction state"),
    "2B": (Category.INVALID, "dependent objects still exist"),
}
_TRANSIENT = {"40001", "40P01", "55P03"}

# libpq's words when no SQLSTATE reached us (the connection never got that far).
_CONNECT_TEXT = (
    ("password authentication failed", Category.AUTH, "authentication failed"),
    ("no password supplied", Category.AUTH, "a password is required"),
    ("role ", Category.AUTH, "authentication failed"),
    ("timeout expired", Category.TIMEOUT, "connection timed out"),
    ("could not translate host name", Category.NETWORK, "unknown host"),
    ("connection refused", Category.NETWORK, "connection refused"),
    ("ssl", Category.CONFIG, "TLS setup failed"),
    ("certificate", Category.CONFIG, "TLS setup failed"),
)


@dataclass
class _PgLease:
    pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]]
    connection: psycopg.Connection[Any]

    def release(self, *, discard: bool = False) -> None:
        if discard and not self.connection.closed:
            self.connection.close()  # the pool replaces a closed connection
        self.pool.putconn(self.connection)


class PostgreSQLConnector(DatabaseConnector):
    kind = "postgresql"
    label = "PostgreSQL"
    config_class = DatabaseConfig
    dialect = "postgresql"
    auth_types = ("basic", "none")  # "none": trust or peer authentication, no password sent
    default_port: ClassVar[int] = 5432

    list_tables_sql = (
        "SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY c.relname"
    )
    describe_sql = (
        "SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, "
        "NOT a.attnotnull AS nullable, pg_get_expr(d.adbin, d.adrelid) AS default, "
        "COALESCE(a.attnum = ANY(i.indkey), false) AS primary_key "
        "FROM pg_attribute a "
        "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary "
        "WHERE a.attrelid = to_regclass(quote_ident(:table)) AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum"
    )

    _pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] | None = None
    _per_query_transaction = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cursors: weakref.WeakKeyDictionary[psycopg.Connection[Any], psycopg.Cursor[Any]] = (
            weakref.WeakKeyDictionary()
        )

    @classmethod
    def targets(cls, config: Any) -> list[Target]:
        return [Target("host", "host", config.host, config.port or cls.default_port)]

    def _connect_kwargs(self) -> dict[str, Any]:
        config: DatabaseConfig = self.config
        timeout_ms = int(config.statement_timeout_seconds * 1000)
        port = config.port or self.default_port
        # Resolved and checked here, once per pool: libpq connects to the vetted hostaddr (no second
        # lookup) and still verifies the server certificate against the host name.
        addresses = self.runtime.policy.resolve(config.host, port)
        kwargs: dict[str, Any] = {
            "host": ",".join([config.host] * len(addresses)),
            "hostaddr": ",".join(addresses),
            "port": port,
            "dbname": config.database,
            "connect_timeout": max(1, math.ceil(config.connect_timeout)),
            "sslmode": config.sslmode,
            "application_name": f"hub:{self.runtime.key}"[:63],
            # Session defaults, which RESET ALL returns to.
            "options": f"-c statement_timeout={timeout_ms} -c idle_in_transaction_session_timeout={max(timeout_ms, 60000)}"
            + (" -c default_transaction_read_only=on" if config.read_only else ""),
            "autocommit": True,
            # No server-side prepared statements: a pipeline aborted by an error leaves psycopg
            # believing in statements the server never prepared, and a plan cached on a pooled
            # connection breaks when another client alters the table.
            "prepare_threshold": None,
        }
        if config.username:
            kwargs["user"] = config.username
        if config.ssl_ca:
            kwargs["sslrootcert"] = config.ssl_ca
        if self.auth_type == "basic":
            kwargs["password"] = self.credential("password")
        return kwargs

    def _open_pool(self) -> None:
        kwargs = self._connect_kwargs()
        # One direct connection first: the pool connects in the background and would only report
        # a timeout, where we want to say "wrong password" or "connection refused".
        with psycopg.connect(**kwargs) as probe:
            self.server_version = str(probe.info.server_version)
            # A server before 14, or a pooler such as PgBouncer, does not report the setting: then
            # every read-only query runs in its own BEGIN READ ONLY ... ROLLBACK pipeline instead.
            self._per_query_transaction = probe.pgconn.parameter_status(_READ_ONLY_DEFAULT) is None
        pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] = psycopg_pool.ConnectionPool(
            "",
            kwargs=kwargs,
            min_size=1,
            max_size=self.config.pool_size,
            timeout=self.config.connect_timeout,
            name=f"hub-{self.runtime.key}",
            open=False,
        )
        pool.open(wait=True, timeout=self.config.connect_timeout)
        self._pool = pool

    def _close_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close(timeout=2)

    def _acquire(self) -> _PgLease:
        if self._pool is None:
            raise self._fail("not connected", Category.CONFIG)
        return _PgLease(self._pool, self._pool.getconn())

    def _session_intact(self, connection: Any) -> bool:
        return (
            not self.config.read_only
            or self._per_query_transaction
            or connection.pgconn.parameter_status(_READ_ONLY_DEFAULT) == b"on"
        )

    def _socket(self, connection: Any) -> int | None:
        try:
            return int(connection.pgconn.socket)
        except psycopg.OperationalError:
            return None

    # ---------------------------------------------------------------- statements
    def _run_query(self, connection: Any, sql: str, values: Any, limit: int, *, in_transaction: bool) -> QueryResult:
        # One cursor per pooled connection, reused: a connection serves one caller at a time.
        cursor = self._cursors.get(connection)
        if cursor is None or cursor.closed:
            cursor = self._cursors[connection] = connection.cursor()
        if self._per_query_transaction and self.config.read_only and not in_transaction:
            try:
                with connection.pipeline():
                    connection.execute("BEGIN READ ONLY")
                    cursor.execute(sql, values)
                    connection.execute("ROLLBACK")  # also undoes any SET the query made
            except psycopg.Error:
                if connection.info.transaction_status == pq.TransactionStatus.INERROR:
                    connection.execute("ROLLBACK")
                raise
        else:
            cursor.execute(sql, values)
        result = cursor.pgresult
        if result is None or result.status != pq.ExecStatus.TUPLES_OK:
            if result is not None and result.command_status == b"SET" and not in_transaction:
                connection.execute("RESET ALL")  # back to the startup values
            if cursor.description is None:
                return QueryResult(columns=[], rows=[], row_count=0)
            columns = [column.name for column in cursor.description]
        elif connection.pgconn.parameter_status(b"client_encoding") == b"UTF8":
            # The names straight from the result: building psycopg's Column objects costs more.
            columns = [(result.fname(i) or b"").decode() for i in range(result.nfields)]
        else:
            columns = [column.name for column in cursor.description or ()]
        return self._result(columns, cursor.fetchmany(limit + 1), limit)

    def _scoped(self, connection: Any, scope: CallScope, work: Callable[[bool], T], *, write: bool) -> T:
        """The call in its own transaction (read-only for a read) that starts with ``SET LOCAL ROLE``:
        the role ends with the transaction, so the pooled connection comes back as it was. The SQL
        guard refuses SET, RESET and set_config in agent SQL, so the statement cannot leave the role.
        A table allow-list alone is not enforced here (the tools' sqlglot check names what it refuses)."""
        if not scope.role:
            return work(False)
        # One message, one round trip: without parameters psycopg sends it as a simple query.
        begin = sql.SQL("BEGIN" if write else "BEGIN READ ONLY")
        try:
            connection.execute(sql.SQL("{}; SET LOCAL ROLE {}").format(begin, sql.Identifier(scope.role)))
            result = work(True)
        except BaseException:
            if not connection.closed and connection.info.transaction_status != pq.TransactionStatus.IDLE:
                connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT" if write else "ROLLBACK")
        return result

    def _run_write(self, connection: Any, sql: str, values: Any) -> tuple[int, list[dict[str, Any]]]:
        with connection.cursor() as cursor:
            cursor.execute(sql, values)
            rows: list[dict[str, Any]] = []
            if cursor.description is not None:
                columns = [column.name for column in cursor.description]
                rows = [dict(zip(columns, row, strict=False)) for row in cursor.fetchall()]
            return cursor.rowcount, rows

    # ---------------------------------------------------------------- errors
    def _is_disconnect(self, exc: BaseException, connection: Any) -> bool:
        return bool(connection.closed or connection.broken) or (
            isinstance(exc, psycopg.OperationalError) and (exc.sqlstate or "").startswith(("08", "57P"))
        )

    def _map_error(self, exc: BaseException) -> ConnectorError | None:
        if isinstance(exc, psycopg_pool.PoolTimeout):
            return self._fail(
                f"no pooled connection became free within {self.config.connect_timeout:g} s",
                Category.TIMEOUT,
                permanent=False,
            )
        if isinstance(exc, psycopg_pool.PoolClosed):
            return self._fail("the connection pool is closed", Category.NETWORK, permanent=False)
        if not isinstance(exc, psycopg.Error):
            return None
        sqlstate = exc.sqlstate or ""
        server_text = exc.diag.message_primary or ""
        for code in (sqlstate, sqlstate[:2]):
            if code and code in _SQLSTATE:
                category, what = _SQLSTATE[code]
                permanent = False if sqlstate in _TRANSIENT else True if sqlstate == "57014" else None
                return self._fail(f"{what} ({sqlstate})", category, server_text, permanent=permanent)
        text = str(exc).lower()
        if isinstance(exc, psycopg.OperationalError):
            for needle, category, what in _CONNECT_TEXT:
                if needle in text:
                    return self._fail(what, category, self._connect_detail(exc))
            return self._fail("connection failure", Category.NETWORK, self._connect_detail(exc))
        if isinstance(exc, psycopg.ProgrammingError | psycopg.DataError):
            return self._fail("invalid statement", Category.INVALID, server_text or type(exc).__name__)
        return self._fail(f"database error ({sqlstate or type(exc).__name__})", Category.UNKNOWN, server_text)

    def _connect_detail(self, exc: BaseException) -> str:
        # libpq's text names host and port (no password: we never build a DSN string); keep its last line.
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        return lines[-1] if lines else ""
