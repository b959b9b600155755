"""What a database role can read, asked of the server, and what of it lies beyond an allow-list.

For PostgreSQL and MariaDB the allow-list is enforced by the server: the operator names a role (or
user) per agent profile whose privileges match the list. The hub checks that claim at save time and
at every health check by asking the server, as that role, what it can read:

- PostgreSQL: every column of every table, view, materialized view and foreign table outside the
  system schemas for which ``has_column_privilege(..., 'SELECT')`` is true (table-level SELECT,
  column-level SELECT, ownership, membership in a role that has them, superuser and
  ``pg_read_all_data`` all count) in a schema where ``has_schema_privilege(..., 'USAGE')`` holds.
- MariaDB / MySQL: the grants of the current user and its enabled roles, from
  ``information_schema`` — ``USER_PRIVILEGES`` (global SELECT: everything), ``SCHEMA_PRIVILEGES``
  (a whole database), ``TABLE_PRIVILEGES`` and ``COLUMN_PRIVILEGES`` — expanded into columns with
  ``information_schema.COLUMNS``; ``SHOW GRANTS`` is kept for the operator's eyes.

``beyond(readable, allow)`` gives the (table, column) pairs the role can read but the list does not
allow; an empty answer means the role is no wider than the list. Allow-lists have the shape of
``connectors.datapolicy.sql_check``: ``{"table" | "schema.table": [columns] | "*"}``, a bare table
name meaning the connection's default schema (``public``; MariaDB: the configured database).

A helper module, not a method of ``DatabaseConnector``: two engines use it (STYLE.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from connectors.db.base import CallScope, DatabaseConnector, QueryResult
from connectors.errors import Category, ConnectorError

AllowList = Mapping[str, Sequence[str] | Literal["*"]]
Column = tuple[str, str, str]  # (schema, table, column)

_PG_READABLE = """
SELECT n.nspname AS table_schema, c.relname AS table_name, a.attname AS column_name
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
  AND n.nspname NOT LIKE 'pg\\_temp\\_%'
  AND has_schema_privilege(n.oid, 'USAGE')
  AND has_column_privilege(c.oid, a.attnum, 'SELECT')
ORDER BY 1, 2, a.attnum
"""

# The grantees whose privileges this session has: the user and the roles enabled for it.
_MY_GRANTEES = """
SELECT CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')
  AS grantee
