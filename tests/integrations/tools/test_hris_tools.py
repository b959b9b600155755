"""The HRIS tools against the BambooHR sandbox (real HTTP on loopback), called as Python functions."""

from __future__ import annotations

import pytest

from integrations import tools
from integrations.tools import catalog
from integrations.tools.models import Outcome, ToolCall, WriteIntent
from tests.factories import unique

pytestmark = pytest.mark.django_db


def _valid(name: str, envelope: dict) -> dict:
    """Every envelope a tool returns matches that tool's published output schema."""
    errors = list(catalog.validator(name, "output").iter_errors(envelope))
    assert not errors, [e.message for e in errors]
    return envelope


def _employees_named(sandbox, first: str, last: str) -> list[int]:
    return [
        eid
        for eid, rec in sandbox.company.employees.items()
        if rec.get("firstName") == first and rec.get("lastName") == last
    ]


def test_query_hris_lists_employees_in_the_neutral_shape(hr_sandbox, make_hr_integration):
    hr = make_hr_integration(hr_sandbox)
    out = _valid("query_hris", tools.query_hris(hr.id, "employees", {"status": "active"}, limit=5))
    assert out["ok"], out
    result = out["result"]
    assert result["count"] == 5 and result["truncated"] is True  # 30 seeded, 5 asked for
    first = result["items"][0]
    assert {"id", "first_name", "last_name", "email", "department", "status"} <= set(first)
    assert first["status"] == "active"

    one = _valid("query_hris", tools.query_hris(hr.id, "employee", {"id": first["id"]}))
    assert one["result"]["items"][0]["id"] == first["id"]
    assert one["result"]["items"][0]["last_name"] == first["last_name"]

    everyone = tools.query_hris(hr.id, "employees", limit=1000)
    assert everyone["result"]["count"] == len(hr_sandbox.company.employees)
    assert everyone["result"]["truncated"] is False


def test_query_hris_time_off_and_custom_fields(hr_sandbox, make_hr_integration):
    hr = make_hr_integration(hr_sandbox)
    out = _valid(
        "query_hris", tools.query_hris(hr.id, "time_off_requests", {"start": "2000-01-01", "end": "2100-01-01"})
    )
    assert out["ok"], out
    assert out["result"]["count"] > 0
    assert {"employee_id", "start", "end", "status"} <= set(out["result"]["items"][0])

    missing = _valid("query_hris", tools.query_hris(hr.id, "time_off_requests", {}))
    assert missing["ok"] is False and missing["error"]["category"] == "invalid"
    assert "start" in missing["error"]["message"]

    fields = _valid("query_hris", tools.query_hris(hr.id, "custom_fields"))
    assert fields["ok"], fields


def test_unknown_employee_is_not_found_with_bamboohrs_message(hr_sandbox, make_hr_integration):
    hr = make_hr_integration(hr_sandbox)
    out = _valid("query_hris", tools.query_hris(hr.id, "employee", {"id": "999999"}))
    assert out["ok"] is False
    assert out["error"]["category"] == "not_found"
    assert hr_sandbox.api_key not in str(out)


def test_create_update_and_read_back_an_employee(hr_sandbox, make_hr_integration):
    hr = make_hr_integration(hr_sandbox)
    email = f"{unique('ada')}@example.com"
    created = _valid(
        "create_hris_record",
        tools.create_hris_record(
            hr.id,
            "employee",
            {"firstName": "Ada", "lastName": "Lovelace", "workEmail": email, "department": "Engineering"},
            idempotency_key=unique("key-create"),
        ),
    )
    assert created["ok"], created
    new_id = created["result"]["id"]
    assert hr_sandbox.company.employees[int(new_id)]["workEmail"] == email

    updated = _valid(
        "update_hris_record",
        tools.update_hris_record(
            hr.id, "employee", new_id, {"jobTitle": "Accountant"}, idempotency_key=unique("key-update")
        ),
    )
    assert updated["ok"], updated
    read = tools.query_hris(hr.id, "employee", {"id": new_id})
    assert read["result"]["items"][0]["job_title"] == "Accountant"
    assert read["result"]["items"][0]["email"] == email


