"""Reports and field metadata: saved company reports, custom reports (JSON or XML definitions) in
every format BambooHR offers, the account's fields and its list fields' options."""

from __future__ import annotations

import datetime as dt
import re
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from sandbox.bamboohr import data
from sandbox.bamboohr.data import Company
from sandbox.bamboohr.fields import add_employees_xml, field_meta, field_names, shown
from sandbox.bamboohr.report_files import FILE_WRITERS
from sandbox.bamboohr.wire import (
    Fail,
    Request,
    Response,
    aware_datetime,
    int_value,
    json_object,
    json_response,
    negotiated,
    xml_document,
    xml_response,
)

REPORT_CONTENT_TYPES = {
    "json": "application/json",
    "xml": "text/xml",
    "csv": "text/csv",
    "pdf": "application/pdf",
    "xls": "application/vnd.ms-excel",
}


def _yes_no(value: Any) -> bool | None:
    """``"yes"`` / ``"no"`` as a flag; anything else leaves the default."""
    return None if value not in ("yes", "no") else value == "yes"


def _xml_report(root: ET.Element) -> dict[str, Any]:
    if root.tag != "report":
        raise ET.ParseError("expected <report>")
    out: dict[str, Any] = {"title": root.findtext("title") or None}
    out["fields"] = [f.get("id") for f in root.findall("fields/field") if f.get("id")]
    filters: dict[str, Any] = {}
    changed = root.find("filters/lastChanged")
    if changed is not None and changed.text:
        filters["lastChanged"] = {"value": changed.text.strip(), "includeNull": changed.get("includeNull", "yes")}
    ids = root.findall("filters/employeeIds/employeeId")
    if ids:
        filters["employeeIds"] = [i.text for i in ids]
    out["filters"] = filters
    if root.findtext("filterDuplicates"):
        out["filterDuplicates"] = root.findtext("filterDuplicates")
    return out


def _report_format(request: Request) -> str:
    fmt = request.query.get("format", "").strip().lower()
    if fmt:
        if fmt not in REPORT_CONTENT_TYPES:
            raise Fail(404, f"Unsupported report format: {fmt}")
        return fmt
    # Without format, only these exact Accept values work; anything else (even */*) is a 404.
    accept = request.header("Accept").strip()
    for name, content_type in REPORT_CONTENT_TYPES.items():
        if accept == content_type:
            return name
    raise Fail(404, "Report format not found: pass format= or an exact Accept type")


def _unique(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    seen: set[tuple[Any, ...]] = set()
    unique = []
    for row in rows:
        key = tuple(row.values())
        if key not in seen:
            seen.add(key)
            unique.append(row)
    return unique


def _report_xml(title: str, rows: list[dict[str, str]], fields: list[str]) -> ET.Element:
    root = ET.Element("report")
    ET.SubElement(root, "title").text = title
    add_employees_xml(root, rows, fields)
    return root


@dataclass
class Reports:
    company: Company
    lock: threading.RLock

    # --- metadata ------------------------------------------------------------------------------
    def meta_fields(self, request: Request) -> Response:
        fields: list[dict[str, Any]] = [
            {"id": fid, "name": name, "type": ftype, "alias": alias} for fid, name, ftype, alias in data.FIELDS
        ]

        def to_xml() -> ET.Element:
            root = ET.Element("fields")
            for f in fields:
                ET.SubElement(root, "field", id=str(f["id"]), type=f["type"], alias=f["alias"]).text = f["name"]
            return root

        return negotiated(request, fields, to_xml)

    def meta_lists(self, request: Request) -> Response:
        lists: list[dict[str, Any]] = []
        with self.lock:
            for alias, options in self.company.options.items():
                fid, name, _ftype = data.FIELD_BY_ALIAS[alias]
                lists.append(
                    {
                        "fieldId": str(fid),
                        "alias": alias,
                        "name": name,
                        "manageable": "yes",
                        "multiple": "no",
                        "options": [
                            {
                                "id": fid * 1000 + i,
                                "name": o,
                                "archived": "no",
                                "createdDate": None,
                                "archivedDate": None,
                            }
                            for i, o in enumerate(options, start=1)
                        ],
                    }
                )

        def to_xml() -> ET.Element:
            root = ET.Element("lists")
            for entry in lists:
                node = ET.SubElement(root, "list", fieldId=entry["fieldId"], alias=entry["alias"])
                ET.SubElement(node, "name").text = entry["name"]
            return root

        as_json = request.query.get("format", "").lower() == "json"
        return negotiated(request, lists, to_xml, as_json=as_json)

    # --- reports -------------------------------------------------------------------------------
    def _report(
        self,
        title: str,
        names: list[str],
        fmt: str,
        *,
        employee_ids: set[int] | None = None,
        changed_since: dt.datetime | None = None,
        dedupe: bool | None = None,
    ) -> Response:
        fields = [n for n in names if n in data.FIELD_BY_ALIAS]  # unknown fields are silently dropped
        with self.lock:
            rows = [
                {"id": str(eid), **{f: shown(f, rec.get(f)) or "" for f in fields}}
                for eid, rec in self.company.employees.items()
                if (employee_ids is None or eid in employee_ids)
                and (
                    changed_since is None
                    or (eid in self.company.changes and self.company.changes[eid][1] >= changed_since)
                )
            ]
        if dedupe if dedupe is not None else fmt in ("json", "xml"):
            rows = _unique(rows)
        meta = field_meta(fields)
        if fmt == "json":
            return json_response({"title": title, "fields": meta, "employees": rows})
        if fmt == "xml":
            return xml_response(_report_xml(title, rows, fields))
        slug = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-") or "report"
        headers = [
            ("Content-Type", REPORT_CONTENT_TYPES[fmt]),
            ("Content-Disposition", f'attachment; filename="{slug}.{fmt}"'),
        ]
        table = [[row[f] for f in fields] for row in rows]
        return Response(200, headers, FILE_WRITERS[fmt](title, [m["name"] for m in meta], table))

    def company_report(self, request: Request, rid: str) -> Response:
        if not rid.isdigit() or int(rid) not in data.REPORTS:
            raise Fail(404, "Report not found")
        fmt = _report_format(request)
        title, names = data.REPORTS[int(rid)]
        return self._report(title, names, fmt, dedupe=_yes_no(request.query.get("fd", "").lower()))

    def custom_report(self, request: Request) -> Response:
        # Only exactly "application/json" is read as JSON; anything else goes to the XML parser.
        if request.header("Content-Type").strip().lower() == "application/json":
            body = json_object(request.body or b"null", "The report definition must be a JSON object")
        else:
            body = xml_document(request.body or b"", _xml_report)
        fields = body.get("fields")
        if not isinstance(fields, list) or not fields:
            raise Fail(400, "The report definition needs a non-empty fields list")
        names = field_names(fields)
        fmt = _report_format(request)
        filters = body.get("filters") or {}
        employee_ids = None
        if filters.get("employeeIds") is not None:
            employee_ids = {int_value(i, "employeeIds") for i in filters["employeeIds"]}
        changed_since = None
        last_changed = filters.get("lastChanged") or {}
        if last_changed.get("value"):
            changed_since = aware_datetime(
                str(last_changed["value"]), "Invalid lastChanged value: use an ISO 8601 date-time"
            )
        return self._report(
            str(body.get("title") or "Custom report"),
            names,
            fmt,
            employee_ids=employee_ids,
            changed_since=changed_since,
            dedupe=_yes_no(body.get("filterDuplicates")),
        )
