"""Server-rendered dashboard pages through the Django test client (no browser, no worker).

These pin what works without JavaScript: login, the list with filters and empty state, the details
with secrets shown only as set / not set, the plain-form controls and the delete confirmation.
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from integrations import services
from integrations.models import Integration, IntegrationEvent, Status
from tests import factories

API_KEY = "bhr-dashboard-secret-4e1f9a"


@pytest.fixture
def users(db: Any) -> SimpleNamespace:
    return SimpleNamespace(owner=factories.user("olga"), other=factories.user("oscar"), staff=factories.staff("sam"))


# Rows made as the hub makes them (seed_demo): with exactly these ids. A user who is not staff gets a
# random suffix on the id (integrations.rules), which tests/api/test_integrations.py covers.
SETUP = "test setup"


def client_as(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def make_bamboohr(owner: User, id: str = "hr_main", name: str = "HR main", **fields: Any) -> Integration:
    return factories.bamboohr(id, name=name, api_key=API_KEY, owner=owner, actor=SETUP, **fields)


def test_pages_require_login(client: Client, db: Any) -> None:
    for url in ["/integrations", "/integrations/new", "/integrations/anything"]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


def test_login_page_has_labelled_fields_and_logs_in(client: Client, users: SimpleNamespace) -> None:
    page = client.get("/accounts/login/?next=/integrations").content.decode()
    assert '<label for="id_username">' in page and '<label for="id_password">' in page
    response = client.post("/accounts/login/", {"username": "olga", "password": "pw-olga-123", "next": "/integrations"})
    assert response.status_code == 302 and response["Location"] == "/integrations"
    bad = client.post("/accounts/login/", {"username": "olga", "password": "wrong"})
    assert bad.status_code == 200 and "correct username and password" in bad.content.decode()


def test_root_redirects_to_the_list(client: Client, users: SimpleNamespace) -> None:
    client.force_login(users.owner)
    assert client.get("/")["Location"] == "/integrations"


def test_empty_state_names_the_first_step(users: SimpleNamespace) -> None:
    page = client_as(users.owner).get("/integrations").content.decode()
    assert "No integrations yet" in page
    assert 'href="/integrations/new"' in page and "Add your first integration" in page
    assert 'href="/api/docs/"' in page


def test_list_shows_kind_status_and_filters(users: SimpleNamespace) -> None:
    make_bamboohr(users.owner)
    make_bamboohr(users.owner, id="hr_eu", name="HR Europe")
    Integration.objects.filter(pk="hr_eu").update(status=Status.ERROR, last_error="auth: invalid API key")
    make_bamboohr(users.other, id="not_mine", name="Someone else's")
    client = client_as(users.owner)

    page = client.get("/integrations").content.decode()
    assert "HR main" in page and "HR Europe" in page and "BambooHR" in page
    assert "Someone else" not in page  # visibility follows Integration.objects.visible_to
    assert 'class="badge badge-error"' in page and "auth: invalid API key" in page
    assert 'data-count="problem">1<' in page and 'data-count="disconnected">1<' in page

    page = client.get("/integrations", {"status": "error"}).content.decode()
    assert "HR Europe" in page and "HR main" not in page
    page = client.get("/integrations", {"q": "main"}).content.decode()
    assert "HR main" in page and "HR Europe" not in page
    page = client.get("/integrations", {"kind": "postgresql"}).content.decode()
    assert "No integration matches these filters" in page
    # Every filter control has a label.
    for control in ["filter-q", "filter-kind", "filter-status"]:
        assert f'<label for="{control}">' in page


def test_staff_see_admin_link_and_everything(users: SimpleNamespace) -> None:
    make_bamboohr(users.other, id="not_mine", name="Someone else's")
    page = client_as(users.staff).get("/integrations").content.decode()
    assert "Someone else" in page and 'href="/admin/"' in page
    assert 'href="/admin/"' not in client_as(users.owner).get("/integrations").content.decode()


def test_details_show_config_and_secrets_only_as_set(users: SimpleNamespace) -> None:
    make_bamboohr(users.owner)
    response = client_as(users.owner).get("/integrations/hr_main")
    page = response.content.decode()
    assert response.status_code == 200
    assert API_KEY not in page
    assert "subdomain" in page and "acme" in page
    assert "https://acme.bamboohr.com/api/v1/" in page  # the kind's default, filled in
    assert '<dt class="mono">api_key</dt><dd><span class="tag tag-ok">set</span>' in page
    assert '<dt class="mono">client_secret</dt><dd><span class="tag">not set</span>' in page
    for control in ["Test connection", "Connect", "Disconnect", "Delete…"]:
        assert control in page
    assert 'data-role="reconnect" hidden' in page
    assert "created" in page  # the config_change event of the creation is listed


def status_labels_block(page: str) -> dict[str, str]:
    """The labels the page hands its scripts: the json_script block with id "status-labels"."""
    match = re.search(r'<script id="status-labels" type="application/json">(.*?)</script>', page, re.S)
    assert match, "the page has no status-labels block"
    return json.loads(match.group(1))


def test_status_labels_for_the_scripts_come_from_the_model(users: SimpleNamespace) -> None:
    """A badge changed by a live event reads its label from the page, so it matches the server's."""
    make_bamboohr(users.owner)
    client = client_as(users.owner)
    for url in ["/integrations", "/integrations/hr_main"]:
        labels = status_labels_block(client.get(url).content.decode())
        assert labels == {value: str(label) for value, label in Status.choices}, url


