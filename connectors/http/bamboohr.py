"""BambooHR (kind ``bamboohr``): employees, time off, reports and incremental sync over its v1 REST API.

Endpoints follow BambooHR's published OpenAPI description (``sandbox/bamboohr/spec/openapi.yaml``); the
quirks the spec does not make obvious are noted where they are handled. Auth is HTTP Basic with the
API key as user name and ``x`` as password, or an OAuth2 bearer token from the runtime's token
provider.

Reads return the provider's records as dicts, cleaned (ids as strings, ``0000-00-00`` and ``""`` as
``None``); with ``unified=True`` they come as ``connectors.hris.Employee`` / ``TimeOffRequest``, and
``include_raw=True`` attaches the cleaned provider record to each.
"""

from __future__ import annotations

import datetime as dt
import json as jsonlib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Literal, overload
from urllib.parse import unquote, urlsplit

import httpx
from pydantic import Field, field_validator, model_validator

from connectors.auth.oauth2 import OAuth2Config, oauth2_targets
from connectors.base import BaseConfig, CredentialField
from connectors.errors import Category, ConnectorError
from connectors.hris import Employee, ReportFile, TimeOffRequest, id_str, parse_amount, parse_date
from connectors.http.base import HttpConnector, check_base_url
from connectors.policy import Target

# Asked for when the caller names no fields: what the unified Employee is built from.
DEFAULT_EMPLOYEE_FIELDS: tuple[str, ...] = (
    "employeeNumber",
    "firstName",
    "lastName",
    "preferredName",
    "displayName",
    "workEmail",
    "department",
    "division",
    "location",
    "jobTitle",
    "status",
    "hireDate",
    "terminationDate",
    "supervisorEId",
)

# Provider-neutral filter name -> BambooHR field alias (compared case-insensitively, client-side:
# BambooHR's bulk endpoints have no such filters).
EMPLOYEE_FILTERS: dict[str, str] = {
    "status": "status",
    "department": "department",
    "division": "division",
    "location": "location",
    "job_title": "jobTitle",
    "manager_id": "supervisorEId",
    "email": "workEmail",
    "employee_number": "employeeNumber",
}
# Filters BambooHR applies itself (custom report filters) or that shape the result.
_SERVER_EMPLOYEE_FILTERS = {"employee_ids", "changed_since", "search", "limit"}

_TIME_OFF_FILTERS = {"start", "end", "status", "employee_id", "type", "type_id", "id", "action", "exclude_note"}
# Neutral status -> BambooHR's spelling (it writes "canceled" and "superceded").
_TIME_OFF_STATUS_OUT = {"cancelled": "canceled", "superseded": "superceded"}
_TIME_OFF_STATUS_IN = {
    "canceled": "cancelled",
    "cancelled": "cancelled",
    "superceded": "superseded",
    "declined": "denied",
}

# Report formats: the query value (the spec's enum is lowercase; BambooHR accepts any case) and the
# Accept header to send with it (anything else, even */*, makes BambooHR answer 404).
REPORT_FORMATS: dict[str, str] = {
    "json": "application/json",
    "csv": "text/csv",
    "pdf": "application/pdf",
    "xls": "application/vnd.ms-excel",
    "xml": "text/xml",
}

_SUBDOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_CUSTOM_ALIAS = re.compile(r"^custom[A-Z0-9]")


