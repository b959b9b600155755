"""What tests and demos steer and read: injected faults (throttling, the employee limit, failures,
slowness) and the traffic counters, in this process or over the control API (``/__sandbox__/faults``,
``/stats``).

Throttling answers as BambooHR has since 16 September 2026: 429 Too Many Requests with Retry-After
(``status=503`` keeps the older 503 + Retry-After). The employee limit is add-employee's other 429,
"Limit Exceeded" with no Retry-After: the account is full, waiting does not help.
"""

from __future__ import annotations

import email.utils
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from sandbox.bamboohr.wire import Exchange, Logged, Request, Response, error_response

THROTTLE_STATUSES = (429, 503)  # BambooHR's throttle since 16 September 2026, and the one before


@dataclass
class Faults:
    throttle_until: float = 0.0  # monotonic; a throttle window when count is None
    throttle_retry_after: float = 0.0
    throttle_count: int | None = None
    throttle_http_date: bool = False
    throttle_status: int = 429
    employee_limit: bool = False
    employee_limit_count: int | None = None  # None: every add-employee until cleared
    fail_status: int | None = None
    fail_count: int | None = None
    slow_seconds: float = 0.0

    def describe(self) -> dict[str, Any]:
        now = time.monotonic()
        throttling = self.throttle_count is not None and self.throttle_count > 0 or self.throttle_until > now
        return {
            "throttle": {
                "retry_after": self.throttle_retry_after,
                "count": self.throttle_count,
                "status": self.throttle_status,
            }
            if throttling
            else None,
            "employee_limit": {"count": self.employee_limit_count} if self.employee_limit else None,
            "fail": {"status": self.fail_status, "count": self.fail_count} if self.fail_status else None,
            "slow": {"seconds": self.slow_seconds} if self.slow_seconds else None,
        }


