"""The SQL guard on its own: no database, no connector, no tool layer behind it.

tests/integrations/tools/test_database_tools.py shows that a bypass leaves the table untouched with every layer in
place; this file shows that the guard, alone, refuses each form it is there for and says why. A layer
is only a layer if it holds when the one below it is gone (issue 26: a guard whose ';' check was
removed still passed the end-to-end tests, because the database refused the stacked statement).
"""

from __future__ import annotations

import pytest

from integrations.tools.sql_guard import (
    MAX_SQL_LENGTH,
    READ_PRAGMAS,
    CheckedStatement,
    SQLRefused,
    check,
    kind_of,
)

ONE_STATEMENT = (
    "send exactly one SQL statement: ';' may only end the query (pass values that contain ';' as parameters)"
)


def refusal(sql: object, *, allow_writes: bool = False) -> str:
    with pytest.raises(SQLRefused) as caught:
        check(sql, allow_writes=allow_writes)  # type: ignore[arg-type]
    return str(caught.value)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1; DELETE FROM t",
        "COMMIT; DELETE FROM t",
        "select 1;\nCOMMIT;\nDELETE FROM t WHERE id > 0",
        "SELECT 1;SELECT 2",
        "SELECT ';'",  # a ';' inside a string is refused too: such values go in as parameters
        "SELECT 1 ; ; SELECT 2;",
    ],
)
def test_stacked_statements_are_refused_by_the_guard_itself(sql: str) -> None:
    assert refusal(sql) == ONE_STATEMENT
    # the same text on a writable integration: still one statement only
    assert refusal(sql, allow_writes=True) == ONE_STATEMENT


@pytest.mark.parametrize("sql", ["SELECT 1;", "SELECT 1 ;", "SELECT 1;;", "SELECT 1 ; ;\n", "  SELECT 1;  "])
def test_trailing_semicolons_end_the_one_statement_and_are_dropped(sql: str) -> None:
    assert check(sql) == CheckedStatement(sql="SELECT 1", verb="SELECT", writes=False)


def test_blank_text_says_empty() -> None:
    assert refusal("") == "the query is empty"
    assert refusal("  \n ") == "the query is empty"
    assert refusal(None) == "the query is empty"
    assert refusal(b"SELECT 1") == "the query is empty"


def test_only_semicolons_or_comments_hold_no_statement() -> None:
    assert refusal(";") == "send exactly one SQL statement"
    assert refusal("-- nothing here") == "send exactly one SQL statement"
    assert refusal("/* nothing */ /* here */") == "send exactly one SQL statement"
    assert kind_of("/* nothing */\n/* here */") == "read"


def test_a_statement_that_is_only_punctuation_is_empty() -> None:
    assert refusal("()") == "the query is empty"


def test_length_limit_is_exact() -> None:
    # one long string literal: few tokens, so only the length decides
    at_limit = "SELECT '" + "x" * (MAX_SQL_LENGTH - len("SELECT ''")) + "'"
    assert len(at_limit) == MAX_SQL_LENGTH
    assert check(at_limit).verb == "SELECT"
    over = at_limit + " "
    assert refusal(over) == f"the query is longer than {MAX_SQL_LENGTH} characters"
    assert MAX_SQL_LENGTH == 100_000


def test_a_query_too_complex_for_the_parser_is_refused_not_crashed() -> None:
    # 12 KB, under the length limit, but more tokens than sqlparse will group: a typed refusal
    message = refusal("SELECT " + "1," * 6000 + "1")
    assert message.startswith("the query is too complex to check")
    assert kind_of("SELECT " + "1," * 6000 + "1") == "read"


def test_nul_is_refused() -> None:
    assert refusal("SELECT 1\x00") == "the query contains a NUL character"


def test_mysql_executable_comments_are_refused() -> None:
    assert refusal("SELECT 1 /*!50000 , 2 */") == "MySQL executable comments (/*! ... */) are not allowed"


@pytest.mark.parametrize(
    ("sql", "verb"),
    [
        ("SELECT 1", "SELECT"),
        ("  select 1  ", "SELECT"),
        ("WITH x AS (SELECT 1) SELECT * FROM x", "WITH"),
        ("VALUES (1)", "VALUES"),
        ("SHOW TABLES", "SHOW"),
        ("DESCRIBE t", "DESCRIBE"),
        ("EXPLAIN SELECT 1", "EXPLAIN"),
        ("(SELECT 1) UNION (SELECT 2)", "SELECT"),
        ("/* a comment first */ SELECT 1", "SELECT"),
        ("-- a comment line\nSELECT 1", "SELECT"),
        ("PRAGMA table_info(t)", "PRAGMA"),
    ],
)
def test_reads_pass_with_their_verb(sql: str, verb: str) -> None:
    checked = check(sql)
    assert checked.verb == verb
    assert checked.writes is False
    assert checked.sql == sql.strip()


@pytest.mark.parametrize(
    "verb", ["INSERT INTO t VALUES (1)", "UPDATE t SET a = 1", "DELETE FROM t", "REPLACE INTO t VALUES (1)"]
)
def test_writes_are_refused_on_a_read_only_integration(verb: str) -> None:
    word = verb.split()[0]
    assert refusal(verb) == f"{word} is not allowed: this integration is read-only (query_database runs one SELECT)"


