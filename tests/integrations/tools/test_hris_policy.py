"""The HRIS tools under an agent profile's data policy, against the BambooHR sandbox (real HTTP on
loopback): restricted fields are never asked for, the record scope holds for reads and writes, free
text is redacted, and employee ids and e-mails can be pseudonyms that writes map back."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from connectors.datapolicy.hris_fields import FieldAccess
from connectors.datapolicy.hris_scope import RecordScope
from connectors.errors import ConnectorError
from integrations.agents.access import HrisRules
from integrations.tools import catalog, hris
from integrations.tools.errors import ToolError
from sandbox.bamboohr.data import TIME_OFF_TYPES, add_time_off

pytestmark = pytest.mark.django_db

RESTRICTED = ("dateOfBirth", "payRate", "ssn", "homeEmail", "mobilePhone", "address1", "gender")
PUBLIC_INTERNAL = FieldAccess.build(classes=["public", "internal"])


def _valid(result: dict) -> dict:
    """The result matches query_hris's published output schema (withheld_fields and out_of_scope included)."""
    errors = list(catalog.validator("query_hris", "output").iter_errors({"ok": True, "result": result}))
    assert not errors, [e.message for e in errors]
    return result


def _asked(sandbox) -> str:
    """Everything the hub sent the sandbox: paths, query strings and bodies."""
    return "\n".join(f"{r.path}?{r.query} {r.body.decode(errors='replace')}" for r in sandbox.request_log)


def _refused(call) -> str:
    with pytest.raises((ToolError, ConnectorError)) as caught:
        call()
    exc = caught.value
    category = exc.category if isinstance(exc, ToolError) else exc.category.value
    assert category == "permission", exc
    return str(exc)


def _new_title(sandbox, eid: int) -> str:
    """A job title from the sandbox's list options other than the employee's own."""
    current = sandbox.company.employees[eid]["jobTitle"]
    return next(t for t in sandbox.company.options["jobTitle"] if t != current)


def _largest_department(sandbox) -> str:
    counts = Counter(str(r["department"]) for r in sandbox.company.employees.values())
    return counts.most_common(1)[0][0]


def test_restricted_fields_are_never_requested_and_said_withheld(fresh_sandbox, make_hr_integration, policed_ctx):
    hr = make_hr_integration(fresh_sandbox)
    ctx = policed_ctx(hr, hris=HrisRules(access=PUBLIC_INTERNAL))
    fresh_sandbox.app.traffic.reset()

    listed = _valid(hris.query_hris(ctx, hr.id, "employees"))
    assert listed["count"] == len(fresh_sandbox.company.employees)
    for item in listed["items"]:
        assert {"id", "first_name", "department", "status"} <= set(item)

    eid = listed["items"][0]["id"]
    one = _valid(hris.query_hris(ctx, hr.id, "employee", {"id": eid, "fields": [*RESTRICTED, "jobTitle"]}))
    item = one["items"][0]
    assert set(RESTRICTED) <= set(one["withheld_fields"])
    assert item["raw"]["jobTitle"] == fresh_sandbox.company.employees[int(eid)]["jobTitle"]
    for name in RESTRICTED:
        assert name not in item["raw"]
    record = fresh_sandbox.company.employees[int(eid)]
    assert record["dateOfBirth"] not in str(one) and record["homeEmail"] not in str(one)

    # The sandbox's request log: none of the restricted fields was ever asked for.
    asked = _asked(fresh_sandbox)
    assert "jobTitle" in asked
    for name in RESTRICTED:
        assert name not in asked, name

    # The same call without a profile asks for them (the log would show a leak).
    staff = hris.query_hris(
        policed_ctx(hr).__class__(integration=hr, may_write=False, actor="staff"),
        hr.id,
        "employee",
        {"id": eid, "fields": ["dateOfBirth"]},
    )
    assert staff["items"][0]["raw"]["dateOfBirth"] == record["dateOfBirth"]
    assert "dateOfBirth" in _asked(fresh_sandbox)


