"""Playwright on the Debian Chromium (never a downloaded browser), against the live Daphne server.

``ui`` opens one page that records every console message and uncaught page error; the test ends by
calling ``ui.assert_no_console_errors()`` (teardown checks it too). An HTTP error answer the test
provokes on purpose (the server's 400 for a bad form) makes Chromium log "Failed to load resource";
such an entry is allowed only when the test declared it with ``ui.expect_http_error(path, status)``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.runtime_fixtures import Server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"


@dataclass
class UI:
    page: Any
    server: Server
    console: list[tuple[str, str, str]] = field(default_factory=list)  # (type, text, url)
    page_errors: list[str] = field(default_factory=list)
    expected_http_errors: list[tuple[str, int]] = field(default_factory=list)
    responses: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, status)

    def url(self, path: str) -> str:
        return self.server.url + path

    def expect_http_error(self, path: str, status: int) -> None:
        self.expected_http_errors.append((path, status))

    def login(self, username: str, password: str) -> None:
        self.page.goto(self.url("/integrations"))
        # Login is required: the dashboard sends us to the login page first.
        assert "/accounts/login/" in self.page.url
        self.page.get_by_label("User name").fill(username)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Log in").click()
        self.page.wait_for_url(self.url("/integrations"))

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def unexpected_console_errors(self) -> list[str]:
        allowed = {(path, status) for path, status in self.expected_http_errors}
        provoked = [f"{self.server.url}{path}" for _method, path, status in self.responses if (path, status) in allowed]
        problems = []
        for kind, text, url in self.console:
            if kind != "error":
                continue
            if text.startswith("Failed to load resource") and url in provoked:
                continue
            problems.append(f"{text} ({url})")
        return problems + [f"uncaught: {error}" for error in self.page_errors]

    def assert_no_console_errors(self) -> None:
        assert self.unexpected_console_errors() == []


@pytest.fixture
def process_env_overrides() -> dict[str, str]:
    """Beat dispatches due health checks every second and an open circuit cools down in 5 s, so a
    status change shows within seconds (production defaults: 5 s and 30 s)."""
    return {"HEALTH_DISPATCH_SECONDS": "1", "CIRCUIT_COOLDOWN_SECONDS": "5"}


@pytest.fixture
def ui(daphne_server: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[UI]:
    from urllib.parse import urlsplit

    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run HUB_WITH_BROWSER=1 scripts/setup (installs Debian's chromium)")
    # Playwright's sync API keeps an event loop running in this thread; the test's own ORM calls
    # (fixtures, assertions) are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-GB", timezone_id="UTC")
        context.set_default_timeout(15_000)
        page = context.new_page()
        state = UI(page=page, server=daphne_server)
        page.on("console", lambda m: state.console.append((m.type, m.text, m.location.get("url", ""))))
        page.on("pageerror", lambda exc: state.page_errors.append(str(exc)))
        page.on(
            "response",
            lambda r: state.responses.append((r.request.method, urlsplit(r.url).path, r.status)),
        )
        try:
            yield state
        finally:
            context.close()
            browser.close()
    assert state.unexpected_console_errors() == [], "JavaScript console errors during the run"
