"""The BambooHR sandbox spoken to with a plain HTTP client, as any BambooHR client would: the
status codes, headers and quirks it must reproduce, its state, its fault controls."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import httpx
import pytest

from sandbox.bamboohr import BambooHRSandbox
from tests.sandbox.bamboohr_fixtures import API_KEY

JSON = {"Accept": "application/json"}


@pytest.fixture
def client(bamboohr_server: BambooHRSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=bamboohr_server.url, auth=(API_KEY, "x"), timeout=10) as http:
        yield http


def _error_text(response: httpx.Response) -> str:
    return response.headers["X-BambooHR-Error-Messsage"]


# --- auth and paths ------------------------------------------------------------------------------
def test_auth_is_required(bamboohr_server: BambooHRSandbox) -> None:
    url = bamboohr_server.url + "employees/1"
    assert httpx.get(url, headers=JSON).status_code == 401
    assert httpx.get(url, headers=JSON, auth=("wrong-key", "x")).status_code == 401
    assert httpx.get(url, headers={**JSON, "Authorization": "Bearer some-token"}).status_code == 401
    assert httpx.get(url, headers=JSON, auth=(API_KEY, "")).status_code == 200  # any password, as BambooHR
    refused = httpx.get(url, headers=JSON, auth=("wrong-key", "x"))
    assert "wrong-key" not in str(refused.headers) and not refused.content


def test_bearer_tokens_by_set_or_callable() -> None:
    with BambooHRSandbox(employees=2, bearer_tokens=lambda token: token.startswith("good-")) as server:
        url = server.url + "employees/1"
        assert httpx.get(url, headers={**JSON, "Authorization": "Bearer good-1"}).status_code == 200
        assert httpx.get(url, headers={**JSON, "Authorization": "Bearer bad-1"}).status_code == 401
        assert len(server.api_key) == 40  # a generated key looks like BambooHR's


def test_both_path_forms_with_or_without_trailing_slash(client: httpx.Client, bamboohr_server: BambooHRSandbox) -> None:
    root = bamboohr_server.root_url
    for path in ("/api/v1/employees/2", "/api/v1/employees/2/", "/api/gateway.php/acme/v1/employees/2/"):
        response = client.get(root + path, headers=JSON)
        assert response.status_code == 200 and response.json()["id"] == "2", path
    assert client.get(root + "/api/gateway.php/other/v1/employees/2", headers=JSON).status_code == 404
    assert client.get(root + "/api/v1/no/such/thing", headers=JSON).status_code == 404
    assert client.delete(root + "/api/v1/employees/2", headers=JSON).status_code == 404  # unsupported method
    assert client.get(root + "/api/v1/employees/abc", headers=JSON).status_code == 404


def test_xml_unless_json_is_asked_for(client: httpx.Client) -> None:
    xml = client.get("employees/2", params={"fields": "firstName,lastName"})
    assert xml.headers["Content-Type"].startswith("text/xml")
    assert xml.text.startswith('<employee id="2"><field id="firstName">')
    directory = client.get("employees/directory")
    assert directory.text.startswith("<directory><fieldset>")
    as_json = client.get("employees/2", params={"fields": "firstName"}, headers=JSON)
    assert set(as_json.json()) == {"id", "firstName"}


def test_get_employee_defaults_and_limits(client: httpx.Client, bamboohr_server: BambooHRSandbox) -> None:
    assert set(client.get("employees/2", headers=JSON).json()) == {"id", "firstName", "lastName"}
    too_many = client.get("employees/2", params={"fields": ",".join(["firstName"] * 401)}, headers=JSON)
    assert too_many.status_code == 400 and "400 fields" in _error_text(too_many)
    assert client.get("employees/0", headers=JSON).json()["id"] == "1"
    active = next(i for i, e in bamboohr_server.company.employees.items() if e["status"] == "Active")
    dates = client.get(f"employees/{active}", params={"fields": "terminationDate,hireDate"}, headers=JSON).json()
    assert dates["terminationDate"] == "0000-00-00" and dates["hireDate"] != "0000-00-00"
    missing = client.get("employees/99999", headers=JSON)
    assert missing.status_code == 404 and _error_text(missing) == "Employee not found"


# --- writes ----------------------------------------------------------------------------------------
def test_create_employee_201_location_and_state(client: httpx.Client, bamboohr_server: BambooHRSandbox) -> None:
    gateway = bamboohr_server.gateway_url
    created = client.post(
        gateway + "employees/", json={"firstName": "Ann", "lastName": "Chen", "workEmail": "ann.chen@x.io"}
    )
    assert created.status_code == 201 and created.content == b""
    location = created.headers["Location"]
    assert location.startswith(f"{bamboohr_server.root_url}/api/gateway.php/acme/v1/employees/")
    new_id = location.rsplit("/", 1)[1]
    assert client.get(f"employees/{new_id}", params={"fields": "workEmail,status"}, headers=JSON).json() == {
        "id": new_id,
        "workEmail": "ann.chen@x.io",
        "status": "Active",
    }
    report = client.post("reports/custom", params={"format": "json"}, json={"fields": ["workEmail"]}, headers=JSON)
    assert {"id": new_id, "workEmail": "ann.chen@x.io"} in report.json()["employees"]

    duplicate = client.post("employees", json={"firstName": "B", "lastName": "C", "workEmail": "ANN.CHEN@x.io"})
    assert duplicate.status_code == 409 and "Duplicate email" in _error_text(duplicate)
    assert duplicate.headers["X-BambooHR-Error-Message"] == _error_text(duplicate)  # both spellings sent


def test_create_employee_bad_bodies(client: httpx.Client) -> None:
    assert client.post("employees", json={"firstName": "Only"}).status_code == 400
    malformed = client.post("employees", content=b"{nope", headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400 and _error_text(malformed) == "Malformed JSON"
    unknown = client.post("employees", json={"firstName": "A", "lastName": "B", "shoeSize": "9"})
    assert unknown.status_code == 400 and "shoeSize" in _error_text(unknown)
    bad_list = client.post("employees", json={"firstName": "A", "lastName": "B", "department": "Narnia"})
    assert bad_list.status_code == 409 and "department" in _error_text(bad_list)
    xml = b'<employee><field id="firstName">Xavier</field><field id="lastName">Ml</field></employee>'
    assert client.post("employees", content=xml, headers={"Content-Type": "text/xml"}).status_code == 201


def test_update_employee(client: httpx.Client) -> None:
    assert (
        client.post("employees/4", json={"jobTitle": "Recruiter", "department": "human resources"}).status_code == 200
    )
    after = client.get("employees/4", params={"fields": "jobTitle,department"}, headers=JSON).json()
    assert after == {"id": "4", "jobTitle": "Recruiter", "department": "Human Resources"}  # list option's own case
    assert client.post("employees/99999", json={"jobTitle": "Recruiter"}).status_code == 404
    assert client.post("employees/4", json={"hireDate": "2024-02-30"}).status_code == 409


def test_changed_employees(client: httpx.Client) -> None:
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    client.post("employees/6", json={"customShirtSize": "M"})
    changed = client.get("employees/changed", params={"since": since}, headers=JSON).json()
    assert changed["employees"]["6"]["action"] == "Updated" and changed["latest"]
    assert client.get("employees/changed", params={"since": "yesterday"}, headers=JSON).status_code == 400
    assert client.get("employees/changed", params={"since": since, "type": "moved"}, headers=JSON).status_code == 400


# --- time off ----------------------------------------------------------------------------------------
def test_time_off_requires_dates(client: httpx.Client) -> None:
    missing = client.get("time_off/requests", params={"start": "2024-01-01"}, headers=JSON)
    assert missing.status_code == 400 and "start and end" in _error_text(missing)
    bad = client.get("time_off/requests", params={"start": "2024-01-01", "end": "01/31/2024"}, headers=JSON)
    assert bad.status_code == 400 and "Invalid end date" in _error_text(bad)


def test_time_off_create_supersede_and_status(client: httpx.Client) -> None:
    start = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=300)).isoformat()
    body = {"status": "requested", "start": start, "end": start, "timeOffTypeId": 81, "amount": 4}
    created = client.put("employees/5/time_off/request", json=body, headers=JSON)
    assert created.status_code == 201 and created.headers["Location"].endswith(
        f"/time_off/requests/{created.json()['id']}"
    )
    first = created.json()
    assert first["amount"] == {"unit": "hours", "amount": 4} and first["status"]["status"] == "requested"
    replacement = client.put(
        "employees/5/time_off/request", json={**body, "previousRequest": first["id"]}, headers=JSON
    )
    assert replacement.status_code == 201
    listed = client.get(
        "time_off/requests", params={"start": start, "end": start, "employeeId": 5}, headers=JSON
    ).json()
    assert {r["id"]: r["status"]["status"] for r in listed} == {
        first["id"]: "superceded",
        replacement.json()["id"]: "requested",
    }

    url = f"time_off/requests/{first['id']}/status"
    assert client.put(url, json={"status": "approved"}).status_code == 403  # superseded: cannot change
    assert client.put(url, json={"status": "maybe"}).status_code == 400
    assert client.put("time_off/requests/999999/status", json={"status": "approved"}).status_code == 404
    assert client.put("employees/5/time_off/request", json={**body, "timeOffTypeId": 1}).status_code == 400
    assert client.put("employees/5/time_off/request", json={"start": start}).status_code == 400
    assert client.put("employees/99999/time_off/request", json=body).status_code == 404


# --- reports ------------------------------------------------------------------------------------------
def test_report_format_rules(client: httpx.Client) -> None:
    assert client.get("reports/1", params={"format": "JSON"}).json()["title"] == "Employee list"
    assert client.get("reports/1", headers={"Accept": "text/csv"}).headers["Content-Type"] == "text/csv"
    assert client.get("reports/1").status_code == 404  # httpx's */*: BambooHR answers 404
    assert client.get("reports/1", headers={"Accept": "application/xml"}).status_code == 404
    assert client.get("reports/1", params={"format": "docx"}).status_code == 404
    assert client.get("reports/77", params={"format": "json"}).status_code == 404
    pdf = client.get("reports/2", params={"format": "pdf"})
    assert pdf.content.startswith(b"%PDF-1.4") and pdf.content.rstrip().endswith(b"%%EOF")


def test_custom_report_content_type_quirk(client: httpx.Client) -> None:
    body = b'{"fields": ["firstName"]}'
    exact = client.post("reports/custom?format=json", content=body, headers={"Content-Type": "application/json"})
    assert exact.status_code == 200
    charset = client.post(
        "reports/custom?format=json", content=body, headers={"Content-Type": "application/json; charset=UTF-8"}
    )
    assert charset.status_code == 400 and _error_text(charset) == "Malformed XML"
    xml = b'<report><title>X</title><fields><field id="lastName"/></fields></report>'
    as_xml = client.post("reports/custom?format=csv", content=xml, headers={"Content-Type": "text/xml"})
    assert as_xml.status_code == 200 and as_xml.text.startswith("Last Name\r\n")
    too_many = client.post("reports/custom?format=json", json={"fields": ["firstName"] * 401})
    assert too_many.status_code == 400


def test_metadata(client: httpx.Client) -> None:
    fields = client.get("meta/fields", headers=JSON).json()
    assert {"id": 4001, "name": "Shirt Size", "type": "list", "alias": "customShirtSize"} in fields
    lists = client.get("meta/lists", params={"format": "json"}).json()
    department = next(entry for entry in lists if entry["alias"] == "department")
    assert "Engineering" in [o["name"] for o in department["options"]]
    types = client.get("meta/time_off/types", headers=JSON).json()
    assert [t["name"] for t in types["timeOffTypes"]][:2] == ["Vacation", "Sick"]


# --- faults and counters -----------------------------------------------------------------------------
def test_fault_controls_over_http(client: httpx.Client, bamboohr_server: BambooHRSandbox) -> None:
    control = bamboohr_server.root_url + "/__sandbox__/faults"
    assert httpx.post(control, json={"fail": {"status": 500}}).status_code == 401  # the key is required
    assert client.post(control, json={"explode": True}).status_code == 400
    state = client.post(control, json={"throttle": {"retry_after": 3, "count": 2}}).json()
    assert state["throttle"] == {"retry_after": 3.0, "count": 2, "status": 429}
    for _ in range(2):
        # BambooHR since 16 September 2026: 429 Too Many Requests, always with Retry-After.
        throttled = client.get("employees/1", headers=JSON)
        assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "3"
        assert _error_text(throttled).startswith("Too Many Requests")
    assert client.get("employees/1", headers=JSON).status_code == 200

    client.post(control, json={"fail": {"status": 502, "count": 1}})
    failed = client.get("employees/1", headers=JSON)
    assert failed.status_code == 502 and failed.text.startswith("<html>")
    client.post(control, json={"slow": {"seconds": 0.3}})
    started = time.monotonic()
    client.get("employees/1", headers=JSON)
    assert time.monotonic() - started >= 0.3
    cleared = {"throttle": None, "employee_limit": None, "fail": None, "slow": None}
    assert client.post(control, json={"clear": True}).json() == cleared

    stats = client.get(bamboohr_server.root_url + "/__sandbox__/stats").json()
    assert stats["requests"] == bamboohr_server.requests == 5  # control calls are not counted
    assert stats["by_status"] == {"200": 2, "429": 2, "502": 1} and stats["throttled"] == 2
    client.delete(bamboohr_server.root_url + "/__sandbox__/stats")
    assert bamboohr_server.requests == 0


def test_old_503_throttle_behind_a_switch(client: httpx.Client, bamboohr_server: BambooHRSandbox) -> None:
    control = bamboohr_server.root_url + "/__sandbox__/faults"
    state = client.post(control, json={"throttle": {"retry_after": 5, "count": 1, "status": 503}}).json()
    assert state["throttle"] == {"retry_after": 5.0, "count": 1, "status": 503}
    throttled = client.get("employees/1", headers=JSON)
    assert throttled.status_code == 503 and throttled.headers["Retry-After"] == "5"
    assert client.get("employees/1", headers=JSON).status_code == 200
    assert bamboohr_server.stats()["throttled"] == 1
    refused = client.post(control, json={"throttle": {"retry_after": 5, "status": 500}})
    assert refused.status_code == 400 and "429" in _error_text(refused)


def test_employee_limit_fault_refuses_add_employee_only(client: httpx.Client, bamboohr_server: BambooHRSandbox) -> None:
    control = bamboohr_server.root_url + "/__sandbox__/faults"
    before = len(bamboohr_server.company.employees)
    state = client.post(control, json={"employee_limit": {"count": 2}}).json()
    assert state["employee_limit"] == {"count": 2}
    body = {"firstName": "No", "lastName": "Room"}
    assert client.get("employees/1", headers=JSON).status_code == 200  # reads are not limited
    for _ in range(2):
        full = client.post("employees", json=body)
        # Not a throttle: no Retry-After, BambooHR's "Limit Exceeded" in its error headers.
        assert full.status_code == 429 and "Retry-After" not in full.headers
        assert _error_text(full).startswith("Limit Exceeded")
        assert full.headers["X-BambooHR-Error-Message"] == _error_text(full)
    assert len(bamboohr_server.company.employees) == before
    assert client.post("employees", json=body).status_code == 201  # the count is used up
    stats = bamboohr_server.stats()
    assert stats["by_status"] == {"200": 1, "201": 1, "429": 2} and stats["throttled"] == 0

    bamboohr_server.hit_employee_limit()  # no count: until cleared
    assert [client.post("employees", json=body).status_code for _ in range(3)] == [429, 429, 429]
    bamboohr_server.clear_faults()
    assert client.post("employees", json=body).status_code == 201


def test_throttle_window_tells_the_seconds_left(client: httpx.Client, bamboohr_server: BambooHRSandbox) -> None:
    bamboohr_server.throttle(retry_after=2)
    assert client.get("employees/1", headers=JSON).headers["Retry-After"] == "2"
    time.sleep(1.1)
    assert client.get("employees/1", headers=JSON).headers["Retry-After"] == "1"
    time.sleep(1.0)
    assert client.get("employees/1", headers=JSON).status_code == 200


# --- data --------------------------------------------------------------------------------------------
def test_seeded_data_is_deterministic_and_realistic() -> None:
    one, same, other = (BambooHRSandbox(employees=40, seed=s) for s in (5, 5, 6))
    assert one.company.employees == same.company.employees
    assert one.company.employees != other.company.employees
    people = list(one.company.employees.values())
    assert len({p["workEmail"] for p in people}) == 40
    assert {p["status"] for p in people} <= {"Active", "Inactive"}
    assert all(p["supervisorEId"] is None or int(p["supervisorEId"]) in one.company.employees for p in people)
    assert one.company.time_off and {r.status for r in one.company.time_off.values()} >= {"approved"}


def test_empty_directory_is_404() -> None:
    with BambooHRSandbox(api_key=API_KEY, employees=0) as server:
        response = httpx.get(server.url + "employees/directory", headers=JSON, auth=(API_KEY, "x"))
        assert response.status_code == 404


def test_ten_thousand_employees_are_quick() -> None:
    started = time.monotonic()
    with BambooHRSandbox(api_key=API_KEY, employees=10_000) as server:
        seeded = time.monotonic() - started
        response = httpx.post(
            server.url + "reports/custom",
            params={"format": "json"},
            json={"fields": ["firstName", "lastName", "department", "status"]},
            auth=(API_KEY, "x"),
            timeout=30,
        )
        listed = time.monotonic() - started - seeded
    assert len(response.json()["employees"]) == 10_000
    assert seeded < 10 and listed < 5, (seeded, listed)