def test_the_same_create_sent_twice_makes_one_employee(fresh_sandbox, make_hr_integration):
    hr = make_hr_integration(fresh_sandbox)
    data = {"firstName": "Grace", "lastName": unique("Hopper"), "department": "Engineering"}
    key = unique("retry-key")
    first = tools.create_hris_record(hr.id, "employee", data, idempotency_key=key)
    second = tools.create_hris_record(hr.id, "employee", data, idempotency_key=key)
    assert first["ok"] and second["ok"], (first, second)
    assert second["result"]["id"] == first["result"]["id"]
    assert second["result"]["replayed"] is True and first["result"]["replayed"] is False
    assert len(_employees_named(fresh_sandbox, "Grace", data["lastName"])) == 1

    # Without a key the same caller sending the same create is taken as a retry too.
    other = {"firstName": "Alan", "lastName": unique("Turing")}
    a = tools.create_hris_record(hr.id, "employee", other)
    b = tools.create_hris_record(hr.id, "employee", other)
    assert a["result"]["id"] == b["result"]["id"]
    assert len(_employees_named(fresh_sandbox, "Alan", other["lastName"])) == 1

    # A key reused for different data is refused, not silently replayed.
    clash = tools.create_hris_record(hr.id, "employee", {"firstName": "X", "lastName": "Y"}, idempotency_key=key)
    assert clash["ok"] is False and clash["error"]["category"] == "conflict"


def test_a_refused_create_is_not_remembered_as_done(fresh_sandbox, make_hr_integration):
    """The HR system said no (a duplicate email): nothing was written, so the same key may try again."""
    hr = make_hr_integration(fresh_sandbox)
    taken = next(iter(fresh_sandbox.company.employees.values()))["workEmail"]
    key = unique("dup")
    data = {"firstName": "Dup", "lastName": unique("Licate"), "workEmail": taken}
    out = tools.create_hris_record(hr.id, "employee", data, idempotency_key=key)
    assert out["ok"] is False and out["error"]["category"] == "conflict"
    assert WriteIntent.objects.get(key=key).state == "failed"
    assert _employees_named(fresh_sandbox, "Dup", data["lastName"]) == []


def test_an_interrupted_create_is_found_not_repeated(fresh_sandbox, make_hr_integration):
    """The write reached the HR system but its attempt never stored the outcome: after the lease, a
    retry finds the record (in the HR system, not in our table) and adopts it."""
    from django.utils import timezone

    hr = make_hr_integration(fresh_sandbox)
    data = {"firstName": "Katherine", "lastName": unique("Johnson")}
    key = unique("lost")
    first = tools.create_hris_record(hr.id, "employee", data, idempotency_key=key)
    created_id = first["result"]["id"]
    # What a killed worker leaves behind: the intent pending, its lease over, no outcome stored.
    WriteIntent.objects.filter(key=key).update(state="pending", result=None, lease_until=timezone.now())

    again = tools.create_hris_record(hr.id, "employee", data, idempotency_key=key)
    assert again["ok"], again
    assert again["result"]["id"] == created_id and again["result"]["recovered"] is True
    assert len(_employees_named(fresh_sandbox, "Katherine", data["lastName"])) == 1
    assert WriteIntent.objects.get(key=key).state == "succeeded"


def test_a_pending_write_within_its_lease_is_not_sent_again(fresh_sandbox, make_hr_integration):
    hr = make_hr_integration(fresh_sandbox)
    data = {"firstName": "Hedy", "lastName": unique("Lamarr")}
    key = unique("busy")
    tools.create_hris_record(hr.id, "employee", data, idempotency_key=key)
    WriteIntent.objects.filter(key=key).update(state="pending", result=None)  # the lease still runs
    before = fresh_sandbox.requests
    out = tools.create_hris_record(hr.id, "employee", data, idempotency_key=key)
    assert out["ok"] is False and out["error"]["category"] == "conflict"
    assert out["error"]["retry_after"] > 0
    assert fresh_sandbox.requests == before  # nothing was sent


def test_writable_fields_are_allow_listed(hr_sandbox, make_hr_integration):
    hr = make_hr_integration(hr_sandbox, writable=["firstName", "lastName"])
    out = tools.create_hris_record(hr.id, "employee", {"firstName": "A", "lastName": "B", "payRate": "1000000"})
    assert out["ok"] is False and out["error"]["category"] == "permission"
    assert "payRate" in out["error"]["message"]
    decided = tools.set_time_off_request_status(hr.id, "1", "approved")
    assert decided["ok"] is False and decided["error"]["category"] == "permission"

    closed = make_hr_integration(hr_sandbox, writable=None)
    none = tools.update_hris_record(closed.id, "employee", "1", {"firstName": "Z"})
    assert none["ok"] is False and none["error"]["category"] == "permission"
    assert "writable_fields" in none["error"]["message"]
    assert hr_sandbox.company.employees[1]["firstName"] != "Z"


