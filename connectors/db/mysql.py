"""MySQL and MariaDB through mysqlclient, pooled by SQLAlchemy's QueuePool.

Connections run in autocommit with multi-statements switched off, so one ``execute`` is one
statement, and with the session's statement time limit (``max_statement_time`` on MariaDB,
``max_execution_time`` on MySQL).

Read-only integrations. A session default (``SET SESSION TRANSACTION READ ONLY``) is not enough on
its own: MariaDB lets one statement override it (``SET STATEMENT tx_read_only = 0 FOR DELETE ...``),
and so did the ``SET STATEMENT tx_read_only = 1 FOR <query>`` prefix this connector used to send —
the query's own inner ``SET STATEMENT`` won. Inside an active read-only transaction, though, no
statement can switch to read-write. So every pooled connection of a read-only integration waits in
the pool inside an empty read-only transaction: it opens with ``START TRANSACTION READ ONLY``,
each query runs in that transaction, and ``ROLLBACK AND CHAIN`` ends it (releasing its locks) and
opens the next one — two round trips per query, the price of the guarantee. The session default
is read-only as well, so a chained or new transaction is read-only either way.

A query that returns no rows (``COMMIT``, ``START TRANSACTION READ WRITE``, ``SET autocommit = 0``,
``LOCK TABLES``...) or more than one result (``CALL``) may have left the transaction or the session
changed; that connection is closed instead of going back to the pool. Plain queries, which return
rows, keep their connection.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import MySQLdb
from MySQLdb.constants import CLIENT

from connectors.db.base import CallScope, DatabaseConfig, DatabaseConnector, QueryResult
from connectors.db.params import Dialect
from connectors.db.queuepool import QueuePoolMixin
from connectors.errors import Category, ConnectorError
from connectors.policy import Target

_ERRNO: dict[int, tuple[Category, str]] = {
    1045: (Category.AUTH, "access denied (wrong user name or password)"),
    1698: (Category.AUTH, "access denied"),
    1044: (Category.PERMISSION, "access to the database denied"),
    1142: (Category.PERMISSION, "permission denied on the table"),
    1143: (Category.PERMISSION, "permission denied on the column"),
    1227: (Category.PERMISSION, "permission denied"),
    1370: (Category.PERMISSION, "permission denied on the routine"),
    1290: (Category.PERMISSION, "the server runs read-only"),
    1792: (Category.PERMISSION, "the database refused a write in a read-only transaction"),
    1049: (Category.CONFIG, "unknown database"),
    2026: (Category.CONFIG, "TLS setup failed"),
    1969: (Category.TIMEOUT, "statement timed out"),
    3024: (Category.TIMEOUT, "statement timed out"),
    1205: (Category.TIMEOUT, "lock wait timed out"),
    1213: (Category.CONFLICT, "deadlock"),
    1062: (Category.CONFLICT, "duplicate key"),
    1040: (Category.NETWORK, "too many connections"),
    2002: (Category.NETWORK, "cannot connect"),
    2003: (Category.NETWORK, "cannot connect"),
    2005: (Category.NETWORK, "unknown host"),
    2006: (Category.NETWORK, "the server has gone away"),
    2013: (Category.NETWORK, "lost the connection during the query"),
    2055: (Category.NETWORK, "lost the connection"),
    1927: (Category.NETWORK, "the connection was killed"),
    1053: (Category.NETWORK, "the server is shutting down"),
    4031: (Category.NETWORK, "disconnected by the server for inactivity"),
}
_TRANSIENT = {1205, 1213, 1040}
_DISCONNECTS = {2006, 2013, 2055, 1927, 1053, 4031}

_SSL_MODES = {
    "disable": "DISABLED",
    "allow": "PREFERRED",
    "prefer": "PREFERRED",
    "require": "REQUIRED",
    "verify-ca": "VERIFY_CA",
    "verify-full": "VERIFY_IDENTITY",
}


T = TypeVar("T")


def _quoted(name: str) -> bytes:
    """A role name as a MariaDB identifier."""
    return ("`" + name.replace("`", "``") + "`").encode()


def _statement(connection: Any, sql: str, values: tuple[Any, ...] | None) -> bytes:
    """The statement as mysqlclient's cursor would send it: values quoted by the driver."""
    statement: bytes = sql.encode(connection.encoding)
    if values is None:
        return statement
    try:
        return statement % tuple(map(connection.literal, values))
    except TypeError as exc:
        raise MySQLdb.ProgrammingError(f"cannot bind the parameters: {exc}") from None


