"""A table/column allow-list that SQLite itself enforces, through the connection's authorizer
(``sqlite3.Connection.set_authorizer``, https://sqlite.org/c3ref/set_authorizer.html).

SQLite calls the authorizer while it compiles a statement, once for every column each table
access reads (``SQLITE_READ``: table, column), after resolving views, CTEs, aliases and ``*``: a
view's own columns are reported and so are the base-table columns behind them (with the view as the
fourth argument), a CTE's reads are reported against the table it reads, ``SELECT *`` is one read
per column, and ``count(*)`` is a read of the table with an empty column name. So the allow-list
holds however the SQL is written; this module only has to say yes or no per read.

Rules, with an allow-list ``{table: [columns] | "*"}`` (names compared case-insensitively, as SQLite
does):
- a read of a listed table's listed column is allowed; ``"*"`` allows every column; a read with no
  column (``count(*)``) needs the table listed. A view is a table like any other: to read through
  one, list the view's columns and the base columns it reads. SQLite reports every base column a
  view reads whichever view column a statement asks for, so a view over an outside column is
  closed as a whole.
- the schema (``sqlite_schema``) and the table_info family of pragmas for listed tables stay
  readable, so ``list_tables`` and ``describe_table`` work (names, not data);
- INSERT and DELETE need the table listed, UPDATE the column;
- everything else — ATTACH, DDL, other pragmas, ANALYZE, VACUUM — is refused: an allow-list is
  about data, and those would change what the list means.

The first refusal of a statement is kept (``refusal``) so that the connector's error names the table
or column; SQLite's own error text is only "not authorized".
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Literal

from connectors.errors import Category, ConnectorError

AllowList = Mapping[str, Sequence[str] | Literal["*"]]

_SCHEMA_TABLES = {"sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema", "sqlite_sequence"}
_TABLE_PRAGMAS = {"table_info", "table_xinfo", "index_list", "foreign_key_list"}
_ALWAYS = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_FUNCTION,
    sqlite3.SQLITE_RECURSIVE,
    sqlite3.SQLITE_TRANSACTION,
    sqlite3.SQLITE_SAVEPOINT,
}
_ACTION_NAMES = {
    value: name.removeprefix("SQLITE_")
    for name, value in vars(sqlite3).items()
    if name.startswith("SQLITE_")
    and isinstance(value, int)
    and name not in {"SQLITE_OK", "SQLITE_DENY", "SQLITE_IGNORE"}
}


def normalise(allow: AllowList) -> dict[str, frozenset[str] | None]:
    """``{table: columns}`` lower-cased; None means every column. A bad entry is a ``ValueError``."""
    out: dict[str, frozenset[str] | None] = {}
    for table, columns in allow.items():
        if not isinstance(table, str) or not table:
            raise ValueError("table names must be non-empty strings")
        if columns == "*":
            out[table.lower()] = None
        elif (
            isinstance(columns, Sequence) and not isinstance(columns, str) and all(isinstance(c, str) for c in columns)
        ):
            out[table.lower()] = frozenset(c.lower() for c in columns)
        else:
            raise ValueError(f'columns of {table!r} must be a list of names or "*"')
    return out


class ColumnAuthorizer:
    """The callback for ``set_authorizer``; one per connection (it remembers its last refusal)."""

    def __init__(self, allow: AllowList) -> None:
        self.allow = normalise(allow)
        self.refusal: str | None = None

    def _column_allowed(self, table: str, column: str) -> bool:
        columns = self.allow.get(table.lower(), frozenset())
        if table.lower() not in self.allow:
            return False
        return columns is None or not column or column.lower() in columns

    def _deny(self, reason: str) -> int:
        if self.refusal is None:
            self.refusal = reason
        return sqlite3.SQLITE_DENY

    def __call__(self, action: int, arg1: str | None, arg2: str | None, db_name: str | None, source: str | None) -> int:
        if action in _ALWAYS:
            return sqlite3.SQLITE_OK
        table = arg1 or ""
        if action == sqlite3.SQLITE_READ:
            if table.lower() in _SCHEMA_TABLES or table.lower().startswith("pragma_"):
                return sqlite3.SQLITE_OK  # names only; which pragma may run is decided under PRAGMA
            if self._column_allowed(table, arg2 or ""):
                return sqlite3.SQLITE_OK
            if table.lower() not in self.allow:
                return self._deny(f"table {table} is not in this profile's allow-list")
            return self._deny(f"column {table}.{arg2} is not in this profile's allow-list")
        if action == sqlite3.SQLITE_PRAGMA:
            target = arg2 or ""
            if table.lower() in _TABLE_PRAGMAS and target.lower() in self.allow:
                return sqlite3.SQLITE_OK
            return self._deny(f"PRAGMA {table} is not allowed under a table allow-list")
        if action == sqlite3.SQLITE_UPDATE:
            if table.lower() in _SCHEMA_TABLES:
                return sqlite3.SQLITE_OK  # how SQLite reports reading the schema for a pragma
            if self._column_allowed(table, arg2 or ""):
                return sqlite3.SQLITE_OK
            return self._deny(f"writing column {table}.{arg2} is not allowed by this profile's allow-list")
        if action in (sqlite3.SQLITE_INSERT, sqlite3.SQLITE_DELETE):
            if table.lower() in self.allow:
                return sqlite3.SQLITE_OK
            return self._deny(f"writing table {table} is not allowed by this profile's allow-list")
        what = _ACTION_NAMES.get(action, str(action)).replace("_", " ")
        return self._deny(f"{what} is not allowed under a table allow-list")

    def take(self, label: str) -> ConnectorError | None:
        """The refusal of the statement that just failed, as the connector's error (and forget it)."""
        reason, self.refusal = self.refusal, None
        if reason is None:
            return None
        return ConnectorError(f"{label}: {reason}", category=Category.PERMISSION, permanent=True)
