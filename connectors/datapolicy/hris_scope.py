"""Which employees a profile may touch: a record scope over the provider-neutral employee record.

Rules (each optional; all given ones must hold): department, division and location (any of a set,
compared case-insensitively as HR systems do), active employees only, and "reports of manager X"
(direct reports, or with ``indirect`` the whole reporting tree under X, which needs the id ->
manager pairs of everyone: ``reporting_tree``).

Reads keep only records inside the scope. A write needs the target's current record: it is
refused when the employee is outside the scope now, or would be after the change (a write that moves
someone out of the scope — another department, inactive — is a write outside it). Refusals are a
``ConnectorError`` of category ``permission`` that names the rule.

BambooHR's v1 API has no server-side filter for any of these rules (custom reports filter only by
employee ids and last change; the status filter exists only on the OAuth-only ``GET /employees``),
so a listing reads the scope's own fields (public or internal) for everyone and drops the records
outside the scope before anything leaves the hub. Where the scope is a known set of people (the
reports of a manager), ``employee_ids`` gives BambooHR the ids to filter on itself.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.datapolicy.hris_fields import BAMBOOHR_TO_EMPLOYEE
from connectors.errors import Category, ConnectorError
from connectors.hris import Employee

Record = Employee | Mapping[str, Any]


def _norm(value: Any) -> str:
    return str(value).strip().lower() if value is not None else ""


def _get(record: Record, name: str) -> Any:
    if isinstance(record, Employee):
        return getattr(record, name)
    return record.get(name)


def reporting_tree(managers: Iterable[str], records: Iterable[Record]) -> frozenset[str]:
    """The ids of everyone under ``managers``, directly or not (the managers themselves excluded
    unless they report to one another). ``records`` need ``id`` and ``manager_id`` only."""
    reports: dict[str, list[str]] = {}
    for record in records:
        manager = _get(record, "manager_id")
        if manager is not None:
            reports.setdefault(str(manager), []).append(str(_get(record, "id")))
    found: set[str] = set()
    todo = [str(m) for m in managers]
    while todo:
        for child in reports.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return frozenset(found)


@dataclass(frozen=True)
class RecordScope:
    departments: frozenset[str] = frozenset()
    divisions: frozenset[str] = frozenset()
    locations: frozenset[str] = frozenset()
    active_only: bool = False
    reports_of: frozenset[str] = frozenset()  # manager employee ids
    indirect: bool = False  # reports_of covers the whole tree under each manager

    @classmethod
    def build(
        cls,
        *,
        departments: Iterable[str] = (),
        divisions: Iterable[str] = (),
        locations: Iterable[str] = (),
        active_only: bool = False,
        reports_of: Iterable[str | int] = (),
        indirect: bool = False,
    ) -> RecordScope:
        """From plain values (a profile row); values are kept lower-case for comparison."""
        return cls(
            frozenset(_norm(d) for d in departments),
            frozenset(_norm(d) for d in divisions),
            frozenset(_norm(loc) for loc in locations),
            bool(active_only),
            frozenset(str(m).strip() for m in reports_of),
            bool(indirect),
        )

    @property
    def unrestricted(self) -> bool:
        return not (self.departments or self.divisions or self.locations or self.active_only or self.reports_of)

    @property
    def fields(self) -> tuple[str, ...]:
        """The unified fields the check reads (to request them even when the profile cannot see them)."""
        needed = [
            ("department", self.departments),
            ("division", self.divisions),
            ("location", self.locations),
            ("status", self.active_only),
            ("manager_id", self.reports_of and not self.indirect),
        ]
        return tuple(name for name, used in needed if used)

    def violation(self, record: Record, *, team: Collection[str] | None = None) -> str | None:
        """The first rule ``record`` breaks, in words, or None when it is inside the scope.

        ``team``: with ``indirect``, the ids of ``reporting_tree(reports_of, everyone)``."""
        for name, allowed in (
            ("department", self.departments),
            ("division", self.divisions),
            ("location", self.locations),
        ):
            if allowed and _norm(_get(record, name)) not in allowed:
                return f"{name} is not one of {', '.join(sorted(allowed))}"
        if self.active_only and _norm(_get(record, "status")) != "active":
            return "only active employees"
        if self.reports_of:
            managers = ", ".join(sorted(self.reports_of))
            if self.indirect:
                if team is None:
                    raise ValueError("an indirect reports_of scope needs the reporting tree (team=)")
                if str(_get(record, "id")) not in team:
                    return f"only people under manager {managers}"
            elif str(_get(record, "manager_id") or "") not in self.reports_of:
                return f"only direct reports of manager {managers}"
        return None

    def allows(self, record: Record, *, team: Collection[str] | None = None) -> bool:
        return self.violation(record, team=team) is None

    def keep(self, records: Iterable[Record], *, team: Collection[str] | None = None) -> list[Any]:
        """``records`` inside the scope, in their order."""
        if self.unrestricted:
            return list(records)
        return [r for r in records if self.violation(r, team=team) is None]

    def employee_ids(self, team: Collection[str] | None = None) -> list[str] | None:
        """Ids BambooHR can filter on itself (a custom report's ``employeeIds``), when the scope
        is a known set of people; None when it is not."""
        if self.reports_of and self.indirect and team is not None:
            return sorted(team, key=lambda i: (len(i), i))
        return None

    def check_read(self, record: Record, *, team: Collection[str] | None = None) -> None:
        """One record asked for by id: a permission error when it is outside the scope."""
        reason = self.violation(record, team=team)
        if reason is not None:
            raise scope_error(f"employee {_get(record, 'id')} is outside this profile's record scope ({reason})")

    def check_write(self, current: Record, changes: Mapping[str, Any], *, team: Collection[str] | None = None) -> None:
        """A write to ``current`` (its record as it is now) with ``changes`` (unified names or
        BambooHR aliases): refused when the employee is outside the scope before or after."""
        eid = _get(current, "id")
        reason = self.violation(current, team=team)
        if reason is not None:
            raise scope_error(f"write refused: employee {eid} is outside this profile's record scope ({reason})")
        after = {name: _get(current, name) for name in ("id", "department", "division", "location", "status")}
        after["manager_id"] = _get(current, "manager_id")
        for key, value in changes.items():
            name = BAMBOOHR_TO_EMPLOYEE.get(key, key)
            if name in after and name != "id":
                after[name] = value
        reason = self.violation(after, team=team)
        if reason is not None:
            raise scope_error(
                f"write refused: it would move employee {eid} out of this profile's record scope ({reason})"
            )

    def as_dict(self) -> dict[str, Any]:
        """For ``describe_access``: the rules in force."""
        return {
            "departments": sorted(self.departments),
            "divisions": sorted(self.divisions),
            "locations": sorted(self.locations),
            "active_only": self.active_only,
            "reports_of": sorted(self.reports_of),
            "indirect": self.indirect,
        }


def scope_error(message: str) -> ConnectorError:
    return ConnectorError(message, category=Category.PERMISSION, permanent=True)
