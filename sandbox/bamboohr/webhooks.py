"""Webhooks as BambooHR defines them (README §4.12, the spec's Webhooks tag): managed over the API, fired on
employee changes, signed, retried on 5xx.

- Management: ``GET/POST /webhooks``, ``GET/PUT/DELETE /webhooks/{id}``, ``GET /webhooks/{id}/log``,
  ``GET /webhooks/monitor_fields``, ``GET /webhooks/post-fields``. ``privateKey`` only in the 201 answer;
  ``url`` must start with ``https://`` (the sandbox's ``insecure_urls`` switch lets tests use loopback http).
- Events: ``employee.created`` then ``employee.updated`` on create, ``employee.updated`` when a monitored
  field changed, ``employee.deleted``; or the legacy ``employee_with_fields.*`` payloads (the default when no
  ``events`` are given), with ``postFields`` values.
- Each delivery is a POST with ``X-BambooHR-Timestamp`` (Unix seconds) and ``X-BambooHR-Signature``: lowercase
  hex HMAC-SHA256 keyed by the webhook's private key over the raw body followed by the timestamp.
- A 2xx is delivered, a 4xx is not retried, a 5xx or no answer is retried 5 times after 5, 10, 20, 40 and 80
  minutes (``backoff_scale`` shrinks them for tests). Deliveries run on one background thread, in order.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
import hmac
import itertools
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from sandbox.bamboohr import data
from sandbox.bamboohr.data import Company
from sandbox.bamboohr.wire import Fail, Request, Response, json_response

EVENT_TYPES = (
    "employee_with_fields.updated",
    "employee_with_fields.created",
    "employee_with_fields.deleted",
    "company-integrations.updated",
    "employee.created",
    "employee.updated",
    "employee.deleted",
    "company.updated",
    "company.deleted",
)
LEGACY_DEFAULT = ["employee_with_fields.updated", "employee_with_fields.deleted", "employee_with_fields.created"]
RETRY_MINUTES = (5, 10, 20, 40, 80)
LOG_LIMIT = 200  # the log keeps at most 200 entries (and 14 days)


def _stamp(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def sign(private_key: str, body: bytes, timestamp: str) -> str:
    """BambooHR's signature: hex HMAC-SHA256 of the raw body followed directly by the timestamp."""
    return hmac.new(private_key.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()


@dataclass
class Webhook:
    id: int
    name: str
    url: str
    format: str
    events: list[str]
    monitor_fields: list[str] | None
    post_fields: dict[str, str]
    include_company_domain: bool
    private_key: str
    created: float
    last_sent: float | None = None
    log: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "created": _stamp(self.created),
            "lastSent": _stamp(self.last_sent) if self.last_sent else None,
            "monitorFields": self.monitor_fields,
            "postFields": self.post_fields,
            "url": self.url,
            "format": self.format,
            "includeCompanyDomain": self.include_company_domain,
            "events": self.events,
        }


@dataclass(order=True)
class _Delivery:
    due: float
    seq: int
    webhook_id: int = field(compare=False)
    body: bytes = field(compare=False)
    content_type: str = field(compare=False)
    employee_ids: list[str] = field(compare=False)
    attempt: int = field(compare=False, default=0)


def _field_alias(name: str) -> str | None:
    """A monitor or post field named by alias, id or display name, as its alias."""
    if name in data.FIELD_BY_ALIAS:
        return name
    if name in data.FIELD_ALIAS_BY_ID:
        return data.FIELD_ALIAS_BY_ID[name]
    return next((alias for alias, (_id, label, _t) in data.FIELD_BY_ALIAS.items() if label == name), None)


