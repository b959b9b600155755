"""SQLAlchemy's QueuePool over a plain DB-API ``connect``: the pool of the MySQL and SQLite connectors.

(PostgreSQL uses psycopg_pool instead.) Only the pool is borrowed from SQLAlchemy, not its engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import QueuePool

from connectors.db.base import DatabaseOptions
from connectors.errors import Category, ConnectorError


@dataclass
class PoolLease:
    fairy: Any  # SQLAlchemy's pooled-connection proxy
    connection: Any  # the driver's own connection

    def release(self, *, discard: bool = False) -> None:
        if discard:
            self.fairy.invalidate()  # closed now; the pool opens a fresh one when needed
        self.fairy.close()


class QueuePoolMixin:
    """``_open_pool`` calls ``_start_pool(creator)``; closing and leasing are the same for every driver."""

    _pool: QueuePool | None = None

    if TYPE_CHECKING:  # provided by DatabaseConnector, which the mixin always comes before

        def _fail(self, what: str, category: Category, detail: str = "", **kwargs: Any) -> ConnectorError: ...

    def _start_pool(self, creator: Callable[[], Any], options: DatabaseOptions) -> None:
        self._pool = QueuePool(
            creator,
            pool_size=options.pool_size,
            max_overflow=0,
            timeout=options.connect_timeout,
            use_lifo=True,  # keeps the busy few connections warm
            reset_on_return=None,  # autocommit: nothing to roll back
        )

    def _close_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.dispose()

    def _acquire(self) -> PoolLease:
        if self._pool is None:
            raise self._fail("not connected", Category.CONFIG)
        fairy = self._pool.connect()
        return PoolLease(fairy, fairy.dbapi_connection)

    def _map_pool_error(self, exc: BaseException, options: DatabaseOptions) -> ConnectorError | None:
        """The pool's own failure: every connection busy for longer than the connect timeout."""
        if isinstance(exc, sa_exc.TimeoutError):
            return self._fail(
                f"no pooled connection became free within {options.connect_timeout:g} s",
                Category.TIMEOUT,
                permanent=False,
            )
        return None