def test_read_only_is_the_default() -> None:
    with pytest.raises(SQLRefused, match="this integration is read-only"):
        check("DELETE FROM t")


@pytest.mark.parametrize(
    ("sql", "verb"),
    [
        ("INSERT INTO t VALUES (1)", "INSERT"),
        ("UPDATE t SET a = 1 WHERE id = 2", "UPDATE"),
        ("DELETE FROM t WHERE id = 2", "DELETE"),
        ("REPLACE INTO t VALUES (1)", "REPLACE"),
        ("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", "MERGE"),
    ],
)
def test_one_write_passes_when_writes_are_allowed(sql: str, verb: str) -> None:
    assert check(sql, allow_writes=True) == CheckedStatement(sql=sql, verb=verb, writes=True)


def test_other_verbs_are_refused_and_the_message_names_what_is_allowed() -> None:
    assert refusal("BEGIN") == (
        "BEGIN statements are not allowed; query_database runs one SELECT, WITH, VALUES, SHOW, DESCRIBE or EXPLAIN statement"
    )
    assert refusal("SET @a = 1", allow_writes=True) == (
        "SET statements are not allowed; query_database runs one SELECT, WITH, VALUES, SHOW, DESCRIBE or EXPLAIN "
        "statement or one INSERT, UPDATE or DELETE"
    )


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * INTO OUTFILE '/tmp/x' FROM t",
        "SELECT pg_read_file('/etc/passwd')",
        "SELECT 'DROP TABLE t'",  # inside a string: refused all the same
        "SELECT 1 -- then COPY",
        "SELECT nextval('s')",
        "select lo_import('/etc/passwd')",
        "SELECT * FROM t WHERE a IN (SELECT 1 INTO x)",
        "SELECT 'commit'",
    ],
)
def test_forbidden_words_are_refused_anywhere_in_a_read(sql: str) -> None:
    message = refusal(sql)
    assert message.endswith(
        "is not allowed in query_database (refused even inside a string or a comment: pass such values as parameters)"
    )
    assert message.split()[0].isupper()


def test_the_refused_word_is_named_in_upper_case() -> None:
    assert refusal("SELECT pg_read_file('x')").startswith("PG_READ_FILE is not allowed")
    assert refusal("SELECT a FROM t WHERE b = 'drop'").startswith("DROP is not allowed")


def test_a_write_may_hold_write_words_but_never_ddl_or_server_files() -> None:
    assert check("INSERT INTO t SELECT * FROM u", allow_writes=True).writes is True
    assert refusal("DELETE FROM t WHERE a = 'drop'", allow_writes=True).startswith("DROP is not allowed")
    assert refusal("INSERT INTO t SELECT pg_read_file('x')", allow_writes=True).startswith("PG_READ_FILE is not")
    # ...and a read may hold none of the write words, even as text
    assert refusal("SELECT 'insert'").startswith("INSERT is not allowed")
    assert refusal("SELECT 'into'").startswith("INTO is not allowed")


def test_identifiers_are_words_with_digits_underscores_and_dollars() -> None:
    # "drop_1" and "x$drop" are identifiers, not the word DROP
    assert check("SELECT drop_1, x$drop, _drop FROM t").verb == "SELECT"
    assert refusal("SELECT 1drop").startswith("DROP is not allowed")


@pytest.mark.parametrize("name", sorted(READ_PRAGMAS))
def test_every_reporting_pragma_passes(name: str) -> None:
    assert check(f"PRAGMA {name}").verb == "PRAGMA"


@pytest.mark.parametrize(
    "sql",
    [
        "PRAGMA main.table_info(t)",
        "pragma TABLE_INFO('t')",
        'PRAGMA index_list( "t" ) ;',
        "PRAGMA table_info (t)",
    ],
)
def test_reporting_pragmas_with_schema_argument_or_case(sql: str) -> None:
    assert check(sql).verb == "PRAGMA"


@pytest.mark.parametrize(
    "sql",
    [
        "PRAGMA writable_schema = 1",
        "PRAGMA journal_mode=WAL",
        "PRAGMA user_version = 5",
        "PRAGMA query_only(0)",
        "PRAGMA table_info(t) x",
        "PRAGMA table_info(t, u)",
    ],
)
def test_other_pragmas_are_refused(sql: str) -> None:
    assert refusal(sql) == "only reporting PRAGMAs (table_info, index_list, ...) without '=' are allowed"


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("SELECT 1", "read"),
        ("select 1;", "read"),
        ("  DELETE FROM t;  ", "write"),
        ("INSERT INTO t VALUES (1)", "write"),
        ("update t set a = 1", "write"),
        ("MERGE INTO t USING s ON 1 = 1 WHEN MATCHED THEN DELETE", "write"),
        ("REPLACE INTO t VALUES (1)", "write"),
        ("DROP TABLE t", "read"),  # not a write verb: check() refuses it; kind_of only classifies
        ("SELECT 1; DELETE FROM t", "read"),  # two statements: not classified as one write
        ("DELETE FROM t; X", "read"),  # a trailing word is a second statement too
        ("DELETE FROM t;;", "write"),  # trailing ';'s only end the one statement
        ("DELETE FROM t; ;", "write"),
        ("DELETE FROM t; -- done", "write"),  # a trailing comment does not hide the write
        ("", "read"),
    ],
)
def test_kind_of_classifies_without_refusing(sql: str, kind: str) -> None:
    assert kind_of(sql) == kind
