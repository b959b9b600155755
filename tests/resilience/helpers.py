"""What the resilience tests do to the running hub: create and connect integrations through the REST API,
keep tool calls flowing from threads (each one accounted for), and read the hub's own view of health."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.runtime_fixtures import wait_until

# What a tool call may answer while things break: anything else (no answer, a 5xx page, a traceback) is lost.
CLEAR_FAILURES = {"unavailable", "rate_limited", "timeout", "network", "unknown"}


def create(api: httpx.Client, **body: Any) -> dict[str, Any]:
    body.setdefault("name", body["id"].replace("_", " ").title())
    body.setdefault("health_check_interval", 5)
    response = api.post("/api/integrations", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def connect(api: httpx.Client, integration_id: str, timeout: float = 30) -> dict[str, Any]:
    response = api.post(f"/api/integrations/{integration_id}/connect", params={"wait": timeout})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "succeeded", body
    return body


def health(api: httpx.Client) -> dict[str, Any]:
    response = api.get("/api/health")
    assert response.status_code == 200, response.text
    return response.json()


def brief(api: httpx.Client, integration_id: str) -> dict[str, Any]:
    """The integration's line in /api/health: status, last_error, last_checked_at, stale."""
    for row in health(api)["integrations"]:
        if row["id"] == integration_id:
            return row
    raise AssertionError(f"{integration_id} is not in /api/health")


def wait_status(
    api: httpx.Client, integration_id: str, statuses: str | tuple[str, ...], timeout: float
) -> dict[str, Any]:
    wanted = (statuses,) if isinstance(statuses, str) else statuses
    seen: list[str] = []

    def reached() -> dict[str, Any] | None:
        row = brief(api, integration_id)
        if not seen or seen[-1] != row["status"]:
            seen.append(row["status"])
        return row if row["status"] in wanted else None

    try:
        return wait_until(reached, timeout, 0.25, f"{integration_id} to be {'/'.join(wanted)}")
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}; statuses seen: {seen}") from None


def agent_token(*integration_ids: str, access: str = "read", name: str = "resilience-agent") -> str:
    from integrations.models import Integration
    from integrations.tools.models import AgentToken

    _token, raw = AgentToken.issue(
        name=name, access=access, integrations=list(Integration.objects.filter(pk__in=integration_ids))
    )
    return raw


@dataclass
class Call:
    started: float
    seconds: float
    status: int | None
    ok: bool | None
    category: str | None
    message: str
    call_id: int | None
    lost: str | None = None  # why the caller got no usable answer


def call_tool(base_url: str, raw_token: str, tool: str, arguments: dict[str, Any], timeout: float = 20) -> Call:
    """One REST tool call; the outcome as the caller sees it."""
    started = time.monotonic()
    try:
        response = httpx.post(
            f"{base_url}/api/tools/{tool}/invoke",
            json=arguments,
            params={"timeout": timeout},
            headers={"Authorization": f"Bearer {raw_token}"},
            timeout=timeout + 30,
            trust_env=False,
        )
    except httpx.HTTPError as exc:
        return Call(started, time.monotonic() - started, None, None, None, "", None, lost=type(exc).__name__)
    seconds = time.monotonic() - started
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 500 or not isinstance(body, dict) or "ok" not in body:
        return Call(
            started,
            seconds,
            response.status_code,
            None,
            None,
            response.text[:300],
            None,
            lost=f"HTTP {response.status_code}: {response.text[:200]}",
        )
    error = body.get("error") or {}
    return Call(
        started,
        seconds,
        response.status_code,
        body["ok"],
        error.get("category"),
        str(error.get("message") or ""),
        body.get("call_id"),
    )


@dataclass
class ToolLoad:
    """Tool calls from ``threads`` threads until stopped; every call's outcome is kept."""

    base_url: str
    token: str
    tool: str
    arguments: dict[str, Any]
    threads: int = 2
    pause: float = 0.1
    timeout: float = 10
    calls: list[Call] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> ToolLoad:
        for n in range(self.threads):
            thread = threading.Thread(target=self._run, name=f"tool-load-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            call = call_tool(self.base_url, self.token, self.tool, self.arguments, self.timeout)
            with self._lock:
                self.calls.append(call)
            self._stop.wait(self.pause)

    def stop(self) -> list[Call]:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 60)
        return list(self.calls)

    def since(self, moment: float) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.started >= moment]

    def wait_for(self, predicate: Callable[[Call], bool], timeout: float, what: str, since: float = 0.0) -> Call:
        def found() -> Call | None:
            return next((c for c in self.since(since) if predicate(c)), None)

        try:
            return wait_until(found, timeout, 0.1, what)
        except TimeoutError as exc:
            recent = [(c.ok, c.category, c.message[:80], c.lost) for c in self.calls[-5:]]
            raise TimeoutError(f"{exc}; last calls: {recent}") from None


def lost(calls: list[Call]) -> list[Call]:
    return [c for c in calls if c.lost is not None]


def unclear(calls: list[Call]) -> list[Call]:
    """Answered, but neither a success nor a failure the caller can act on."""
    return [c for c in calls if c.lost is None and not c.ok and c.category not in CLEAR_FAILURES]


def unfinished_tool_calls() -> int:
    """Audit rows still 'running': a call the hub lost track of."""
    from integrations.tools.models import ToolCall

    return ToolCall.objects.filter(finished_at__isnull=True).count()
