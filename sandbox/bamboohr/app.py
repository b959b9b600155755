"""BambooHR's v1 API as the sandbox answers it: routing, auth and the control API.

Transport-free (``SandboxApp.handle(Request) -> Response``); ``server.py`` puts it on a socket.
Status codes, headers and bodies follow BambooHR's OpenAPI description (``sandbox/bamboohr/spec/``):
JSON only when asked for (XML otherwise), 201 + Location on create, 409 on a duplicate work email,
400 with BambooHR's error-message headers, 404 for unknown paths, ids and report formats.

Each job has its module: ``employees``, ``time_off``, ``reports`` (and ``report_files``) answer the
endpoints, ``webhooks`` manages webhooks and delivers signed events on employee changes (paused, loopback
http and a shorter backoff through ``POST /__sandbox__/webhooks``), ``fields`` checks and shows employee fields, ``wire`` reads requests and renders JSON or
XML, ``control`` holds the injected faults (a throttle: 429 + Retry-After, or 503 by a switch; the
employee limit: add-employee's 429 "Limit Exceeded" without Retry-After) and the traffic counters.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import threading
from collections.abc import Callable, Collection
from typing import Any

from sandbox.bamboohr.control import FaultInjector, Traffic
from sandbox.bamboohr.data import Company
from sandbox.bamboohr.employees import EMPLOYEE_LIMIT_MESSAGE, Employees
from sandbox.bamboohr.reports import Reports
from sandbox.bamboohr.time_off import TimeOffDesk
from sandbox.bamboohr.webhooks import WebhookDesk
from sandbox.bamboohr.wire import API_PREFIX, Exchange, Fail, Request, Response, error_response, json_response

__all__ = ["DEFAULT_ERROR_HEADERS", "BearerCheck", "Exchange", "Request", "Response", "SandboxApp"]

# The help centre's spelling (three s) and the one newer clients read; see the README, section 5.
DEFAULT_ERROR_HEADERS = ("X-BambooHR-Error-Messsage", "X-BambooHR-Error-Message")
BearerCheck = Callable[[str], bool]
Route = tuple[str, re.Pattern[str], Callable[..., Response], str]


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
        webhook_insecure_urls: bool = False,
        webhook_backoff_scale: float = 1.0,
    ) -> None:
        self.company = company
        self.api_key = api_key
        self.bearer_tokens = bearer_tokens
        self.error_headers = error_headers
        self.faults = FaultInjector(error_headers)
        self.traffic = Traffic(record=record)
        self.lock = lock = threading.RLock()  # the company's data, shared by every endpoint (and tests)
        self.webhooks = WebhookDesk(
            company, lock, insecure_urls=webhook_insecure_urls, backoff_scale=webhook_backoff_scale
        )
        employees = Employees(
            company,
            lock,
            key_employee_id=key_employee_id,
            employee_limit=employee_limit,
            on_change=self.webhooks.employee_changed,
        )
        time_off = TimeOffDesk(
            company, lock, key_employee_id=key_employee_id, numbers_as_strings=time_off_numbers_as_strings
        )
        reports = Reports(company, lock)
        # (method, path under /api/v1, handler, the spec's operationId)
        self.routes: list[Route] = [
            ("GET", re.compile(r"^employees/directory$"), employees.directory, "get-employees-directory"),
            ("GET", re.compile(r"^employees/changed$"), employees.changed, "get-changed-employee-ids"),
            ("GET", re.compile(r"^employees/(?P<eid>\d+)$"), employees.get_employee, "get-employee"),
            ("POST", re.compile(r"^employees$"), employees.create_employee, "create-employee"),
            ("POST", re.compile(r"^employees/(?P<eid>\d+)$"), employees.update_employee, "update-employee"),
            (
                "PUT",
                re.compile(r"^employees/(?P<eid>\d+)/time_off/request$"),
                time_off.create_time_off,
                "create-time-off-request",
            ),
            ("GET", re.compile(r"^time_off/requests$"), time_off.list_time_off, "list-time-off-requests"),
            (
                "PUT",
                re.compile(r"^time_off/requests/(?P<rid>\d+)/status$"),
                time_off.time_off_status,
                "update-time-off-request-status",
            ),
            ("GET", re.compile(r"^meta/time_off/types$"), time_off.time_off_types, "list-time-off-types"),
            ("GET", re.compile(r"^meta/fields$"), reports.meta_fields, "list-fields"),
            ("GET", re.compile(r"^meta/lists$"), reports.meta_lists, "list-list-fields"),
            ("GET", re.compile(r"^reports/(?P<rid>[^/]+)$"), reports.company_report, "get-company-report"),
            ("POST", re.compile(r"^reports/custom$"), reports.custom_report, "request-custom-report"),
            ("GET", re.compile(r"^webhooks$"), self.webhooks.list_webhooks, "list-webhooks"),
            ("POST", re.compile(r"^webhooks$"), self.webhooks.create_webhook, "create-webhook"),
            ("GET", re.compile(r"^webhooks/monitor_fields$"), self.webhooks.monitor_fields, "list-monitor-fields"),
            ("GET", re.compile(r"^webhooks/post-fields$"), self.webhooks.post_fields, "get-post-fields"),
            ("GET", re.compile(r"^webhooks/(?P<wid>\d+)$"), self.webhooks.get_webhook, "get-webhook"),
            ("PUT", re.compile(r"^webhooks/(?P<wid>\d+)$"), self.webhooks.update_webhook, "update-webhook"),
            ("DELETE", re.compile(r"^webhooks/(?P<wid>\d+)$"), self.webhooks.delete_webhook, "delete-webhook"),
            ("GET", re.compile(r"^webhooks/(?P<wid>\d+)/log$"), self.webhooks.webhook_log, "list-webhook-logs"),
        ]

    # --- entry point -------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        if request.path.startswith("/__sandbox__/"):
            return self._control(request)
        response = self._api(request)
        self.traffic.add(request, response)
        return response

    def _api(self, request: Request) -> Response:
        match = API_PREFIX.match(request.path)
        if not match or (match.group("company") is not None and match.group("company") != self.company.name):
            return self._error(404, "Not found")
        fault = self.faults.answer()
        if fault is not None:
            answer, throttled = fault
            if throttled:
                self.traffic.count_throttled()
            return answer
        if not self._authorized(request):
            return self._error(401, "Authentication failed: missing or invalid API key or token")
        rest = (match.group("rest") or "/").strip("/")
        for method, pattern, handler, operation in self.routes:
            found = pattern.match(rest)
            if found and method == request.method:
                self.traffic.count_route(operation)
                if operation == "create-employee" and self.faults.employee_limit_reached():
                    return self._error(429, EMPLOYEE_LIMIT_MESSAGE)
                try:
                    return handler(request, **found.groupdict())
                except Fail as exc:
                    return self._error(exc.status, exc.message, exc.body)
        # BambooHR answers 404 for unknown paths and for methods a path does not support.
        return self._error(404, "Not found")

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
        return error_response(self.error_headers, status, message, body)

    # --- the control API (for tests and demos in other processes) ------------------------------
    def _control(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._error(401, "Authentication failed")
        route = request.path.rstrip("/")
        try:
            if route == "/__sandbox__/faults" and request.method == "GET":
                return json_response(self.faults.describe())
            if route == "/__sandbox__/faults" and request.method == "POST":
                body = json.loads(request.body or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("body must be a JSON object")
                self.faults.apply(body)
                return json_response(self.faults.describe())
            if route == "/__sandbox__/stats" and request.method == "GET":
                return json_response(self.traffic.stats())
            if route == "/__sandbox__/requests" and request.method == "GET":
                # What each API request asked for (method, path, query, body), oldest first.
                return json_response([entry.as_dict() for entry in self.traffic.logged()])
            if route == "/__sandbox__/webhooks" and request.method in ("GET", "POST"):
                # Deliveries paused (lost on the way), loopback http allowed, backoff scaled: for tests.
                if request.method == "POST":
                    body = json.loads(request.body or b"{}")
                    if not isinstance(body, dict):
                        raise ValueError("body must be a JSON object")
                    self.webhooks.configure(**body)
                return json_response(self.webhooks.settings())
            if route == "/__sandbox__/stats" and request.method == "DELETE":
                self.traffic.reset()
                return json_response(self.traffic.stats())
        except (ValueError, TypeError, KeyError) as exc:
            return self._error(400, f"Bad fault request: {exc}")
        return self._error(404, "Not found")
