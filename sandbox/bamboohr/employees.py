"""The employee endpoints: one employee, the directory, add, update, and what changed since a time."""

from __future__ import annotations

import datetime as dt
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.bamboohr import data
from sandbox.bamboohr.data import Company
from sandbox.bamboohr.fields import add_employees_xml, check_values, field_meta, field_names, shown
from sandbox.bamboohr.wire import (
    Fail,
    Request,
    Response,
    aware_datetime,
    location,
    negotiated,
    read_body,
)

DIRECTORY_FIELDS = [
    "displayName",
    "firstName",
    "lastName",
    "preferredName",
    "jobTitle",
    "workPhone",
    "mobilePhone",
    "workEmail",
    "department",
    "location",
    "division",
    "supervisor",
]
CHANGE_TYPES = ("inserted", "updated", "deleted", "all")
# add-employee's 429 when the account's employee limit is reached (BambooHR's help centre): no
# Retry-After, since waiting does not help; BambooHR's throttle 429 always carries one.
EMPLOYEE_LIMIT_MESSAGE = "Limit Exceeded: the account's employee limit is reached"


def find_employee(company: Company, eid: int) -> dict[str, str | None]:
    record = company.employees.get(eid)
    if record is None:
        raise Fail(404, "Employee not found")
    return record


def _xml_fields(root: ET.Element) -> dict[str, Any]:
    if root.tag != "employee":
        raise Fail(400, "Malformed XML: expected <employee>")
    return {node.get("id", ""): (node.text or "") for node in root.findall("field")}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass
class Employees:
    company: Company
    lock: threading.RLock
    key_employee_id: int = 1
    employee_limit: int | None = None
    # Told after each change (created/updated, id, the aliases whose value changed): the webhooks.
    on_change: Callable[[str, int, list[str]], None] | None = None

    def _changed(self, action: str, eid: int, aliases: list[str]) -> None:
        if self.on_change is not None:
            self.on_change(action, eid, aliases)

    def get_employee(self, request: Request, eid: str) -> Response:
        employee_id = self.key_employee_id if int(eid) == 0 else int(eid)
        raw = request.query.get("fields") or "firstName,lastName"
        names = field_names(f.strip() for f in raw.split(",") if f.strip())
        with self.lock:
            record = find_employee(self.company, employee_id)
            # Unknown fields, like fields the caller may not see, are left out.
            out: dict[str, Any] = {"id": str(employee_id)}
            out.update({n: shown(n, record.get(n)) for n in names if n in data.FIELD_BY_ALIAS})

        def to_xml() -> ET.Element:
            root = ET.Element("employee", id=out["id"])
            for name, value in out.items():
                if name != "id":
                    ET.SubElement(root, "field", id=name).text = value or ""
            return root

        return negotiated(request, out, to_xml)

    def directory(self, request: Request) -> Response:
        fields = DIRECTORY_FIELDS
        only_current = request.query.get("onlyCurrent", "true").lower() not in ("false", "0", "no")
        today = data.utc_today().isoformat()
        with self.lock:
            employees = []
            for eid, rec in self.company.employees.items():
                if rec.get("status") != "Active" or (only_current and (rec.get("hireDate") or "") > today):
                    continue
                entry: dict[str, Any] = {"id": str(eid)}
                entry.update({f: rec.get(f) for f in fields})
                entry.update(photoUploaded=False, photoUrl=None, canUploadPhoto=1)
                employees.append(entry)
        if not employees:
            raise Fail(404, "The directory is empty")

        def to_xml() -> ET.Element:
            root = ET.Element("directory")
            fieldset = ET.SubElement(root, "fieldset")
            for f in fields:
                ET.SubElement(fieldset, "field", id=f).text = data.FIELD_BY_ALIAS[f][1]
            add_employees_xml(root, employees, fields)
            return root

        return negotiated(request, {"fields": field_meta(fields), "employees": employees}, to_xml)

    def create_employee(self, request: Request) -> Response:
        body = read_body(request, _xml_fields)
        if not str(body.get("firstName") or "").strip() or not str(body.get("lastName") or "").strip():
            raise Fail(400, "firstName and lastName are required")
        with self.lock:
            if self.employee_limit is not None and len(self.company.employees) >= self.employee_limit:
                raise Fail(429, EMPLOYEE_LIMIT_MESSAGE)
            values = check_values(self.company, body)
            eid = self.company.next_employee_id
            self.company.next_employee_id += 1
            record: dict[str, str | None] = dict.fromkeys(data.FIELD_BY_ALIAS)
            record.pop("lastChanged", None)
            record.update(status="Active", employeeNumber=str(1000 + eid))
            record.update(values)
            self.company.employees[eid] = record
            data.refresh_derived(self.company, eid)
            self.company.changes[eid] = ("Inserted", _now())
        self._changed("created", eid, sorted(k for k, v in values.items() if v not in (None, "")))
        return Response(201, [("Location", location(request, f"employees/{eid}"))])

    def update_employee(self, request: Request, eid: str) -> Response:
        body = read_body(request, _xml_fields)
        with self.lock:
            record = find_employee(self.company, int(eid))
            before = dict(record)
            record.update(check_values(self.company, body, exclude=int(eid)))
            data.refresh_derived(self.company, int(eid))
            changed = sorted(k for k, v in record.items() if before.get(k) != v)
            self.company.changes[int(eid)] = ("Updated", _now())
        if changed:
            self._changed("updated", int(eid), changed)
        return Response(200)

    def changed(self, request: Request) -> Response:
        since = aware_datetime(
            request.query.get("since", "").replace(" ", "+"),
            "The since parameter is missing or is not an ISO 8601 date-time",
        )
        kind = request.query.get("type", "all").lower()
        if kind not in CHANGE_TYPES:
            raise Fail(400, "Invalid type: use inserted, updated, deleted or all")
        with self.lock:
            found = {
                eid: (action, when)
                for eid, (action, when) in self.company.changes.items()
                if when > since and (kind == "all" or action.lower() == kind)
            }
        latest = max((when for _a, when in found.values()), default=since)
        payload: dict[str, Any] = {
            "latest": latest.isoformat(),
            "employees": {
                str(eid): {"id": str(eid), "action": action, "lastChanged": when.isoformat()}
                for eid, (action, when) in sorted(found.items())
            },
        }

        def to_xml() -> ET.Element:
            root = ET.Element("employees", latest=payload["latest"])
            for eid, (action, when) in sorted(found.items()):
                ET.SubElement(root, "employee", id=str(eid), action=action, lastChanged=when.isoformat())
            return root

        return negotiated(request, payload, to_xml)
