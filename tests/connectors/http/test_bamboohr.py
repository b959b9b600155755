"""BambooHRConnector against the bundled sandbox over real HTTP on loopback: every operation, the
unified shapes, BambooHR's quirks, and the errors a user can cause."""

from __future__ import annotations

import base64
import datetime as dt
import traceback
from collections.abc import Callable

import pytest

from connectors import registry
from connectors.errors import Category, ConfigError, ConnectorError
from connectors.hris import Employee, ReportFile, TimeOffRequest
from connectors.http.bamboohr import BambooHRConfig, BambooHRConnector
from sandbox.bamboohr import BambooHRSandbox
from tests.sandbox.bamboohr_fixtures import fast_runtime

Make = Callable[..., BambooHRConnector]
TODAY = dt.datetime.now(dt.UTC).date()  # the sandbox's calendar is UTC


def _window(days: int = 130) -> dict[str, dt.date]:
    return {"start": TODAY - dt.timedelta(days=days), "end": TODAY + dt.timedelta(days=days)}


# --- configuration ---------------------------------------------------------------------------------
def test_default_base_url_is_the_spec_form() -> None:
    config = registry.validate_config("bamboohr", {"subdomain": "Acme"})
    assert isinstance(config, BambooHRConfig)
    assert config.base_url == "https://acme.bamboohr.com/api/v1/"


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"subdomain": "acme", "base_url": "http://acme.example.com/api/v1/"}, "base_url"),
        ({"subdomain": "acme", "base_url": "http://127.0.0.1:9/api/v1/"}, "base_url"),  # loopback, not allowed
        ({"subdomain": "acme corp"}, "subdomain"),
        ({"subdomain": "acme", "timeout_seconds": 0}, "timeout_seconds"),
        ({"subdomain": "acme", "colour": "blue"}, "colour"),
    ],
)
def test_bad_config_is_a_field_error(config: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        registry.validate_config("bamboohr", config)
    assert any(name == field or name.startswith(field) or name == "config" for name in info.value.errors)
    assert field in str(info.value) or "base_url" in str(info.value)


def test_http_loopback_allowed_only_when_asked() -> None:
    config = registry.validate_config(
        "bamboohr", {"subdomain": "acme", "base_url": "http://127.0.0.1:9/api/v1", "allow_insecure_loopback": True}
    )
    assert config.base_url == "http://127.0.0.1:9/api/v1/"  # type: ignore[attr-defined]


def test_describe_lists_secret_fields_without_values() -> None:
    info = registry.describe("bamboohr")
    assert info["family"] == "hris" and info["auth_types"] == ["api_key", "oauth2"]
    fields = {f["name"]: f for f in info["credential_fields"]}
    assert fields["api_key"]["secret"] and fields["api_key"]["required_for"] == ["api_key"]
    assert fields["client_secret"]["required_for"] == ["oauth2"]
    registry.validate_credentials("bamboohr", "api_key", {"api_key": "k"})
    with pytest.raises(ConfigError):
        registry.validate_credentials("bamboohr", "api_key", {})


# --- the operation list ----------------------------------------------------------------------------
def test_test_connection(make_bamboohr: Make) -> None:
    result = make_bamboohr().test_connection()
    assert result.ok, result.message
    assert result.details["fields"] > 10


def test_list_employees_returns_everyone_active_and_inactive(
    make_bamboohr: Make, bamboohr_server: BambooHRSandbox
) -> None:
    employees = make_bamboohr().list_employees()
    assert len(employees) == len(bamboohr_server.company.employees)
    statuses = {e["status"] for e in employees}
    assert statuses == {"Active", "Inactive"}
    first = employees[0]
    assert isinstance(first["id"], str) and first["id"].isdigit()
    assert first["firstName"] and first["workEmail"]


def test_list_employees_filters_client_side(make_bamboohr: Make) -> None:
    connector = make_bamboohr()
    everyone = connector.list_employees()
    engineering_active = connector.list_employees({"status": "active", "department": "engineering"})
    expected = [e for e in everyone if e["status"] == "Active" and e["department"] == "Engineering"]
    assert engineering_active == expected and expected
    managed_by_1 = connector.list_employees({"manager_id": 1})
    assert managed_by_1 and all(e["supervisorEId"] == "1" for e in managed_by_1)
    name = everyone[5]["lastName"]
    assert all(name.lower() in (e["lastName"] or "").lower() for e in connector.list_employees({"search": name}))
    assert len(connector.list_employees({"limit": 3})) == 3
    assert [e["id"] for e in connector.list_employees({"employee_ids": [2, "3"]})] == ["2", "3"]


def test_list_employees_bad_filters_are_invalid(make_bamboohr: Make, bamboohr_server: BambooHRSandbox) -> None:
    connector = make_bamboohr()
    with pytest.raises(ConnectorError) as info:
        connector.list_employees({"departmnet": "Sales"})
    assert info.value.category == Category.INVALID and "departmnet" in info.value.message
    # Agents send JSON: wrong types are clear errors too, not exceptions from deep inside.
    for filters in ({"limit": "many"}, {"changed_since": 12}, {"employee_ids": ["x"]}):
        with pytest.raises(ConnectorError) as info:
            connector.list_employees(filters)
        assert info.value.category == Category.INVALID
    with pytest.raises(ConnectorError) as info:
        connector.changed_employees("last tuesday")
    assert info.value.category == Category.INVALID and "since" in info.value.message  # BambooHR's own words


def test_list_employees_unified(make_bamboohr: Make) -> None:
    employees = make_bamboohr().list_employees({"status": "inactive"}, unified=True)
    assert employees and all(isinstance(e, Employee) for e in employees)
    leaver = employees[0]
    assert leaver.status == "inactive" and isinstance(leaver.termination_date, dt.date)
    assert leaver.raw is None
    assert leaver.as_dict()["hire_date"] == leaver.hire_date.isoformat()  # type: ignore[union-attr]


def test_zero_dates_become_none(make_bamboohr: Make) -> None:
    connector = make_bamboohr()
    active = connector.list_employees({"status": "active"})
    # The sandbox sends "0000-00-00" for a date it does not have, as BambooHR does.
    assert all(e["terminationDate"] is None for e in active)
    record = connector.get_employee(active[0]["id"], ["terminationDate", "originalHireDate", "hireDate"])
    assert record["terminationDate"] is None and record["hireDate"]
    employee = connector.get_employee(active[0]["id"], unified=True)
    assert employee.termination_date is None and isinstance(employee.hire_date, dt.date)


def test_get_employee_fields_and_ids_as_numbers_or_strings(make_bamboohr: Make) -> None:
    connector = make_bamboohr()
    by_int = connector.get_employee(3, ["firstName", "customShirtSize", "12"])  # 12: jobTitle's numeric id
    by_str = connector.get_employee("3", "firstName,customShirtSize,12")
    assert by_int == by_str
    assert set(by_int) == {"id", "firstName", "customShirtSize", "jobTitle"} and by_int["id"] == "3"


def test_get_employee_unified_with_raw(make_bamboohr: Make) -> None:
    employee = make_bamboohr().get_employee(5, unified=True, include_raw=True)
    assert isinstance(employee, Employee) and employee.id == "5"
    assert employee.raw is not None and employee.raw["id"] == "5"
    assert employee.email == employee.raw["workEmail"] and employee.manager_id == employee.raw["supervisorEId"]
    assert employee.as_dict()["raw"]["firstName"] == employee.first_name


def test_get_employee_zero_is_the_keys_own_employee(make_bamboohr: Make) -> None:
    assert make_bamboohr().get_employee(0)["id"] == "1"


def test_create_then_listed_then_updated(make_bamboohr: Make) -> None:
    connector = make_bamboohr()
    new_id = connector.create_employee(
        {
            "firstName": "Ada",
            "lastName": "Lovelace",
            "workEmail": "ada.lovelace@new.example.com",
            "department": "Engineering",
        }
    )
    assert new_id.isdigit()
    listed = connector.list_employees({"email": "ada.lovelace@new.example.com"}, unified=True)
    assert [e.id for e in listed] == [new_id] and listed[0].status == "active"
    connector.update_employee(new_id, {"jobTitle": "Software Engineer", "hireDate": TODAY.isoformat()})
    employee = connector.get_employee(new_id, unified=True)
    assert employee.job_title == "Software Engineer" and employee.hire_date == TODAY
    changes = connector.changed_employees(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
    assert new_id in [c["id"] for c in changes["changes"]] and changes["latest"]
    recent = connector.list_employees({"changed_since": dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)})
    assert new_id in [e["id"] for e in recent] and len(recent) < len(connector.list_employees()) / 2


def test_create_employee_through_the_legacy_gateway_path(make_bamboohr: Make, bamboohr_server: BambooHRSandbox) -> None:
    connector = make_bamboohr(base_url=bamboohr_server.gateway_url)
    new_id = connector.create_employee({"firstName": "Grace", "lastName": "Hopper"})
    assert connector.get_employee(new_id)["lastName"] == "Hopper"


def test_changed_employees_accepts_dates_and_filters_type(make_bamboohr: Make) -> None:
    connector = make_bamboohr()
    everything = connector.changed_employees(dt.date(2000, 1, 1))
    assert len(everything["changes"]) >= 60
    assert {c["action"] for c in everything["changes"]} <= {"inserted", "updated", "deleted"}
    inserted = connector.changed_employees("2000-01-01T00:00:00Z", type="inserted")
    assert all(c["action"] == "inserted" for c in inserted["changes"])


def test_time_off_lifecycle(make_bamboohr: Make) -> None:
    connector = make_bamboohr()
    types = connector.list_time_off_types()
    vacation = next(t for t in types if t["name"] == "Vacation")
    start = TODAY + dt.timedelta(days=200)
    created = connector.create_time_off_request(
        4,
        {"start": start, "end": start + dt.timedelta(days=1), "type_id": vacation["id"], "notes": "Trip"},
        unified=True,
    )
    assert isinstance(created, TimeOffRequest)
    assert created.status == "requested" and created.employee_id == "4" and created.type == "Vacation"
    assert created.start == start and created.unit == "days" and created.notes == {"employee": "Trip"}

    window = {"start": start, "end": start}
    listed = connector.list_time_off_requests({**window, "employee_id": 4}, unified=True)
    assert [r.id for r in listed] == [created.id]

    approved = connector.approve_time_off_request(created.id, note="Enjoy")
    assert approved["status"]["status"] == "approved"
    assert connector.list_time_off_requests({**window, "status": "approved", "employee_id": "4"})[0]["id"] == created.id
    cancelled = connector.cancel_time_off_request(created.id)
    assert cancelled["status"]["status"] == "canceled"
    assert connector.list_time_off_requests({**window, "status": ["cancelled"]}, unified=True)[0].status == "cancelled"

    other = connector.create_time_off_request(4, {"start": start, "end": start, "timeOffTypeId": str(vacation["id"])})
    denied = connector.deny_time_off_request(other["id"], "Team offsite")
    assert denied["status"]["status"] == "denied" and denied["notes"]["manager"] == "Team offsite"


def test_list_time_off_filters(make_bamboohr: Make) -> None:
    connector = make_bamboohr()
    everything = connector.list_time_off_requests(_window())
    assert everything
    sick = connector.list_time_off_requests({**_window(), "type": 79})
    assert sick == [r for r in everything if r["type"]["id"] in (79, "79")]
    approved = connector.list_time_off_requests({**_window(), "status": "approved"}, unified=True)
    assert approved and {r.status for r in approved} == {"approved"}
    assert all(isinstance(r.amount, float) and r.start and r.end for r in approved)


def test_time_off_numbers_as_strings_are_accepted(make_bamboohr: Make) -> None:
    # BambooHR's docs samples send ids and amounts as strings where the spec says numbers.
    with BambooHRSandbox(api_key="k" * 40, employees=30, seed=3, time_off_numbers_as_strings=True) as server:
        connector = make_bamboohr(server)
        raw = connector.list_time_off_requests(_window())
        assert raw and isinstance(raw[0]["amount"]["amount"], str)
        unified = connector.list_time_off_requests(_window(), unified=True)
        assert [r.id for r in unified] == [r["id"] for r in raw]
        assert all(isinstance(r.amount, float) and r.type_id and r.type_id.isdigit() for r in unified)


def test_reports(make_bamboohr: Make, bamboohr_server: BambooHRSandbox) -> None:
    connector = make_bamboohr()
    report = connector.get_report(1)
    assert isinstance(report, dict) and report["title"] == "Employee list"
    assert {f["id"] for f in report["fields"]} >= {"firstName", "department"}
    assert len(report["employees"]) >= len(bamboohr_server.company.employees) - 5  # duplicates filtered

    csv_file = connector.get_report(3, "CSV")
    assert isinstance(csv_file, ReportFile) and csv_file.content_type.startswith("text/csv")
    assert csv_file.content.startswith(b"First Name,Last Name") and csv_file.filename == "Terminations.csv"
    pdf = connector.get_report("3", format="pdf")
    assert isinstance(pdf, ReportFile) and pdf.content.startswith(b"%PDF-") and pdf.content_type == "application/pdf"
    xls = connector.get_report(2, format="xls")
    assert isinstance(xls, ReportFile) and xls.content_type == "application/vnd.ms-excel" and b"Workbook" in xls.content


def test_custom_report_and_custom_fields(make_bamboohr: Make) -> None:
    connector = make_bamboohr()
    custom = connector.list_custom_fields()
    aliases = [f["alias"] for f in custom]
    assert "customShirtSize" in aliases and "firstName" not in aliases
    report = connector.run_custom_report(["firstName", *aliases, "noSuchField"], employee_ids=[1, 2])
    assert isinstance(report, dict)
    assert [e["id"] for e in report["employees"]] == ["1", "2"]
    assert set(report["employees"][0]) == {"id", "firstName", *aliases}  # unknown fields dropped, as BambooHR does
    csv_file = connector.run_custom_report(["firstName", "lastName"], format="csv", title="Names")
    assert isinstance(csv_file, ReportFile) and csv_file.content.startswith(b"First Name,Last Name\r\n")


def test_directory_has_only_active_employees(make_bamboohr: Make) -> None:
    connector = make_bamboohr()
    directory = connector.get_directory()
    active = connector.list_employees({"status": "active"})
    assert {e["id"] for e in directory["employees"]} <= {e["id"] for e in active}
    assert directory["fields"] and directory["employees"]


def test_writable_fields_allow_list(make_bamboohr: Make, bamboohr_server: BambooHRSandbox) -> None:
    connector = make_bamboohr(writable_fields=["jobTitle", "department"])
    before = bamboohr_server.requests
    with pytest.raises(ConnectorError) as info:
        connector.update_employee(3, {"jobTitle": "Recruiter", "workEmail": "x@example.com"})
    assert info.value.category == Category.PERMISSION and "workEmail" in info.value.message
    assert bamboohr_server.requests == before  # refused before anything was sent
    connector.update_employee(3, {"jobTitle": "Recruiter"})
    assert connector.get_employee(3, ["jobTitle"])["jobTitle"] == "Recruiter"


# --- bad input: BambooHR's own message, the right category -----------------------------------------
def _error(call: Callable[[], object]) -> ConnectorError:
    with pytest.raises(ConnectorError) as info:
        call()
    return info.value


def test_unknown_employee_is_not_found(make_bamboohr: Make) -> None:
    error = _error(lambda: make_bamboohr().get_employee(999999))
    assert error.category == Category.NOT_FOUND and error.permanent and "Employee not found" in error.message
    assert error.status_code == 404


def test_duplicate_email_is_a_conflict(make_bamboohr: Make) -> None:
    connector = make_bamboohr()
    taken = connector.get_employee(2, ["workEmail"])["workEmail"]
    error = _error(
        lambda: connector.create_employee({"firstName": "Dup", "lastName": "Licate", "workEmail": taken.upper()})
    )
    assert error.category == Category.CONFLICT and error.permanent and "Duplicate email" in error.message


def test_missing_names_are_invalid(make_bamboohr: Make) -> None:
    error = _error(lambda: make_bamboohr().create_employee({"firstName": "Only"}))
    assert error.category == Category.INVALID and "firstName and lastName are required" in error.message


def test_malformed_date_is_invalid(make_bamboohr: Make) -> None:
    error = _error(lambda: make_bamboohr().list_time_off_requests({"start": "2024-13-45", "end": "2024-12-31"}))
    assert error.category == Category.INVALID and error.permanent and "Invalid start date" in error.message
    missing = _error(lambda: make_bamboohr().list_time_off_requests({"employee_id": 3}))
    assert missing.category == Category.INVALID and "start and end" in missing.message


def test_invalid_field_value_is_a_conflict(make_bamboohr: Make) -> None:
    error = _error(lambda: make_bamboohr().update_employee(3, {"hireDate": "31/12/2024"}))
    assert error.category == Category.CONFLICT and "hireDate" in error.message


def test_unknown_report_is_not_found(make_bamboohr: Make) -> None:
    error = _error(lambda: make_bamboohr().get_report(4242))
    assert error.category == Category.NOT_FOUND and "Report not found" in error.message
    bad_format = _error(lambda: make_bamboohr().get_report(1, "docx"))
    assert bad_format.category == Category.INVALID and "json, csv, pdf, xls" in bad_format.message


def test_non_numeric_ids_are_refused_before_sending(make_bamboohr: Make, bamboohr_server: BambooHRSandbox) -> None:
    connector = make_bamboohr()
    for call in (lambda: connector.get_employee("../meta/fields"), lambda: connector.approve_time_off_request("x1")):
        assert _error(call).category == Category.INVALID
    assert bamboohr_server.requests == 0


def test_time_off_for_unknown_employee_and_request(make_bamboohr: Make) -> None:
    connector = make_bamboohr()
    body = {"start": TODAY, "end": TODAY, "type_id": 78}
    assert _error(lambda: connector.create_time_off_request(999999, body)).category == Category.NOT_FOUND
    assert _error(lambda: connector.approve_time_off_request(999999)).category == Category.NOT_FOUND
    bad_type = _error(lambda: connector.create_time_off_request(3, {**body, "type_id": 1}))
    assert bad_type.category == Category.INVALID and "Invalid time off type" in bad_type.message


def test_employee_limit_429_is_permanent_not_throttling(make_bamboohr: Make) -> None:
    with BambooHRSandbox(api_key="k" * 40, employees=5, employee_limit=5) as server:
        error = _error(lambda: make_bamboohr(server).create_employee({"firstName": "One", "lastName": "Toomany"}))
        assert error.category == Category.CONFLICT and error.permanent and "employee limit" in error.message
        assert server.requests == 1  # not retried


@pytest.mark.parametrize(
    "header",
    ["X-BambooHR-Error-Messsage", "X-BambooHR-Error-Message", "X-BambooHR-Message", "x-bamboohr-error-message"],
)
def test_every_error_header_spelling_is_read(make_bamboohr: Make, header: str) -> None:
    with BambooHRSandbox(api_key="k" * 40, employees=3, error_headers=(header,)) as server:
        error = _error(lambda: make_bamboohr(server).get_employee(77))
        assert error.message == "BambooHR get_employee: HTTP 404: Employee not found"


# --- auth ---------------------------------------------------------------------------------------------
def test_wrong_key_is_auth_permanent_not_retried_and_never_shown(
    make_bamboohr: Make, bamboohr_server: BambooHRSandbox
) -> None:
    wrong = "feedfacefeedfacefeedfacefeedfacefeedface"
    encoded = base64.b64encode(f"{wrong}:x".encode()).decode()
    connector = make_bamboohr(credentials={"api_key": wrong})
    error = _error(connector.list_employees)
    assert error.category == Category.AUTH and error.permanent and error.status_code == 401
    assert bamboohr_server.requests == 1  # no retry of a permanent failure

    result = make_bamboohr(credentials={"api_key": wrong}).test_connection()
    assert not result.ok and result.category == "auth"
    texts = [
        error.message,
        str(error),
        repr(error),
        str(error.as_dict()),
        "".join(traceback.format_exception(error)),
        str(result.as_dict()),
        repr(connector),
    ]
    for text in texts:
        assert wrong not in text and encoded not in text


def test_missing_key_is_a_config_error(make_bamboohr: Make, bamboohr_server: BambooHRSandbox) -> None:
    error = _error(make_bamboohr(credentials={}).list_employees)
    assert error.category == Category.CONFIG and "api_key" in error.message
    assert bamboohr_server.requests == 0


class _Tokens:
    """A token provider as the OAuth2 helper gives one: the first token has been revoked upstream."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.invalidated: list[str] = []

    def get_token(self) -> str:
        return self.tokens[0]

    def invalidate(self, token: str) -> None:
        self.invalidated.append(token)
        if self.tokens[0] == token and len(self.tokens) > 1:
            self.tokens.pop(0)


def test_oauth_bearer_refreshes_once_after_401(make_bamboohr: Make) -> None:
    with BambooHRSandbox(api_key="k" * 40, employees=5, bearer_tokens={"fresh-token"}) as server:
        provider = _Tokens(["stale-token", "fresh-token"])
        runtime = fast_runtime()
        runtime.token_provider = provider
        connector = make_bamboohr(server, credentials={"client_secret": "s3cret"}, runtime=runtime, auth_type="oauth2")
        assert connector.get_employee(1)["id"] == "1"
        assert provider.invalidated == ["stale-token"]
        assert server.stats()["by_status"] == {"200": 1, "401": 1}
        assert connector.get_employee(2)["id"] == "2" and provider.invalidated == ["stale-token"]


def test_oauth_bearer_still_refused_is_auth(make_bamboohr: Make) -> None:
    with BambooHRSandbox(api_key="k" * 40, employees=5, bearer_tokens=lambda token: False) as server:
        provider = _Tokens(["revoked-1", "revoked-2"])
        runtime = fast_runtime()
        runtime.token_provider = provider
        connector = make_bamboohr(server, credentials={}, runtime=runtime, auth_type="oauth2")
        error = _error(lambda: connector.get_employee(1))
        # Both are reported: the stale one, then the fresh one, whose refusal the provider records as the
        # authorization itself gone (reconnect required).
        assert error.category == Category.AUTH and provider.invalidated == ["revoked-1", "revoked-2"]
        assert server.requests == 2 and "revoked" not in error.message


def test_oauth_without_token_provider_is_config(make_bamboohr: Make) -> None:
    error = _error(make_bamboohr(credentials={}, auth_type="oauth2").list_employees)
    assert error.category == Category.CONFIG