def test_reconnect_button_when_reconnect_is_required(users: SimpleNamespace) -> None:
    make_bamboohr(users.owner)
    Integration.objects.filter(pk="hr_main").update(status=Status.RECONNECT_REQUIRED)
    page = client_as(users.owner).get("/integrations/hr_main").content.decode()
    assert 'data-role="reconnect">' in page and "Reconnect" in page


def test_oauth2_integration_links_to_the_provider(users: SimpleNamespace) -> None:
    services.create_integration(
        actor=SETUP,
        id="hr_oauth",
        name="HR OAuth",
        kind="bamboohr",
        auth_type="oauth2",
        owner=users.owner,
        config={
            "subdomain": "acme",
            "oauth2": {
                "client_id": "hub",
                "authorize_url": "https://id.example/authorize",
                "token_url": "https://id.example/token",
            },
        },
        credentials={"client_secret": "cs-123456"},
    )
    page = client_as(users.owner).get("/integrations/hr_oauth").content.decode()
    assert 'href="/oauth/hr_oauth/start/"' in page and "Connect with provider" in page
    assert "cs-123456" not in page


def test_details_of_an_invisible_integration_are_404(users: SimpleNamespace) -> None:
    make_bamboohr(users.other, id="not_mine")
    assert client_as(users.owner).get("/integrations/not_mine").status_code == 404
    assert client_as(users.owner).post("/integrations/not_mine/test").status_code == 404


def test_plain_form_controls_request_work_and_report_it(users: SimpleNamespace) -> None:
    make_bamboohr(users.owner)
    client = client_as(users.owner)
    response = client.post("/integrations/hr_main/connect", follow=True)
    assert response.redirect_chain[-1][0] == "/integrations/hr_main"
    assert "Connect requested." in response.content.decode()
    assert Integration.objects.get(pk="hr_main").status == Status.CONNECTING
    assert client.post("/integrations/hr_main/explode").status_code == 404
    assert client.get("/integrations/hr_main/test").status_code == 405


def test_connecting_a_disabled_integration_says_why(users: SimpleNamespace) -> None:
    make_bamboohr(users.owner, enabled=False)
    response = client_as(users.owner).post("/integrations/hr_main/connect", follow=True)
    assert "is disabled; enable it first" in response.content.decode()


def test_delete_asks_first_then_deletes_and_keeps_history(users: SimpleNamespace) -> None:
    make_bamboohr(users.owner)
    client = client_as(users.owner)
    confirm = client.get("/integrations/hr_main/delete").content.decode()
    assert "Delete HR main?" in confirm and "Delete permanently" in confirm
    assert Integration.objects.filter(pk="hr_main").exists()
    response = client.post("/integrations/hr_main/delete", follow=True)
    assert response.redirect_chain[-1][0] == "/integrations"
    assert "Deleted HR main (hr_main)" in response.content.decode()
    assert not Integration.objects.filter(pk="hr_main").exists()
    assert IntegrationEvent.objects.filter(integration_ref="hr_main", message="deleted").exists()


def test_an_integration_recreated_with_a_deleted_ones_id_starts_with_its_own_history(users: SimpleNamespace) -> None:
    old = make_bamboohr(users.owner, name="Old HR")
    services.record_event(old, "config_change", actor="olga", message="old one renamed its department field")
    client = client_as(users.owner)
    assert client.post("/integrations/hr_main/delete").status_code == 302

    make_bamboohr(users.owner, name="New HR")
    page = client.get("/integrations/hr_main").content.decode()
    assert "New HR" in page
    assert "old one renamed its department field" not in page and ">deleted<" not in page
    # The old one's history is still kept (the admin's event list finds it by id).
    assert IntegrationEvent.objects.filter(integration_ref="hr_main", integration=None).count() >= 2


def test_a_requested_connect_and_a_disconnect_are_not_failures_in_the_event_log(users: SimpleNamespace) -> None:
    integration = make_bamboohr(users.owner)
    services.set_status(integration, Status.CONNECTED, message="connected")
    services.set_status(integration, Status.DISCONNECTED, message="disconnected", actor="olga")
    services.set_status(integration, Status.CONNECTING, message="connect requested", actor="olga")
    services.set_status(integration, Status.ERROR, message="network: connection refused")
    outcomes = {e.message: e.ok for e in IntegrationEvent.objects.filter(integration=integration, type="status_change")}
    assert outcomes == {
        "connected": True,
        "disconnected": None,
        "connect requested": None,
        "network: connection refused": False,
    }
    page = client_as(users.owner).get("/integrations/hr_main").content.decode()
    rows = {m: r for r in re.findall(r"<tr>(.*?)</tr>", page, re.S) for m in outcomes if f"<td>{m}</td>" in r}
    assert "tag-fail" not in rows["disconnected"] and "tag-fail" not in rows["connect requested"]
    assert "tag-fail" in rows["network: connection refused"] and "tag-ok" in rows["connected"]


