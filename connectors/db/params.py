"""Named parameters (``:name`` with a dict) on every engine, turned into each driver's own style.

A small tokenizer finds the placeholders outside string literals, quoted identifiers, comments and
PostgreSQL dollar quotes and casts (``a::int``), so ``':x'`` in a literal stays text. The values
never enter the SQL text: the driver binds them. Conversions are cached per statement text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from connectors.errors import Category, ConnectorError

Style = Literal["pyformat", "named"]  # pyformat: %s with a tuple (psycopg, MySQLdb); named: :name (sqlite3)
Dialect = Literal["postgresql", "mysql", "sqlite"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


@dataclass(frozen=True)
class Converted:
    sql: str
    names: tuple[str, ...]  # in the order the driver expects the values (pyformat), or the set used
    unchanged: bool = False  # no placeholder and nothing escaped: the text is the caller's own


def _skip_quoted(sql: str, i: int, quote: str, backslash: bool) -> int:
    """Index just past the literal that opens at ``i`` (doubled quotes escape; maybe backslashes)."""
    n = len(sql)
    i += 1
    while i < n:
        ch = sql[i]
        if backslash and ch == "\\":
            i += 2
            continue
        if ch == quote:
            if i + 1 < n and sql[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    return n  # unterminated: the database reports the syntax error


@lru_cache(maxsize=1024)
def convert(sql: str, dialect: Dialect, style: Style) -> Converted:
    out: list[str] = []
    names: list[str] = []
    n = len(sql)
    i = start = 0
    # Literal % must be doubled for drivers that format with %.
    escape_percent = style == "pyformat"
    while i < n:
        ch = sql[i]
        nxt = sql[i + 1] if i + 1 < n else ""
        if ch == "'":
            backslash = dialect == "mysql" or (dialect == "postgresql" and i > 0 and sql[i - 1] in "eE")
            i = _skip_quoted(sql, i, "'", backslash)
        elif ch == '"':
            i = _skip_quoted(sql, i, '"', dialect == "mysql")
        elif ch == "`" and dialect != "postgresql":
            i = _skip_quoted(sql, i, "`", False)
        elif ch == "[" and dialect == "sqlite":
            end = sql.find("]", i)
            i = n if end < 0 else end + 1
        elif (ch == "-" and nxt == "-") or (ch == "#" and dialect == "mysql"):  # a line comment
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif ch == "/" and nxt == "*":
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif ch == "$" and dialect == "postgresql" and (match := _DOLLAR_TAG.match(sql, i)):
            tag = match.group(0)
            end = sql.find(tag, match.end())
            i = n if end < 0 else end + len(tag)
        elif ch == ":" and nxt == ":":
            i += 2  # a PostgreSQL cast, not a parameter
        elif ch == ":" and (match := _NAME.match(sql, i + 1)) and not (i > 0 and sql[i - 1] == ":"):
            out.append(sql[start:i].replace("%", "%%") if escape_percent else sql[start:i])
            name = match.group(0)
            names.append(name)
            out.append("%s" if style == "pyformat" else f":{name}")
            i = start = match.end()
            continue
        else:
            i += 1
        # Skipped literals and comments stay in the segment copied at the next placeholder or the end.
    tail = sql[start:]
    out.append(tail.replace("%", "%%") if escape_percent else tail)
    text = "".join(out)
    return Converted(text, tuple(names), unchanged=text == sql)


def bind(
    sql: str, params: Mapping[str, Any] | None, dialect: Dialect, style: Style
) -> tuple[str, tuple[Any, ...] | dict[str, Any] | None]:
    """SQL in the driver's style and the values to pass with it; bad params are ``invalid``."""
    converted = convert(sql, dialect, style)
    if params is None and converted.unchanged:
        # No parameters at all (the common health-check and catalog case): the driver is told so,
        # which spares it parsing the statement for placeholders.
        return converted.sql, (None if style == "pyformat" else {})
    if params is not None and not isinstance(params, Mapping):
        raise ConnectorError(
            "parameters must be a mapping of names to values (use :name in the SQL)", category=Category.INVALID
        )
    given = dict(params or {})
    missing = sorted({name for name in converted.names if name not in given})
    if missing:
        raise ConnectorError(
            f"missing value for parameter(s): {', '.join(':' + m for m in missing)}", category=Category.INVALID
        )
    unused = sorted(set(given) - set(converted.names))
    if unused:
        raise ConnectorError(f"parameter(s) not used in the SQL: {', '.join(unused)}", category=Category.INVALID)
    if style == "pyformat":
        return converted.sql, tuple(given[name] for name in converted.names)
    return converted.sql, given
