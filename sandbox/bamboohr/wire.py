"""What goes over the wire: requests and responses, error answers, JSON or XML bodies both ways, and
the values BambooHR reads from a query or a body (dates, ids, date-times), refused with a 400."""

from __future__ import annotations

import datetime as dt
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

API_PREFIX = re.compile(r"^/api/(?:v1|gateway\.php/(?P<company>[^/]+)/v1)(?P<rest>/.*)?$")


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
    query: str = ""  # the query string as received (e.g. get-employee's fields=)
    body: bytes = b""  # the request body (e.g. a custom report's field list)

    def as_dict(self) -> dict[str, Any]:
        """What was asked, for the control API (no headers: they carry the credentials)."""
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "body": self.body.decode("utf-8", "replace"),
            "status": self.status,
        }


class Fail(Exception):
    """An error answer: status, BambooHR's message (in the error headers), optional JSON body."""

    def __init__(self, status: int, message: str = "", body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.body = body


# --- answers -----------------------------------------------------------------------------------
def error_response(error_headers: tuple[str, ...], status: int, message: str, body: Any = None) -> Response:
    headers = [(name, message) for name in error_headers] if message else []
    payload = b""
    if body is not None:
        payload = json.dumps(body).encode()
        headers.append(("Content-Type", "application/json"))
    return Response(status, headers, payload)


def wants_json(request: Request) -> bool:
    return "application/json" in request.header("Accept").lower()


def json_response(payload: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(status, [("Content-Type", "application/json; charset=utf-8"), *(headers or [])], body)


def xml_response(root: ET.Element, status: int = 200) -> Response:
    return Response(status, [("Content-Type", "text/xml; charset=UTF-8")], ET.tostring(root, encoding="utf-8"))


def negotiated(request: Request, payload: Any, to_xml: Callable[[], ET.Element], *, as_json: bool = False) -> Response:
    """JSON when the caller asks for it (``Accept``, or ``as_json``), XML otherwise: BambooHR's default."""
    if as_json or wants_json(request):
        return json_response(payload)
    return xml_response(to_xml())


def location(request: Request, suffix: str) -> str:
    """A created resource's URL, under the API root form the caller used."""
    host = request.header("Host") or "127.0.0.1"
    match = API_PREFIX.match(request.path)
    prefix = request.path[: match.start("rest")] if match and match.group("rest") else "/api/v1"
    return f"http://{host}{prefix}/{suffix}"


# --- bodies ------------------------------------------------------------------------------------
def json_object(raw: bytes, not_an_object: str) -> dict[str, Any]:
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise Fail(400, "Malformed JSON") from None
    if not isinstance(parsed, dict):
        raise Fail(400, not_an_object)
    return parsed


def xml_document(raw: bytes, reader: Callable[[ET.Element], dict[str, Any]]) -> dict[str, Any]:
    try:
        return reader(ET.fromstring(raw))
    except ET.ParseError:
        raise Fail(400, "Malformed XML") from None


def read_body(request: Request, xml_reader: Callable[[ET.Element], dict[str, Any]]) -> dict[str, Any]:
    """A JSON or XML body, as BambooHR reads them (400 when it cannot)."""
    content_type = request.header("Content-Type").split(";")[0].strip().lower()
    if not request.body:
        raise Fail(400, "Missing request body")
    if content_type in ("application/xml", "text/xml"):
        return xml_document(request.body, xml_reader)
    return json_object(request.body, "The request body must be a JSON object")


# --- values ------------------------------------------------------------------------------------
def is_date(text: str) -> bool:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return False
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def date_value(value: Any, name: str) -> dt.date:
    text = str(value or "")
    if not is_date(text):
        raise Fail(400, f"Invalid {name} date: '{text[:40]}' (use YYYY-MM-DD)")
    return dt.date.fromisoformat(text)


def int_value(value: Any, name: str) -> int:
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit():
        raise Fail(400, f"Invalid {name}")
    return int(text)


def aware_datetime(text: str, invalid: str) -> dt.datetime:
    """An ISO 8601 date-time; one without a zone is taken as UTC."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise Fail(400, invalid) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
