"""The dashboard in a real browser: headless Debian Chromium (Playwright) against Daphne, with a real
Celery worker and beat, and the BambooHR sandbox on loopback standing in for BambooHR's cloud."""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from integrations import services
from integrations.models import Integration, IntegrationEvent, Status
from tests import factories
from tests.integrations.dashboard.conftest import UI

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-operator-7c1d"
LATENCY = re.compile(r"\d+ ms")


@pytest.fixture
def operator(transactional_db: None) -> Any:
    return factories.staff("operator", password=PASSWORD)


def open_bamboohr_form(ui: UI) -> None:
    ui.page.goto(ui.url("/integrations/new"))
    ui.page.get_by_role("link", name=re.compile("BambooHR")).click()
    expect(ui.page.get_by_role("heading", name="2. BambooHR settings")).to_be_visible()


def api_writes(ui: UI) -> list[tuple[str, str, int]]:
    return [r for r in ui.responses if r[0] != "GET" and r[1].startswith("/api/")]


def field_error(ui: UI, label: str) -> Any:
    """The error line tied to a labelled input (through aria-describedby)."""
    input_id = ui.page.get_by_label(label, exact=True).get_attribute("id")
    return ui.page.locator(f"#{input_id}-error")


def test_wizard_shows_browser_and_server_errors_next_to_fields(ui: UI, operator: Any) -> None:
    ui.login("operator", PASSWORD)
    open_bamboohr_form(ui)
    page = ui.page

    # Checked in the browser: nothing reaches the server while required fields are empty.
    page.get_by_role("button", name="Save and connect").click()
    expect(field_error(ui, "Name")).to_have_text("This field is required.")
    expect(field_error(ui, "Subdomain")).to_have_text("This field is required.")
    expect(field_error(ui, "API key")).to_have_text("This field is required.")
    expect(page.get_by_label("Name", exact=True)).to_have_attribute("aria-invalid", "true")
    assert api_writes(ui) == []

    page.get_by_label("Name", exact=True).fill("Payroll HR")
    expect(page.get_by_label("Id", exact=True)).to_have_value("payroll_hr")
    expect(field_error(ui, "Name")).to_be_hidden()  # re-checked as the user types
    page.get_by_label("Id", exact=True).fill("9lives")
    page.get_by_label("Subdomain").fill("acme corp!")
    page.get_by_label("API key").fill("a-key-that-is-never-shown")
    expect(page.get_by_label("API key")).to_have_attribute("type", "password")
    page.get_by_role("button", name="Save and connect").click()
    expect(field_error(ui, "Id")).to_contain_text("lowercase letters, digits or underscores")
    assert api_writes(ui) == []

    # Checked on the server: the kind's validators answer 400 and the errors land next to their fields.
    ui.expect_http_error("/api/integrations", 400)
    page.get_by_label("Id", exact=True).fill("payroll_hr")
    page.get_by_role("button", name="Save and connect").click()
    expect(field_error(ui, "Subdomain")).to_contain_text("letters, digits and hyphens only")
    assert ("POST", "/api/integrations", 400) in ui.responses

    page.get_by_label("Subdomain").fill("acme")
    page.get_by_label("Base url").fill("http://hr.example.com/api/v1/")
    page.get_by_role("button", name="Save and connect").click()
    expect(field_error(ui, "Base url")).to_contain_text("base_url")
    expect(field_error(ui, "Subdomain")).to_be_hidden()
    assert not Integration.objects.exists()
    ui.assert_no_console_errors()


def test_a_user_who_is_not_staff_gets_the_hubs_suffix_on_the_id(ui: UI, transactional_db: None) -> None:
    """Issue 14, item 7: only staff choose exact ids; the wizard says so and shows the id the hub gave."""
    factories.user("clerk", password=PASSWORD)
    ui.login("clerk", PASSWORD)
    open_bamboohr_form(ui)
    page = ui.page
    page.get_by_label("Name", exact=True).fill("Payroll HR")
    id_input = page.get_by_label("Id", exact=True)
    expect(id_input).to_have_value("payroll_hr")
    expect(page.locator(f"#{id_input.get_attribute('id')}-help")).to_contain_text("6 random characters")
    page.get_by_label("Subdomain").fill("acme")
    page.get_by_label("API key").fill("a-key-that-is-never-shown")
    page.get_by_role("button", name="Save and connect").click()
    page.wait_for_url(re.compile(r".*/integrations/payroll_hr_[a-z0-9]{6}$"))
    (saved,) = Integration.objects.all()
    assert re.fullmatch(r"payroll_hr_[a-z0-9]{6}", saved.id) and saved.owner.username == "clerk"
    ui.assert_no_console_errors()


