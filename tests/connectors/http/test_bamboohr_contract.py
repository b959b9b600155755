"""Contract test: every request the connector sends and every response the sandbox returns, over a
run of the whole operation list, is valid against BambooHR's published OpenAPI description: the copy
shipped in ``sandbox/bamboohr/spec/`` (source, licence and checksum in its ``PROVENANCE.md``), or the file
``BAMBOOHR_OPENAPI`` names. The last tests show that the check still fails when the spec disagrees."""

from __future__ import annotations

import copy
import datetime as dt
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from connectors.hris import ReportFile
from connectors.http.bamboohr import BambooHRConnector
from sandbox.bamboohr import BambooHRSandbox
from sandbox.bamboohr.app import Exchange
from sandbox.bamboohr.openapi import openapi_path

# The spec's server is https://{companyDomain}.bamboohr.com; the sandbox's answers are judged as if from there.
SPEC_HOST = "https://acme.bamboohr.com"


def _read_spec(path: Path) -> dict[str, Any]:
    if not path.exists():
        pytest.fail(
            f"BambooHR's OpenAPI description is missing at {path} (unset BAMBOOHR_OPENAPI for the shipped copy)"
        )
    with path.open() as fh:
        document: dict[str, Any] = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return document


def _load_openapi() -> OpenAPI:
    """The spec at ``openapi_path()``. Validating the spec itself (seconds) is skipped: it passes
    openapi-spec-validator with no errors."""
    return OpenAPI.from_dict(_read_spec(openapi_path()), config=Config(spec_validator_cls=None))


@pytest.fixture(scope="session")
def bamboohr_openapi() -> OpenAPI:
    """The spec is 688 KB: parsed once per test session."""
    return _load_openapi()


@dataclass
class _Request:
    method: str
    path: str
    body: bytes | None
    content_type: str
    parameters: RequestParameters
    host_url: str = SPEC_HOST


@dataclass
class _Response:
    status_code: int
    headers: Headers
    data: bytes | None
    content_type: str = field(init=False)

    def __post_init__(self) -> None:
        self.content_type = (self.headers.get("Content-Type") or "").lower()


def _openapi_request(exchange: Exchange) -> _Request:
    headers = Headers(list(exchange.headers.items()))
    return _Request(
        method=exchange.method.lower(),
        path=exchange.path,
        body=exchange.body or None,
        content_type=(headers.get("Content-Type") or "").lower(),
        parameters=RequestParameters(
            query=ImmutableMultiDict(parse_qsl(exchange.query_string, keep_blank_values=True)),
            header=headers,
            cookie=ImmutableMultiDict(),
        ),
    )


def _openapi_response(exchange: Exchange) -> _Response:
    return _Response(exchange.status, Headers(exchange.response_headers), exchange.response_body or None)


@pytest.fixture
def recording_sandbox() -> Iterator[BambooHRSandbox]:
    with BambooHRSandbox(api_key="c0ffee" * 6 + "c0ff", employees=40, seed=11, record=True) as server:
        yield server


