"""The time-off endpoints: list requests, create one, change its status, and the time-off types."""

from __future__ import annotations

import datetime as dt
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from sandbox.bamboohr import data
from sandbox.bamboohr.data import Company, TimeOff
from sandbox.bamboohr.employees import find_employee
from sandbox.bamboohr.wire import (
    Fail,
    Request,
    Response,
    date_value,
    int_value,
    json_response,
    location,
    negotiated,
    read_body,
    wants_json,
)

TIME_OFF_STATUSES = ("approved", "denied", "superceded", "requested", "canceled")
LIST_ACTIONS = ("view", "approve", "myRequests")
CREATE_STATUSES = {"approved": "approved", "denied": "denied", "declined": "denied", "requested": "requested"}
# PUT .../status: what a decision may say, in BambooHR's spelling.
DECISIONS = {
    "approved": "approved",
    "denied": "denied",
    "declined": "denied",
    "canceled": "canceled",
    "cancelled": "canceled",
}
WEEK = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _time_off_type(type_id: int) -> tuple[int, str, str, str, str] | None:
    return next((t for t in data.TIME_OFF_TYPES if t[0] == type_id), None)


def _xml_request(root: ET.Element) -> dict[str, Any]:
    if root.tag != "request":
        raise Fail(400, "Malformed XML: expected <request>")
    out: dict[str, Any] = {child.tag: (child.text or "") for child in root if child.tag not in ("notes", "dates")}
    notes = root.find("notes")
    if notes is not None:
        out["notes"] = [{"from": n.get("from", "employee"), "note": n.text or ""} for n in notes.findall("note")]
    return out


def _requests_xml(found: list[dict[str, Any]]) -> ET.Element:
    root = ET.Element("requests")
    for r in found:
        node = ET.SubElement(root, "request", id=str(r["id"]))
        ET.SubElement(node, "employee", id=str(r["employeeId"])).text = r["name"]
        ET.SubElement(node, "status", lastChanged=r["status"]["lastChanged"]).text = r["status"]["status"]
        for key in ("start", "end", "created"):
            ET.SubElement(node, key).text = r[key]
        ET.SubElement(node, "type", id=str(r["type"]["id"]), icon=r["type"]["icon"]).text = r["type"]["name"]
        ET.SubElement(node, "amount", unit=r["amount"]["unit"]).text = str(r["amount"]["amount"])
    return root


