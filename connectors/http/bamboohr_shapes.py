"""What BambooHR answers, read: JSON with its empty values as ``None``, ids as strings, records
mapped onto the provider-neutral ``connectors.hris`` shapes, ids from ``Location``, report files."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from connectors.hris import Employee, ReportFile, TimeOffRequest, id_str, parse_amount, parse_date

# Report formats: the query value (the spec's enum is lowercase; BambooHR accepts any case) and the
# Accept header to send with it (anything else, even */*, makes BambooHR answer 404).
REPORT_FORMATS: dict[str, str] = {
    "json": "application/json",
    "csv": "text/csv",
    "pdf": "application/pdf",
    "xls": "application/vnd.ms-excel",
    "xml": "text/xml",
}
# BambooHR's time-off statuses -> the neutral ones (it writes "canceled" and "superceded").
TIME_OFF_STATUS_IN = {
    "canceled": "cancelled",
    "cancelled": "cancelled",
    "superceded": "superseded",
    "declined": "denied",
}

# A value of "" or "0000-00-00" right after a key: BambooHR's ways of saying "no value". In valid
# JSON a colon followed by a quote opens a value (a colon inside a string followed by a quote would
# have that quote close the string, and a quote cannot follow a closing quote), so the rewrite below
# only ever touches values.
_EMPTY_VALUE = re.compile(rb':\s*"(?:0000-00-00)?"')


def read_json(response: httpx.Response) -> Any:
    """The body parsed, with BambooHR's empty values as null.

    Done on the text, at C speed: cleaning 10,000 records value by value in Python costs more than
    parsing them (the bench's list-10,000-employees ratio depends on it).
    """
    content = response.content.replace(b':""', b":null").replace(b':"0000-00-00"', b":null")
    if b'": "' in content:  # pretty-printed JSON (BambooHR's is compact): the slower, general rewrite
        content = _EMPTY_VALUE.sub(b":null", content)
    return json.loads(content)


def clean(record: dict[str, Any]) -> dict[str, Any]:
    """Ids as strings (JSON from ``read_json`` already has empty values as None)."""
    rid = record.get("id")
    if rid is not None and rid.__class__ is not str:
        record["id"] = id_str(rid)
    return record


def clean_all(records: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """``clean`` on a listing; an endpoint sends all its ids one way, so the first one tells."""
    if not records:
        return []
    first = records[0].get("id") if isinstance(records[0], dict) else None
    return records if first.__class__ is str else [clean(r) for r in records]


def clean_time_off(record: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(record)
    for key in ("id", "employeeId"):
        if key in out:
            out[key] = id_str(out[key])
    return out


def employee_listing(data: Mapping[str, Any]) -> dict[str, Any]:
    """A directory or a JSON report: its ``fields`` header and its ``employees``, cleaned."""
    return {"fields": data.get("fields") or [], "employees": clean_all(data.get("employees"))}


def changes(data: Mapping[str, Any]) -> dict[str, Any]:
    """``/employees/changed`` as ``{"latest", "changes": [{"id", "action", "last_changed"}]}``, oldest first."""
    employees = data.get("employees") or {}
    found = [
        {
            "id": id_str(entry.get("id") or key),
            "action": str(entry.get("action") or "").lower() or None,
            "last_changed": entry.get("lastChanged"),
        }
        for key, entry in (employees.items() if isinstance(employees, Mapping) else [])
    ]
    found.sort(key=lambda c: (c["last_changed"] or "", c["id"] or ""))
    return {"latest": data.get("latest"), "changes": found}


def new_id(response: httpx.Response) -> str | None:
    """BambooHR gives a created resource's id as the last segment of the Location header."""
    path = urlsplit(response.headers.get("Location", "")).path.rstrip("/")
    last = path.rsplit("/", 1)[-1] if path else ""
    return last if last.isdigit() else None


def report_result(response: httpx.Response, fmt: str) -> dict[str, Any] | ReportFile:
    """A JSON report as ``{"title", "fields", "employees"}``; any other format as the file it is."""
    if fmt == "json":
        data = read_json(response)
        return {"title": data.get("title"), **employee_listing(data)}
    disposition = response.headers.get("Content-Disposition", "")
    match = re.search(r"filename\*?=(?:UTF-8'')?\"?([^\";]+)\"?", disposition)
    return ReportFile(
        content=response.content,
        content_type=response.headers.get("Content-Type", REPORT_FORMATS[fmt]),
        filename=unquote(match.group(1)) if match else None,
    )


# --- the provider-neutral shapes -----------------------------------------------------------------
def _text(value: Any) -> str | None:
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def to_employee(record: Mapping[str, Any], include_raw: bool) -> Employee:
    first, last = _text(record.get("firstName")), _text(record.get("lastName"))
    display = _text(record.get("displayName")) or (" ".join(p for p in (first, last) if p) or None)
    status = _text(record.get("status"))
    return Employee(
        id=id_str(record.get("id")) or "",
        first_name=first,
        last_name=last,
        preferred_name=_text(record.get("preferredName")),
        display_name=display,
        email=_text(record.get("workEmail")),
        department=_text(record.get("department")),
        division=_text(record.get("division")),
        location=_text(record.get("location")),
        job_title=_text(record.get("jobTitle")),
        status=status.lower() if status else None,
        hire_date=parse_date(record.get("hireDate")),
        termination_date=parse_date(record.get("terminationDate")),
        manager_id=id_str(_text(record.get("supervisorEId"))),
        employee_number=_text(record.get("employeeNumber")),
        raw=dict(record) if include_raw else None,
    )


def to_time_off(record: Mapping[str, Any], include_raw: bool) -> TimeOffRequest:
    status = record.get("status")
    status_value = status.get("status") if isinstance(status, Mapping) else status
    status_text = _text(status_value)
    kind = _mapping(record.get("type"))
    amount = _mapping(record.get("amount"))
    notes = _mapping(record.get("notes"))
    return TimeOffRequest(
        id=id_str(record.get("id")) or "",
        employee_id=id_str(record.get("employeeId")),
        employee_name=_text(record.get("name")),
        type=_text(kind.get("name")),
        type_id=id_str(kind.get("id")),
        start=parse_date(record.get("start")),
        end=parse_date(record.get("end")),
        amount=parse_amount(amount.get("amount")),
        unit=_text(amount.get("unit")),
        status=TIME_OFF_STATUS_IN.get(status_text.lower(), status_text.lower()) if status_text else None,
        created=parse_date(record.get("created")),
        notes={str(k): str(v) for k, v in notes.items() if v},
        raw=dict(record) if include_raw else None,
    )
