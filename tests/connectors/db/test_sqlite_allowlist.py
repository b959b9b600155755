"""SQLite's authorizer enforces a table/column allow-list: a column outside it is refused however the
query reaches it (view, CTE, alias, SELECT *, subquery, function), and allowed columns work."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors import Runtime, build
from connectors.db.base import DatabaseConnector
from connectors.db.sqlite_authorizer import normalise
from connectors.errors import Category, ConfigError, ConnectorError
from tests.connectors.policies import local

ALLOW: dict[str, Any] = {
    "employees": ["id", "name", "department"],
    "public_staff": ["id", "name"],  # a view over allowed columns
    "departments": "*",
}
Make = Callable[..., DatabaseConnector]


@pytest.fixture
def make_db(tmp_path: Path) -> Iterator[Make]:
    path = tmp_path / "hr.sqlite3"
    admin = sqlite3.connect(path, isolation_level=None)
    admin.executescript(
        """
        CREATE TABLE employees (id INTEGER PRIMARY KEY, name TEXT, department TEXT, salary INTEGER, ssn TEXT);
        CREATE TABLE departments (name TEXT PRIMARY KEY, floor INTEGER);
        CREATE TABLE payroll (employee_id INTEGER, iban TEXT);
        CREATE VIEW public_staff AS SELECT id, name FROM employees;
        CREATE VIEW pay AS SELECT id, name, salary FROM employees;
        INSERT INTO employees VALUES (1, 'Ann', 'Sales', 90000, '536-22-8751'), (2, 'Bo', 'Ops', 70000, '536-22-8752');
        INSERT INTO departments VALUES ('Sales', 2), ('Ops', 3);
        INSERT INTO payroll VALUES (1, 'DE89370400440532013000');
        """
    )
    admin.close()
    made: list[DatabaseConnector] = []

    def make(allow: dict[str, Any] | None = ALLOW, **config: Any) -> DatabaseConnector:
        settings = {"path": str(path), "read_only": False, "allowed_columns": allow, **config}
        db = build("sqlite", settings, runtime=Runtime(key=f"allow-{len(made)}", policy=local(tmp_path)))
        made.append(db)
        return db

    yield make
    for db in made:
        db.disconnect()


def _refused(db: DatabaseConnector, sql: str) -> ConnectorError:
    with pytest.raises(ConnectorError) as info:
        db.query(sql)
    assert info.value.category is Category.PERMISSION, info.value
    return info.value


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("SELECT salary FROM employees", "employees.salary"),
        ("SELECT * FROM employees", "employees.salary"),
        ("SELECT e.salary AS s FROM employees AS e", "employees.salary"),
        ("WITH x AS (SELECT salary AS s FROM employees) SELECT s FROM x", "employees.salary"),
        ("SELECT name FROM pay", "employees.salary"),  # a view outside the list, over an outside column
        ("SELECT id FROM (SELECT id, ssn FROM employees) WHERE ssn LIKE '5%'", "employees.ssn"),
        ("SELECT max(length(ssn)) FROM employees", "employees.ssn"),
        ("SELECT name FROM employees ORDER BY salary", "employees.salary"),
        ("SELECT name FROM employees WHERE salary > 80000", "employees.salary"),
        ("SELECT count(*) FROM payroll", "table payroll"),
        ("SELECT d.floor, e.salary FROM departments d JOIN employees e ON e.department = d.name", "employees.salary"),
    ],
)
def test_a_column_outside_the_list_is_refused_and_named(make_db: Make, sql: str, named: str) -> None:
    assert named in _refused(make_db(), sql).message


def test_a_view_over_an_outside_column_is_refused_even_when_the_view_is_listed(make_db: Make) -> None:
    db = make_db({**ALLOW, "pay": "*"})  # the view is listed, the base column it reads is not
    assert "employees.salary" in _refused(db, "SELECT salary FROM pay").message
    # SQLite reports every base column a view reads, whichever view column is asked for: a view
    # that reads an outside column is closed as a whole.
    assert "employees.salary" in _refused(db, "SELECT name FROM pay").message
    listed = make_db({**ALLOW, "pay": "*", "employees": "*"})
    assert listed.query("SELECT salary FROM pay ORDER BY id") == [{"salary": 90000}, {"salary": 70000}]


def test_allowed_columns_work_through_the_same_forms(make_db: Make) -> None:
    db = make_db()
    assert db.query("SELECT id, name, department FROM employees ORDER BY id")[0] == {
        "id": 1,
        "name": "Ann",
        "department": "Sales",
    }
    assert db.query("SELECT * FROM public_staff ORDER BY id") == [{"id": 1, "name": "Ann"}, {"id": 2, "name": "Bo"}]
    assert db.query("WITH x AS (SELECT name AS n FROM employees) SELECT count(*) AS c FROM x") == [{"c": 2}]
    assert db.query("SELECT e.name AS who, d.floor FROM employees e JOIN departments d ON d.name = e.department")
    assert db.query("SELECT count(*) AS c FROM employees") == [{"c": 2}]
    assert "employees" in db.list_tables() and [c["name"] for c in db.describe_table("employees")][:2] == ["id", "name"]


def test_writes_and_schema_changes_follow_the_list(make_db: Make) -> None:
    db = make_db()
    assert db.execute("UPDATE employees SET department = 'Ops' WHERE id = 1") == 1
    for sql, named in (
        ("UPDATE employees SET salary = 1", "employees.salary"),
        ("INSERT INTO payroll VALUES (2, 'x')", "payroll"),
        ("CREATE VIEW leak AS SELECT salary FROM employees", "not allowed"),
        ("ATTACH DATABASE ':memory:' AS other", "ATTACH"),
        ("PRAGMA writable_schema = 1", "PRAGMA"),
    ):
        with pytest.raises(ConnectorError) as info:
            db.execute(sql)
        assert info.value.category is Category.PERMISSION and named in info.value.message, info.value


def test_without_a_list_nothing_changes(make_db: Make) -> None:
    assert make_db(None).query("SELECT salary FROM employees WHERE id = 2") == [{"salary": 70000}]


@pytest.mark.parametrize("bad", [{"employees": "id"}, {"": "*"}, {"employees": [1]}])
def test_a_bad_list_is_a_config_error(make_db: Make, bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as info:
        make_db(bad)
    assert "allowed_columns" in str(info.value.errors) or "allowed_columns" in info.value.message


def test_each_refusal_says_exactly_what_the_list_does_not_allow(make_db: Make) -> None:
    # Issue 26: the agent reads these words; the connector adds only the engine's name.
    db = make_db()
    for sql, reason in (
        ("SELECT salary FROM employees", "column employees.salary is not in this profile's allow-list"),
        ("SELECT count(*) FROM payroll", "table payroll is not in this profile's allow-list"),
        ("PRAGMA table_info(payroll)", "PRAGMA table_info is not allowed under a table allow-list"),
    ):
        error = _refused(db, sql)
        assert error.message == f"SQLite: {reason}" and error.permanent, sql
    for sql, reason in (
        (
            "UPDATE employees SET salary = 1",
            "writing column employees.salary is not allowed by this profile's allow-list",
        ),
        ("DELETE FROM payroll", "writing table payroll is not allowed by this profile's allow-list"),
        ("ATTACH DATABASE ':memory:' AS other", "ATTACH is not allowed under a table allow-list"),
    ):
        with pytest.raises(ConnectorError) as info:
            db.execute(sql)
        assert info.value.message == f"SQLite: {reason}", sql
    # The refusal is forgotten once reported: the next statement that is allowed runs.
    assert db.query("SELECT name FROM employees WHERE id = 1") == [{"name": "Ann"}]


def test_names_are_compared_case_insensitively_and_listed_tables_take_writes(make_db: Make) -> None:
    db = make_db({"Employees": ["ID", "Name"], "DEPARTMENTS": "*"})
    assert db.query("SELECT id, NAME FROM EMPLOYEES WHERE Id = 2") == [{"id": 2, "name": "Bo"}]
    assert "salary" in _refused(db, "SELECT Salary FROM employees").message.lower()
    assert db.execute("INSERT INTO departments VALUES ('Legal', 4)") == 1
    assert db.execute("DELETE FROM Departments WHERE name = 'Legal'") == 1
    assert db.execute("UPDATE employees SET name = 'Ann' WHERE id = 1") == 1
    assert [c["name"] for c in db.describe_table("departments")] == ["name", "floor"]
    assert db.query("SELECT count(*) AS n FROM sqlite_schema WHERE name = 'payroll'") == [{"n": 1}]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"employees": "id"}, "columns of 'employees' must be a list of names or \"*\""),
        ({"employees": [1]}, "columns of 'employees' must be a list of names or \"*\""),
        ({"employees": 7}, "columns of 'employees' must be a list of names or \"*\""),
        ({"": "*"}, "table names must be non-empty strings"),
    ],
)
def test_the_authorizer_itself_refuses_a_malformed_list(bad: dict[str, Any], reason: str) -> None:
    # The config schema checks the list first; the authorizer, also built from an agent profile's
    # list, does not rely on it (issue 26).
    with pytest.raises(ValueError) as info:
        normalise(bad)
    assert str(info.value) == reason


def test_a_schema_change_is_refused_by_its_name(make_db: Make) -> None:
    with pytest.raises(ConnectorError) as info:
        make_db().execute("ALTER TABLE departments ADD COLUMN x INTEGER")
    assert info.value.message == "SQLite: ALTER TABLE is not allowed under a table allow-list"