class WebhookDesk:
    """The company's webhooks, their logs and the delivery thread."""

    def __init__(
        self,
        company: Company,
        lock: threading.RLock,
        *,
        insecure_urls: bool = False,
        backoff_scale: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.company = company
        self.lock = lock
        self.insecure_urls = insecure_urls
        self.backoff_scale = backoff_scale
        self.paused = False  # deliveries dropped, as if lost on the way (a test of reconciliation)
        self.clock = clock
        self.hooks: dict[int, Webhook] = {}
        self._next_id = 1
        self._queue: list[_Delivery] = []
        self._seq = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def configure(
        self, *, paused: bool | None = None, insecure_urls: bool | None = None, backoff_scale: float | None = None
    ) -> None:
        if paused is not None:
            self.paused = bool(paused)
        if insecure_urls is not None:
            self.insecure_urls = bool(insecure_urls)
        if backoff_scale is not None:
            if not isinstance(backoff_scale, int | float) or backoff_scale < 0:
                raise ValueError("backoff_scale must be a number >= 0")
            self.backoff_scale = float(backoff_scale)

    def settings(self) -> dict[str, Any]:
        return {
            "paused": self.paused,
            "insecure_urls": self.insecure_urls,
            "backoff_scale": self.backoff_scale,
            "pending": self.pending(),
        }

    # --- management endpoints -------------------------------------------------------------------
    def list_webhooks(self, request: Request) -> Response:
        with self.lock:
            summaries = [
                {k: v for k, v in hook.describe().items() if k in ("id", "name", "created", "lastSent", "url")}
                for hook in self.hooks.values()
            ]
        return json_response({"webhooks": summaries})

    def create_webhook(self, request: Request) -> Response:
        spec = self._read(request)
        with self.lock:
            hook = Webhook(id=self._next_id, private_key=secrets.token_hex(32), created=self.clock(), **spec)
            self._next_id += 1
            self.hooks[hook.id] = hook
        return json_response(hook.describe() | {"privateKey": hook.private_key}, status=201)

    def get_webhook(self, request: Request, wid: str) -> Response:
        with self.lock:
            return json_response(self._find(wid).describe())

    def update_webhook(self, request: Request, wid: str) -> Response:
        spec = self._read(request)
        with self.lock:
            hook = self._find(wid)
            for name, value in spec.items():  # the whole webhook is replaced; the key stays
                setattr(hook, name, value)
            return json_response(hook.describe())

    def delete_webhook(self, request: Request, wid: str) -> Response:
        with self.lock:
            self._find(wid)
            del self.hooks[int(wid)]
        return Response(200, [("Content-Type", "text/plain; charset=utf-8")], b"Web hook has been deleted.")

    def webhook_log(self, request: Request, wid: str) -> Response:
        horizon = self.clock() - 14 * 86400
        with self.lock:
            hook = self._find(wid)
            entries = [e for e in hook.log if e["_at"] >= horizon][-LOG_LIMIT:]
        return json_response([{k: v for k, v in e.items() if not k.startswith("_")} for e in entries])

    def monitor_fields(self, request: Request) -> Response:
        fields = [
            {"id": str(fid), "name": name, "alias": alias}
            for fid, name, _type, alias in data.FIELDS
            if alias not in data.READ_ONLY_FIELDS
        ]
        return json_response({"fields": fields})

    def post_fields(self, request: Request) -> Response:
        # Every sandbox field sits on the one "Personal" page and in no table.
        fields = [
            {"id": fid, "name": name, "alias": alias, "type": ftype, "pageId": 1, "tableId": None}
            for fid, name, ftype, alias in data.FIELDS
        ]
        return json_response({"fields": fields, "tables": [], "pages": [{"id": 1, "name": "Personal"}]})

    def _find(self, wid: str) -> Webhook:
        hook = self.hooks.get(int(wid))
        if hook is None:
            raise Fail(404, "", {"errors": [{"error": f"No webhook was found with ID: {wid}."}]})
        return hook

    def _read(self, request: Request) -> dict[str, Any]:
        try:
            body = json.loads(request.body or b"")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise Fail(
                400, "", {"errors": [{"error": "Invalid request body", "issues": ["a JSON object is required"]}]}
            )
        issues = []
        name, url, fmt = body.get("name"), body.get("url"), body.get("format")
        if not isinstance(name, str) or not name.strip():
            issues.append("name is required")
        allowed = ("https://", "http://") if self.insecure_urls else ("https://",)
        if not isinstance(url, str) or not url.startswith(allowed):
            issues.append("url must begin with https://")
        if fmt not in ("json", "form-encoded"):
            issues.append("format must be json or form-encoded")
        events = body.get("events") or list(LEGACY_DEFAULT)
        if not isinstance(events, list) or any(e not in EVENT_TYPES for e in events):
            issues.append(f"events must be among {', '.join(EVENT_TYPES)}")
            events = []
        elif any(e.startswith("employee_with_fields.") for e in events) and any(
            e.startswith("employee.") for e in events
        ):
            issues.append("employee_with_fields events cannot be mixed with employee events")
        monitor = body.get("monitorFields")
        needs_monitor = any(e.endswith(".updated") and e.startswith("employee") for e in events)
        if needs_monitor and not monitor:
            issues.append("monitorFields is required for updated events")
        post = body.get("postFields") or {}
        if not isinstance(post, dict) or (monitor is not None and not isinstance(monitor, list)):
            issues.append("monitorFields is a list and postFields an object")
            post, monitor = {}, None
        unknown = [{"id": None, "name": str(f)} for f in [*(monitor or []), *post] if _field_alias(str(f)) is None]
        if issues:
            raise Fail(400, "", {"errors": [{"error": "Invalid request body", "issues": issues}]})
        if unknown:
            raise Fail(
                403,
                "",
                {"errors": [{"error": "Permission denied to the following fields", "unknownFields": unknown}]},
            )
        return {
            "name": name,
            "url": url,
            "format": fmt,
            "events": events,
            "monitor_fields": list(monitor) if monitor else None,
            "post_fields": {str(k): str(v) for k, v in post.items()},
            "include_company_domain": bool(body.get("includeCompanyDomain")),
        }

    # --- firing -----------------------------------------------------------------------------------
    def employee_changed(self, action: str, eid: int, changed: list[str]) -> None:
        """``action`` is created, updated or deleted; ``changed`` the aliases whose value changed."""
        now = self.clock()
        with self.lock:
            record = dict(self.company.employees.get(eid) or {})
            hooks = list(self.hooks.values())
        for hook in hooks:
            for body, content_type in self._payloads(hook, action, eid, changed, record, now):
                self._enqueue(hook.id, body, content_type, [str(eid)], now)

    def _payloads(
        self, hook: Webhook, action: str, eid: int, changed: list[str], record: dict[str, Any], now: float
    ) -> list[tuple[bytes, str]]:
        monitored = {_field_alias(f) for f in hook.monitor_fields or []}
        relevant = [f for f in changed if f in monitored]
        out: list[dict[str, Any]] = []
        stamp = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")
        data_part = {"companyId": self.company.name, "employeeId": str(eid)}
        if f"employee.{action}" in hook.events and action != "updated":
            out.append({"type": f"employee.{action}", "timestamp": stamp, "data": data_part})
        # Creating an employee fires created and then updated (the create-then-initialize pattern).
        if "employee.updated" in hook.events and relevant and action in ("created", "updated"):
            out.append(
                {"type": "employee.updated", "timestamp": stamp, "data": data_part | {"changedFields": relevant}}
            )
        legacy = f"employee_with_fields.{action}"
        if legacy in hook.events and (action != "updated" or relevant):
            labels = [data.FIELD_BY_ALIAS[f][1] for f in relevant] if action == "updated" else []
            values = (
                {external: record.get(_field_alias(name) or "") for name, external in hook.post_fields.items()}
                if action == "updated"
                else {}
            )
            out.append(
                {
                    "employees": [
                        {
                            "action": action.capitalize(),
                            "changedFields": labels,
                            "fields": values,
                            "id": str(eid),
                            "timestamp": stamp,
                        }
                    ]
                }
            )
        if hook.format == "json":
            return [(json.dumps(p, separators=(",", ":")).encode(), "application/json") for p in out]
        return [(_form(p).encode(), "application/x-www-form-urlencoded") for p in out]

    def _enqueue(self, webhook_id: int, body: bytes, content_type: str, employee_ids: list[str], due: float) -> None:
        if self.paused:
            return
        with self._wake:
            heapq.heappush(self._queue, _Delivery(due, next(self._seq), webhook_id, body, content_type, employee_ids))
            self._ensure_thread()
            self._wake.notify()

    def pending(self) -> int:
        with self._wake:
            return len(self._queue)

    def _ensure_thread(self) -> None:
        if self._thread is None and not self._stopped:
            self._thread = threading.Thread(target=self._run, name="bamboohr-webhooks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify_all()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and (not self._queue or self._queue[0].due > self.clock()):
                    wait = (self._queue[0].due - self.clock()) if self._queue else None
                    self._wake.wait(timeout=None if wait is None else max(0.01, min(wait, 1.0)))
                if self._stopped:
                    return
                delivery = heapq.heappop(self._queue)
            self._deliver(delivery)

    def _deliver(self, delivery: _Delivery) -> None:
        with self.lock:
            hook = self.hooks.get(delivery.webhook_id)
        if hook is None:
            return
        timestamp = str(int(self.clock()))
        headers = {
            "Content-Type": delivery.content_type,
            "User-Agent": "BambooHR-Webhooks (sandbox)",
            "X-BambooHR-Timestamp": timestamp,
            "X-BambooHR-Signature": sign(hook.private_key, delivery.body, timestamp),
        }
        if hook.include_company_domain:
            headers["company-domain"] = f"{self.company.name}.bamboohr.com"
        status = 0
        try:
            request = urllib.request.Request(hook.url, data=delivery.body, headers=headers, method="POST")
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - the webhook's own URL
                status = answer.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (OSError, ValueError):
            status = 0
        now = self.clock()
        with self.lock:
            hook.last_sent = now
            entry = {
                "webhookId": str(hook.id),
                "url": hook.url,
                "lastAttempted": _stamp(now),
                "lastSuccess": _stamp(now) if 200 <= status < 300 else "",
                "statusCode": str(status),
                "format": hook.format,
                "employeeIds": delivery.employee_ids,
                "_at": now,
            }
            hook.log.append(entry)
            del hook.log[:-LOG_LIMIT]
        retry = status == 0 or status >= 500
        if retry and delivery.attempt < len(RETRY_MINUTES):
            delay = RETRY_MINUTES[delivery.attempt] * 60 * self.backoff_scale
            delivery.attempt += 1
            delivery.due = now + delay
            with self._wake:
                heapq.heappush(self._queue, delivery)
                self._wake.notify()


def _form(payload: dict[str, Any], prefix: str = "") -> str:
    """BambooHR's form-encoded payloads: nested keys as data[companyId]=…"""
    pairs: list[tuple[str, str]] = []

    def walk(value: Any, key: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{key}[{k}]" if key else k)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{key}[{i}]")
        else:
            pairs.append((key, "" if value is None else str(value)))

    walk(payload, prefix)
    return urlencode(pairs)
