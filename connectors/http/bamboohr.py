"""BambooHR (kind ``bamboohr``): employees, time off, reports and incremental sync over its v1 REST API.

Endpoints follow BambooHR's published OpenAPI description (``sandbox/bamboohr/spec/openapi.yaml``); the
quirks the spec does not make obvious are noted where they are handled. Auth is HTTP Basic with the
API key as user name and ``x`` as password, or an OAuth2 bearer token from the runtime's token
provider.

Reads return the provider's records as dicts, cleaned (ids as strings, ``0000-00-00`` and ``""`` as
``None``); with ``unified=True`` they come as ``connectors.hris.Employee`` / ``TimeOffRequest``, and
``include_raw=True`` attaches the cleaned provider record to each.

The operations live here, with the config; ``bamboohr_requests`` checks their arguments and builds
BambooHR's parameters and bodies, ``bamboohr_shapes`` reads its answers.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Literal, overload

import httpx
from pydantic import Field, field_validator, model_validator

from connectors.auth.oauth2 import OAuth2Config, oauth2_targets
from connectors.base import BaseConfig, CredentialField
from connectors.errors import Category, ConnectorError
from connectors.hris import Employee, ReportFile, TimeOffRequest
from connectors.http.bamboohr_requests import (
    DEFAULT_EMPLOYEE_FIELDS,
    as_list,
    custom_report_body,
    employee_fields,
    filter_employees,
    listing_fields,
    numeric_id,
    report_format,
    time_off_body,
    time_off_params,
    timestamp,
    yes_no,
)
from connectors.http.bamboohr_shapes import (
    REPORT_FORMATS,
    changes,
    clean,
    clean_time_off,
    employee_listing,
    new_id,
    read_json,
    report_result,
    to_employee,
    to_time_off,
)
from connectors.http.base import HttpConnector, check_base_url, parse_retry_after
from connectors.policy import Target

__all__ = ["DEFAULT_EMPLOYEE_FIELDS", "REPORT_FORMATS", "BambooHRConfig", "BambooHRConnector"]

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
        CredentialField(
            "webhook_private_key",
            "Webhook private key",
            required_for=(),
            help="The privateKey BambooHR returned when the webhook to /hooks/bamboohr/<id>/ was created; "
            "deliveries signed with another key are refused.",
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
        """BambooHR's 429 and 503, as its "Planned Changes to the API" page has them.

        Since 16 September 2026 BambooHR throttles with 429, and every throttle answer carries
        Retry-After: rate limited, transient, the wait honoured (the runtime pauses the integration's
        shared limiter for it, and a throttled write is sent again: it was not processed). add-employee's older 429 "Limit Exceeded" comes without Retry-After: the
        account's employee limit, which no wait fixes. 503 now only means "temporarily unavailable":
        transient, its Retry-After honoured when sent.
        """
        status = response.status_code
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if status == 429 and "Retry-After" in response.headers:
            return ConnectorError(
                message, category=Category.RATE_LIMITED, permanent=False, retry_after=retry_after, status_code=429
            )
        if status == 429 and operation == "create_employee":
            return ConnectorError(
                message + " (the account's employee limit is reached; waiting will not help)",
                category=Category.CONFLICT,
                permanent=True,
                status_code=429,
            )
        if status == 503:
            return ConnectorError(
                message, category=Category.UNAVAILABLE, permanent=False, retry_after=retry_after, status_code=503
            )
        return None  # e.g. a 429 without Retry-After on a read: throttling by the generic reading

    def _authenticate(self) -> None:
        self._probe()

    def _probe(self) -> dict[str, Any] | None:
        fields = read_json(self._request("test_connection", "GET", "meta/fields"))
        return {"fields": len(fields) if isinstance(fields, list) else None}

    # --- helpers -----------------------------------------------------------------------------
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
        wanted = listing_fields(filters, fields, unified=unified)
        report = self._custom_report(
            "list_employees",
            wanted,
            employee_ids=filters.get("employee_ids"),
            changed_since=filters.get("changed_since"),
        )
        records = filter_employees(report["employees"], filters)
        if unified:
            return [to_employee(r, include_raw) for r in records]
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
        wanted = employee_fields(as_list(fields) if fields else None, unified=unified)
        response = self._request(
            "get_employee",
            "GET",
            f"employees/{numeric_id(id, 'employee id')}",
            params={"fields": ",".join(str(f) for f in wanted)},
        )
        record = clean(read_json(response))
        return to_employee(record, include_raw) if unified else record

    def create_employee(self, data: Mapping[str, Any]) -> str:
        """Add an employee (``firstName`` and ``lastName`` required); returns the new id."""
        self._check_writable(data)
        response = self._request("create_employee", "POST", "employees", json=dict(data), ok=(201,), idempotent=False)
        created = new_id(response)
        if created is None:
            raise ConnectorError(
                "BambooHR create_employee: no employee id in the Location header", category=Category.UNKNOWN
            )
        return created

    def update_employee(self, id: str | int, data: Mapping[str, Any]) -> None:
        """Change the given fields only (BambooHR updates with POST)."""
        self._check_writable(data)
        # Setting the same values twice is harmless: a lost answer may be retried.
        self._request(
            "update_employee", "POST", f"employees/{numeric_id(id, 'employee id')}", json=dict(data), idempotent=True
        )

    def get_directory(self, *, only_current: bool = True) -> dict[str, Any]:
        """The company directory (Active employees only, fields chosen by the company)."""
        params = {} if only_current else {"onlyCurrent": "false"}
        return employee_listing(read_json(self._request("get_directory", "GET", "employees/directory", params=params)))

    def changed_employees(self, since: dt.datetime | dt.date | str, *, type: str = "all") -> dict[str, Any]:
        """Employees changed since a time, for incremental sync: ``{"latest", "changes": [{"id",
        "action" (inserted/updated/deleted), "last_changed"}]}``; keep ``latest`` for the next call."""
        params = {"since": timestamp(since)}
        if type != "all":
            params["type"] = type
        return changes(read_json(self._request("changed_employees", "GET", "employees/changed", params=params)))

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
        params = time_off_params(dict(filters or {}))
        data = read_json(self._request("list_time_off_requests", "GET", "time_off/requests", params=params))
        records = [clean_time_off(r) for r in data or []]
        if unified:
            return [to_time_off(r, include_raw) for r in records]
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
        body = time_off_body(data)
        response = self._request(
            "create_time_off_request",
            "PUT",
            f"employees/{numeric_id(employee_id, 'employee id')}/time_off/request",
            json=body,
            ok=(201,),
            idempotent=False,  # a PUT that creates a new request each time
        )
        created: dict[str, Any] = {}
        if response.content:
            parsed = read_json(response)
            created = parsed if isinstance(parsed, dict) else {}
        if not created.get("id"):
            created["id"] = new_id(response)
        record = clean_time_off(created)
        return to_time_off(record, include_raw) if unified else record

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
        request_id = numeric_id(id, "time-off request id")
        response = self._request(operation, "PUT", f"time_off/requests/{request_id}/status", json=body)
        parsed = read_json(response) if response.content else None
        if isinstance(parsed, dict) and parsed.get("id") is not None:
            return clean_time_off(parsed)
        return {"id": request_id, "status": {"status": status}}

    def list_time_off_types(self) -> list[dict[str, Any]]:
        data = read_json(self._request("list_time_off_types", "GET", "meta/time_off/types"))
        return [clean(t) for t in (data.get("timeOffTypes") or [])]

    # --- reports and metadata ----------------------------------------------------------------
    def get_report(
        self, report_id: str | int, format: str = "json", *, filter_duplicates: bool | None = None
    ) -> dict[str, Any] | ReportFile:
        """A saved company report. JSON comes back as ``{"title", "fields", "employees"}``; CSV, PDF,
        XLS (and XML) as a ``ReportFile`` with the bytes and their content type."""
        fmt = report_format(format)
        params: dict[str, Any] = {"format": fmt}
        if filter_duplicates is not None:
            params["fd"] = yes_no(filter_duplicates)
        response = self._request(
            "get_report",
            "GET",
            f"reports/{numeric_id(report_id, 'report id')}",
            params=params,
            headers={"Accept": REPORT_FORMATS[fmt]},
        )
        return report_result(response, fmt)

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
            list(as_list(fields)),
            employee_ids=employee_ids,
            changed_since=changed_since,
            title=title,
            fmt=report_format(format),
            only_current=only_current,
            filter_duplicates=filter_duplicates,
        )

    def list_fields(self) -> list[dict[str, Any]]:
        """Every employee field of the account: ``{"id", "name", "type", "alias"?}``."""
        data = read_json(self._request("list_fields", "GET", "meta/fields"))
        return [dict(f) for f in data or []]

    def list_custom_fields(self) -> list[dict[str, Any]]:
        """The account's own fields (alias ``custom...``), to discover what reports can ask for."""
        data = read_json(self._request("list_custom_fields", "GET", "meta/fields"))
        return [dict(f) for f in data or [] if _CUSTOM_ALIAS.match(str(f.get("alias") or ""))]

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
        body = custom_report_body(
            fields,
            employee_ids=employee_ids,
            changed_since=changed_since,
            title=title,
            filter_duplicates=filter_duplicates,
        )
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
        return report_result(response, fmt)
