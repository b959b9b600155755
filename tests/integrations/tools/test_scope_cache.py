"""A scoped time-off listing keeps the scope's employee ids for a short while (integrations/tools/
scope_cache.py) instead of asking BambooHR for them on every call; what it must never do is show
someone outside the scope once the hub knows they left it, or let a write through."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator

import pytest

from connectors.datapolicy.hris_fields import FieldAccess
from connectors.datapolicy.hris_scope import RecordScope
from connectors.errors import ConnectorError
from integrations.agents.access import HrisRules
from integrations.tools import hris
from integrations.tools.errors import ToolError
from sandbox.bamboohr import BambooHRSandbox
from sandbox.bamboohr.data import TIME_OFF_TYPES, add_time_off

pytestmark = pytest.mark.django_db

ACCESS = FieldAccess.build(classes=["public", "internal"])
WINDOW = {"start": "2032-06-01", "end": "2032-06-30"}


@pytest.fixture
def sandbox() -> Iterator[BambooHRSandbox]:
    with BambooHRSandbox(api_key=os.urandom(20).hex(), employees=8, seed=5) as server:
        yield server


def _two_departments(sandbox: BambooHRSandbox) -> tuple[str, str, list[int]]:
    """A department with at least two employees (each given one time-off request in WINDOW) and
    another department."""
    by_department: dict[str, list[int]] = {}
    for eid, record in sandbox.company.employees.items():
        by_department.setdefault(str(record["department"]), []).append(eid)
    inside, people = max(by_department.items(), key=lambda item: len(item[1]))
    other = next(d for d in by_department if d != inside)
    assert len(people) >= 2
    for eid in sandbox.company.employees:
        add_time_off(
            sandbox.company,
            employee_id=eid,
            type_id=TIME_OFF_TYPES[0][0],
            start=dt.date(2032, 6, 7),
            end=dt.date(2032, 6, 7),
            status="requested",
            dates={"2032-06-07": 1.0},
            notes={},
            created=dt.date(2032, 5, 1),
            changed_by=eid,
        )
    return inside, other, sorted(people)


def _listed(ctx, hr) -> set[int]:
    out = hris.query_hris(ctx, hr.id, "time_off_requests", WINDOW, 1000)
    return {int(i["employee_id"]) for i in out["items"]}


def _custom_reports(sandbox: BambooHRSandbox) -> int:
    return sum(1 for r in sandbox.request_log if "/reports/custom" in r.path)


def test_a_hub_write_that_moves_someone_out_of_the_scope_is_seen_at_once(
    sandbox, make_hr_integration, policed_ctx
) -> None:
    hr = make_hr_integration(sandbox)
    inside, other, people = _two_departments(sandbox)
    scoped = policed_ctx(hr, hris=HrisRules(access=ACCESS, scope=RecordScope.build(departments=[inside])))

    sandbox.reset_stats()
    assert _listed(scoped, hr) == set(people)
    assert _listed(scoped, hr) == set(people)
    assert _custom_reports(sandbox) == 1  # the second listing did not ask BambooHR who is in scope

    # An operator's (unscoped) write through the hub moves one of them to another department.
    staff = policed_ctx(hr, write=True)
    hris.update_hris_record(staff, hr.id, "employee", people[0], {"department": other})
    assert _listed(scoped, hr) == set(people[1:])

    # Another scope is its own entry: a profile scoped to the other department sees the mover now.
    elsewhere = policed_ctx(hr, hris=HrisRules(access=ACCESS, scope=RecordScope.build(departments=[other])))
    assert people[0] in _listed(elsewhere, hr)


def test_a_change_made_in_bamboohr_is_seen_after_the_ttl_and_writes_never_wait_for_it(
    sandbox, make_hr_integration, policed_ctx, settings
) -> None:
    settings.AGENT_SCOPE_CACHE_SECONDS = 1
    hr = make_hr_integration(sandbox)
    inside, other, people = _two_departments(sandbox)
    rules = HrisRules(access=ACCESS, scope=RecordScope.build(departments=[inside]))
    scoped = policed_ctx(hr, write=True, hris=rules)
    assert _listed(scoped, hr) == set(people)

    # Someone in HR moves an employee in BambooHR itself: the hub is not told.
    sandbox.company.employees[people[0]]["department"] = other
    # A write to the mover is checked live, cache or not: refused, and nothing changes.
    with pytest.raises((ToolError, ConnectorError)) as caught:
        hris.update_hris_record(scoped, hr.id, "employee", people[0], {"jobTitle": "Mover"})
    assert "outside this profile's record scope" in str(caught.value)
    assert sandbox.company.employees[people[0]]["jobTitle"] != "Mover"

    time.sleep(1.1)
    assert _listed(scoped, hr) == set(people[1:])