class FaultInjector:
    """The faults in force; ``answer()`` takes one request's share of them, ``employee_limit_reached()``
    one add-employee's. ``error_headers``: where BambooHR's error message goes (the app's spellings)."""

    def __init__(self, error_headers: tuple[str, ...] = ()) -> None:
        self.lock = threading.Lock()
        self.faults = Faults()
        self.error_headers = error_headers

    def answer(self) -> tuple[Response, bool] | None:
        """The fault answer to the next request (after any delay) and whether it is a throttle, or
        None to serve the request normally."""
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
            throttle_status = faults.throttle_status
        if delay:
            time.sleep(delay)
        if throttled is not None:
            seconds = max(1, math.ceil(throttled - 1e-6))  # Retry-After is whole seconds
            value = email.utils.formatdate(time.time() + seconds, usegmt=True) if http_date else str(seconds)
            if throttle_status == 503:  # before 16 September 2026: a gateway's HTML page
                return Response(
                    503,
                    [("Retry-After", value), ("Content-Type", "text/html; charset=UTF-8")],
                    b"<html><body><h1>503 Service Unavailable</h1>Too many requests, slow down.</body></html>",
                ), True
            limited = error_response(self.error_headers, 429, "Too Many Requests: rate limit exceeded")
            limited.headers.append(("Retry-After", value))
            return limited, True
        if failing is not None:
            reason = HTTPStatus(failing).phrase if failing in HTTPStatus._value2member_map_ else "Error"
            return Response(
                failing,
                [("Content-Type", "text/html; charset=UTF-8")],
                f"<html><body><h1>{failing} {reason}</h1></body></html>".encode(),
            ), False
        return None

    def employee_limit_reached(self) -> bool:
        """Whether this add-employee meets the injected employee limit (taking one of its count)."""
        with self.lock:
            faults = self.faults
            if not faults.employee_limit:
                return False
            if faults.employee_limit_count is not None:
                faults.employee_limit_count -= 1
                if faults.employee_limit_count <= 0:
                    faults.employee_limit, faults.employee_limit_count = False, None
            return True

    def apply(self, spec: Mapping[str, Any]) -> None:
        """``{"clear": true}``, ``{"throttle": {"retry_after": 2, "count": null}}`` (429; add
        ``"status": 503`` for the old throttle), ``{"employee_limit": {"count": 1}}``,
        ``{"fail": {"status": 500, "count": 3}}``, ``{"slow": {"seconds": 1.5}}`` (combinable)."""
        unknown = set(spec) - {"clear", "throttle", "employee_limit", "fail", "slow"}
        if unknown:
            raise ValueError(f"unknown fault(s): {', '.join(sorted(unknown))}")
        if spec.get("clear"):
            self.clear()
        if spec.get("throttle") is not None:
            t = spec["throttle"]
            self.throttle(
                float(t.get("retry_after", 2.0)),
                t.get("count"),
                http_date=bool(t.get("http_date")),
                status=int(t.get("status", 429)),
            )
        if spec.get("employee_limit") not in (None, False):
            limit = spec["employee_limit"]
            self.employee_limit((limit if isinstance(limit, Mapping) else {}).get("count"))
        if spec.get("fail") is not None:
            f = spec["fail"]
            self.fail(int(f.get("status", 500)), f.get("count"))
        if spec.get("slow") is not None:
            self.slow(float(spec["slow"].get("seconds", 0)))

    def throttle(
        self, retry_after: float = 2.0, count: int | None = None, *, http_date: bool = False, status: int = 429
    ) -> None:
        if retry_after < 0 or (count is not None and int(count) < 0):
            raise ValueError("retry_after and count must not be negative")
        if status not in THROTTLE_STATUSES:
            raise ValueError("a throttle answers 429 (BambooHR since 16 September 2026) or 503 (before)")
        with self.lock:
            self.faults.throttle_retry_after = retry_after
            self.faults.throttle_count = int(count) if count is not None else None
            self.faults.throttle_until = time.monotonic() + retry_after if count is None else 0.0
            self.faults.throttle_http_date = http_date
            self.faults.throttle_status = status

    def employee_limit(self, count: int | None = None) -> None:
        if count is not None and int(count) < 1:
            raise ValueError("count must be at least 1 (or null: until cleared)")
        with self.lock:
            self.faults.employee_limit = True
            self.faults.employee_limit_count = int(count) if count is not None else None

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

    def clear(self) -> None:
        with self.lock:
            self.faults = Faults()

    def describe(self) -> dict[str, Any]:
        with self.lock:
            return self.faults.describe()


class Traffic:
    """What the API received: counts by status and by operation, the latest requests, and (when
    ``record``) every exchange in full."""

    def __init__(self, *, record: bool = False) -> None:
        self.record = record
        self.lock = threading.Lock()
        self.log: deque[Logged] = deque(maxlen=100_000)  # the latest requests, for tests to inspect
        self.total = 0
        self.by_status: Counter[int] = Counter()
        self.by_route: Counter[str] = Counter()
        self.throttled = 0
        self.exchanges: list[Exchange] = []

    def count_route(self, operation: str) -> None:
        with self.lock:
            self.by_route[operation] += 1

    def count_throttled(self) -> None:
        with self.lock:
            self.throttled += 1

    def add(self, request: Request, response: Response) -> None:
        with self.lock:
            self.total += 1
            self.log.append(
                Logged(
                    time.monotonic(),
                    request.method,
                    request.path,
                    response.status,
                    request.query_string,
                    request.body,
                )
            )
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

    def logged(self) -> list[Logged]:
        with self.lock:
            return list(self.log)

    def recorded(self) -> list[Exchange]:
        with self.lock:
            return list(self.exchanges)

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": self.total,
                "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
                "by_route": dict(self.by_route),
                "throttled": self.throttled,  # throttle answers (429 or 503), not the employee limit
            }

    def reset(self) -> None:
        with self.lock:
            self.total = 0
            self.log.clear()
            self.by_status.clear()
            self.by_route.clear()
            self.throttled = 0
            self.exchanges.clear()
