"""BambooHR's v1 API as the sandbox answers it: routing, auth, validation, faults and rendering.

Transport-free (``SandboxApp.handle(Request) -> Response``); ``server.py`` puts it on a socket.
Status codes, headers and bodies follow BambooHR's OpenAPI description (``sandbox/bamboohr/spec/``):
JSON only when asked for (XML otherwise), 201 + Location on create, 409 on a duplicate work email,
400 with BambooHR's error-message headers, 404 for unknown paths, ids and report formats.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import email.utils
import hmac
import io
import json
import math
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter, deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from sandbox.bamboohr import data
from sandbox.bamboohr.data import Company, TimeOff

# The help centre's spelling (three s) and the one newer clients read; see the README, section 5.
DEFAULT_ERROR_HEADERS = ("X-BambooHR-Error-Messsage", "X-BambooHR-Error-Message")
REPORT_CONTENT_TYPES = {
    "json": "application/json",
    "xml": "text/xml",
    "csv": "text/csv",
    "pdf": "application/pdf",
    "xls": "application/vnd.ms-excel",
}
TIME_OFF_STATUSES = ("approved", "denied", "superceded", "requested", "canceled")
MAX_FIELDS = 400


@dataclass
class Request:
    method: str
    path: str
    query_string: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)  # keys lower-case
    body: bytes = b""

    def __post_init__(self) -> None:
        self.query = {k: v[-1] for k, v in parse_qs(self.query_string, keep_blank_values=True).items()}

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


@dataclass
class Exchange:
    """One request as received and the response as sent (recorded for contract tests)."""

    method: str
    path: str
    query_string: str
    headers: dict[str, str]
    body: bytes
    status: int
    response_headers: list[tuple[str, str]]
    response_body: bytes


@dataclass
class Logged:
    at: float  # time.monotonic()
    method: str
    path: str
    status: int


class Fail(Exception):
    """An error answer: status, BambooHR's message (in the error headers), optional JSON body."""

    def __init__(self, status: int, message: str = "", body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.body = body


@dataclass
class Faults:
    throttle_until: float = 0.0  # monotonic; a throttle window when count is None
    throttle_retry_after: float = 0.0
    throttle_count: int | None = None
    throttle_http_date: bool = False
    fail_status: int | None = None
    fail_count: int | None = None
    slow_seconds: float = 0.0

    def describe(self) -> dict[str, Any]:
        now = time.monotonic()
        throttling = self.throttle_count is not None and self.throttle_count > 0 or self.throttle_until > now
        return {
            "throttle": {"retry_after": self.throttle_retry_after, "count": self.throttle_count}
            if throttling
            else None,
            "fail": {"status": self.fail_status, "count": self.fail_count} if self.fail_status else None,
            "slow": {"seconds": self.slow_seconds} if self.slow_seconds else None,
        }


_API_PREFIX = re.compile(r"^/api/(?:v1|gateway\.php/(?P<company>[^/]+)/v1)(?P<rest>/.*)?$")
BearerCheck = Callable[[str], bool]


class SandboxApp:
    def __init__(
        self,
        company: Company,
        *,
        api_key: str,
        bearer_tokens: BearerCheck | Collection[str] | None = None,
        error_headers: tuple[str, ...] = DEFAULT_ERROR_HEADERS,
        time_off_numbers_as_strings: bool = False,
        employee_limit: int | None = None,
        record: bool = False,
        key_employee_id: int = 1,
    ) -> None:
        self.company = company
        self.api_key = api_key
        self.bearer_tokens = bearer_tokens
        self.error_headers = error_headers
        self.time_off_numbers_as_strings = time_off_numbers_as_strings
        self.employee_limit = employee_limit
        self.record = record
        self.key_employee_id = key_employee_id
        self.faults = Faults()
        self.lock = threading.RLock()
        self.stats_lock = threading.Lock()
        self.log: deque[Logged] = deque(maxlen=100_000)  # the latest requests, for tests to inspect
        self.total = 0
        self.by_status: Counter[int] = Counter()
        self.by_route: Counter[str] = Counter()
        self.exchanges: list[Exchange] = []
        # (method, path under /api/v1, handler, the spec's operationId)
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., Response], str]] = [
            ("GET", re.compile(r"^employees/directory$"), self.directory, "get-employees-directory"),
            ("GET", re.compile(r"^employees/changed$"), self.changed, "get-changed-employee-ids"),
            ("GET", re.compile(r"^employees/(?P<eid>\d+)$"), self.get_employee, "get-employee"),
            ("POST", re.compile(r"^employees$"), self.create_employee, "create-employee"),
            ("POST", re.compile(r"^employees/(?P<eid>\d+)$"), self.update_employee, "update-employee"),
            (
                "PUT",
                re.compile(r"^employees/(?P<eid>\d+)/time_off/request$"),
                self.create_time_off,
                "create-time-off-request",
            ),
            ("GET", re.compile(r"^time_off/requests$"), self.list_time_off, "list-time-off-requests"),
            (
                "PUT",
                re.compile(r"^time_off/requests/(?P<rid>\d+)/status$"),
                self.time_off_status,
                "update-time-off-request-status",
            ),
            ("GET", re.compile(r"^meta/time_off/types$"), self.time_off_types, "list-time-off-types"),
            ("GET", re.compile(r"^meta/fields$"), self.meta_fields, "list-fields"),
            ("GET", re.compile(r"^meta/lists$"), self.meta_lists, "list-list-fields"),
            ("GET", re.compile(r"^reports/(?P<rid>[^/]+)$"), self.company_report, "get-company-report"),
            ("POST", re.compile(r"^reports/custom$"), self.custom_report, "request-custom-report"),
        ]

    # --- entry point -------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        if request.path.startswith("/__sandbox__/"):
            return self._control(request)
        response = self._api(request)
        with self.stats_lock:
            self.total += 1
            self.log.append(Logged(time.monotonic(), request.method, request.path, response.status))
            self.by_status[response.status] += 1
            if self.record:
                self.exchanges.append(
                    Exchange(
                        request.method,
                        request.path,
                        request.query_string,
                        dict(request.headers),
                        request.body,
                        response.status,
                        list(response.headers),
                        response.body,
                    )
                )
        return response

    def _api(self, request: Request) -> Response:
        match = _API_PREFIX.match(request.path)
        if not match or (match.group("company") is not None and match.group("company") != self.company.name):
            return self._error(404, "Not found")
        fault = self._fault()
        if fault is not None:
            return fault
        if not self._authorized(request):
            return self._error(401, "Authentication failed: missing or invalid API key or token")
        rest = (match.group("rest") or "/").strip("/")
        for method, pattern, handler, operation in self.routes:
            found = pattern.match(rest)
            if found and method == request.method:
                with self.stats_lock:
                    self.by_route[operation] += 1
                try:
                    return handler(request, **found.groupdict())
                except Fail as exc:
                    return self._error(exc.status, exc.message, exc.body)
        # BambooHR answers 404 for unknown paths and for methods a path does not support.
        return self._error(404, "Not found")

    # --- faults, auth, rendering -------------------------------------------------------------
    def _fault(self) -> Response | None:
        with self.lock:
            faults = self.faults
            delay = faults.slow_seconds
            now = time.monotonic()
            throttled: float | None = None
            if faults.throttle_count is not None and faults.throttle_count > 0:
                faults.throttle_count -= 1
                throttled = faults.throttle_retry_after
            elif faults.throttle_count is None and faults.throttle_until > now:
                throttled = faults.throttle_until - now
            failing = None
            if throttled is None and faults.fail_status is not None:
                failing = faults.fail_status
                if faults.fail_count is not None:
                    faults.fail_count -= 1
                    if faults.fail_count <= 0:
                        faults.fail_status, faults.fail_count = None, None
            http_date = faults.throttle_http_date
        if delay:
            time.sleep(delay)
        if throttled is not None:
            seconds = max(1, math.ceil(throttled - 1e-6))  # Retry-After is whole seconds
            value = email.utils.formatdate(time.time() + seconds, usegmt=True) if http_date else str(seconds)
            return Response(
                503,
                [("Retry-After", value), ("Content-Type", "text/html; charset=UTF-8")],
                b"<html><body><h1>503 Service Unavailable</h1>Too many requests, slow down.</body></html>",
            )
        if failing is not None:
            reason = HTTPStatus(failing).phrase if failing in HTTPStatus._value2member_map_ else "Error"
            return Response(
                failing,
                [("Content-Type", "text/html; charset=UTF-8")],
                f"<html><body><h1>{failing} {reason}</h1></body></html>".encode(),
            )
        return None

    def _authorized(self, request: Request) -> bool:
        auth = request.header("Authorization")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "basic":
            try:
                user = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[0]
            except (ValueError, UnicodeDecodeError):
                return False
            return hmac.compare_digest(user.encode(), self.api_key.encode())
        if scheme.lower() == "bearer" and value.strip() and self.bearer_tokens is not None:
            token = value.strip()
            if callable(self.bearer_tokens):
                return bool(self.bearer_tokens(token))
            return any(hmac.compare_digest(token.encode(), t.encode()) for t in self.bearer_tokens)
        return False

    def _error(self, status: int, message: str, body: Any = None) -> Response:
        headers = [(name, message) for name in self.error_headers] if message else []
        payload = b""
        if body is not None:
            payload = json.dumps(body).encode()
            headers.append(("Content-Type", "application/json"))
        return Response(status, headers, payload)

    @staticmethod
    def _wants_json(request: Request) -> bool:
        return "application/json" in request.header("Accept").lower()

    @staticmethod
    def _json(payload: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        return Response(status, [("Content-Type", "application/json; charset=utf-8"), *(headers or [])], body)

    @staticmethod
    def _xml(root: ET.Element, status: int = 200) -> Response:
        return Response(status, [("Content-Type", "text/xml; charset=UTF-8")], ET.tostring(root, encoding="utf-8"))

    def _body(self, request: Request, xml_reader: Callable[[ET.Element], dict[str, Any]]) -> dict[str, Any]:
        """A JSON or XML body, as BambooHR reads them (400 when it cannot)."""
        content_type = request.header("Content-Type").split(";")[0].strip().lower()
        if not request.body:
            raise Fail(400, "Missing request body")
        if content_type in ("application/xml", "text/xml"):
            try:
                return xml_reader(ET.fromstring(request.body))
            except ET.ParseError:
                raise Fail(400, "Malformed XML") from None
        try:
            parsed = json.loads(request.body)
        except ValueError:
            raise Fail(400, "Malformed JSON") from None
        if not isinstance(parsed, dict):
            raise Fail(400, "The request body must be a JSON object")
        return parsed

    def _location(self, request: Request, suffix: str) -> str:
        host = request.header("Host") or "127.0.0.1"
        match = _API_PREFIX.match(request.path)
        prefix = request.path[: match.start("rest")] if match and match.group("rest") else "/api/v1"
        return f"http://{host}{prefix}/{suffix}"

    # --- employees ---------------------------------------------------------------------------
    def _employee(self, eid: int) -> dict[str, str | None]:
        record = self.company.employees.get(eid)
        if record is None:
            raise Fail(404, "Employee not found")
        return record

    @staticmethod
    def _value(alias: str, value: str | None) -> str | None:
        if value is None and alias in data.DATE_FIELDS:
            return "0000-00-00"  # how BambooHR shows a date it does not have
        return value

    def _field_list(self, raw: str) -> list[str]:
        names = [f.strip() for f in raw.split(",") if f.strip()]
        if len(names) > MAX_FIELDS:
            raise Fail(400, f"A maximum of {MAX_FIELDS} fields may be requested")
        return [data.FIELD_ALIAS_BY_ID.get(n, n) for n in names]

    def get_employee(self, request: Request, eid: str) -> Response:
        employee_id = self.key_employee_id if int(eid) == 0 else int(eid)
        names = self._field_list(request.query.get("fields") or "firstName,lastName")
        with self.lock:
            record = self._employee(employee_id)
            # Unknown fields, like fields the caller may not see, are left out.
            out: dict[str, Any] = {"id": str(employee_id)}
            out.update({n: self._value(n, record.get(n)) for n in names if n in data.FIELD_BY_ALIAS})
        if self._wants_json(request):
            return self._json(out)
        root = ET.Element("employee", id=out.pop("id"))
        for name, value in out.items():
            ET.SubElement(root, "field", id=name).text = value or ""
        return self._xml(root)

    def directory(self, request: Request) -> Response:
        fields = ["displayName", "firstName", "lastName", "preferredName", "jobTitle", "workPhone", "mobilePhone"]
        fields += ["workEmail", "department", "location", "division", "supervisor"]
        only_current = request.query.get("onlyCurrent", "true").lower() not in ("false", "0", "no")
        today = dt.date.today().isoformat()
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
        meta = [{"id": f, "type": data.FIELD_BY_ALIAS[f][2], "name": data.FIELD_BY_ALIAS[f][1]} for f in fields]
        if self._wants_json(request):
            return self._json({"fields": meta, "employees": employees})
        root = ET.Element("directory")
        fieldset = ET.SubElement(root, "fieldset")
        for f in fields:
            ET.SubElement(fieldset, "field", id=f).text = data.FIELD_BY_ALIAS[f][1]
        container = ET.SubElement(root, "employees")
        for entry in employees:
            node = ET.SubElement(container, "employee", id=entry["id"])
            for f in fields:
                ET.SubElement(node, "field", id=f).text = entry.get(f) or ""
        return self._xml(root)

    @staticmethod
    def _xml_fields(root: ET.Element) -> dict[str, Any]:
        if root.tag != "employee":
            raise Fail(400, "Malformed XML: expected <employee>")
        return {node.get("id", ""): (node.text or "") for node in root.findall("field")}

    def _check_values(self, values: dict[str, Any], *, exclude: int | None = None) -> dict[str, str | None]:
        """Validate written fields the way BambooHR does: 400 for unknown fields, 409 for bad values."""
        clean: dict[str, str | None] = {}
        for alias, value in values.items():
            alias = data.FIELD_ALIAS_BY_ID.get(str(alias), str(alias))
            if alias not in data.FIELD_BY_ALIAS and alias != "age":
                raise Fail(400, f"Unknown field: {alias}")
            if alias in data.READ_ONLY_FIELDS:
                continue
            if value is not None and not isinstance(value, str | int | float | bool):
                raise Fail(400, f"Invalid value for field {alias}: expected text")
            text = None if value is None or value == "" else str(value).strip()
            ftype = data.FIELD_BY_ALIAS[alias][2]
            if text is None:
                clean[alias] = None
                continue
            if ftype == "date":
                if text == "0000-00-00":
                    text = None
                elif not _is_date(text):
                    raise Fail(409, f"Invalid date for field {alias}: {text} (expected YYYY-MM-DD)")
            elif ftype == "email" and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", text):
                raise Fail(409, f"Invalid email address for field {alias}")
            elif ftype == "status":
                if text.lower() not in ("active", "inactive"):
                    raise Fail(409, "Invalid value for field status: use Active or Inactive")
                text = text.capitalize()
            elif ftype == "checkbox":
                if text.lower() not in ("yes", "no", "true", "false", "1", "0"):
                    raise Fail(409, f"Invalid value for field {alias}: use yes or no")
                text = "yes" if text.lower() in ("yes", "true", "1") else "no"
            elif ftype == "list":
                options = {o.lower(): o for o in self.company.options.get(alias, [])}
                if text.lower() not in options:
                    raise Fail(409, f"Invalid value for field {alias}: '{text}' is not one of its list options")
                text = options[text.lower()]
            elif alias == "supervisorEId" and (not text.isdigit() or int(text) not in self.company.employees):
                raise Fail(409, "Invalid value for field supervisorEId: no such employee")
            clean[alias] = text
        email_value = clean.get("workEmail")
        if email_value:
            for eid, rec in self.company.employees.items():
                if eid != exclude and (rec.get("workEmail") or "").lower() == email_value.lower():
                    raise Fail(409, "Duplicate email: another employee already has this work email")
        return clean

    def create_employee(self, request: Request) -> Response:
        body = self._body(request, self._xml_fields)
        if not str(body.get("firstName") or "").strip() or not str(body.get("lastName") or "").strip():
            raise Fail(400, "firstName and lastName are required")
        with self.lock:
            if self.employee_limit is not None and len(self.company.employees) >= self.employee_limit:
                raise Fail(429, "Limit Exceeded: the account's employee limit is reached")
            values = self._check_values(body)
            eid = self.company.next_employee_id
            self.company.next_employee_id += 1
            record: dict[str, str | None] = dict.fromkeys(data.FIELD_BY_ALIAS)
            record.pop("lastChanged", None)
            record.update(status="Active", employeeNumber=str(1000 + eid))
            record.update(values)
            self.company.employees[eid] = record
            data.refresh_derived(self.company, eid)
            self.company.changes[eid] = ("Inserted", dt.datetime.now(dt.UTC).replace(microsecond=0))
        return Response(201, [("Location", self._location(request, f"employees/{eid}"))])

    def update_employee(self, request: Request, eid: str) -> Response:
        body = self._body(request, self._xml_fields)
        with self.lock:
            record = self._employee(int(eid))
            values = self._check_values(body, exclude=int(eid))
            record.update(values)
            data.refresh_derived(self.company, int(eid))
            self.company.changes[int(eid)] = ("Updated", dt.datetime.now(dt.UTC).replace(microsecond=0))
        return Response(200)

    def changed(self, request: Request) -> Response:
        since_text = request.query.get("since", "")
        try:
            since = dt.datetime.fromisoformat(since_text.replace(" ", "+"))
        except ValueError:
            raise Fail(400, "The since parameter is missing or is not an ISO 8601 date-time") from None
        if since.tzinfo is None:
            since = since.replace(tzinfo=dt.UTC)
        kind = request.query.get("type", "all").lower()
        if kind not in ("inserted", "updated", "deleted", "all"):
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
        if self._wants_json(request):
            return self._json(payload)
        root = ET.Element("employees", latest=payload["latest"])
        for eid, (action, when) in sorted(found.items()):
            ET.SubElement(root, "employee", id=str(eid), action=action, lastChanged=when.isoformat())
        return self._xml(root)

    # --- time off ----------------------------------------------------------------------------
    def _number(self, value: float | int) -> Any:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return str(value) if self.time_off_numbers_as_strings else value

    def _render_time_off(self, req: TimeOff, *, notes: bool = True) -> dict[str, Any]:
        employee = self.company.employees.get(req.employee_id, {})
        type_name = next((t[1] for t in data.TIME_OFF_TYPES if t[0] == req.type_id), "")
        icon = next((t[4] for t in data.TIME_OFF_TYPES if t[0] == req.type_id), "")
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
            "type": {"id": self._number(req.type_id), "name": type_name, "icon": icon},
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

    @staticmethod
    def _date(value: Any, name: str) -> dt.date:
        text = str(value or "")
        if not _is_date(text):
            raise Fail(400, f"Invalid {name} date: '{text[:40]}' (use YYYY-MM-DD)")
        return dt.date.fromisoformat(text)

    @staticmethod
    def _int(value: Any, name: str) -> int:
        text = str(value).strip()
        if isinstance(value, bool) or not text.isdigit():
            raise Fail(400, f"Invalid {name}")
        return int(text)

    def list_time_off(self, request: Request) -> Response:
        q = request.query
        if not q.get("start") or not q.get("end"):
            raise Fail(400, "The start and end parameters are required (YYYY-MM-DD)")
        start, end = self._date(q["start"], "start"), self._date(q["end"], "end")
        request_id = self._int(q["id"], "id") if q.get("id") else None
        employee_id = self._int(q["employeeId"], "employeeId") if q.get("employeeId") else None
        types = {self._int(t, "type") for t in q.get("type", "").split(",") if t.strip()}
        statuses = {s.strip().lower() for s in q.get("status", "").split(",") if s.strip()}
        if statuses - set(TIME_OFF_STATUSES):
            raise Fail(400, f"Invalid status: use {', '.join(TIME_OFF_STATUSES)}")
        action = q.get("action", "view")
        if action not in ("view", "approve", "myRequests"):
            raise Fail(400, "Invalid action: use view, approve or myRequests")
        with self.lock:
            found = [
                self._render_time_off(r, notes=not q.get("excludeNote"))
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
        if self._wants_json(request):
            return self._json(found)
        root = ET.Element("requests")
        for r in found:
            node = ET.SubElement(root, "request", id=str(r["id"]))
            ET.SubElement(node, "employee", id=str(r["employeeId"])).text = r["name"]
            ET.SubElement(node, "status", lastChanged=r["status"]["lastChanged"]).text = r["status"]["status"]
            for key in ("start", "end", "created"):
                ET.SubElement(node, key).text = r[key]
            ET.SubElement(node, "type", id=str(r["type"]["id"]), icon=r["type"]["icon"]).text = r["type"]["name"]
            ET.SubElement(node, "amount", unit=r["amount"]["unit"]).text = str(r["amount"]["amount"])
        return self._xml(root)

    @staticmethod
    def _xml_request(root: ET.Element) -> dict[str, Any]:
        if root.tag != "request":
            raise Fail(400, "Malformed XML: expected <request>")
        out: dict[str, Any] = {child.tag: (child.text or "") for child in root if child.tag not in ("notes", "dates")}
        notes = root.find("notes")
        if notes is not None:
            out["notes"] = [{"from": n.get("from", "employee"), "note": n.text or ""} for n in notes.findall("note")]
        return out

    def create_time_off(self, request: Request, eid: str) -> Response:
        with self.lock:
            self._employee(int(eid))
        body = self._body(request, self._xml_request)
        missing = [k for k in ("status", "start", "end", "timeOffTypeId") if body.get(k) in (None, "")]
        if missing:
            raise Fail(400, f"Missing required field(s): {', '.join(missing)}")
        status = str(body["status"]).lower()
        if status not in ("approved", "denied", "declined", "requested"):
            raise Fail(400, "Invalid status: use approved, denied or requested")
        status = "denied" if status == "declined" else status
        start, end = self._date(body["start"], "start"), self._date(body["end"], "end")
        if end < start:
            raise Fail(400, "The end date must be on or after the start date")
        type_id = self._int(body["timeOffTypeId"], "timeOffTypeId")
        if type_id not in {t[0] for t in data.TIME_OFF_TYPES}:
            raise Fail(400, "Invalid time off type")
        unit = next(t[2] for t in data.TIME_OFF_TYPES if t[0] == type_id)
        per_day = 8.0 if unit == "hours" else 1.0
        days: dict[str, float] = {}
        if isinstance(body.get("dates"), list) and body["dates"]:
            for item in body["dates"]:
                day = self._date(item.get("ymd") if isinstance(item, dict) else None, "ymd")
                try:
                    days[day.isoformat()] = float(item.get("amount", per_day))
                except (TypeError, ValueError):
                    raise Fail(400, "Invalid amount in dates") from None
            amount: float | None = None
        else:
            days = {d.isoformat(): per_day for d in data.working_days(start, end)}
            try:
                amount = float(body["amount"]) if body.get("amount") not in (None, "") else None
            except (TypeError, ValueError):
                raise Fail(400, "Invalid amount") from None
        notes_in = body.get("notes") or []
        notes: dict[str, str] = {}
        if not isinstance(notes_in, list):
            raise Fail(400, "notes must be a list of {from, note}")
        for note in notes_in:
            if isinstance(note, dict) and note.get("note"):
                notes[str(note.get("from") or "employee")] = str(note["note"])
        with self.lock:
            previous = body.get("previousRequest")
            if previous not in (None, ""):
                prior = self.company.time_off.get(self._int(previous, "previousRequest"))
                if prior is None or prior.employee_id != int(eid):
                    raise Fail(400, "Invalid previous request id")
                prior.status, prior.status_changed = "superceded", dt.date.today()
            created = data.add_time_off(
                self.company,
                employee_id=int(eid),
                type_id=type_id,
                start=start,
                end=end,
                status=status,
                dates=days,
                notes=notes,
                created=dt.date.today(),
                changed_by=self.key_employee_id,
                amount=amount,
            )
            rendered = self._render_time_off(created)
        location = [("Location", self._location(request, f"time_off/requests/{created.id}"))]
        return self._json(rendered, 201, location) if self._wants_json(request) else Response(201, location)

    def time_off_status(self, request: Request, rid: str) -> Response:
        with self.lock:
            req = self.company.time_off.get(int(rid))
            if req is None:
                raise Fail(404, "Time off request not found")
        body = self._body(request, self._xml_request)
        status = str(body.get("status") or "").lower()
        canonical = {"approved": "approved", "denied": "denied", "declined": "denied"}
        canonical.update(canceled="canceled", cancelled="canceled")
        if status not in canonical:
            raise Fail(400, "Invalid status: use approved, denied, declined or canceled")
        with self.lock:
            if req.status in ("canceled", "superceded") or (req.status == "denied" and canonical[status] != "denied"):
                raise Fail(403, f"A {req.status} request cannot be changed")
            req.status = canonical[status]
            req.status_changed = dt.date.today()
            req.status_changed_by = self.key_employee_id
            if body.get("note"):
                req.notes["manager"] = str(body["note"])
            rendered = self._render_time_off(req)
        return self._json(rendered)

    def time_off_types(self, request: Request) -> Response:
        payload = {
            "timeOffTypes": [
                {"id": tid, "name": name, "units": units, "color": color, "icon": icon, "source": "internal"}
                for tid, name, units, color, icon in data.TIME_OFF_TYPES
            ],
            "defaultHours": [
                {"name": day, "amount": "8" if day not in ("Saturday", "Sunday") else "0"}
                for day in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
            ],
        }
        return self._json(payload)

    # --- metadata ----------------------------------------------------------------------------
    def meta_fields(self, request: Request) -> Response:
        fields: list[dict[str, Any]] = [
            {"id": fid, "name": name, "type": ftype, "alias": alias} for fid, name, ftype, alias in data.FIELDS
        ]
        if self._wants_json(request):
            return self._json(fields)
        root = ET.Element("fields")
        for f in fields:
            ET.SubElement(root, "field", id=str(f["id"]), type=f["type"], alias=f["alias"]).text = f["name"]
        return self._xml(root)

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
        if self._wants_json(request) or request.query.get("format", "").lower() == "json":
            return self._json(lists)
        root = ET.Element("lists")
        for entry in lists:
            node = ET.SubElement(root, "list", fieldId=entry["fieldId"], alias=entry["alias"])
            ET.SubElement(node, "name").text = entry["name"]
        return self._xml(root)

    # --- reports -----------------------------------------------------------------------------
    def _report_format(self, request: Request) -> str:
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
        value = self._value
        with self.lock:
            rows = [
                {"id": str(eid), **{f: value(f, rec.get(f)) or "" for f in fields}}
                for eid, rec in self.company.employees.items()
                if (employee_ids is None or eid in employee_ids)
                and (
                    changed_since is None
                    or (eid in self.company.changes and self.company.changes[eid][1] >= changed_since)
                )
            ]
        if dedupe if dedupe is not None else fmt in ("json", "xml"):
            seen: set[tuple[Any, ...]] = set()
            unique = []
            for row in rows:
                key = tuple(row.values())
                if key not in seen:
                    seen.add(key)
                    unique.append(row)
            rows = unique
        meta = [{"id": f, "type": data.FIELD_BY_ALIAS[f][2], "name": data.FIELD_BY_ALIAS[f][1]} for f in fields]
        content_type = REPORT_CONTENT_TYPES[fmt]
        slug = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-") or "report"
        disposition = ("Content-Disposition", f'attachment; filename="{slug}.{fmt}"')
        if fmt == "json":
            return self._json({"title": title, "fields": meta, "employees": rows})
        if fmt == "xml":
            root = ET.Element("report")
            ET.SubElement(root, "title").text = title
            container = ET.SubElement(root, "employees")
            for row in rows:
                node = ET.SubElement(container, "employee", id=row["id"])
                for f in fields:
                    ET.SubElement(node, "field", id=f).text = row[f]
            return self._xml(root)
        header = [m["name"] for m in meta]
        table = [[row[f] for f in fields] for row in rows]
        if fmt == "csv":
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\r\n")
            writer.writerow(header)
            writer.writerows(table)
            return Response(200, [("Content-Type", content_type), disposition], buffer.getvalue().encode())
        if fmt == "xls":
            return Response(200, [("Content-Type", content_type), disposition], _spreadsheet_xml(title, header, table))
        return Response(200, [("Content-Type", content_type), disposition], _pdf(title, header, table))

    def company_report(self, request: Request, rid: str) -> Response:
        if not rid.isdigit() or int(rid) not in data.REPORTS:
            raise Fail(404, "Report not found")
        fmt = self._report_format(request)
        title, names = data.REPORTS[int(rid)]
        fd = request.query.get("fd", "").lower()
        return self._report(title, names, fmt, dedupe=None if fd not in ("yes", "no") else fd == "yes")

    def custom_report(self, request: Request) -> Response:
        # Only exactly "application/json" is read as JSON; anything else goes to the XML parser.
        if request.header("Content-Type").strip().lower() == "application/json":
            try:
                body = json.loads(request.body or b"null")
            except ValueError:
                raise Fail(400, "Malformed JSON") from None
            if not isinstance(body, dict):
                raise Fail(400, "The report definition must be a JSON object")
        else:
            try:
                body = _xml_report(ET.fromstring(request.body or b""))
            except ET.ParseError:
                raise Fail(400, "Malformed XML") from None
        fields = body.get("fields")
        if not isinstance(fields, list) or not fields:
            raise Fail(400, "The report definition needs a non-empty fields list")
        if len(fields) > MAX_FIELDS:
            raise Fail(400, f"A maximum of {MAX_FIELDS} fields may be requested")
        fmt = self._report_format(request)
        filters = body.get("filters") or {}
        employee_ids = None
        if filters.get("employeeIds") is not None:
            employee_ids = {self._int(i, "employeeIds") for i in filters["employeeIds"]}
        changed_since = None
        last_changed = filters.get("lastChanged") or {}
        if last_changed.get("value"):
            try:
                changed_since = dt.datetime.fromisoformat(str(last_changed["value"]))
            except ValueError:
                raise Fail(400, "Invalid lastChanged value: use an ISO 8601 date-time") from None
            if changed_since.tzinfo is None:
                changed_since = changed_since.replace(tzinfo=dt.UTC)
        dedupe = body.get("filterDuplicates")
        return self._report(
            str(body.get("title") or "Custom report"),
            [data.FIELD_ALIAS_BY_ID.get(str(f), str(f)) for f in fields],
            fmt,
            employee_ids=employee_ids,
            changed_since=changed_since,
            dedupe=None if dedupe not in ("yes", "no") else dedupe == "yes",
        )

    # --- the control API (for tests and demos in other processes) ------------------------------
    def _control(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._error(401, "Authentication failed")
        route = request.path.rstrip("/")
        try:
            if route == "/__sandbox__/faults" and request.method == "GET":
                return self._json(self.describe_faults())
            if route == "/__sandbox__/faults" and request.method == "POST":
                body = json.loads(request.body or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("body must be a JSON object")
                self.apply_faults(body)
                return self._json(self.describe_faults())
            if route == "/__sandbox__/stats" and request.method == "GET":
                return self._json(self.stats())
            if route == "/__sandbox__/stats" and request.method == "DELETE":
                self.reset_stats()
                return self._json(self.stats())
        except (ValueError, TypeError, KeyError) as exc:
            return self._error(400, f"Bad fault request: {exc}")
        return self._error(404, "Not found")

    def apply_faults(self, spec: Mapping[str, Any]) -> None:
        """``{"clear": true}``, ``{"throttle": {"retry_after": 2, "count": null}}``,
        ``{"fail": {"status": 500, "count": 3}}``, ``{"slow": {"seconds": 1.5}}`` (combinable)."""
        unknown = set(spec) - {"clear", "throttle", "fail", "slow"}
        if unknown:
            raise ValueError(f"unknown fault(s): {', '.join(sorted(unknown))}")
        if spec.get("clear"):
            self.clear_faults()
        if spec.get("throttle") is not None:
            t = spec["throttle"]
            self.throttle(float(t.get("retry_after", 2.0)), t.get("count"), http_date=bool(t.get("http_date")))
        if spec.get("fail") is not None:
            f = spec["fail"]
            self.fail(int(f.get("status", 500)), f.get("count"))
        if spec.get("slow") is not None:
            self.slow(float(spec["slow"].get("seconds", 0)))

    def throttle(self, retry_after: float = 2.0, count: int | None = None, *, http_date: bool = False) -> None:
        if retry_after < 0 or (count is not None and int(count) < 0):
            raise ValueError("retry_after and count must not be negative")
        with self.lock:
            self.faults.throttle_retry_after = retry_after
            self.faults.throttle_count = int(count) if count is not None else None
            self.faults.throttle_until = time.monotonic() + retry_after if count is None else 0.0
            self.faults.throttle_http_date = http_date

    def fail(self, status: int = 500, count: int | None = None) -> None:
        if not 400 <= status <= 599:
            raise ValueError("status must be a 4xx or 5xx code")
        with self.lock:
            self.faults.fail_status = status
            self.faults.fail_count = int(count) if count is not None else None

    def slow(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        with self.lock:
            self.faults.slow_seconds = seconds

    def clear_faults(self) -> None:
        with self.lock:
            self.faults = Faults()

    def describe_faults(self) -> dict[str, Any]:
        with self.lock:
            return self.faults.describe()

    def stats(self) -> dict[str, Any]:
        with self.stats_lock:
            return {
                "requests": self.total,
                "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
                "by_route": dict(self.by_route),
                "throttled": self.by_status.get(503, 0),
            }

    def reset_stats(self) -> None:
        with self.stats_lock:
            self.total = 0
            self.log.clear()
            self.by_status.clear()
            self.by_route.clear()
            self.exchanges.clear()


def _is_date(text: str) -> bool:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return False
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


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


def _spreadsheet_xml(title: str, header: list[str], rows: list[list[str]]) -> bytes:
    """An Excel 2003 XML workbook: what Excel opens from a ``.xls`` download without a binary writer."""
    ns = "urn:schemas-microsoft-com:office:spreadsheet"
    ET.register_namespace("ss", ns)
    book = ET.Element(f"{{{ns}}}Workbook")
    sheet = ET.SubElement(book, f"{{{ns}}}Worksheet", {f"{{{ns}}}Name": title[:31] or "Report"})
    table = ET.SubElement(sheet, f"{{{ns}}}Table")
    for values in [header, *rows]:
        row = ET.SubElement(table, f"{{{ns}}}Row")
        for value in values:
            cell = ET.SubElement(row, f"{{{ns}}}Cell")
            ET.SubElement(cell, f"{{{ns}}}Data", {f"{{{ns}}}Type": "String"}).text = value
    return b'<?xml version="1.0"?>\n' + ET.tostring(book, encoding="utf-8")


def _pdf(title: str, header: list[str], rows: list[list[str]]) -> bytes:
    """A small valid one-page PDF listing the first rows of the report."""

    def esc(text: str) -> str:
        return (
            text.replace("\\", "\\\\")
            .replace("(", "\\(")
            .replace(")", "\\)")
            .encode("latin-1", "replace")
            .decode("latin-1")
        )

    lines = [title, " | ".join(header)] + [" | ".join(r) for r in rows[:45]]
    if len(rows) > 45:
        lines.append(f"... {len(rows) - 45} more rows")
    text = "BT /F1 9 Tf 36 806 Td 12 TL " + " ".join(f"({esc(line[:110])}) '" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        f"<< /Length {len(text.encode('latin-1'))} >>\nstream\n{text}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