def _amount(value: Any, invalid: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise Fail(400, invalid) from None


def _days(body: dict[str, Any], start: dt.date, end: dt.date, per_day: float) -> tuple[dict[str, float], float | None]:
    """The amount per day (given, or every working day in full) and the total when one is given."""
    if isinstance(body.get("dates"), list) and body["dates"]:
        days: dict[str, float] = {}
        for item in body["dates"]:
            day = date_value(item.get("ymd") if isinstance(item, dict) else None, "ymd")
            days[day.isoformat()] = _amount(item.get("amount", per_day), "Invalid amount in dates")
        return days, None
    days = {d.isoformat(): per_day for d in data.working_days(start, end)}
    amount = _amount(body["amount"], "Invalid amount") if body.get("amount") not in (None, "") else None
    return days, amount


def _notes(body: dict[str, Any]) -> dict[str, str]:
    notes_in = body.get("notes") or []
    if not isinstance(notes_in, list):
        raise Fail(400, "notes must be a list of {from, note}")
    notes: dict[str, str] = {}
    for note in notes_in:
        if isinstance(note, dict) and note.get("note"):
            notes[str(note.get("from") or "employee")] = str(note["note"])
    return notes


@dataclass
class TimeOffDesk:
    company: Company
    lock: threading.RLock
    key_employee_id: int = 1
    numbers_as_strings: bool = False

    def _number(self, value: float | int) -> Any:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return str(value) if self.numbers_as_strings else value

    def _render(self, req: TimeOff, *, notes: bool = True) -> dict[str, Any]:
        employee = self.company.employees.get(req.employee_id, {})
        kind = _time_off_type(req.type_id)
        decided = req.status in ("approved", "denied", "canceled", "superceded")
        out: dict[str, Any] = {
            "id": self._number(req.id),
            "employeeId": self._number(req.employee_id),
            "name": data.display_name(employee) if employee else "",
            "status": {
                "lastChanged": req.status_changed.isoformat(),
                "lastChangedByUserId": self._number(req.status_changed_by),
                "status": req.status,
            },
            "start": req.start.isoformat(),
            "end": req.end.isoformat(),
            "created": req.created.isoformat(),
            "type": {
                "id": self._number(req.type_id),
                "name": kind[1] if kind else "",
                "icon": kind[4] if kind else "",
            },
            "amount": {"unit": req.unit, "amount": self._number(req.amount)},
            "actions": {
                "view": True,
                "edit": not decided,
                "cancel": req.status in ("requested", "approved"),
                "approve": req.status == "requested",
                "deny": req.status == "requested",
                "bypass": True,
            },
            "dates": {day: self._number(amount) for day, amount in req.dates.items() if amount},
        }
        if notes:
            out["notes"] = dict(req.notes)
        return out

    def list_time_off(self, request: Request) -> Response:
        q = request.query
        if not q.get("start") or not q.get("end"):
            raise Fail(400, "The start and end parameters are required (YYYY-MM-DD)")
        start, end = date_value(q["start"], "start"), date_value(q["end"], "end")
        request_id = int_value(q["id"], "id") if q.get("id") else None
        employee_id = int_value(q["employeeId"], "employeeId") if q.get("employeeId") else None
        types = {int_value(t, "type") for t in q.get("type", "").split(",") if t.strip()}
        statuses = {s.strip().lower() for s in q.get("status", "").split(",") if s.strip()}
        if statuses - set(TIME_OFF_STATUSES):
            raise Fail(400, f"Invalid status: use {', '.join(TIME_OFF_STATUSES)}")
        action = q.get("action", "view")
        if action not in LIST_ACTIONS:
            raise Fail(400, "Invalid action: use view, approve or myRequests")
        with self.lock:
            found = [
                self._render(r, notes=not q.get("excludeNote"))
                for r in self.company.time_off.values()
                if r.end >= start
                and r.start <= end
                and (request_id is None or r.id == request_id)
                and (employee_id is None or r.employee_id == employee_id)
                and (not types or r.type_id in types)
                and (not statuses or r.status in statuses)
                and (action != "approve" or r.status == "requested")
                and (action != "myRequests" or r.employee_id == self.key_employee_id)
            ]
        return negotiated(request, found, lambda: _requests_xml(found))

    def create_time_off(self, request: Request, eid: str) -> Response:
        with self.lock:
            find_employee(self.company, int(eid))
        body = read_body(request, _xml_request)
        missing = [k for k in ("status", "start", "end", "timeOffTypeId") if body.get(k) in (None, "")]
        if missing:
            raise Fail(400, f"Missing required field(s): {', '.join(missing)}")
        status = CREATE_STATUSES.get(str(body["status"]).lower())
        if status is None:
            raise Fail(400, "Invalid status: use approved, denied or requested")
        start, end = date_value(body["start"], "start"), date_value(body["end"], "end")
        if end < start:
            raise Fail(400, "The end date must be on or after the start date")
        type_id = int_value(body["timeOffTypeId"], "timeOffTypeId")
        kind = _time_off_type(type_id)
        if kind is None:
            raise Fail(400, "Invalid time off type")
        days, amount = _days(body, start, end, 8.0 if kind[2] == "hours" else 1.0)
        notes = _notes(body)
        with self.lock:
            previous = body.get("previousRequest")
            if previous not in (None, ""):
                prior = self.company.time_off.get(int_value(previous, "previousRequest"))
                if prior is None or prior.employee_id != int(eid):
                    raise Fail(400, "Invalid previous request id")
                prior.status, prior.status_changed = "superceded", data.utc_today()
            created = data.add_time_off(
                self.company,
                employee_id=int(eid),
                type_id=type_id,
                start=start,
                end=end,
                status=status,
                dates=days,
                notes=notes,
                created=data.utc_today(),
                changed_by=self.key_employee_id,
                amount=amount,
            )
            rendered = self._render(created)
        headers = [("Location", location(request, f"time_off/requests/{created.id}"))]
        return json_response(rendered, 201, headers) if wants_json(request) else Response(201, headers)

    def time_off_status(self, request: Request, rid: str) -> Response:
        with self.lock:
            req = self.company.time_off.get(int(rid))
            if req is None:
                raise Fail(404, "Time off request not found")
        body = read_body(request, _xml_request)
        status = DECISIONS.get(str(body.get("status") or "").lower())
        if status is None:
            raise Fail(400, "Invalid status: use approved, denied, declined or canceled")
        with self.lock:
            if req.status in ("canceled", "superceded") or (req.status == "denied" and status != "denied"):
                raise Fail(403, f"A {req.status} request cannot be changed")
            req.status = status
            req.status_changed = data.utc_today()
            req.status_changed_by = self.key_employee_id
            if body.get("note"):
                req.notes["manager"] = str(body["note"])
            rendered = self._render(req)
        return json_response(rendered)

    def time_off_types(self, request: Request) -> Response:
        return json_response(
            {
                "timeOffTypes": [
                    {"id": tid, "name": name, "units": units, "color": color, "icon": icon, "source": "internal"}
                    for tid, name, units, color, icon in data.TIME_OFF_TYPES
                ],
                "defaultHours": [
                    {"name": day, "amount": "8" if day not in ("Saturday", "Sunday") else "0"} for day in WEEK
                ],
            }
        )