UNION SELECT CONCAT('''', ROLE_NAME, '''') FROM information_schema.ENABLED_ROLES
"""
_MY_SYSTEM_SCHEMAS = ("information_schema", "performance_schema")

# SHOW GRANTS lines: "GRANT SELECT, SELECT (`a`, `b`) ON `db`.`t` TO ..." (role membership lines
# have no ON). information_schema's *_PRIVILEGES tables show a user without admin rights only the
# grants made to the user itself, not those of its enabled role; SHOW GRANTS shows both.
_GRANT_LINE = re.compile(
    r"^GRANT (?P<privs>.+?) ON (?P<object>(?:`(?:[^`]|``)*`|\*|[^\s.]+)\.(?:`(?:[^`]|``)*`|\*|[^\s]+)) TO "
)
_PRIV = re.compile(r"\s*(?P<name>[A-Z ]+?)\s*(?:\((?P<columns>[^)]*)\))?\s*(?:,|$)")


def _unquote(name: str) -> str:
    return name[1:-1].replace("``", "`") if name.startswith("`") and name.endswith("`") else name


def _split_object(text: str) -> tuple[str, str]:
    match = re.match(r"^(`(?:[^`]|``)*`|\*|[^.]+)\.(.+)$", text)
    if match is None:
        return text, "*"
    return _unquote(match.group(1)), _unquote(match.group(2))


def grants_from_show(
    lines: Iterable[str],
) -> tuple[bool, set[str], set[tuple[str, str]], set[tuple[str, str, str]]]:
    """(everything, schemas, tables, columns) readable per SHOW GRANTS (SELECT or ALL PRIVILEGES)."""
    everything = False
    schemas: set[str] = set()
    tables: set[tuple[str, str]] = set()
    columns: set[tuple[str, str, str]] = set()
    for line in lines:
        match = _GRANT_LINE.match(line)
        if match is None or match.group("privs").startswith("PROXY"):
            continue
        schema, table = _split_object(match.group("object"))
        for priv in _PRIV.finditer(match.group("privs")):
            name = priv.group("name").strip()
            if name not in ("SELECT", "ALL PRIVILEGES", "ALL"):
                continue
            if priv.group("columns"):
                for column in priv.group("columns").split(","):
                    columns.add((schema, table, _unquote(column.strip())))
            elif schema == "*":
                everything = True
            elif table == "*":
                schemas.add(schema)
            else:
                tables.add((schema, table))
    return everything, schemas, tables, columns


@dataclass
class Privileges:
    """What a role can read (``columns``), how the server put it (``grants``: PostgreSQL's role
    name, MariaDB's SHOW GRANTS lines), and the default schema bare table names refer to."""

    role: str
    default_schema: str
    columns: list[Column] = field(default_factory=list)
    grants: list[str] = field(default_factory=list)


class _Reads(Protocol):
    @property
    def kind(self) -> str: ...

    @property
    def label(self) -> str: ...

    def fetch(
        self, sql: str, params: Mapping[str, Any] | None = None, *, max_rows: int | None = None
    ) -> QueryResult: ...

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]: ...


class _AsRole:
    """``db`` with every read run as ``role`` (``CallScope``): what the agent's queries would see."""

    def __init__(self, db: DatabaseConnector, role: str) -> None:
        self.db, self.kind, self.label = db, db.kind, db.label
        self.scope = CallScope(role=role)

    def fetch(self, sql: str, params: Mapping[str, Any] | None = None, *, max_rows: int | None = None) -> QueryResult:
        return self.db.fetch(sql, params, max_rows=max_rows, scope=self.scope)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return self.fetch(sql, params).rows


def _postgres(db: _Reads) -> Privileges:
    who = db.query("SELECT current_user AS role, current_schema() AS schema")[0]
    rows = db.fetch(_PG_READABLE, max_rows=100_000).rows
    columns = [(r["table_schema"], r["table_name"], r["column_name"]) for r in rows]
    return Privileges(str(who["role"]), str(who["schema"] or "public"), columns)


def _mysql(db: _Reads) -> Privileges:
    who = db.query("SELECT CURRENT_USER() AS role, DATABASE() AS db")[0]
    grantees = [str(r["grantee"]) for r in db.query(_MY_GRANTEES)]
    marks = ", ".join(f":g{i}" for i in range(len(grantees)))
    params = {f"g{i}": g for i, g in enumerate(grantees)}
    select = f"WHERE GRANTEE IN ({marks}) AND PRIVILEGE_TYPE = 'SELECT'"
    everything = bool(db.query(f"SELECT 1 AS x FROM information_schema.USER_PRIVILEGES {select}", params))
    schemas = {
        str(r["s"])
        for r in db.query(f"SELECT TABLE_SCHEMA AS s FROM information_schema.SCHEMA_PRIVILEGES {select}", params)
    }
    tables = {
        (str(r["s"]), str(r["t"]))
        for r in db.query(
            f"SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t FROM information_schema.TABLE_PRIVILEGES {select}", params
        )
    }
    granted_columns = {
        (str(r["s"]), str(r["t"]), str(r["c"]))
        for r in db.query(
            "SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t, COLUMN_NAME AS c "
            f"FROM information_schema.COLUMN_PRIVILEGES {select}",
            params,
        )
    }
    visible = db.fetch(
        "SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t, COLUMN_NAME AS c FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA NOT IN ('information_schema', 'performance_schema') "
        "ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION",
        max_rows=100_000,
    ).rows
    grants = [str(next(iter(r.values()))) for r in db.query("SHOW GRANTS")]
    shown_all, shown_schemas, shown_tables, shown_columns = grants_from_show(grants)
    everything = everything or shown_all
    schemas |= shown_schemas
    tables |= shown_tables
    granted_columns |= shown_columns
    columns: list[Column] = []
    for row in visible:
        key = (str(row["s"]), str(row["t"]), str(row["c"]))
        if everything or key[0] in schemas or key[:2] in tables or key in granted_columns:
            columns.append(key)
    return Privileges(str(who["role"]), str(who["db"] or ""), columns, grants)


# kind -> how to read that engine's privileges (the family's dispatch table, as in the registry).
READERS: dict[str, Callable[[_Reads], Privileges]] = {"postgresql": _postgres, "mysql": _mysql}


def readable(db: DatabaseConnector, role: str | None = None) -> Privileges:
    """What ``db``'s role (or ``role``, set for the reads as the tools set it for an agent's
    queries) can read, asked of the server."""
    reader = READERS.get(db.kind)
    if reader is None:
        raise ConnectorError(
            f"{db.label}: privileges cannot be read from this engine (use its own allow-list enforcement)",
            category=Category.CONFIG,
            permanent=True,
        )
    return reader(_AsRole(db, role) if role else db)


def beyond(privileges: Privileges, allow: AllowList, *, fold_case: bool = False) -> list[tuple[str, str]]:
    """(``schema.table``, column) pairs the role can read that ``allow`` does not allow."""

    def norm(name: str) -> str:
        return name.lower() if fold_case else name

    allowed: dict[tuple[str, str], frozenset[str] | None] = {}
    for key, columns in allow.items():
        schema, _, table = key.rpartition(".")
        ident = (norm(schema or privileges.default_schema), norm(table))
        allowed[ident] = None if columns == "*" else frozenset(norm(c) for c in columns)
    extra: list[tuple[str, str]] = []
    for schema, table, column in privileges.columns:
        ident = (norm(schema), norm(table))
        if ident not in allowed:
            extra.append((f"{schema}.{table}", column))
            continue
        permitted = allowed[ident]
        if permitted is not None and norm(column) not in permitted:
            extra.append((f"{schema}.{table}", column))
    return extra


def check_role(db: DatabaseConnector, allow: AllowList, role: str | None = None) -> Privileges:
    """Read ``db``'s privileges (as ``role`` when given) and refuse (a permission error saying what
    it can read beyond the list) when the role is wider than ``allow``."""
    privileges = readable(db, role)
    extra = beyond(privileges, allow, fold_case=db.kind == "mysql")
    if extra:
        raise ConnectorError(
            f"{db.label}: role {privileges.role} can read beyond the allow-list: {summarise(extra)}",
            category=Category.PERMISSION,
            permanent=True,
        )
    return privileges


def summarise(pairs: Iterable[tuple[str, str]], limit: int = 20) -> str:
    """``table (a, b), other (c)``, the first ``limit`` tables."""
    by_table: dict[str, list[str]] = {}
    for table, column in pairs:
        by_table.setdefault(table, []).append(column)
    shown = [f"{t} ({', '.join(cols)})" for t, cols in list(by_table.items())[:limit]]
    more = len(by_table) - limit
    return ", ".join(shown) + (f" and {more} more tables" if more > 0 else "")


def as_report(privileges: Privileges, allow: AllowList, *, fold_case: bool = False) -> dict[str, Any]:
    """JSON-ready, for a health check or the admin: what the role reads, and what is too much."""
    extra = beyond(privileges, allow, fold_case=fold_case)
    return {
        "role": privileges.role,
        "readable_columns": len(privileges.columns),
        "beyond_allow_list": [{"table": t, "column": c} for t, c in extra],
        "grants": privileges.grants,
    }