class MySQLConnector(QueuePoolMixin, DatabaseConnector):
    kind = "mysql"
    label = "MySQL / MariaDB"
    config_class = DatabaseConfig
    dialect: ClassVar[Dialect] = "mysql"
    auth_types = ("basic", "none")  # "none": an account without a password
    default_port: ClassVar[int] = 3306

    list_tables_sql = (
        "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY table_name"
    )
    describe_sql = (
        "SELECT column_name AS name, column_type AS type, is_nullable = 'YES' AS nullable, "
        "column_default AS `default`, column_key = 'PRI' AS primary_key "
        "FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = :table "
        "ORDER BY ordinal_position"
    )

    mariadb: bool = True

    def quote(self, name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    @classmethod
    def targets(cls, config: Any) -> list[Target]:
        return [Target("host", "host", config.host, config.port or cls.default_port)]

    def _connect_kwargs(self) -> dict[str, Any]:
        config: DatabaseConfig = self.config
        port = config.port or self.default_port
        # Resolved and checked once per pool; connections go to the vetted address (TCP, never the
        # socket "localhost" means to the client library). verify-full checks the certificate against
        # the name, which the client library then looks up again itself.
        address = self.runtime.policy.resolve(config.host, port)[0]
        kwargs: dict[str, Any] = {
            "host": config.host if config.sslmode == "verify-full" else address,
            "port": port,
            "database": config.database,
            "connect_timeout": max(1, math.ceil(config.connect_timeout)),
            # A client-side bound too, for a server that stops answering mid-statement.
            "read_timeout": math.ceil(config.statement_timeout_seconds) + 10,
            "write_timeout": math.ceil(config.statement_timeout_seconds) + 10,
            "charset": "utf8mb4",
            "autocommit": True,
            "multi_statements": False,
            "client_flag": CLIENT.FOUND_ROWS,  # rowcount = rows matched, as on the other engines
            "ssl_mode": _SSL_MODES[config.sslmode],
        }
        if config.username:
            kwargs["user"] = config.username
        if config.ssl_ca:
            kwargs["ssl"] = {"ca": config.ssl_ca}
        if self.auth_type == "basic":
            kwargs["password"] = self.credential("password")
        return kwargs

    def _open_pool(self) -> None:
        kwargs = self._connect_kwargs()
        probe = MySQLdb.connect(**kwargs)  # say "access denied" now, not on the first query
        try:
            self.server_version = probe.get_server_info()
        finally:
            probe.close()
        version = self.server_version or ""
        self.mariadb = "mariadb" in version.lower()
        seconds = self.config.statement_timeout_seconds
        kwargs["init_command"] = (
            f"SET SESSION max_statement_time = {seconds:g}"
            if self.mariadb
            else f"SET SESSION max_execution_time = {int(seconds * 1000)}"
        )
        self._start_pool(lambda: self._new_connection(kwargs), self.config)

    def _new_connection(self, kwargs: dict[str, Any]) -> Any:
        connection = MySQLdb.connect(**kwargs)
        if self.config.read_only:
            try:
                connection.query(b"SET SESSION TRANSACTION READ ONLY")
                connection.query(b"START TRANSACTION READ ONLY")
            except MySQLdb.Error:
                connection.close()
                raise
        return connection

    def _socket(self, connection: Any) -> int | None:
        try:
            return int(connection.fileno())
        except MySQLdb.Error:
            return None

    # ---------------------------------------------------------------- statements
    def _scoped(self, connection: Any, scope: CallScope, work: Callable[[bool], T], *, write: bool) -> T:
        """The call with ``SET ROLE`` for its session, set back to the session's previous role after
        (a connection whose role cannot be put back is closed, never pooled). MariaDB adds a role's
        privileges to the user's own: the hub's user must itself read nothing the role should not
        (``connectors.db.privileges.check_role`` reports the union). A table allow-list alone is not
        enforced here (the tools' sqlglot check names what it refuses)."""
        if not scope.role:
            return work(False)
        if "\x00" in scope.role:
            raise self._fail("invalid role name", Category.INVALID)
        connection.query(b"SELECT CURRENT_ROLE()")
        found = connection.store_result().fetch_row(1, 0)
        before = found[0][0] if found else None
        connection.query(b"SET ROLE " + _quoted(scope.role))
        try:
            return work(False)
        finally:
            try:
                restore = _quoted(before.decode() if isinstance(before, bytes) else str(before)) if before else b"NONE"
                connection.query(b"SET ROLE " + restore)
            except MySQLdb.Error:
                connection.close()

    def _run_query(self, connection: Any, sql: str, values: Any, limit: int, *, in_transaction: bool) -> QueryResult:
        statement = _statement(connection, sql, values)
        if not self.config.read_only or in_transaction:
            columns, rows = self._rows(connection, statement, limit)
            while connection.more_results() and connection.next_result() == 0:
                connection.store_result()  # a CALL's further results: drained, so the connection stays in step
        else:
            try:
                columns, rows = self._rows(connection, statement, limit)
            except MySQLdb.Error:
                self._next_read_only_transaction(connection)  # an error may have ended it (a deadlock)
                raise
            if columns is None or connection.more_results() or not connection.get_autocommit():
                # Not a plain query: it may have ended the read-only transaction or changed the session.
                connection.close()
            else:
                self._next_read_only_transaction(connection)
        if columns is None:
            return QueryResult(columns=[], rows=[], row_count=0)
        return self._result(columns, rows, limit)

    @staticmethod
    def _next_read_only_transaction(connection: Any) -> None:
        """End the query's read-only transaction and open the next (read-only by the session too)."""
        try:
            connection.query(b"ROLLBACK AND CHAIN")
        except MySQLdb.Error:
            connection.close()  # not in a known state: never pooled again (a dead one is replaced anyway)

    @staticmethod
    def _rows(connection: Any, statement: bytes, limit: int) -> tuple[list[str] | None, list[Any]]:
        """Run one statement with the driver's own query/store_result (the cursor adds nothing here)."""
        connection.query(statement)
        result = connection.store_result()
        if result is None:
            return None, []
        return [column[0] for column in result.describe()], list(result.fetch_row(limit + 1, 0))

    def _session_intact(self, connection: Any) -> bool:
        return bool(connection.open)

    def _run_write(self, connection: Any, sql: str, values: Any) -> tuple[int, list[dict[str, Any]]]:
        count, rows, _last_id = self._write(connection, sql, values)
        return count, rows

    @staticmethod
    def _write(connection: Any, sql: str, values: Any) -> tuple[int, list[dict[str, Any]], Any]:
        cursor = connection.cursor()
        try:
            cursor.execute(sql, values)
            rows: list[dict[str, Any]] = []
            if cursor.description is not None:
                columns = [column[0] for column in cursor.description]
                rows = [dict(zip(columns, row, strict=False)) for row in cursor.fetchall()]
            return int(cursor.rowcount), rows, cursor.lastrowid
        finally:
            cursor.close()

    def _describe_row(self, row: Any) -> dict[str, Any]:
        described = super()._describe_row(row)
        if described["default"] == "NULL":  # MariaDB spells "no default" as the text NULL
            described["default"] = None
        return described

    # ---------------------------------------------------------------- errors
    @staticmethod
    def _errno(exc: BaseException) -> int | None:
        if isinstance(exc, MySQLdb.Error) and exc.args and isinstance(exc.args[0], int):
            return exc.args[0]
        return None

    def _is_disconnect(self, exc: BaseException, connection: Any) -> bool:
        return self._errno(exc) in _DISCONNECTS or isinstance(exc, MySQLdb.InterfaceError)

    def _map_error(self, exc: BaseException) -> ConnectorError | None:
        if (pool_error := self._map_pool_error(exc, self.config)) is not None:
            return pool_error
        if not isinstance(exc, MySQLdb.Error):
            return None
        errno = self._errno(exc)
        server_text = str(exc.args[1]) if len(exc.args) > 1 else ""
        if errno in (2002, 2003, 2013) and ("system error: 110" in server_text or "timed out" in server_text.lower()):
            # errno 110 is ETIMEDOUT: the server (or something in between) never answered in time
            return self._fail(f"connection timed out ({errno})", Category.TIMEOUT, server_text, permanent=False)
        if errno in _ERRNO:
            category, what = _ERRNO[errno]
            # A statement that ran out of time would run out again: not worth a retry.
            permanent = False if errno in _TRANSIENT else True if errno in (1969, 3024) else None
            return self._fail(f"{what} ({errno})", category, server_text, permanent=permanent)
        if isinstance(exc, MySQLdb.OperationalError) and errno is not None and errno >= 2000:
            return self._fail(f"connection failure ({errno})", Category.NETWORK, server_text)
        if isinstance(exc, MySQLdb.InterfaceError):
            return self._fail("the connection is closed", Category.NETWORK, permanent=False)
        if isinstance(exc, MySQLdb.ProgrammingError | MySQLdb.DataError | MySQLdb.IntegrityError):
            return self._fail(f"invalid statement ({errno})", Category.INVALID, server_text)
        if isinstance(exc, MySQLdb.OperationalError):
            # 1054 unknown column, 1146 unknown table, 1366 bad value... are OperationalErrors here
            return self._fail(f"invalid statement ({errno})", Category.INVALID, server_text)
        return self._fail(f"database error ({errno})", Category.UNKNOWN, server_text)