class BambooHRConfig(BaseConfig):
    subdomain: str = Field(description="Your company's BambooHR subdomain: `acme` for https://acme.bamboohr.com.")
    base_url: str = Field(
        "",
        description="API root; defaults to https://{subdomain}.bamboohr.com/api/v1/ (the legacy "
        "https://api.bamboohr.com/api/gateway.php/{subdomain}/v1/ works too).",
    )
    allow_insecure_loopback: bool = Field(
        False, description="Allow an http:// base_url on a loopback host (the bundled sandbox)."
    )
    timeout_seconds: float = Field(30.0, gt=0, le=300, description="Timeout of each HTTP request.")
    writable_fields: list[str] | None = Field(
        None, description="If set, only these fields may be written by create/update (and the agent tools)."
    )
    oauth2: OAuth2Config | None = Field(None, description="OAuth2 client settings (auth type oauth2).")

    @field_validator("subdomain", mode="before")
    @classmethod
    def _subdomain(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower()
            if not _SUBDOMAIN.match(value):
                raise ValueError("letters, digits and hyphens only, as in https://<subdomain>.bamboohr.com")
        return value

    @model_validator(mode="after")
    def _base_url_default(self) -> BambooHRConfig:
        url = self.base_url or f"https://{self.subdomain}.bamboohr.com/api/v1/"
        try:
            url = check_base_url(url, allow_insecure_loopback=self.allow_insecure_loopback)
        except ValueError as exc:
            raise ValueError(f"base_url {exc}") from None
        object.__setattr__(self, "base_url", url)  # frozen model: the default is derived once, here
        return self


# A value of "" or "0000-00-00" right after a key: BambooHR's ways of saying "no value". In valid
# JSON a colon followed by a quote opens a value (a colon inside a string followed by a quote would
# have that quote close the string, and a quote cannot follow a closing quote), so the rewrite below
# only ever touches values.
_EMPTY_VALUE = re.compile(rb':\s*"(?:0000-00-00)?"')


def _json(response: httpx.Response) -> Any:
    """The body parsed, with BambooHR's empty values as null.

    Done on the text, at C speed: cleaning 10,000 records value by value in Python costs more than
    parsing them (the bench's list-10,000-employees ratio depends on it).
    """
    content = response.content.replace(b':""', b":null").replace(b':"0000-00-00"', b":null")
    if b'": "' in content:  # pretty-printed JSON (BambooHR's is compact): the slower, general rewrite
        content = _EMPTY_VALUE.sub(b":null", content)
    return jsonlib.loads(content)


def _clean(record: dict[str, Any]) -> dict[str, Any]:
    """Ids as strings (JSON from ``_json`` already has empty values as None)."""
    rid = record.get("id")
    if rid is not None and rid.__class__ is not str:
        record["id"] = id_str(rid)
    return record


def _clean_all(records: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """``_clean`` on a listing; an endpoint sends all its ids one way, so the first one tells."""
    if not records:
        return []
    first = records[0].get("id") if isinstance(records[0], dict) else None
    return records if first.__class__ is str else [_clean(r) for r in records]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _employee(record: Mapping[str, Any], include_raw: bool) -> Employee:
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


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _time_off(record: Mapping[str, Any], include_raw: bool) -> TimeOffRequest:
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
        status=_TIME_OFF_STATUS_IN.get(status_text.lower(), status_text.lower()) if status_text else None,
        created=parse_date(record.get("created")),
        notes={str(k): str(v) for k, v in notes.items() if v},
        raw=dict(record) if include_raw else None,
    )


def _clean_time_off(record: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(record)
    for key in ("id", "employeeId"):
        if key in out:
            out[key] = id_str(out[key])
    return out


def _ymd(value: Any, name: str) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return value  # BambooHR judges the format and says what is wrong with it
    raise ConnectorError(f"BambooHR: {name} must be a date (YYYY-MM-DD)", category=Category.INVALID)


def _timestamp(value: dt.datetime | dt.date | str) -> str:
    if isinstance(value, str):
        return value  # BambooHR judges the format and says what is wrong with it
    if not isinstance(value, dt.date):
        raise ConnectorError("BambooHR: a time must be an ISO 8601 date-time", category=Category.INVALID)
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        return list(value)
    return [value]


def _filename(response: httpx.Response) -> str | None:
    disposition = response.headers.get("Content-Disposition", "")
    match = re.search(r"filename\*?=(?:UTF-8'')?\"?([^\";]+)\"?", disposition)
    return unquote(match.group(1)) if match else None


class BambooHRConnector(HttpConnector[BambooHRConfig]):
    kind = "bamboohr"
    label = "BambooHR"
    family = "hris"
    config_class = BambooHRConfig
    auth_types = ("api_key", "oauth2")
    credential_fields = (
        CredentialField(
            "api_key",
            "API key",
            required_for=("api_key",),
            help="Created in BambooHR under your name -> API Keys; 40 hexadecimal characters.",
        ),
        CredentialField(
            "client_secret",
            "OAuth2 client secret",
            required_for=("oauth2",),
            help="From the BambooHR Developer Portal, with the client id in the oauth2 config.",
        ),
    )
    # BambooHR answers XML unless told otherwise, and some endpoints 404 on "*/*".
    default_headers: ClassVar[Mapping[str, str]] = {"Accept": "application/json"}
    # The help centre's spelling really has three s; newer clients read two; the spec names a third.
    error_message_headers = ("X-BambooHR-Error-Messsage", "X-BambooHR-Error-Message", "X-BambooHR-Message")

    @classmethod
    def targets(cls, config: Any) -> list[Target]:
        return [Target("base_url", "url", config.base_url), *oauth2_targets(config.oauth2)]

    # --- HttpConnector hooks -----------------------------------------------------------------
    def _base_url(self) -> str:
        return self.config.base_url

    def _static_auth(self) -> httpx.Auth | None:
        if self.auth_type == "api_key":
            return httpx.BasicAuth(self.credential("api_key"), "x")
        return None

    def _classify(self, operation: str, response: httpx.Response, message: str) -> ConnectorError | None:
        if response.status_code == 429 and operation == "create_employee":
            # On add-employee 429 means the account's employee limit, not throttling: waiting won't help.
            return ConnectorError(
                message + " (the account's employee limit is reached)",
                category=Category.CONFLICT,
                permanent=True,
                status_code=429,
            )
        return None

    def _authenticate(self) -> None:
        self._probe()

    def _probe(self) -> dict[str, Any] | None:
        fields = _json(self._request("test_connection", "GET", "meta/fields"))
        return {"fields": len(fields) if isinstance(fields, list) else None}

    # --- helpers -----------------------------------------------------------------------------
    @staticmethod
    def _id(value: Any, what: str) -> str:
        text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
        if not text.isdigit():
            raise ConnectorError(f"BambooHR: {what} must be a number", category=Category.INVALID)
        return text

    def _check_writable(self, data: Mapping[str, Any]) -> None:
        if not isinstance(data, Mapping) or not data:
            raise ConnectorError(
                "BambooHR: data must be a non-empty object of field -> value", category=Category.INVALID
            )
        allowed = self.config.writable_fields
        if allowed is not None:
            refused = sorted(set(data) - set(allowed))
            if refused:
                raise ConnectorError(
                    f"BambooHR: not writable through this integration: {', '.join(refused)}",
                    category=Category.PERMISSION,
                )

    @staticmethod
    def _new_id(response: httpx.Response) -> str | None:
        """BambooHR gives a created resource's id as the last segment of the Location header."""
        path = urlsplit(response.headers.get("Location", "")).path.rstrip("/")
        last = path.rsplit("/", 1)[-1] if path else ""
        return last if last.isdigit() else None

    # --- employees ---------------------------------------------------------------------------
    @overload
    def list_employees(
        self,
        filters: Mapping[str, Any] | None = ...,
        *,
        fields: Sequence[str] | None = ...,
        unified: Literal[False] = ...,
        include_raw: bool = ...,
    ) -> list[dict[str, Any]]: ...

    @overload
    def list_employees(
        self,
        filters: Mapping[str, Any] | None = ...,
        *,
        fields: Sequence[str] | None = ...,
        unified: Literal[True],
        include_raw: bool = ...,
    ) -> list[Employee]: ...

    def list_employees(
        self,
        filters: Mapping[str, Any] | None = None,
        *,
        fields: Sequence[str] | None = None,
        unified: bool = False,
        include_raw: bool = False,
    ) -> list[dict[str, Any]] | list[Employee]:
        """Every employee, Active and Inactive (one custom report: the directory shows only Active
        ones and may be disabled per company).

        ``filters`` (all optional): ``status`` (active/inactive), ``department``, ``division``,
        ``location``, ``job_title``, ``manager_id``, ``email``, ``employee_number`` (each a value or
        a list of values, case-insensitive, applied here since BambooHR has no such filter);
        ``search`` (substring of the name or email); ``employee_ids`` and ``changed_since`` (applied
        by BambooHR); ``limit``.
        """
        filters = dict(filters or {})
        unknown = set(filters) - set(EMPLOYEE_FILTERS) - _SERVER_EMPLOYEE_FILTERS
        if unknown:
            raise ConnectorError(
                f"BambooHR: unknown employee filter(s): {', '.join(sorted(unknown))}; "
                f"use {', '.join(sorted([*EMPLOYEE_FILTERS, *_SERVER_EMPLOYEE_FILTERS]))}",
                category=Category.INVALID,
            )
        wanted = list(fields) if fields else list(DEFAULT_EMPLOYEE_FIELDS)
        if unified:
            wanted += [f for f in DEFAULT_EMPLOYEE_FIELDS if f not in wanted]
        for name, alias in EMPLOYEE_FILTERS.items():
            if name in filters and alias not in wanted:
                wanted.append(alias)
        if "search" in filters:
            wanted += [
                f for f in ("firstName", "lastName", "preferredName", "displayName", "workEmail") if f not in wanted
            ]

        report = self._custom_report(
            "list_employees",
            wanted,
            employee_ids=filters.get("employee_ids"),
            changed_since=filters.get("changed_since"),
        )
        records: list[dict[str, Any]] = report["employees"]

        tests: list[tuple[str, set[str]]] = []
        for name, alias in EMPLOYEE_FILTERS.items():
            if filters.get(name) not in (None, "", []):
                tests.append((alias, {str(v).strip().lower() for v in _as_list(filters[name])}))
        if tests:
            records = [r for r in records if all(str(r.get(a) or "").lower() in values for a, values in tests)]
        search = str(filters.get("search") or "").strip().lower()
        if search:
            keys = ("firstName", "lastName", "preferredName", "displayName", "workEmail")
            records = [r for r in records if any(search in str(r.get(k) or "").lower() for k in keys)]
        if filters.get("limit") is not None:
            limit = filters["limit"]
            if isinstance(limit, bool) or not isinstance(limit, int | str) or not str(limit).strip().isdigit():
                raise ConnectorError("BambooHR: limit must be a whole number", category=Category.INVALID)
            records = records[: int(limit)]
        if unified:
            return [_employee(r, include_raw) for r in records]
        return records

    @overload
    def get_employee(
        self,
        id: str | int,
        fields: Sequence[str] | str | None = ...,
        *,
        unified: Literal[False] = ...,
        include_raw: bool = ...,
    ) -> dict[str, Any]: ...

    @overload
    def get_employee(
        self,
        id: str | int,
        fields: Sequence[str] | str | None = ...,
        *,
        unified: Literal[True],
        include_raw: bool = ...,
    ) -> Employee: ...

    def get_employee(
        self,
        id: str | int,
        fields: Sequence[str] | str | None = None,
        *,
        unified: bool = False,
        include_raw: bool = False,
    ) -> dict[str, Any] | Employee:
        """One employee (``0``: the key's own). ``fields``: aliases or numeric ids (max 400)."""
        wanted = _as_list(fields) if fields else list(DEFAULT_EMPLOYEE_FIELDS)
        if unified:
            wanted += [f for f in DEFAULT_EMPLOYEE_FIELDS if f not in wanted]
        response = self._request(
            "get_employee",
            "GET",
            f"employees/{self._id(id, 'employee id')}",
            params={"fields": ",".join(str(f) for f in wanted)},
        )
        record = _clean(_json(response))
        return _employee(record, include_raw) if unified else record

    def create_employee(self, data: Mapping[str, Any]) -> str:
        """Add an employee (``firstName`` and ``lastName`` required); returns the new id."""
        self._check_writable(data)
        response = self._request("create_employee", "POST", "employees", json=dict(data), ok=(201,), idempotent=False)
        new_id = self._new_id(response)
        if new_id is None:
            raise ConnectorError(
                "BambooHR create_employee: no employee id in the Location header", category=Category.UNKNOWN
            )
        return new_id

    def update_employee(self, id: str | int, data: Mapping[str, Any]) -> None:
        """Change the given fields only (BambooHR updates with POST)."""
        self._check_writable(data)
        # Setting the same values twice is harmless: a lost answer may be retried.
        self._request(
            "update_employee", "POST", f"employees/{self._id(id, 'employee id')}", json=dict(data), idempotent=True
        )

    def get_directory(self, *, only_current: bool = True) -> dict[str, Any]:
        """The company directory (Active employees only, fields chosen by the company)."""
        params = {} if only_current else {"onlyCurrent": "false"}
        data = _json(self._request("get_directory", "GET", "employees/directory", params=params))
        return {"fields": data.get("fields") or [], "employees": _clean_all(data.get("employees"))}

    def changed_employees(self, since: dt.datetime | dt.date | str, *, type: str = "all") -> dict[str, Any]:
        """Employees changed since a time, for incremental sync: ``{"latest", "changes": [{"id",
        "action" (inserted/updated/deleted), "last_changed"}]}``; keep ``latest`` for the next call."""
        params = {"since": _timestamp(since)}
        if type != "all":
            params["type"] = type
        data = _json(self._request("changed_employees", "GET", "employees/changed", params=params))
        employees = data.get("employees") or {}
        changes = [
            {
                "id": id_str(entry.get("id") or key),
                "action": str(entry.get("action") or "").lower() or None,
                "last_changed": entry.get("lastChanged"),
            }
            for key, entry in (employees.items() if isinstance(employees, Mapping) else [])
        ]
        changes.sort(key=lambda c: (c["last_changed"] or "", c["id"] or ""))
        return {"latest": data.get("latest"), "changes": changes}

    # --- time off ----------------------------------------------------------------------------
    @overload
    def list_time_off_requests(
        self, filters: Mapping[str, Any] | None = ..., *, unified: Literal[False] = ..., include_raw: bool = ...
    ) -> list[dict[str, Any]]: ...

    @overload
    def list_time_off_requests(
        self, filters: Mapping[str, Any] | None = ..., *, unified: Literal[True], include_raw: bool = ...
    ) -> list[TimeOffRequest]: ...

    def list_time_off_requests(
        self, filters: Mapping[str, Any] | None = None, *, unified: bool = False, include_raw: bool = False
    ) -> list[dict[str, Any]] | list[TimeOffRequest]:
        """Requests overlapping ``start``..``end`` (both required by BambooHR, YYYY-MM-DD). Optional:
        ``status`` (a value or list: requested, approved, denied, cancelled, superseded),
        ``employee_id``, ``type`` (type id or list of ids), ``id``, ``action``, ``exclude_note``."""
        filters = dict(filters or {})
        unknown = set(filters) - _TIME_OFF_FILTERS
        if unknown:
            raise ConnectorError(
                f"BambooHR: unknown time-off filter(s): {', '.join(sorted(unknown))}; use {', '.join(sorted(_TIME_OFF_FILTERS))}",
                category=Category.INVALID,
            )
        params: dict[str, Any] = {}
        for name in ("start", "end"):
            if filters.get(name) is not None:
                params[name] = _ymd(filters[name], name)
        if filters.get("status"):
            statuses = [str(s).strip().lower() for s in _as_list(filters["status"])]
            params["status"] = ",".join(_TIME_OFF_STATUS_OUT.get(s, s) for s in statuses)
        if filters.get("employee_id") is not None:
            params["employeeId"] = self._id(filters["employee_id"], "employee_id")
        types = filters.get("type", filters.get("type_id"))
        if types not in (None, "", []):
            params["type"] = ",".join(self._id(t, "type") for t in _as_list(types))
        if filters.get("id") is not None:
            params["id"] = self._id(filters["id"], "id")
        if filters.get("action"):
            params["action"] = str(filters["action"])
        if filters.get("exclude_note"):
            params["excludeNote"] = "1"
        data = _json(self._request("list_time_off_requests", "GET", "time_off/requests", params=params))
        records = [_clean_time_off(r) for r in data or []]
        if unified:
            return [_time_off(r, include_raw) for r in records]
        return records

    @overload
    def create_time_off_request(
        self, employee_id: str | int, data: Mapping[str, Any], *, unified: Literal[False] = ..., include_raw: bool = ...
    ) -> dict[str, Any]: ...

    @overload
    def create_time_off_request(
        self, employee_id: str | int, data: Mapping[str, Any], *, unified: Literal[True], include_raw: bool = ...
    ) -> TimeOffRequest: ...

    def create_time_off_request(
        self, employee_id: str | int, data: Mapping[str, Any], *, unified: bool = False, include_raw: bool = False
    ) -> dict[str, Any] | TimeOffRequest:
        """Create a request. ``data``: ``start``, ``end``, ``type_id`` (or BambooHR's ``timeOffTypeId``),
        optional ``amount``, ``status`` (default ``requested``; ``approved``/``denied`` record it as
        decided), ``notes`` (text, taken as the employee's note, or BambooHR's list), ``dates``,
        ``previous_request``. Returns the created request."""
        if not isinstance(data, Mapping):
            raise ConnectorError("BambooHR: data must be an object", category=Category.INVALID)
        body: dict[str, Any] = {}
        for key, value in data.items():
            key = {"type_id": "timeOffTypeId", "previous_request": "previousRequest"}.get(key, key)
            body[key] = value
        body.setdefault("status", "requested")
        for name in ("start", "end"):
            if name in body:
                body[name] = _ymd(body[name], name)
        for name in ("timeOffTypeId", "previousRequest"):
            if isinstance(body.get(name), str) and body[name].strip().isdigit():
                body[name] = int(body[name])  # the spec says integer; BambooHR reads both
        if isinstance(body.get("amount"), str) and parse_amount(body["amount"]) is not None:
            body["amount"] = parse_amount(body["amount"])
        if isinstance(body.get("notes"), str):
            body["notes"] = [{"from": "employee", "note": body["notes"]}]
        response = self._request(
            "create_time_off_request",
            "PUT",
            f"employees/{self._id(employee_id, 'employee id')}/time_off/request",
            json=body,
            ok=(201,),
            idempotent=False,  # a PUT that creates a new request each time
        )
        created: dict[str, Any] = {}
        if response.content:
            parsed = _json(response)
            created = parsed if isinstance(parsed, dict) else {}
        if not created.get("id"):
            created["id"] = self._new_id(response)
        record = _clean_time_off(created)
        return _time_off(record, include_raw) if unified else record

    def approve_time_off_request(self, id: str | int, note: str | None = None) -> dict[str, Any]:
        return self._time_off_status("approve_time_off_request", id, "approved", note)

    def deny_time_off_request(self, id: str | int, note: str | None = None) -> dict[str, Any]:
        return self._time_off_status("deny_time_off_request", id, "denied", note)

    def cancel_time_off_request(self, id: str | int, note: str | None = None) -> dict[str, Any]:
        return self._time_off_status("cancel_time_off_request", id, "canceled", note)

    def _time_off_status(self, operation: str, id: str | int, status: str, note: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"status": status}
        if note:
            body["note"] = str(note)
        request_id = self._id(id, "time-off request id")
        response = self._request(operation, "PUT", f"time_off/requests/{request_id}/status", json=body)
        parsed = _json(response) if response.content else None
        if isinstance(parsed, dict) and parsed.get("id") is not None:
            return _clean_time_off(parsed)
        return {"id": request_id, "status": {"status": status}}

    def list_time_off_types(self) -> list[dict[str, Any]]:
        data = _json(self._request("list_time_off_types", "GET", "meta/time_off/types"))
        return [_clean(t) for t in (data.get("timeOffTypes") or [])]

    # --- reports and metadata ----------------------------------------------------------------
    def get_report(
        self, report_id: str | int, format: str = "json", *, filter_duplicates: bool | None = None
    ) -> dict[str, Any] | ReportFile:
        """A saved company report. JSON comes back as ``{"title", "fields", "employees"}``; CSV, PDF,
        XLS (and XML) as a ``ReportFile`` with the bytes and their content type."""
        fmt = self._format(format)
        params: dict[str, Any] = {"format": fmt}
        if filter_duplicates is not None:
            params["fd"] = "yes" if filter_duplicates else "no"
        response = self._request(
            "get_report",
            "GET",
            f"reports/{self._id(report_id, 'report id')}",
            params=params,
            headers={"Accept": REPORT_FORMATS[fmt]},
        )
        return self._report_result(response, fmt)

    def run_custom_report(
        self,
        fields: Sequence[str],
        *,
        employee_ids: Iterable[str | int] | None = None,
        changed_since: dt.datetime | dt.date | str | None = None,
        title: str | None = None,
        format: str = "json",
        only_current: bool = True,
        filter_duplicates: bool | None = None,
    ) -> dict[str, Any] | ReportFile:
        """An ad-hoc report over every employee (Active and Inactive) with the given fields.
        Unknown fields are silently left out by BambooHR; more than 400 is refused."""
        return self._custom_report(
            "run_custom_report",
            list(_as_list(fields)),
            employee_ids=employee_ids,
            changed_since=changed_since,
            title=title,
            fmt=self._format(format),
            only_current=only_current,
            filter_duplicates=filter_duplicates,
        )

    def list_fields(self) -> list[dict[str, Any]]:
        """Every employee field of the account: ``{"id", "name", "type", "alias"?}``."""
        data = _json(self._request("list_fields", "GET", "meta/fields"))
        return [dict(f) for f in data or []]

    def list_custom_fields(self) -> list[dict[str, Any]]:
        """The account's own fields (alias ``custom...``), to discover what reports can ask for."""
        data = _json(self._request("list_custom_fields", "GET", "meta/fields"))
        return [dict(f) for f in data or [] if _CUSTOM_ALIAS.match(str(f.get("alias") or ""))]

    def _format(self, fmt: str) -> str:
        value = str(fmt).strip().lower()
        if value not in REPORT_FORMATS:
            raise ConnectorError(
                f"BambooHR: report format must be one of {', '.join(REPORT_FORMATS)}", category=Category.INVALID
            )
        return value

    def _custom_report(
        self,
        operation: str,
        fields: list[Any],
        *,
        employee_ids: Any = None,
        changed_since: Any = None,
        title: str | None = None,
        fmt: str = "json",
        only_current: bool = True,
        filter_duplicates: bool | None = None,
    ) -> Any:
        body: dict[str, Any] = {"fields": [str(f) for f in fields]}
        if title:
            body["title"] = title
        report_filters: dict[str, Any] = {}
        if employee_ids not in (None, "", []):
            report_filters["employeeIds"] = [int(self._id(i, "employee id")) for i in _as_list(employee_ids)]
        if changed_since:
            report_filters["lastChanged"] = {"value": _timestamp(changed_since), "includeNull": "no"}
        if report_filters:
            body["filters"] = report_filters
        if filter_duplicates is not None:
            body["filterDuplicates"] = "yes" if filter_duplicates else "no"
        params: dict[str, Any] = {"format": fmt}
        if not only_current:
            params["onlyCurrent"] = "false"
        response = self._request(
            operation,
            "POST",
            "reports/custom",
            params=params,
            json=body,
            headers={"Accept": REPORT_FORMATS[fmt]},
            idempotent=True,  # a read, though sent with POST
        )
        return self._report_result(response, fmt)

    @staticmethod
    def _report_result(response: httpx.Response, fmt: str) -> dict[str, Any] | ReportFile:
        if fmt == "json":
            data = _json(response)
            return {
                "title": data.get("title"),
                "fields": data.get("fields") or [],
                "employees": _clean_all(data.get("employees")),
            }
        return ReportFile(
            content=response.content,
            content_type=response.headers.get("Content-Type", REPORT_FORMATS[fmt]),
            filename=_filename(response),
        )