def test_custom_fields_follow_the_operators_classes(fresh_sandbox, make_hr_integration, policed_ctx):
    hr = make_hr_integration(fresh_sandbox)
    rules = HrisRules(access=PUBLIC_INTERNAL, field_classes={"customShirtSize": "public"})
    ctx = policed_ctx(hr, hris=rules)
    eid = next(iter(fresh_sandbox.company.employees))
    fresh_sandbox.app.traffic.reset()
    out = hris.query_hris(ctx, hr.id, "employee", {"id": eid, "fields": ["customShirtSize", "customAllergies"]})
    raw = out["items"][0]["raw"]
    assert raw["customShirtSize"] == fresh_sandbox.company.employees[eid]["customShirtSize"]
    assert out["withheld_fields"] == ["customAllergies"]  # unclassed custom field: restricted
    assert "customAllergies" not in _asked(fresh_sandbox)


def test_department_scope_holds_for_reads_and_writes(hr_sandbox, make_hr_integration, policed_ctx):
    hr = make_hr_integration(hr_sandbox)
    department = _largest_department(hr_sandbox)
    inside = sorted(eid for eid, r in hr_sandbox.company.employees.items() if r["department"] == department)
    outside = sorted(eid for eid, r in hr_sandbox.company.employees.items() if r["department"] != department)
    assert inside and outside
    rules = HrisRules(access=PUBLIC_INTERNAL, scope=RecordScope.build(departments=[department]))
    ctx = policed_ctx(hr, write=True, hris=rules)

    listed = hris.query_hris(ctx, hr.id, "employees", limit=1000)
    assert sorted(int(i["id"]) for i in listed["items"]) == inside
    assert listed["out_of_scope"] == len(outside)
    assert {i["department"] for i in listed["items"]} == {department}

    message = _refused(lambda: hris.query_hris(ctx, hr.id, "employee", {"id": outside[0]}))
    assert "department" in message

    # An update inside the scope goes through; outside it is refused and nothing changes.
    title = _new_title(hr_sandbox, inside[0])
    hris.update_hris_record(ctx, hr.id, "employee", inside[0], {"jobTitle": title})
    assert hr_sandbox.company.employees[inside[0]]["jobTitle"] == title
    before = dict(hr_sandbox.company.employees[outside[0]])
    message = _refused(lambda: hris.update_hris_record(ctx, hr.id, "employee", outside[0], {"jobTitle": title}))
    assert "outside this profile's record scope" in message and "department" in message
    assert hr_sandbox.company.employees[outside[0]] == before

    # Moving someone out of the scope is a write outside it.
    other = hr_sandbox.company.employees[outside[0]]["department"]
    message = _refused(lambda: hris.update_hris_record(ctx, hr.id, "employee", inside[1], {"department": other}))
    assert "would move" in message
    assert hr_sandbox.company.employees[inside[1]]["department"] == department

    # Time off for someone outside: neither created nor decided.
    _refused(
        lambda: hris.create_hris_record(
            ctx, hr.id, "time_off_request", {"employeeId": outside[0], "start": "2031-01-05", "end": "2031-01-05"}
        )
    )
    request = next(r for r in hr_sandbox.company.time_off.values() if r.employee_id in outside)
    _refused(lambda: hris.set_time_off_request_status(ctx, hr.id, request.id, "denied"))
    assert hr_sandbox.company.time_off[request.id].status != "denied"

    # Time off listings keep only the scope's people.
    time_off = hris.query_hris(ctx, hr.id, "time_off_requests", {"start": "2000-01-01", "end": "2100-01-01"}, 1000)
    assert time_off["items"] and {int(i["employee_id"]) for i in time_off["items"]} <= set(inside)
    assert time_off["out_of_scope"] == sum(1 for r in hr_sandbox.company.time_off.values() if r.employee_id in outside)