def test_only_owner_or_staff_may_delete(users: SimpleNamespace) -> None:
    integration = make_bamboohr(users.owner)
    group = users.other.groups.create(name="hr-team")
    integration.shared_with_groups.add(group)
    client = client_as(users.other)
    page = client.get("/integrations/hr_main").content.decode()
    assert "Delete…" not in page and "Test connection" in page
    assert client.post("/integrations/hr_main/delete").status_code == 403
    assert Integration.objects.filter(pk="hr_main").exists()


def test_wizard_lists_every_kind_without_javascript(users: SimpleNamespace) -> None:
    page = client_as(users.owner).get("/integrations/new").content.decode()
    for kind, label in [("bamboohr", "BambooHR"), ("postgresql", "PostgreSQL"), ("sqlite", "SQLite")]:
        assert f'href="?kind={kind}"' in page and label in page
    assert "<noscript>" in page and 'href="/admin/"' in page
    assert '"/oauth/__id__/start/"' in page  # the script's template for the provider button


def test_wizard_tells_its_script_who_chooses_exact_ids(users: SimpleNamespace) -> None:
    """Only staff choose exact ids; for others the hub adds a suffix, and the id field says so."""
    suffix = '<script id="id-suffix" type="application/json">{}</script>'
    assert suffix.format("true") in client_as(users.owner).get("/integrations/new").content.decode()
    assert suffix.format("false") in client_as(users.staff).get("/integrations/new").content.decode()


def test_list_queries_do_not_grow_with_the_rows(users: SimpleNamespace, django_assert_max_num_queries: Any) -> None:
    client = client_as(users.owner)
    make_bamboohr(users.owner)
    client.get("/integrations")  # warm-up: session, user
    with django_assert_max_num_queries(6):
        client.get("/integrations")
    for number in range(8):
        make_bamboohr(users.owner, id=f"hr_{number}", name=f"HR {number}")
    with django_assert_max_num_queries(6):
        assert client.get("/integrations").status_code == 200


def test_the_admin_names_the_hubs_icon_and_links_back_to_the_dashboard(users: SimpleNamespace) -> None:
    from django.contrib.staticfiles import finders

    users.staff.is_superuser = True
    users.staff.save()
    client = client_as(users.staff)
    for url in ("/admin/", "/admin/integrations/integration/add/", "/integrations"):
        page = client.get(url).content.decode()
        icon = re.search(r'<link rel="icon" href="([^"]+)"', page)
        assert icon and icon.group(1).endswith("favicon.svg"), url
    admin_page = client.get("/admin/").content.decode()
    assert '<a href="/integrations">Dashboard</a>' in admin_page and "View site" not in admin_page
    # A browser's own request for /favicon.ico lands on the icon, which the static files hold.
    response = Client().get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("favicon.svg")
    assert finders.find("favicon.svg")


@pytest.mark.parametrize(
    ("status", "connect_off", "disconnect_off"),
    [("disconnected", False, True), ("connecting", True, False), ("connected", True, False), ("error", False, False)],
)
def test_connect_and_disconnect_are_offered_only_when_they_can_do_something(
    users: SimpleNamespace, status: str, connect_off: bool, disconnect_off: bool
) -> None:
    integration = make_bamboohr(users.owner)
    Integration.objects.filter(pk=integration.pk).update(status=status)
    page = client_as(users.owner).get("/integrations/hr_main").content.decode()

    def button(action: str) -> str:
        found = re.search(rf'data-action="{action}">.*?(<button[^>]*>)', page, re.S)
        assert found, action
        return found.group(1)

    assert (" disabled" in button("connect")) is connect_off
    assert (" disabled" in button("disconnect")) is disconnect_off
    assert " disabled" not in button("test")


def test_the_event_log_names_who_asked_even_for_work_a_worker_did(
    users: SimpleNamespace, celery_eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    integration = make_bamboohr(users.owner)
    services.set_status(integration, Status.CONNECTED, message="connected")
    client = client_as(users.owner)
    with django_capture_on_commit_callbacks(execute=True):  # the task is sent at commit and runs inline
        assert client.post("/integrations/hr_main/disconnect").status_code == 302
    done = IntegrationEvent.objects.filter(integration=integration, type__in=["disconnect", "status_change"])
    assert {(e.type, e.actor) for e in done.exclude(message="connected")} == {
        ("disconnect", "olga"),
        ("status_change", "olga"),
    }
    services.set_status(integration, Status.ERROR, message="network: refused")  # the hub's own doing
    page = client.get("/integrations/hr_main").content.decode()
    assert "<td>olga</td>" in page and "<td>hub</td>" in page