def _run_every_operation(connector: BambooHRConnector) -> None:
    today = dt.datetime.now(dt.UTC).date()
    assert connector.test_connection().ok
    assert connector.list_employees({"status": "active", "department": "Sales"}) is not None
    since = dt.datetime(2001, 1, 1)  # noqa: DTZ001 -- a naive datetime: the connector reads it as UTC
    connector.list_employees({"employee_ids": [1, 2], "changed_since": since}, unified=True)
    connector.get_employee(3)
    connector.get_employee(0, ["firstName", "customShirtSize", "hireDate"], unified=True)
    new_id = connector.create_employee(
        {
            "firstName": "Contract",
            "lastName": "Test",
            "workEmail": "contract.test@example.com",
            "hireDate": "2024-05-01",
        }
    )
    connector.update_employee(new_id, {"department": "Engineering", "jobTitle": "QA Analyst"})
    connector.get_directory()
    connector.changed_employees(dt.datetime.now(dt.UTC) - dt.timedelta(days=1), type="updated")
    types = connector.list_time_off_types()
    window = {"start": today - dt.timedelta(days=90), "end": today + dt.timedelta(days=90)}
    connector.list_time_off_requests(window)
    connector.list_time_off_requests(
        {**window, "status": ["approved", "requested"], "employee_id": 2, "type": [78, 79]}
    )
    start = today + dt.timedelta(days=30)
    body = {"start": start, "end": start + dt.timedelta(days=2), "type_id": types[0]["id"], "notes": "Contract"}
    first = connector.create_time_off_request(new_id, body, unified=True)
    connector.approve_time_off_request(first.id, note="ok")
    connector.cancel_time_off_request(first.id)
    second = connector.create_time_off_request(new_id, {**body, "amount": 1.5})
    connector.deny_time_off_request(second["id"])
    for fmt in ("json", "csv", "pdf", "xls"):
        result = connector.get_report(1, fmt, filter_duplicates=fmt == "json")
        assert isinstance(result, dict if fmt == "json" else ReportFile)
    connector.run_custom_report(["firstName", "customShirtSize", "4003"], employee_ids=["1", 2], title="Contract")
    connector.run_custom_report(["lastName"], changed_since=dt.date(2020, 1, 1), format="csv", only_current=False)
    connector.list_custom_fields()


def _check_request(api: OpenAPI, request: _Request, response: _Response) -> None:
    api.validate_request(request)


def _check_response(api: OpenAPI, request: _Request, response: _Response) -> None:
    api.validate_response(request, response)


