"""HRIS data policy: the field catalog, the record scope, and BambooHR under both against the sandbox,
whose request log shows which fields were asked for."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from connectors.datapolicy.hris_fields import (
    BAMBOOHR_EMPLOYEES,
    EMPLOYEES,
    TIME_OFF,
    FieldAccess,
    FieldClass,
    select_fields,
)
from connectors.datapolicy.hris_scope import RecordScope, reporting_tree
from connectors.errors import Category, ConnectorError
from connectors.hris import Employee
from connectors.http.bamboohr import BambooHRConnector
from connectors.http.bamboohr_policy import PolicedBambooHR
from sandbox.bamboohr import BambooHRSandbox
from tests.sandbox.bamboohr_fixtures import API_KEY

Make = Callable[..., BambooHRConnector]
SECRET_FIELDS = ("compensation", "payRate", "dateOfBirth", "ssn", "homeEmail", "mobilePhone", "address1")
PUBLIC_INTERNAL = FieldAccess.build(["public", "internal"])


def _asked(server: BambooHRSandbox) -> str:
    """Everything the API was asked, as one text: query strings and bodies."""
    return " ".join(f"{e.query} {e.body.decode()}" for e in server.request_log)


# --- the catalog -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("firstName", "public"),
        ("workEmail", "public"),
        ("supervisorEId", "public"),
        ("hireDate", "internal"),
        ("workPhone", "internal"),
        ("payRate", "restricted"),
        ("dateOfBirth", "restricted"),
        ("ssn", "restricted"),
        ("homeEmail", "restricted"),
        ("mobilePhone", "restricted"),
        ("address1", "restricted"),
        ("ethnicity", "special"),
        ("customShirtSize", "restricted"),  # a company's own field, not classed: restricted
        ("19", "restricted"),  # a numeric field id (BambooHR's for date of birth): unknown, restricted
    ],
)
def test_bamboohr_defaults(name: str, cls: str) -> None:
    assert BAMBOOHR_EMPLOYEES.class_of(name) == FieldClass(cls)


def test_unified_shapes_are_classed() -> None:
    assert EMPLOYEES.class_of("email") is FieldClass.PUBLIC
    assert EMPLOYEES.class_of("hire_date") is FieldClass.INTERNAL
    assert TIME_OFF.class_of("notes") is FieldClass.SPECIAL
    assert EMPLOYEES.unknown(["email", "salary"]) == ["salary"]
    assert set(Employee.__dataclass_fields__) - {"raw"} <= set(EMPLOYEES.classes)


def test_operator_classes_custom_fields_and_bad_classes_are_named() -> None:
    catalog = BAMBOOHR_EMPLOYEES.with_classes({"customShirtSize": "public"})
    assert catalog.class_of("customShirtSize") is FieldClass.PUBLIC
    assert BAMBOOHR_EMPLOYEES.class_of("customShirtSize") is FieldClass.RESTRICTED  # the default is untouched
    with pytest.raises(ValueError, match="'secret'"):
        BAMBOOHR_EMPLOYEES.with_classes({"x": "secret"})
    with pytest.raises(ValueError, match="'topsecret'"):
        FieldAccess.build(["public", "topsecret"])


def test_select_fields_requests_only_what_is_allowed() -> None:
    access = FieldAccess.build(["public"], ["hireDate"])
    chosen = select_fields(
        BAMBOOHR_EMPLOYEES, access, ["firstName", "payRate", "hireDate", "status", "ssn", "firstName"]
    )
    assert chosen.request == ("firstName", "hireDate")
    assert chosen.withheld == ("payRate", "ssn", "status")
    scoped = select_fields(BAMBOOHR_EMPLOYEES, access, ["firstName"], scope_fields=["department", "status"])
    assert scoped.request == ("firstName", "department", "status") and scoped.strip == ("department", "status")
    with pytest.raises(ValueError, match="dateOfBirth"):
        select_fields(BAMBOOHR_EMPLOYEES, access, ["firstName"], scope_fields=["dateOfBirth"])


# --- the record scope ------------------------------------------------------------------------------
def _emp(eid: str, **values: Any) -> Employee:
    base: dict[str, Any] = {"department": "Sales", "division": "EMEA", "location": "London, UK", "status": "active"}
    return Employee(id=eid, **{**base, **values})


def test_scope_rules_and_their_words() -> None:
    scope = RecordScope.build(departments=["sales"], active_only=True)
    assert scope.allows(_emp("1"))
    assert "department" in (scope.violation(_emp("2", department="Finance")) or "")
    assert scope.violation(_emp("3", status="inactive")) == "only active employees"
    assert scope.keep([_emp("1"), _emp("2", department="Finance")]) == [_emp("1")]
    by_place = RecordScope.build(divisions=["APAC"], locations=["Sydney, Australia"])
    assert not by_place.allows(_emp("4")) and by_place.allows(_emp("5", division="APAC", location="Sydney, Australia"))
    assert RecordScope().unrestricted and RecordScope().keep([_emp("9")]) == [_emp("9")]


def test_reports_of_a_manager_direct_and_indirect() -> None:
    people = [_emp("1"), _emp("2", manager_id="1"), _emp("3", manager_id="2"), _emp("4", manager_id="9")]
    direct = RecordScope.build(reports_of=["1"])
    assert [e.id for e in direct.keep(people)] == ["2"]
    tree = reporting_tree(["1"], people)
    assert tree == {"2", "3"}
    indirect = RecordScope.build(reports_of=["1"], indirect=True)
    assert [e.id for e in indirect.keep(people, team=tree)] == ["2", "3"]
    assert indirect.employee_ids(tree) == ["2", "3"]
    with pytest.raises(ValueError):
        indirect.allows(people[0])


def test_writes_outside_the_scope_or_moving_out_of_it_are_refused() -> None:
    scope = RecordScope.build(departments=["Sales"], active_only=True)
    scope.check_write(_emp("1"), {"jobTitle": "Account Executive"})
    with pytest.raises(ConnectorError) as outside:
        scope.check_write(_emp("2", department="Finance"), {"jobTitle": "x"})
    assert outside.value.category is Category.PERMISSION and "department" in outside.value.message
    for change in ({"department": "Finance"}, {"status": "Inactive"}):
        with pytest.raises(ConnectorError, match="move employee 1 out"):
            scope.check_write(_emp("1"), change)


# --- BambooHR under the policy, against the sandbox --------------------------------------------------
def test_restricted_fields_are_never_requested(make_bamboohr: Make, bamboohr_server: BambooHRSandbox) -> None:
    guard = PolicedBambooHR(make_bamboohr(), PUBLIC_INTERNAL)
    wanted = ["firstName", "lastName", "department", *SECRET_FIELDS]
    listing = guard.list_employees(fields=wanted)
    one = guard.get_employee(5, wanted)
    report = guard.run_custom_report(wanted)
    asked = _asked(bamboohr_server)
    assert bamboohr_server.requests == 3
    for name in SECRET_FIELDS:
        assert name not in asked, f"{name} was asked for"
        assert name in listing.withheld and name in one.withheld and name in report.withheld
    assert "firstName" in asked
    assert listing.data and all(set(r) <= {"id", "firstName", "lastName", "department"} for r in listing.data)
    assert set(one.data) == {"id", "firstName", "lastName", "department"}
    # The same call without a policy does ask for them: the log would show a leak.
    make_bamboohr().get_employee(5, ["firstName", "dateOfBirth"])
    assert "dateOfBirth" in _asked(bamboohr_server)


def test_request_log_over_the_control_api(make_bamboohr: Make, bamboohr_server: BambooHRSandbox) -> None:
    PolicedBambooHR(make_bamboohr(), PUBLIC_INTERNAL).get_employee(3, ["firstName", "ssn", "dateOfBirth"])
    entries = httpx.get(bamboohr_server.root_url + "/__sandbox__/requests", auth=(API_KEY, "x")).json()
    assert [e["path"] for e in entries] == ["/api/v1/employees/3"]
    assert entries[0]["query"] == "fields=firstName" and "Authorization" not in str(entries[0])


def test_unified_reads_report_withheld_fields_in_unified_names(make_bamboohr: Make) -> None:
    guard = PolicedBambooHR(make_bamboohr(), FieldAccess.build(["public"]))
    result = guard.list_employees(unified=True)
    assert result.withheld == ["employee_number", "hire_date", "status", "termination_date"]
    assert result.data and "hire_date" not in result.data[0] and result.data[0]["department"]
    with pytest.raises(ConnectorError) as info:
        guard.list_employees({"status": "active"})
    assert info.value.category is Category.PERMISSION and "status" in info.value.message


def test_directory_and_saved_reports_are_refused_under_a_policy(
    make_bamboohr: Make, bamboohr_server: BambooHRSandbox
) -> None:
    guard = PolicedBambooHR(make_bamboohr(), PUBLIC_INTERNAL)
    for call in (guard.get_directory, lambda: guard.get_report(1)):
        with pytest.raises(ConnectorError) as info:
            call()
        assert info.value.category is Category.PERMISSION
    assert bamboohr_server.requests == 0


def test_department_scope_reads_and_writes_only_that_department(
    make_bamboohr: Make, bamboohr_server: BambooHRSandbox
) -> None:
    connector = make_bamboohr()
    scope = RecordScope.build(departments=["Engineering"], active_only=True)
    guard = PolicedBambooHR(connector, FieldAccess.build(["public"]), scope)
    result = guard.list_employees(fields=["firstName", "lastName"])
    everyone = connector.list_employees()
    engineers = {e["id"] for e in everyone if e["department"] == "Engineering" and e["status"] == "Active"}
    assert {r["id"] for r in result.data} == engineers and result.out_of_scope == len(everyone) - len(engineers)
    assert all(set(r) == {"id", "firstName", "lastName"} for r in result.data)  # scope fields dropped
    assert "status" not in result.withheld  # read for the scope, not asked by the caller
    outsider = next(e for e in everyone if e["department"] != "Engineering")
    with pytest.raises(ConnectorError) as read:
        guard.get_employee(outsider["id"], ["firstName"])
    assert read.value.category is Category.PERMISSION and "department" in read.value.message
    insider = sorted(engineers, key=int)[0]
    guard.update_employee(insider, {"jobTitle": "QA Analyst"})
    assert bamboohr_server.company.employees[int(insider)]["jobTitle"] == "QA Analyst"
    posts_before = sum(1 for e in bamboohr_server.request_log if e.method == "POST" and "/employees/" in e.path)
    for target, change in ((outsider["id"], {"jobTitle": "QA Analyst"}), (insider, {"department": "Sales"})):
        with pytest.raises(ConnectorError) as write:
            guard.update_employee(target, change)
        assert write.value.category is Category.PERMISSION
    posts_after = sum(1 for e in bamboohr_server.request_log if e.method == "POST" and "/employees/" in e.path)
    assert posts_after == posts_before  # nothing was written
    assert bamboohr_server.company.employees[int(insider)]["department"] == "Engineering"
    with pytest.raises(ConnectorError, match="hireDate"):
        guard.update_employee(insider, {"hireDate": dt.datetime.now(dt.UTC).date().isoformat()})


def test_reports_of_a_manager_against_the_sandbox(make_bamboohr: Make, bamboohr_server: BambooHRSandbox) -> None:
    connector = make_bamboohr()
    everyone = connector.list_employees(unified=True)
    tree = reporting_tree(["2"], everyone)
    guard = PolicedBambooHR(
        connector, FieldAccess.build(["public"]), RecordScope.build(reports_of=["2"], indirect=True)
    )
    result = guard.list_employees(fields=["firstName"])
    assert tree and {r["id"] for r in result.data} == set(tree)
    # BambooHR filtered on the ids itself: the report body names them.
    assert any('"employeeIds"' in e.body.decode() for e in bamboohr_server.request_log)
