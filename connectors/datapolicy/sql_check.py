"""A second layer for SQL allow-lists, on every engine: parse the statement with sqlglot for the
engine's dialect and name the table or column outside the list, before it is sent.

The engine's own enforcement comes first (SQLite's authorizer, a PostgreSQL or MariaDB role whose
privileges match the list); this check gives the agent a refusal that names what it may not read
and stops what a role would have allowed by mistake.

How a column is traced to its table: sqlglot's ``qualify`` resolves aliases, normalises
identifiers the dialect's way (PostgreSQL folds unquoted names to lower case) and, when the schema
of a table is known, expands ``*`` and ``t.*`` into its columns and attaches every unqualified
column to its table. Then each scope (the outer query, each CTE, each subquery, each side of a
UNION) is walked: a column of a base table is checked against the list; a column of a CTE or derived
table is a projection of that inner query, which is checked in its own scope. What cannot be traced
is refused rather than guessed:
- ``*`` over a table whose columns are not in the schema, unless the list allows that table's ``*``;
- an unqualified column with several possible tables and no schema, unless every one allows it.

The list maps ``table`` or ``schema.table`` to a list of columns or ``"*"``. A bare name means the
table in ``default_schema`` (or an unqualified reference when none is given). Names are compared
after the dialect's normalisation, case-insensitively for SQLite and MySQL/MariaDB.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import OptimizeError, ParseError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, traverse_scope

from connectors.errors import Category, ConnectorError

AllowList = Mapping[str, Sequence[str] | Literal["*"]]
SchemaColumns = Mapping[str, Sequence[str]]  # table or schema.table -> its column names

# Our dialect names -> sqlglot's.
DIALECTS = {"sqlite": "sqlite", "postgresql": "postgres", "postgres": "postgres", "mysql": "mysql", "mariadb": "mysql"}


@dataclass
class SqlCheck:
    """What a SELECT reads: ``tables`` and ``columns`` (``table.column``), and the ``refusals``."""

    tables: set[str] = field(default_factory=set)
    columns: set[str] = field(default_factory=set)
    refusals: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return not self.refusals


class _Rules:
    def __init__(self, allow: AllowList, dialect: str, default_schema: str | None) -> None:
        self.fold = dialect in ("sqlite", "mysql")
        self.default_schema = self._name(default_schema) if default_schema else None
        self.allow: dict[tuple[str | None, str], frozenset[str] | None] = {}
        for key, columns in allow.items():
            db, _, name = key.rpartition(".")
            ident = (self._name(db) if db else self.default_schema, self._name(name))
            self.allow[ident] = None if columns == "*" else frozenset(self._name(c) for c in columns)

    def _name(self, name: str) -> str:
        return name.lower() if self.fold else name

    def ident(self, table: exp.Table) -> tuple[str | None, str]:
        db = table.text("db")
        if table.text("catalog"):
            db = f"{table.text('catalog')}.{db}"
        return (self._name(db) if db else self.default_schema, self._name(table.name))

    @staticmethod
    def label(ident: tuple[str | None, str]) -> str:
        return f"{ident[0]}.{ident[1]}" if ident[0] else ident[1]

    def columns_of(self, ident: tuple[str | None, str]) -> frozenset[str] | None | Literal[False]:
        """The allowed columns, None for all, False when the table is not listed."""
        return self.allow.get(ident, False)


def _schema(schema: SchemaColumns | None, dialect: str) -> dict[str, object] | None:
    if not schema:
        return None
    nested: dict[str, object] = {}
    for key, columns in schema.items():
        parts = key.split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})  # type: ignore[assignment]
        node[parts[-1]] = dict.fromkeys(columns, "text")
    return nested


def _parse(sql: str, dialect: str) -> exp.Query:
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except ParseError as exc:
        raise ConnectorError(
            f"SQL could not be parsed: {str(exc).splitlines()[0]}", category=Category.INVALID
        ) from None
    if len(statements) != 1:
        raise ConnectorError("one statement at a time", category=Category.PERMISSION, permanent=True)
    statement = statements[0]
    if not isinstance(statement, exp.Query):
        raise ConnectorError(
            f"only a SELECT can be checked against a table allow-list, not {statement.key.upper()}",
            category=Category.PERMISSION,
            permanent=True,
        )
    return statement


def _base_tables(scope: Scope) -> dict[str, exp.Table]:
    return {alias: source for alias, source in scope.sources.items() if isinstance(source, exp.Table)}


def _columns(scope: Scope) -> list[exp.Column]:
    """Every column this scope reads. ``Scope.columns`` leaves out unqualified columns under HAVING
    (they might name an output alias); here only an ORDER BY that names an output is left out, so
    ``HAVING max(salary) > 1`` is checked."""
    found: dict[int, exp.Column] = {id(c): c for c in scope.columns}
    node = scope.expression
    if isinstance(node, exp.Select):
        outputs = set(node.named_selects)
        for column in node.find_all(exp.Column):
            if column.find_ancestor(exp.Select) is not node or id(column) in found:
                continue
            in_order = column.find_ancestor(exp.Order, exp.Select)
            if not column.table and isinstance(in_order, exp.Order) and column.name in outputs:
                continue
            found[id(column)] = column
    return list(found.values())


def _key(mapping: Mapping[str, Sequence[str] | str] | None) -> tuple[tuple[str, str | tuple[str, ...]], ...]:
    if not mapping:
        return ()
    return tuple(sorted((k, v if isinstance(v, str) else tuple(v)) for k, v in mapping.items()))


def inspect_select(
    sql: str,
    allow: AllowList,
    *,
    dialect: str,
    schema: SchemaColumns | None = None,
    default_schema: str | None = None,
) -> SqlCheck:
    """What ``sql`` reads and what of it the allow-list refuses (nothing raised for refusals).

    Parsing and resolving cost about a millisecond of pure Python, several times a small query's
    own time, so answers are kept (LRU) per statement, dialect, list and schema: an agent that runs
    the same statement again, with other parameters, pays for the check once."""
    tables, columns, refusals = _inspect(sql, DIALECTS.get(dialect, dialect), _key(allow), _key(schema), default_schema)
    return SqlCheck(set(tables), set(columns), list(refusals))


@functools.lru_cache(maxsize=4096)
def _inspect(
    sql: str,
    dialect: str,
    allow_key: tuple[tuple[str, str | tuple[str, ...]], ...],
    schema_key: tuple[tuple[str, str | tuple[str, ...]], ...],
    default_schema: str | None,
) -> tuple[frozenset[str], frozenset[str], tuple[str, ...]]:
    allow: dict[str, Any] = dict(allow_key)
    schema: dict[str, Any] | None = dict(schema_key) or None
    rules = _Rules(allow, dialect, default_schema)
    tree = _parse(sql, dialect)
    try:
        tree = qualify(
            tree,
            dialect=dialect,
            schema=_schema(schema, dialect),
            validate_qualify_columns=False,
            quote_identifiers=False,
            identify=False,
        )
    except OptimizeError as exc:
        raise ConnectorError(f"SQL could not be resolved: {exc}", category=Category.INVALID) from None
    check = SqlCheck()

    def refuse(reason: str) -> None:
        if reason not in check.refusals:
            check.refusals.append(reason)

    def read(ident: tuple[str | None, str], column: str) -> None:
        label, column = rules.label(ident), rules._name(column)
        check.columns.add(f"{label}.{column}")
        allowed = rules.columns_of(ident)
        if allowed is False:
            refuse(f"table {label} is not in the allow-list")
        elif allowed is not None and rules._name(column) not in allowed:
            refuse(f"column {label}.{column} is not in the allow-list")

    for scope in traverse_scope(tree):
        bases = _base_tables(scope)
        for table in bases.values():
            ident = rules.ident(table)
            check.tables.add(rules.label(ident))
            if rules.columns_of(ident) is False:
                refuse(f"table {rules.label(ident)} is not in the allow-list")
        for column in _columns(scope):
            if isinstance(column.this, exp.Star):
                continue
            if column.table:
                source = bases.get(column.table)
                if source is not None:
                    read(rules.ident(source), column.name)
                continue  # a CTE's or subquery's column: checked inside it
            if not scope.sources:
                continue  # an output alias (ORDER BY total) or a literal-only query
            for source in bases.values():  # no schema to say which table: every candidate must allow it
                read(rules.ident(source), column.name)
        selects = scope.expression.selects if isinstance(scope.expression, exp.Select) else []
        for projection in selects:
            star: exp.Expression | None = projection if isinstance(projection, exp.Star) else None
            if isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
                star = projection
            if star is None:
                continue
            qualifier = star.table if isinstance(star, exp.Column) else ""
            sources: Iterable[exp.Table] = (
                [bases[qualifier]] if qualifier in bases else [] if qualifier else bases.values()
            )
            for source in sources:
                ident = rules.ident(source)
                if rules.columns_of(ident) not in (None, False):
                    refuse(f"SELECT * over {rules.label(ident)} needs its columns listed (its schema is unknown)")
    return frozenset(check.tables), frozenset(check.columns), tuple(check.refusals)


def check_select(
    sql: str,
    allow: AllowList,
    *,
    dialect: str,
    schema: SchemaColumns | None = None,
    default_schema: str | None = None,
) -> SqlCheck:
    """``inspect_select``, raising a permission ``ConnectorError`` that names every refused table and
    column when the statement reads outside ``allow``."""
    check = inspect_select(sql, allow, dialect=dialect, schema=schema, default_schema=default_schema)
    if check.refusals:
        raise ConnectorError("SQL refused: " + "; ".join(check.refusals), category=Category.PERMISSION, permanent=True)
    return check
