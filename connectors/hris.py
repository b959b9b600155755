"""Provider-neutral HRIS shapes: what the hub and its agent see, whichever HRIS sits behind them.

A connector of the ``hris`` family returns its provider's records as plain dicts (the provider's own
field names, only cleaned: empty dates become ``None``, ids become strings) and, when asked with
``unified=True``, as the dataclasses below. ``raw`` carries the provider record when the caller asks
for it (``include_raw=True``); it is ``None`` otherwise so that large listings stay small.

Employee
    ``id`` (str), ``first_name``, ``last_name``, ``preferred_name``, ``display_name``, ``email`` (work
    email), ``department``, ``division``, ``location``, ``job_title``, ``status`` (``"active"`` or
    ``"inactive"``), ``hire_date`` and ``termination_date`` (``datetime.date``), ``manager_id`` (the
    manager's employee id, str), ``employee_number``. Any of them but ``id`` may be ``None``: HR
    systems leave out what the caller may not see, and ``None`` means "unknown", not "empty".

TimeOffRequest
    ``id`` (str), ``employee_id`` (str), ``employee_name``, ``type`` (the type's name), ``type_id``
    (str), ``start`` and ``end`` (``datetime.date``, inclusive), ``amount`` (float), ``unit``
    (``"days"`` or ``"hours"``), ``status`` (one of ``TIME_OFF_STATUSES``), ``created`` (date),
    ``notes`` (who -> text, e.g. ``{"employee": "...", "manager": "..."}``).

``as_dict()`` on both gives JSON-ready values (ISO dates) for APIs, events and agent tools.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

# Provider-neutral time-off statuses; providers' spellings are mapped onto these.
TIME_OFF_STATUSES = ("requested", "approved", "denied", "cancelled", "superseded")


def parse_date(value: Any) -> dt.date | None:
    """A ``YYYY-MM-DD`` value, or ``None`` for the many ways HR systems say "no date"
    (``None``, ``""``, ``"0000-00-00"``, an unparseable string)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str) or not value or value.startswith("0000"):
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def parse_amount(value: Any) -> float | None:
    """Amounts come as numbers or as strings (``"5"``, ``"7.50"``); anything else is unknown."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def id_str(value: Any) -> str | None:
    """Ids arrive as strings or numbers depending on the endpoint; the hub always uses strings."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Employee:
    id: str
    first_name: str | None = None
    last_name: str | None = None
    preferred_name: str | None = None
    display_name: str | None = None
    email: str | None = None
    department: str | None = None
    division: str | None = None
    location: str | None = None
    job_title: str | None = None
    status: str | None = None  # "active" | "inactive"
    hire_date: dt.date | None = None
    termination_date: dt.date | None = None
    manager_id: str | None = None
    employee_number: str | None = None
    raw: dict[str, Any] | None = field(default=None, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class TimeOffRequest:
    id: str
    employee_id: str | None = None
    employee_name: str | None = None
    type: str | None = None
    type_id: str | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    amount: float | None = None
    unit: str | None = None  # "days" | "hours"
    status: str | None = None  # one of TIME_OFF_STATUSES
    created: dt.date | None = None
    notes: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] | None = field(default=None, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class ReportFile:
    """A report in a binary or text file format (CSV, PDF, XLS): the bytes as the provider sent them."""

    content: bytes
    content_type: str
    filename: str | None = None