def _mismatch(exc: Exception) -> str:
    """What the validator found and where in the value, without the whole value it judged (which would
    push the reason out of a line)."""
    errors = getattr(exc, "schema_errors", None) or getattr(exc.__cause__, "schema_errors", None)
    if not errors:
        return f"{exc} {exc.__cause__ or ''}"
    found = "; ".join(f"/{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in errors)
    name = getattr(exc, "name", None)  # a parameter's
    return f"{type(exc).__name__}{f' {name!r}' if name else ''}: {found}"


def _violations(api: OpenAPI, exchanges: list[Exchange]) -> list[str]:
    """Every request and response of ``exchanges`` that ``api`` refuses, one line each."""
    problems: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # openapi-core: "Unsupported scheme type" (oauth2)
        for exchange in exchanges:
            request, response = _openapi_request(exchange), _openapi_response(exchange)
            where = f"{exchange.method} {exchange.path}?{exchange.query_string} -> {exchange.status}"
            for what, check in (("request", _check_request), ("response", _check_response)):
                try:
                    check(api, request, response)
                except Exception as exc:  # collect them all: one report names every mismatch
                    problems.append(f"{where}: {what}: {_mismatch(exc)}"[:600])
    return problems


EXPECTED_OPERATIONS = {
    "list-fields",
    "request-custom-report",
    "get-employee",
    "create-employee",
    "update-employee",
    "get-employees-directory",
    "get-changed-employee-ids",
    "list-time-off-types",
    "list-time-off-requests",
    "create-time-off-request",
    "update-time-off-request-status",
    "get-company-report",
}


def test_every_request_and_response_matches_the_spec(
    bamboohr_openapi: OpenAPI, recording_sandbox: BambooHRSandbox, make_bamboohr: Callable[..., BambooHRConnector]
) -> None:
    _run_every_operation(make_bamboohr(recording_sandbox))
    exchanges = recording_sandbox.exchanges
    assert set(recording_sandbox.stats()["by_route"]) == EXPECTED_OPERATIONS
    assert all(200 <= e.status < 300 for e in exchanges), [(e.method, e.path, e.status) for e in exchanges]
    problems = _violations(bamboohr_openapi, exchanges)
    assert not problems, "\n".join(problems)
    assert len(exchanges) >= 25


def test_the_validator_does_catch_a_deviation(bamboohr_openapi: OpenAPI) -> None:
    """The check above can fail: a time-off listing with string ids (the docs' samples) is not the spec."""
    exchange = Exchange(
        "GET",
        "/api/v1/time_off/requests",
        "start=2024-01-01&end=2024-01-31",
        {"authorization": "Basic eDp4", "accept": "application/json"},
        b"",
        200,
        [("Content-Type", "application/json")],
        b'[{"id": "1", "employeeId": "2", "amount": {"unit": "days", "amount": "1"}}]',
    )
    request = _openapi_request(exchange)
    bamboohr_openapi.validate_request(request)
    with pytest.raises(Exception, match="not valid"):
        bamboohr_openapi.validate_response(request, _openapi_response(exchange))
    missing_dates = _openapi_request(
        Exchange(
            "GET", "/api/v1/time_off/requests", "start=2024-01-01", {"authorization": "Basic eDp4"}, b"", 0, [], b""
        )
    )
    with pytest.raises(Exception, match="end"):
        bamboohr_openapi.validate_request(missing_dates)


# ---- the contract test can still fail: the same run, checked against an altered copy of the spec --------


def _operation(document: dict[str, Any], operation_id: str) -> dict[str, Any]:
    for path_item in document["paths"].values():
        for operation in path_item.values():
            if isinstance(operation, dict) and operation.get("operationId") == operation_id:
                return operation
    raise LookupError(f"no operation {operation_id} in the spec")


def _time_off_types(document: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = _operation(document, "list-time-off-types")["responses"]["200"]["content"][
        "application/json"
    ]["schema"]
    return schema


def _type_ids_become_strings(document: dict[str, Any]) -> None:
    _time_off_types(document)["properties"]["timeOffTypes"]["items"]["properties"]["id"]["type"] = "string"


def _default_hours_renamed(document: dict[str, Any]) -> None:
    """As if BambooHR renamed a required field: the sandbox's answer now lacks a required one."""
    schema = _time_off_types(document)
    schema["properties"]["defaultHoursPerDay"] = schema["properties"].pop("defaultHours")
    schema["required"] = ["defaultHoursPerDay" if name == "defaultHours" else name for name in schema["required"]]


def _changed_type_loses_updated(document: dict[str, Any]) -> None:
    for parameter in _operation(document, "get-changed-employee-ids")["parameters"]:
        if parameter.get("name") == "type":
            parameter["schema"]["enum"].remove("updated")


@pytest.mark.parametrize(
    ("alter", "path", "what", "detail"),
    [
        (_type_ids_become_strings, "/api/v1/meta/time_off/types", "response", "is not of type 'string'"),
        (_default_hours_renamed, "/api/v1/meta/time_off/types", "response", "'defaultHoursPerDay' is a required"),
        (_changed_type_loses_updated, "/api/v1/employees/changed", "request", "type"),
    ],
    ids=["response-field-type-changed", "required-response-field-missing", "request-value-not-allowed"],
)
def test_the_contract_fails_against_an_altered_spec(
    alter: Callable[[dict[str, Any]], None],
    path: str,
    what: str,
    detail: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    recording_sandbox: BambooHRSandbox,
    make_bamboohr: Callable[..., BambooHRConnector],
) -> None:
    """The run of the contract test above, judged by a copy of the spec with one change, named through
    BAMBOOHR_OPENAPI: the check reports that change, and only on the operation it touches."""
    document = copy.deepcopy(_read_spec(openapi_path()))
    alter(document)
    altered = tmp_path / "openapi.yaml"
    altered.write_text(yaml.dump(document, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False))
    monkeypatch.setenv("BAMBOOHR_OPENAPI", str(altered))
    assert openapi_path() == altered

    _run_every_operation(make_bamboohr(recording_sandbox))
    problems = _violations(_load_openapi(), recording_sandbox.exchanges)

    assert problems, "the altered spec was not noticed"
    assert all(p.startswith(f"GET {path}?") and f": {what}: " in p for p in problems), "\n".join(problems)
    assert any(detail in p for p in problems), "\n".join(problems)