def test_time_off_request_created_once_and_approved(fresh_sandbox, make_hr_integration):
    hr = make_hr_integration(fresh_sandbox)
    employee_id = str(next(iter(fresh_sandbox.company.employees)))
    types = _valid("query_hris", tools.query_hris(hr.id, "time_off_types"))
    assert types["ok"] and types["result"]["items"], types
    data = {
        "employeeId": employee_id,
        "start": "2031-03-02",
        "end": "2031-03-04",
        "amount": 3,
        "timeOffTypeId": types["result"]["items"][0]["id"],
        "notes": "family trip",
    }
    key = unique("pto")
    created = _valid(
        "create_hris_record", tools.create_hris_record(hr.id, "time_off_request", data, idempotency_key=key)
    )
    assert created["ok"], created
    again = tools.create_hris_record(hr.id, "time_off_request", data, idempotency_key=key)
    assert again["result"]["id"] == created["result"]["id"]
    in_window = tools.query_hris(
        hr.id, "time_off_requests", {"start": "2031-03-01", "end": "2031-03-05", "employee_id": employee_id}
    )
    assert [r["id"] for r in in_window["result"]["items"]] == [created["result"]["id"]]

    approved = _valid(
        "set_time_off_request_status",
        tools.set_time_off_request_status(hr.id, created["result"]["id"], "approved", "enjoy"),
    )
    assert approved["ok"], approved
    after = tools.query_hris(
        hr.id, "time_off_requests", {"start": "2031-03-01", "end": "2031-03-05", "employee_id": employee_id}
    )
    assert after["result"]["items"][0]["status"] == "approved"


def test_every_call_is_audited_with_secrets_masked(hr_sandbox, make_hr_integration):
    hr = make_hr_integration(hr_sandbox)
    tools.query_hris(hr.id, "employees", {"search": "a"}, limit=3)
    tools.create_hris_record(
        hr.id, "employee", {"firstName": "A", "lastName": "B", "ssn": "123-45-6789", "password": "hunter2"}
    )
    calls = list(ToolCall.objects.filter(integration_ref=hr.id).order_by("id"))
    assert [c.tool for c in calls] == ["query_hris", "create_hris_record"]
    read, write = calls
    assert read.outcome == Outcome.OK and read.row_count == 3 and read.truncated is True
    assert read.result_size and read.result_size > 50 and read.duration_ms is not None
    assert read.actor == "python" and read.via == "python"
    assert write.outcome == Outcome.REFUSED  # ssn and password are not writable here
    assert write.arguments["data"]["ssn"] == "********" and write.arguments["data"]["password"] == "********"
    assert "123-45-6789" not in str(write.as_dict()) and "hunter2" not in str(write.as_dict())


def test_a_timed_out_create_is_checked_before_it_is_sent_again(fresh_sandbox, make_hr_integration, settings):
    """The HR system answered too late: the outcome is unknown. The agent is told to retry after a
    grace (the request may still be processed); the retry finds the record instead of writing twice."""
    import time

    settings.TOOLS_INFLIGHT_GRACE_SECONDS = 2
    hr = make_hr_integration(fresh_sandbox, timeout_seconds=1)
    data = {"firstName": "Dorothy", "lastName": unique("Vaughan")}
    key = unique("late")
    fresh_sandbox.slow(1.5)
    late = _valid("create_hris_record", tools.create_hris_record(hr.id, "employee", data, idempotency_key=key))
    fresh_sandbox.slow(0)
    assert late["ok"] is False and late["error"]["category"] == "timeout"
    assert late["error"]["retry_after"] == 2 and "idempotency_key" in late["error"]["message"]
    too_soon = tools.create_hris_record(hr.id, "employee", data, idempotency_key=key)
    assert too_soon["ok"] is False and too_soon["error"]["category"] == "conflict"

    time.sleep(2.2)
    retry = tools.create_hris_record(hr.id, "employee", data, idempotency_key=key)
    assert retry["ok"], retry
    assert retry["result"]["recovered"] is True
    assert _employees_named(fresh_sandbox, "Dorothy", data["lastName"]) == [int(retry["result"]["id"])]