def test_add_test_watch_live_disconnect_and_delete(
    ui: UI, operator: Any, celery_worker_process: Any, celery_beat_process: Any, bamboohr_sandbox: Any
) -> None:
    page = ui.page
    ui.login("operator", PASSWORD)

    # A new user is told the first step.
    expect(page.get_by_role("heading", name="No integrations yet")).to_be_visible()
    page.get_by_role("link", name="Add your first integration").click()
    page.get_by_role("link", name=re.compile("BambooHR")).click()

    # The form comes from the kind's schema; the sandbox stands in for BambooHR's cloud.
    page.get_by_label("Name", exact=True).fill("HR Sandbox")
    expect(page.get_by_label("Id", exact=True)).to_have_value("hr_sandbox")
    page.get_by_label("Subdomain").fill("acme")
    page.get_by_label("Base url").fill(bamboohr_sandbox.base_url)
    page.get_by_label("Allow insecure loopback").check()
    page.get_by_label("API key").fill(bamboohr_sandbox.api_key)
    page.get_by_text("Health checks (optional)").click()
    page.get_by_label("Check every (seconds)").fill("5")
    ui.screenshot("wizard")

    # Test before saving: the worker answers with the latency.
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#test-result")).to_contain_text("Connection OK ·", timeout=30_000)
    expect(page.locator("#test-result")).to_contain_text(LATENCY)
    assert Integration.objects.get(pk="hr_sandbox").enabled is False  # a disabled draft until saved

    page.get_by_role("button", name="Save and connect").click()
    page.wait_for_url(ui.url("/integrations/hr_sandbox"))
    badge = page.locator("#integration [data-role=status]")
    expect(badge).to_have_text("Connected", timeout=30_000)
    assert Integration.objects.get(pk="hr_sandbox").enabled is True

    # Test from the details page: latency shown, and the event appears without a reload.
    page.locator("form[data-action=test] button").click()
    expect(page.locator("#action-result")).to_contain_text("Connection OK ·", timeout=30_000)
    expect(page.locator("#action-result")).to_contain_text(LATENCY)
    expect(page.locator("#events-table tbody tr").first).to_contain_text("Connection test")

    # The list follows the sandbox going away and coming back, live.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Integrations").click()
    row = page.locator('tr[data-integration="hr_sandbox"]')
    row_badge = row.locator("[data-role=status]")
    expect(row_badge).to_have_text("Connected")
    expect(page.locator("#live-indicator")).to_have_text("Live")
    page.evaluate("window.__sameDocument = true")

    bamboohr_sandbox.stop()
    expect(row_badge).to_have_text(re.compile("Degraded|Error"), timeout=45_000)
    expect(page.locator('[data-count="problem"]')).to_have_text("1")
    expect(row.locator("[data-role=message]")).to_have_text(re.compile(r"^(network|timeout|unavailable): "))

    bamboohr_sandbox.start()
    expect(row_badge).to_have_text("Connected", timeout=60_000)
    expect(page.locator('[data-count="connected"]')).to_have_text("1")
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    expect(row.locator("[data-role=latency]")).to_have_text(LATENCY)
    ui.screenshot("dashboard")

    # Disconnect, then delete (asks first).
    row.get_by_role("link", name="HR Sandbox").click()
    page.wait_for_url(ui.url("/integrations/hr_sandbox"))
    ui.screenshot("details")
    page.locator("form[data-action=disconnect] button").click()
    expect(page.locator("#action-result")).to_have_text("Disconnected", timeout=30_000)
    expect(badge).to_have_text("Disconnected")

    page.get_by_role("link", name="Delete…").click()
    dialog = page.get_by_role("dialog", name="Delete HR Sandbox?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert Integration.objects.filter(pk="hr_sandbox").exists()

    page.get_by_role("link", name="Delete…").click()
    dialog.get_by_role("button", name="Delete permanently").click()
    page.wait_for_url(ui.url("/integrations"))
    expect(page.get_by_text("Deleted HR Sandbox (hr_sandbox)")).to_be_visible()
    expect(page.get_by_role("heading", name="No integrations yet")).to_be_visible()
    assert not Integration.objects.filter(pk="hr_sandbox").exists()
    assert IntegrationEvent.objects.filter(integration_ref="hr_sandbox", type="test", ok=True).count() >= 2
    ui.assert_no_console_errors()


def test_live_status_label_is_the_models_label(ui: UI, operator: Any) -> None:
    """A badge the script changes after a live event reads the label the server rendered from the
    model's status choices (no worker runs: the integration stays "connecting" after Connect)."""
    services.create_integration(
        actor=operator,
        id="hr_labels",
        name="HR labels",
        kind="bamboohr",
        auth_type="api_key",
        config={"subdomain": "acme"},
        credentials={"api_key": "a-key-for-the-label-test"},
        owner=operator,
    )
    ui.login("operator", PASSWORD)
    page = ui.page
    page.goto(ui.url("/integrations/hr_labels"))
    badge = page.locator("#integration [data-role=status]")
    expect(badge).to_have_text(Status.DISCONNECTED.label)
    expect(page.locator("#live-indicator")).to_have_text("Live")
    page.evaluate("window.__sameDocument = true")
    connect, disconnect = (
        page.locator("form[data-action=connect] button").first,
        page.locator("form[data-action=disconnect] button"),
    )
    expect(disconnect).to_be_disabled()  # nothing to disconnect yet

    connect.click()
    expect(badge).to_have_attribute("data-status", Status.CONNECTING.value)
    expect(badge).to_have_text(Status.CONNECTING.label)
    # The buttons follow the live status: connecting already, Disconnect can stop it.
    expect(connect).to_be_disabled()
    expect(disconnect).to_be_enabled()
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    page_labels = page.evaluate("JSON.parse(document.getElementById('status-labels').textContent)")
    assert page_labels == {value: str(label) for value, label in Status.choices}
    ui.assert_no_console_errors()


@pytest.fixture
def provider_page() -> Iterator[tuple[str, list[str]]]:
    """A stand-in for the provider's sign-in page on loopback: records the authorization requests."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            body = b"<!doctype html><title>Provider</title><link rel=icon href='data:,'><h1>Sign in</h1>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", seen
    server.shutdown()
    server.server_close()


def test_oauth2_kind_offers_connect_with_provider(ui: UI, operator: Any, provider_page: tuple[str, list[str]]) -> None:
    """For the authorization-code flow the wizard saves, then hands over to the OAuth start view, which
    sends the browser to the provider's sign-in page."""
    provider_url, provider_requests = provider_page
    ui.login("operator", PASSWORD)
    open_bamboohr_form(ui)
    page = ui.page
    expect(page.get_by_role("button", name="Save and connect with provider")).to_be_hidden()
    page.get_by_label("Authentication").select_option("oauth2")

    # OAuth2 settings and the client secret replace the API key.
    expect(page.get_by_label("API key")).to_be_hidden()
    expect(page.get_by_role("button", name="Test connection")).to_be_hidden()
    page.get_by_label("Name", exact=True).fill("HR via OAuth")
    page.get_by_label("Subdomain").fill("acme")
    page.get_by_label("Client id").fill("hub-client")
    page.get_by_label("Authorize url").fill(f"{provider_url}/authorize")
    page.get_by_label("Token url").fill(f"{provider_url}/token")
    page.get_by_label("Client secret").fill("client-secret-never-shown")
    expect(page.get_by_label("Client secret")).to_have_attribute("type", "password")
    page.get_by_role("button", name="Save and connect with provider").click()

    page.wait_for_url(re.compile(re.escape(provider_url) + r"/authorize\?"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert "client_id=hub-client" in provider_requests[0] and "state=" in provider_requests[0]
    assert "client-secret-never-shown" not in provider_requests[0]
    saved = Integration.objects.get(pk="hr_via_oauth")
    assert saved.auth_type == "oauth2" and saved.enabled
    assert saved.config["oauth2"]["client_id"] == "hub-client"
    ui.assert_no_console_errors()
