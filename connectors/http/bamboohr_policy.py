"""BambooHR under a profile's data policy: only allowed fields are ever requested, and only records
inside the record scope are returned or written.

``PolicedBambooHR(connector, access, scope)`` offers the reads and writes an agent uses. Each read
asks BambooHR for the allowed fields only (``connectors.datapolicy.hris_fields.select_fields``) —
a restricted field is never in a request, so it cannot be in an answer — plus the public or
internal fields the record scope reads, which are dropped before the answer leaves. Every answer
says which wanted fields were ``withheld``.

Two BambooHR reads cannot be limited this way and are refused under a policy: the directory (its
fields are chosen by each company and may include mobile phones) and saved company reports (their
fields are chosen when the report is saved). ``list_employees`` (a custom report of the allowed
fields) covers both.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.datapolicy.hris_fields import (
    BAMBOOHR_EMPLOYEES,
    BAMBOOHR_TO_EMPLOYEE,
    FieldAccess,
    FieldCatalog,
    FieldSelection,
    select_fields,
    unified_to_bamboohr,
)
from connectors.datapolicy.hris_scope import RecordScope, reporting_tree, scope_error
from connectors.errors import Category, ConnectorError
from connectors.http.bamboohr import BambooHRConnector
from connectors.http.bamboohr_requests import (
    DEFAULT_EMPLOYEE_FIELDS,
    EMPLOYEE_FILTERS,
    SEARCHED_FIELDS,
    as_list,
    filter_employees,
    listing_fields,
)
from connectors.http.bamboohr_shapes import to_employee


@dataclass
class Policed:
    """An answer under policy: ``data`` (records or one record), the fields ``withheld`` by
    policy, and how many records the scope left out of a listing."""

    data: Any
    withheld: list[str] = field(default_factory=list)
    out_of_scope: int = 0


def _refused(message: str) -> ConnectorError:
    return ConnectorError(f"BambooHR: {message}", category=Category.PERMISSION, permanent=True)


class PolicedBambooHR:
    def __init__(
        self,
        connector: BambooHRConnector,
        access: FieldAccess,
        scope: RecordScope | None = None,
        catalog: FieldCatalog = BAMBOOHR_EMPLOYEES,
    ) -> None:
        self.connector = connector
        self.access = access
        self.scope = scope or RecordScope()
        self.catalog = catalog

    # --- field choice ------------------------------------------------------------------------
    def _selection(self, wanted: Sequence[str]) -> FieldSelection:
        scope_fields = unified_to_bamboohr(self.scope.fields)
        return select_fields(self.catalog, self.access, wanted, scope_fields=scope_fields)

    @staticmethod
    def _withheld(selection: FieldSelection, unified: bool) -> list[str]:
        if not unified:
            return list(selection.withheld)
        return sorted(BAMBOOHR_TO_EMPLOYEE.get(f, f) for f in selection.withheld)

    def _team(self) -> frozenset[str] | None:
        if not (self.scope.reports_of and self.scope.indirect):
            return None
        # The reporting tree from ids and managers only (public fields).
        report = self.connector.run_custom_report(["supervisorEId"], only_current=False)
        rows = report["employees"] if isinstance(report, dict) else []
        return reporting_tree(self.scope.reports_of, [to_employee(r, False) for r in rows])

    def _shape(self, record: dict[str, Any], selection: FieldSelection, unified: bool) -> Any:
        for name in selection.strip:
            record.pop(name, None)
        if not unified:
            return record
        employee = to_employee(record, False).as_dict()
        allowed = {"id", *(BAMBOOHR_TO_EMPLOYEE.get(f, f) for f in selection.request)} - {
            BAMBOOHR_TO_EMPLOYEE.get(f, f) for f in selection.strip
        }
        # A field the profile may not see is absent, not None: None would claim "unknown".
        return {k: v for k, v in employee.items() if k in allowed and k != "raw"}

    # --- reads -------------------------------------------------------------------------------
    def list_employees(
        self,
        filters: Mapping[str, Any] | None = None,
        *,
        fields: Sequence[str] | None = None,
        unified: bool = False,
    ) -> Policed:
        """``BambooHRConnector.list_employees`` under the policy (same filters). A filter on a field
        the profile may not see is refused: the answer would reveal the field's values."""
        filters = dict(filters or {})
        listing_fields(filters, None, unified=False)  # the connector's check of unknown filters
        for name, alias in EMPLOYEE_FILTERS.items():
            if filters.get(name) not in (None, "", []) and not self.access.allows(alias, self.catalog):
                raise _refused(f"filtering on {alias} is not allowed by this profile (the field is withheld)")
        wanted = unified_to_bamboohr(fields) if fields and unified else list(fields or DEFAULT_EMPLOYEE_FIELDS)
        selection = self._selection(wanted)
        searched = [f for f in SEARCHED_FIELDS if self.access.allows(f, self.catalog)] if filters.get("search") else []
        request = list(dict.fromkeys([*selection.request, *searched]))
        extra = tuple(f for f in searched if f not in selection.request)
        selection = FieldSelection(tuple(request), selection.withheld, selection.strip + extra)
        team = self._team()
        ids = self.scope.employee_ids(team) if filters.get("employee_ids") is None else filters["employee_ids"]
        report = self.connector.run_custom_report(request, employee_ids=ids, changed_since=filters.get("changed_since"))
        rows = report["employees"] if isinstance(report, dict) else []
        limit = filters.pop("limit", None)
        rows = filter_employees(rows, filters)
        kept = [r for r in rows if self.scope.allows(to_employee(r, False), team=team)]
        if limit is not None:
            kept = filter_employees(kept, {"limit": limit})
        data = [self._shape(r, selection, unified) for r in kept]
        return Policed(data, self._withheld(selection, unified), len(rows) - len(kept))

    def get_employee(
        self, id: str | int, fields: Sequence[str] | str | None = None, *, unified: bool = False
    ) -> Policed:
        """One employee with the allowed fields only; outside the scope it is a permission error."""
        given = as_list(fields) if fields else list(DEFAULT_EMPLOYEE_FIELDS)
        selection = self._selection(unified_to_bamboohr(given) if unified else [str(f) for f in given])
        if not selection.request:
            raise _refused("none of the asked fields is allowed by this profile")
        record = self.connector.get_employee(id, list(selection.request))
        self.scope.check_read(to_employee(record, False), team=self._team())
        return Policed(self._shape(record, selection, unified), self._withheld(selection, unified))

    def run_custom_report(self, fields: Sequence[str], **options: Any) -> Policed:
        """A custom report of the allowed fields among ``fields`` (JSON), records outside the scope
        left out."""
        if str(options.get("format", "json")).lower() != "json":
            raise _refused("under a field policy reports come as JSON only (files cannot be checked)")
        selection = self._selection([str(f) for f in as_list(fields)])
        if not selection.request:
            raise _refused("none of the asked fields is allowed by this profile")
        team = self._team()
        if options.get("employee_ids") is None:
            options["employee_ids"] = self.scope.employee_ids(team)
        report = self.connector.run_custom_report(list(selection.request), **options)
        rows = report["employees"] if isinstance(report, dict) else []
        kept = [r for r in rows if self.scope.allows(to_employee(r, False), team=team)]
        data = [self._shape(r, selection, False) for r in kept]
        return Policed(data, list(selection.withheld), len(rows) - len(kept))

    def get_directory(self, **_: Any) -> Policed:
        raise _refused(
            "the directory's fields are chosen by the company and cannot be limited; "
            "under a field policy use list_employees"
        )

    def get_report(self, *_: Any, **__: Any) -> Policed:
        raise _refused(
            "a saved report's fields are chosen when it is saved and cannot be limited; "
            "under a field policy use run_custom_report"
        )

    # --- writes ------------------------------------------------------------------------------
    def update_employee(self, id: str | int, data: Mapping[str, Any]) -> None:
        """Refused when the employee is outside the scope, now or after the change; the fields
        written must be ones the profile may see (unified names or BambooHR aliases)."""
        hidden = sorted(k for k in data if not self.access.allows(unified_to_bamboohr([k])[0], self.catalog))
        if hidden:
            raise _refused(f"writing {', '.join(hidden)} is not allowed by this profile")
        self.check_write_scope(id, data)
        self.connector.update_employee(id, {unified_to_bamboohr([k])[0]: v for k, v in data.items()})

    def check_write_scope(self, id: str | int, data: Mapping[str, Any], *, team: Collection[str] | None = None) -> None:
        """Read the target's scope fields (public or internal) and refuse a write outside the scope."""
        if self.scope.unrestricted:
            return
        # Only the scope's own fields (public or internal); the id always comes back.
        needed = unified_to_bamboohr(self.scope.fields) or ["supervisorEId"]
        current = to_employee(self.connector.get_employee(id, needed), False)
        self.scope.check_write(current, data, team=team if team is not None else self._team())


__all__ = ["Policed", "PolicedBambooHR", "scope_error"]
