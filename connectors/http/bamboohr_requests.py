"""What the BambooHR connector sends: its arguments checked (a ``ConnectorError`` of category
``invalid`` before any request) and turned into BambooHR's query parameters and bodies, plus the
employee filters BambooHR lacks, applied to what it answered."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from connectors.errors import Category, ConnectorError
from connectors.hris import parse_amount
from connectors.http.bamboohr_shapes import REPORT_FORMATS

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
SERVER_EMPLOYEE_FILTERS = {"employee_ids", "changed_since", "search", "limit"}
# What ``search`` looks in.
SEARCHED_FIELDS = ("firstName", "lastName", "preferredName", "displayName", "workEmail")

TIME_OFF_FILTERS = {"start", "end", "status", "employee_id", "type", "type_id", "id", "action", "exclude_note"}
# Neutral status -> BambooHR's spelling (it writes "canceled" and "superceded").
TIME_OFF_STATUS_OUT = {"cancelled": "canceled", "superseded": "superceded"}
# Neutral argument names -> BambooHR's, in a time-off request's body.
TIME_OFF_BODY_NAMES = {"type_id": "timeOffTypeId", "previous_request": "previousRequest"}


def invalid(message: str) -> ConnectorError:
    return ConnectorError(f"BambooHR: {message}", category=Category.INVALID)


def numeric_id(value: Any, what: str) -> str:
    text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
    if not text.isdigit():
        raise invalid(f"{what} must be a number")
    return text


def ymd(value: Any, name: str) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return value  # BambooHR judges the format and says what is wrong with it
    raise invalid(f"{name} must be a date (YYYY-MM-DD)")


def timestamp(value: dt.datetime | dt.date | str) -> str:
    if isinstance(value, str):
        return value  # BambooHR judges the format and says what is wrong with it
    if not isinstance(value, dt.date):
        raise invalid("a time must be an ISO 8601 date-time")
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        return list(value)
    return [value]


def report_format(fmt: str) -> str:
    value = str(fmt).strip().lower()
    if value not in REPORT_FORMATS:
        raise invalid(f"report format must be one of {', '.join(REPORT_FORMATS)}")
    return value


def _unknown(what: str, given: Iterable[str], known: Iterable[str]) -> None:
    unknown = set(given) - set(known)
    if unknown:
        raise invalid(f"unknown {what} filter(s): {', '.join(sorted(unknown))}; use {', '.join(sorted(known))}")


def _missing(wanted: list[Any], extra: Iterable[str]) -> list[Any]:
    """``wanted`` with the fields of ``extra`` it lacks appended."""
    return wanted + [f for f in extra if f not in wanted]


# --- employees ---------------------------------------------------------------------------------
def employee_fields(given: list[Any] | None, *, unified: bool) -> list[Any]:
    """The fields to ask for: those given (or the defaults), plus what the unified shape needs."""
    wanted = given if given is not None else list(DEFAULT_EMPLOYEE_FIELDS)
    return _missing(wanted, DEFAULT_EMPLOYEE_FIELDS) if unified else wanted


def listing_fields(filters: Mapping[str, Any], fields: Sequence[str] | None, *, unified: bool) -> list[Any]:
    """The fields of an employee listing: those asked for and those its client-side filters read."""
    _unknown("employee", filters, [*EMPLOYEE_FILTERS, *SERVER_EMPLOYEE_FILTERS])
    wanted = employee_fields(list(fields) if fields else None, unified=unified)
    wanted = _missing(wanted, [alias for name, alias in EMPLOYEE_FILTERS.items() if name in filters])
    return _missing(wanted, SEARCHED_FIELDS) if "search" in filters else wanted


def filter_employees(records: list[dict[str, Any]], filters: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The filters BambooHR has no parameter for: field values (any of a list, case-insensitive),
    ``search`` (a substring of the name or email) and ``limit``."""
    tests: list[tuple[str, set[str]]] = []
    for name, alias in EMPLOYEE_FILTERS.items():
        if filters.get(name) not in (None, "", []):
            tests.append((alias, {str(v).strip().lower() for v in as_list(filters[name])}))
    if tests:
        records = [r for r in records if all(str(r.get(a) or "").lower() in values for a, values in tests)]
    search = str(filters.get("search") or "").strip().lower()
    if search:
        records = [r for r in records if any(search in str(r.get(k) or "").lower() for k in SEARCHED_FIELDS)]
    if filters.get("limit") is not None:
        limit = filters["limit"]
        if isinstance(limit, bool) or not isinstance(limit, int | str) or not str(limit).strip().isdigit():
            raise invalid("limit must be a whole number")
        records = records[: int(limit)]
    return records


# --- time off ----------------------------------------------------------------------------------
def time_off_params(filters: Mapping[str, Any]) -> dict[str, Any]:
    _unknown("time-off", filters, TIME_OFF_FILTERS)
    params: dict[str, Any] = {}
    for name in ("start", "end"):
        if filters.get(name) is not None:
            params[name] = ymd(filters[name], name)
    if filters.get("status"):
        statuses = [str(s).strip().lower() for s in as_list(filters["status"])]
        params["status"] = ",".join(TIME_OFF_STATUS_OUT.get(s, s) for s in statuses)
    if filters.get("employee_id") is not None:
        params["employeeId"] = numeric_id(filters["employee_id"], "employee_id")
    types = filters.get("type", filters.get("type_id"))
    if types not in (None, "", []):
        params["type"] = ",".join(numeric_id(t, "type") for t in as_list(types))
    if filters.get("id") is not None:
        params["id"] = numeric_id(filters["id"], "id")
    if filters.get("action"):
        params["action"] = str(filters["action"])
    if filters.get("exclude_note"):
        params["excludeNote"] = "1"
    return params


def time_off_body(data: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise invalid("data must be an object")
    body: dict[str, Any] = {TIME_OFF_BODY_NAMES.get(key, key): value for key, value in data.items()}
    body.setdefault("status", "requested")
    for name in ("start", "end"):
        if name in body:
            body[name] = ymd(body[name], name)
    for name in ("timeOffTypeId", "previousRequest"):
        if isinstance(body.get(name), str) and body[name].strip().isdigit():
            body[name] = int(body[name])  # the spec says integer; BambooHR reads both
    if isinstance(body.get("amount"), str) and parse_amount(body["amount"]) is not None:
        body["amount"] = parse_amount(body["amount"])
    if isinstance(body.get("notes"), str):
        body["notes"] = [{"from": "employee", "note": body["notes"]}]
    return body


# --- reports -----------------------------------------------------------------------------------
def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def custom_report_body(
    fields: Iterable[Any],
    *,
    employee_ids: Any = None,
    changed_since: Any = None,
    title: str | None = None,
    filter_duplicates: bool | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"fields": [str(f) for f in fields]}
    if title:
        body["title"] = title
    report_filters: dict[str, Any] = {}
    if employee_ids not in (None, "", []):
        report_filters["employeeIds"] = [int(numeric_id(i, "employee id")) for i in as_list(employee_ids)]
    if changed_since:
        report_filters["lastChanged"] = {"value": timestamp(changed_since), "includeNull": "no"}
    if report_filters:
        body["filters"] = report_filters
    if filter_duplicates is not None:
        body["filterDuplicates"] = yes_no(filter_duplicates)
    return body
