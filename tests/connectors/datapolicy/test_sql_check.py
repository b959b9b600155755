"""The sqlglot second layer names the table or column a SELECT reads outside the allow-list, through
the forms that hide a column: aliases, CTEs, subqueries, joins, quoting, schemas, functions, stars."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.datapolicy.sql_check import check_select, inspect_select
from connectors.errors import Category, ConnectorError

ALLOW: dict[str, Any] = {"employees": ["id", "name", "department"], "departments": "*", "hr.payroll": ["employee_id"]}
SCHEMA = {"employees": ["id", "name", "department", "salary", "ssn"], "departments": ["name", "floor"]}


@pytest.mark.parametrize("schema", [None, SCHEMA], ids=["no-schema", "schema"])
@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("SELECT e.salary AS s FROM employees AS e", "employees.salary"),
        ("WITH x AS (SELECT salary AS s FROM employees) SELECT s FROM x", "employees.salary"),
        ("WITH a AS (SELECT * FROM employees), b AS (SELECT ssn FROM a) SELECT * FROM b", "employees"),
        ("SELECT name FROM (SELECT name, ssn FROM employees) t WHERE t.ssn LIKE '5%'", "employees.ssn"),
        ("SELECT id FROM employees WHERE salary > 1000", "employees.salary"),
        ("SELECT upper(name), sum(salary) OVER () FROM employees", "employees.salary"),
        ("SELECT CAST(substr(ssn, 1, 3) AS INT) FROM employees", "employees.ssn"),
        ('SELECT "salary" FROM "employees"', "employees.salary"),
        ("SELECT d.floor, e.salary FROM departments d JOIN employees e ON e.department = d.name", "employees.salary"),
        ("SELECT iban FROM hr.payroll", "hr.payroll.iban"),
        ("SELECT employee_id FROM other.payroll", "table other.payroll"),
        ("SELECT id FROM employees WHERE EXISTS (SELECT 1 FROM secrets s WHERE s.id = employees.id)", "table secrets"),
        ("SELECT id FROM employees UNION SELECT salary FROM employees", "employees.salary"),
        ("SELECT name FROM employees ORDER BY salary", "employees.salary"),
        ("SELECT department, count(*) FROM employees GROUP BY department HAVING max(salary) > 1", "employees.salary"),
    ],
)
def test_outside_reads_are_named(sql: str, named: str, schema: Any) -> None:
    with pytest.raises(ConnectorError) as info:
        check_select(sql, ALLOW, dialect="postgresql", schema=schema)
    assert info.value.category is Category.PERMISSION and named in info.value.message, info.value.message


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT e.name AS who, d.floor FROM employees e JOIN departments d ON d.name = e.department",
        "WITH x AS (SELECT name AS n FROM employees) SELECT upper(n) FROM x ORDER BY 1",
        "SELECT count(*) FROM employees",
        "SELECT name AS n FROM employees ORDER BY n",
        "SELECT * FROM departments",
        "SELECT employee_id FROM hr.payroll",
        "SELECT id FROM employees UNION SELECT floor FROM departments",
    ],
)
def test_allowed_reads_pass(sql: str) -> None:
    check = check_select(sql, ALLOW, dialect="postgresql", schema=SCHEMA)
    assert check.tables and check.allowed


def test_quoted_identifiers_follow_the_dialect() -> None:
    # PostgreSQL: unquoted names fold to lower case, a quoted "Name" is another column.
    assert check_select("SELECT NAME FROM EMPLOYEES", ALLOW, dialect="postgresql").allowed
    with pytest.raises(ConnectorError, match="employees.Name"):
        check_select('SELECT "Name" FROM employees', ALLOW, dialect="postgresql")
    # SQLite and MySQL compare names case-insensitively; MySQL quotes with backticks.
    assert check_select('SELECT "NAME" FROM Employees', ALLOW, dialect="sqlite").allowed
    with pytest.raises(ConnectorError, match="employees.salary"):
        check_select("SELECT `Salary` FROM `employees`", ALLOW, dialect="mariadb")


def test_star_needs_a_schema_unless_the_whole_table_is_allowed() -> None:
    with pytest.raises(ConnectorError, match=r"SELECT \* over employees"):
        check_select("SELECT * FROM employees", ALLOW, dialect="sqlite")
    with pytest.raises(ConnectorError, match="employees.ssn"):
        check_select("SELECT e.* FROM employees e", ALLOW, dialect="sqlite", schema=SCHEMA)
    narrow = {"employees": ["id", "name", "department", "salary", "ssn"]}
    assert check_select("SELECT * FROM employees", narrow, dialect="sqlite", schema=SCHEMA).allowed
    assert check_select("SELECT * FROM departments", ALLOW, dialect="sqlite").allowed


def test_default_schema_and_every_refusal_named_at_once() -> None:
    allow = {"employees": ["id"]}
    assert check_select("SELECT id FROM test.employees", allow, dialect="mysql", default_schema="test").allowed
    check = inspect_select("SELECT salary, ssn FROM employees", allow, dialect="mysql")
    assert check.refusals == [
        "column employees.salary is not in the allow-list",
        "column employees.ssn is not in the allow-list",
    ]


@pytest.mark.parametrize(
    ("sql", "category"),
    [
        ("DELETE FROM employees", Category.PERMISSION),
        ("SELECT 1; SELECT salary FROM employees", Category.PERMISSION),
        ("SELEC name FROM", Category.INVALID),
    ],
)
def test_what_is_not_one_select_is_refused(sql: str, category: Category) -> None:
    with pytest.raises(ConnectorError) as info:
        check_select(sql, ALLOW, dialect="postgresql")
    assert info.value.category is category


def test_a_repeated_statement_is_answered_alike_and_a_changed_list_is_asked_again() -> None:
    sql = "SELECT name, salary FROM employees"
    first = inspect_select(sql, ALLOW, dialect="sqlite")
    first.refusals.clear()  # a caller's change does not reach the kept answer
    assert inspect_select(sql, ALLOW, dialect="sqlite").refusals == ["column employees.salary is not in the allow-list"]
    wider = {**ALLOW, "employees": ["name", "salary"]}
    assert inspect_select(sql, wider, dialect="sqlite").allowed
