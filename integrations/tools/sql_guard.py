"""The parsing half of query_database's safety: exactly one statement, and no data-modifying form.

The other half is the database itself: with ``read_only`` on, the connectors run every query in a
read-only transaction (SQLite: a read-only connection) with a statement timeout, so even a statement
this guard misjudged cannot write. The guard exists for what a read-only transaction does NOT stop:
a stacked ``COMMIT; DELETE ...`` that ends the transaction (the bypass of the reference MCP PostgreSQL
server), ``COPY ... TO PROGRAM`` and ``SELECT ... INTO OUTFILE`` (server-side files and programs),
``ATTACH DATABASE``, writing PRAGMAs.

Why it is conservative: sqlparse and the engines disagree on some lexical corners (PostgreSQL's
nested comments and ``'\\'`` strings, MySQL's ``/*! ... */`` executable comments and ``--`` without a
space). So the decisive checks run on the raw text, not on sqlparse's tokens: a ``;`` anywhere but at
the very end refuses, and so does a forbidden word anywhere, even inside a string or a comment. The
price is that values containing ``;`` or such words must be passed as parameters, which agents should
do anyway.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import sqlparse
from sqlparse import tokens as T
from sqlparse.exceptions import SQLParseError

MAX_SQL_LENGTH = 100_000

# Statement verbs that only read.
READ_VERBS = {"SELECT", "WITH", "VALUES", "TABLE", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "PRAGMA"}
# Verbs an integration with ``read_only: false`` may also run (one statement at a time, still).
WRITE_VERBS = {"INSERT", "UPDATE", "DELETE", "REPLACE", "MERGE"}

# Words refused anywhere in a read, even where sqlparse sees a string or a comment. Statement verbs
# (BEGIN, SET, CALL...) are refused by the verb check; these are what can sit INSIDE one statement and
# write, reach server files or programs, or open another connection that the read-only transaction
# does not cover. Common column names (start, end, comment, set) are deliberately not here.
_WRITE_WORDS = {"INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "INTO"}
_ALWAYS_FORBIDDEN = {
    "CREATE",
    "ALTER",
    "DROP",
    "TRUNCATE",
    "GRANT",
    "REVOKE",
    "COMMIT",
    "ROLLBACK",
    "SAVEPOINT",
    "COPY",
    "PROGRAM",
    "OUTFILE",
    "DUMPFILE",
    "INFILE",
    "ATTACH",
    "DETACH",
    "LOAD_FILE",
    "LO_IMPORT",
    "LO_EXPORT",
    "LO_UNLINK",
    "LO_CREATE",
    "LO_PUT",
    "LO_FROM_BYTEA",
    "PG_READ_FILE",
    "PG_READ_BINARY_FILE",
    "PG_LS_DIR",
    "PG_STAT_FILE",
    "PG_FILE_WRITE",
    "DBLINK",
    "DBLINK_EXEC",
    "DBLINK_CONNECT",
    "DBLINK_SEND_QUERY",
    "SET_CONFIG",
    "PG_TERMINATE_BACKEND",
    "PG_CANCEL_BACKEND",
    "PG_RELOAD_CONF",
    "PG_ROTATE_LOGFILE",
    "PG_ADVISORY_LOCK",
    "PG_ADVISORY_XACT_LOCK",
    "NEXTVAL",
    "SETVAL",
    "PG_NOTIFY",
    "SYS_EXEC",
    "SYS_EVAL",
    "WRITEFILE",
    "READFILE",
    "LOAD_EXTENSION",
    "FTS3_TOKENIZER",
}
# SQLite pragmas that only report; any other pragma, or any pragma with "=", is refused.
READ_PRAGMAS = {
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "database_list",
    "collation_list",
    "compile_options",
    "function_list",
    "module_list",
    "pragma_list",
    "user_version",
    "schema_version",
    "application_id",
    "encoding",
    "page_count",
    "page_size",
    "freelist_count",
    "data_version",
    "foreign_keys",
}

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_PRAGMA = re.compile(r"^\s*PRAGMA\s+(?:[A-Za-z_]\w*\.)?([A-Za-z_]\w*)\s*(\(\s*[A-Za-z_0-9'\"]*\s*\))?\s*;?\s*$", re.I)


class SQLRefused(ValueError):
    """The statement is not one the guard lets through; the message says why and what to do."""


@dataclass(frozen=True)
class CheckedStatement:
    sql: str  # the statement without a trailing semicolon
    verb: str  # SELECT, WITH, INSERT, ...
    writes: bool


def _verb(sql: str) -> str:
    try:
        parsed = sqlparse.parse(sql)
    except SQLParseError as exc:  # sqlparse's own limits (tokens, nesting) against crafted input
        raise SQLRefused(f"the query is too complex to check ({exc}); split it or pass values as parameters") from None
    statements = [s for s in parsed if s.token_first(skip_cm=True, skip_ws=True) is not None]
    if len(statements) != 1:
        raise SQLRefused("send exactly one SQL statement")
    for token in statements[0].flatten():
        if token.is_whitespace or token.ttype in T.Comment or token.ttype is T.Punctuation:
            continue  # a statement may open with "(" as in "(SELECT 1) UNION (SELECT 2)"
        return token.value.upper()
    raise SQLRefused("the query is empty")


def check(sql: str, *, allow_writes: bool = False) -> CheckedStatement:
    """Return the one statement ``sql`` holds, or raise SQLRefused.

    ``allow_writes``: the integration's config sets ``read_only`` to false and the caller may write;
    then one INSERT/UPDATE/DELETE/REPLACE/MERGE is accepted too (never DDL, COPY, ATTACH...).
    """
    if not isinstance(sql, str) or not sql.strip():
        raise SQLRefused("the query is empty")
    if len(sql) > MAX_SQL_LENGTH:
        raise SQLRefused(f"the query is longer than {MAX_SQL_LENGTH} characters")
    if "\x00" in sql:
        raise SQLRefused("the query contains a NUL character")
    text = sql.strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    if ";" in text:
        raise SQLRefused(
            "send exactly one SQL statement: ';' may only end the query (pass values that contain ';' as parameters)"
        )
    if "/*!" in text:
        raise SQLRefused("MySQL executable comments (/*! ... */) are not allowed")

    verb = _verb(text)
    writes = verb in WRITE_VERBS
    if writes and not allow_writes:
        raise SQLRefused(f"{verb} is not allowed: this integration is read-only (query_database runs one SELECT)")
    if verb not in READ_VERBS and not writes:
        raise SQLRefused(
            f"{verb} statements are not allowed; query_database runs one SELECT, WITH, VALUES, SHOW, "
            "DESCRIBE or EXPLAIN statement" + (" or one INSERT, UPDATE or DELETE" if allow_writes else "")
        )
    if verb == "PRAGMA":
        match = _PRAGMA.match(text)
        if not match or match.group(1).lower() not in READ_PRAGMAS:
            raise SQLRefused("only reporting PRAGMAs (table_info, index_list, ...) without '=' are allowed")

    # A write statement (allowed) naturally holds INSERT/INTO/UPDATE...; a read may hold none of them.
    forbidden = _ALWAYS_FORBIDDEN if writes else _ALWAYS_FORBIDDEN | _WRITE_WORDS
    for word in _WORD.findall(text):
        upper = word.upper()
        if upper in forbidden:
            raise SQLRefused(
                f"{upper} is not allowed in query_database (refused even inside a string or a comment: "
                "pass such values as parameters)"
            )
    return CheckedStatement(sql=text, verb=verb, writes=writes)


def kind_of(sql: str) -> Literal["read", "write"]:
    """Classify without refusing (for audit and scope checks before the full check)."""
    try:
        verb = _verb(sql.strip().rstrip(";"))
    except SQLRefused:
        return "read"
    return "write" if verb in WRITE_VERBS else "read"