def test_planted_ssns_and_ibans_in_time_off_notes_come_back_masked(fresh_sandbox, make_hr_integration, policed_ctx):
    from connectors.datapolicy.pii import RedactionPolicy

    hr = make_hr_integration(fresh_sandbox)
    eid = next(iter(fresh_sandbox.company.employees))
    ssn, iban = "536-22-8726", "GB82 WEST 1234 5698 7654 32"
    planted = add_time_off(
        fresh_sandbox.company,
        employee_id=eid,
        type_id=TIME_OFF_TYPES[0][0],
        start=dt.date(2031, 3, 2),
        end=dt.date(2031, 3, 2),
        status="requested",
        dates={"2031-03-02": 1.0},
        notes={"employee": f"Pay the advance to {iban}; my SSN is {ssn}. Thanks!"},
        created=dt.date(2031, 2, 1),
        changed_by=eid,
    )
    window = {"start": "2031-03-01", "end": "2031-03-03"}
    with_notes = FieldAccess.build(classes=["public", "internal", "special"])
    ctx = policed_ctx(hr, hris=HrisRules(access=with_notes, redaction=RedactionPolicy()))
    out = hris.query_hris(ctx, hr.id, "time_off_requests", window)
    note = next(i for i in out["items"] if i["id"] == str(planted.id))["notes"]["employee"]
    assert ssn not in note and "1234 5698" not in note
    assert "<US_SSN>" in note and "<IBAN_CODE>" in note and note.startswith("Pay the advance to")

    # Without the special class the notes are withheld, and never asked for.
    fresh_sandbox.app.traffic.reset()
    ctx = policed_ctx(hr, hris=HrisRules(access=PUBLIC_INTERNAL))
    out = hris.query_hris(ctx, hr.id, "time_off_requests", window)
    assert "notes" in out["withheld_fields"]
    assert all("notes" not in i for i in out["items"]) and ssn not in str(out)
    assert "excludeNote=1" in _asked(fresh_sandbox)


def test_pseudonyms_hide_ids_and_emails_and_writes_map_them_back(fresh_sandbox, make_hr_integration, policed_ctx):
    hr = make_hr_integration(fresh_sandbox)
    ctx = policed_ctx(hr, write=True, hris=HrisRules(access=PUBLIC_INTERNAL, pseudonymize=True))
    listed = hris.query_hris(ctx, hr.id, "employees")
    real_ids = {str(e) for e in fresh_sandbox.company.employees}
    emails = {str(r["workEmail"]).lower() for r in fresh_sandbox.company.employees.values()}
    for item in listed["items"]:
        assert item["id"].startswith("emp_") and item["id"] not in real_ids
        assert item["email"].endswith("@pseudonym.invalid") and item["email"] not in emails
    # Deterministic: the same employee has the same pseudonym in the next call.
    again = hris.query_hris(ctx, hr.id, "employees")
    assert [i["id"] for i in again["items"]] == [i["id"] for i in listed["items"]]

    target = listed["items"][0]
    one = hris.query_hris(ctx, hr.id, "employee", {"id": target["id"]})
    assert one["items"][0]["last_name"] == target["last_name"]
    real_id = next(e for e, r in fresh_sandbox.company.employees.items() if r["lastName"] == target["last_name"])
    title = _new_title(fresh_sandbox, real_id)
    hris.update_hris_record(ctx, hr.id, "employee", target["id"], {"jobTitle": title})
    assert fresh_sandbox.company.employees[real_id]["jobTitle"] == title

    with pytest.raises(ConnectorError, match="unknown pseudonym"):
        hris.update_hris_record(ctx, hr.id, "employee", "emp_0000000000000000", {"jobTitle": title})
    with pytest.raises(ConnectorError, match="unknown pseudonym"):
        hris.query_hris(ctx, hr.id, "employee", {"id": next(iter(real_ids))})  # a real id is not a pseudonym
