"""The Django admin: a list with filters, a registry-driven form with write-only secrets, read-only history."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from integrations.models import EventType, Integration, IntegrationEvent, Status

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:integrations_integration_add")
LIST_URL = reverse("admin:integrations_integration_changelist")
PG_CONFIG = '{"host": "127.0.0.1", "port": 5432, "database": "test", "username": "postgres"}'


def change_url(pk: str) -> str:
    return reverse("admin:integrations_integration_change", args=[pk])


def add_form(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": "postgresql",
        "id": "db_postgres",
        "name": "Warehouse",
        "auth_type": "basic",
        "enabled": "on",
        "health_check_interval": "60",
        "owner": "",
        "config": PG_CONFIG,
        "credential__password": "pg-password-123",
        "_save": "Save",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def change_form(integration: Integration, **overrides: Any) -> dict[str, Any]:
    import json

    data: dict[str, Any] = {
        "name": integration.name,
        "auth_type": integration.auth_type,
        "enabled": "on" if integration.enabled else "",
        "health_check_interval": str(integration.health_check_interval),
        "owner": "",
        "config": json.dumps(integration.config),
        "credential__password": "",
        "_save": "Save",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v not in (None, "") or k == "credential__password"}


def config_events(pk: str) -> list[IntegrationEvent]:
    return list(IntegrationEvent.objects.filter(integration_ref=pk, type=EventType.CONFIG_CHANGE).order_by("id"))


@pytest.fixture
def pg_integration(admin_client: Client) -> Integration:
    response = admin_client.post(ADD_URL + "?kind=postgresql", add_form())
    assert response.status_code == 302, response.content.decode()[:2000]
    return Integration.objects.get(pk="db_postgres")


# -- list ---------------------------------------------------------------------------------------


def test_list_shows_status_kind_last_check_with_filters_and_search(admin_client: Client):
    from django.utils import timezone

    Integration.objects.create(
        id="bamboo_hr", name="People", kind="bamboohr", status=Status.CONNECTED, last_checked_at=timezone.now()
    )
    Integration.objects.create(id="db_postgres", name="Warehouse", kind="postgresql", status=Status.ERROR)

    page = admin_client.get(LIST_URL).content.decode()
    for text in ("bamboo_hr", "db_postgres", "Connected", "Error", "BambooHR", "PostgreSQL", "Last check"):
        assert text in page
    assert "By status" in page and "By kind" in page and "By enabled" in page

    errors_only = admin_client.get(LIST_URL, {"status__exact": "error"}).content.decode()
    assert "db_postgres" in errors_only and "bamboo_hr" not in errors_only
    by_kind = admin_client.get(LIST_URL, {"kind__exact": "bamboohr"}).content.decode()
    assert "bamboo_hr" in by_kind and "db_postgres" not in by_kind
    searched = admin_client.get(LIST_URL, {"q": "Warehouse"}).content.decode()
    assert "db_postgres" in searched and "bamboo_hr" not in searched


# -- add ----------------------------------------------------------------------------------------


def test_add_starts_by_choosing_the_kind(admin_client: Client):
    page = admin_client.get(ADD_URL).content.decode()
    for kind in ("bamboohr", "postgresql", "mysql", "sqlite"):
        assert f"?kind={kind}" in page

    form = admin_client.get(ADD_URL + "?kind=bamboohr").content.decode()
    assert 'name="credential__api_key"' in form and 'type="password"' in form
    assert 'name="credential__client_secret"' in form
    assert "subdomain" in form  # the config keys of the kind, from its schema
    assert '<option value="basic"' not in form  # BambooHR takes an API key or OAuth2 only


def test_unknown_kind_is_refused_with_a_message(admin_client: Client):
    response = admin_client.get(ADD_URL + "?kind=salesforce", follow=True)
    assert "Cannot add this integration: unknown kind &#x27;salesforce&#x27;" in response.content.decode()

    response = admin_client.post(ADD_URL, add_form(kind="salesforce"))
    assert response.status_code == 200
    assert "Cannot add this integration: unknown kind" in response.content.decode()
    assert not Integration.objects.exists()


def test_add_stores_the_secret_encrypted_and_records_who_did_it(admin_client: Client, admin_user, pg_integration):
    assert pg_integration.credentials == {"password": "pg-password-123"}
    assert pg_integration.config["host"] == "127.0.0.1"
    (event,) = config_events("db_postgres")
    assert event.actor == admin_user.username
    assert event.message == "created"
    assert event.detail["credentials"] == ["password"]  # which secrets, never their values
    assert "pg-password-123" not in str(event.detail)


def test_duplicate_id_is_a_form_error_and_changes_nothing(admin_client: Client, pg_integration):
    response = admin_client.post(ADD_URL + "?kind=postgresql", add_form(name="Other", **{"credential__password": "x"}))
    assert response.status_code == 200
    assert "Integration with this Id already exists." in response.content.decode()
    pg_integration.refresh_from_db()
    assert pg_integration.name == "Warehouse" and pg_integration.credentials == {"password": "pg-password-123"}
    assert len(config_events("db_postgres")) == 1


def test_the_id_new_is_a_form_error(admin_client: Client):
    """/integrations/new is the dashboard's wizard: no integration may take that id."""
    response = admin_client.post(ADD_URL + "?kind=postgresql", add_form(id="new"))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["id"] == [
        "This id is reserved (the dashboard's /integrations/new); choose another."
    ]
    assert not Integration.objects.exists()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('{"host": "127.0.0.1", "database": ', "Enter a valid JSON."),
        ('["host"]', "Enter a JSON object"),
        ('{"database": "test"}', "host: Field required"),
        ('{"host": "h", "database": "d", "port": "five"}', "port: Input should be a valid integer"),
        ('{"host": "h", "database": "d", "colour": "blue"}', "colour: Extra inputs are not permitted"),
    ],
)
def test_bad_config_is_a_field_error_and_nothing_is_saved(admin_client: Client, config: str, message: str):
    response = admin_client.post(ADD_URL + "?kind=postgresql", add_form(config=config))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Integration.objects.exists() and not IntegrationEvent.objects.exists()


def test_missing_required_secret_is_a_field_error(admin_client: Client):
    response = admin_client.post(ADD_URL + "?kind=postgresql", add_form(**{"credential__password": ""}))
    assert response.status_code == 200
    assert "required for this auth type" in response.content.decode()
    assert not Integration.objects.exists()


# -- change: write-only secrets ----------------------------------------------------------------


def test_change_form_never_shows_the_secret_and_says_whether_it_is_set(admin_client: Client, pg_integration):
    page = admin_client.get(change_url("db_postgres")).content.decode()
    assert "pg-password-123" not in page
    assert "Currently set; leave blank to keep it." in page
    assert 'name="clear__password"' in page


def test_blank_secret_keeps_the_stored_value(admin_client: Client, pg_integration):
    response = admin_client.post(change_url("db_postgres"), change_form(pg_integration, name="Warehouse EU"))
    assert response.status_code == 302
    pg_integration.refresh_from_db()
    assert pg_integration.name == "Warehouse EU"
    assert pg_integration.credentials == {"password": "pg-password-123"}
    event = config_events("db_postgres")[-1]
    assert event.detail["changes"] == {"name": {"from": "Warehouse", "to": "Warehouse EU"}}


def test_new_secret_replaces_and_the_event_masks_it(admin_client: Client, pg_integration):
    version = pg_integration.config_version
    response = admin_client.post(
        change_url("db_postgres"), change_form(pg_integration, **{"credential__password": "rotated-pw-456"})
    )
    assert response.status_code == 302
    pg_integration.refresh_from_db()
    assert pg_integration.credentials == {"password": "rotated-pw-456"}
    assert pg_integration.config_version == version + 1  # workers rebuild their connector
    event = config_events("db_postgres")[-1]
    assert event.detail["changes"] == {"credentials.password": "changed"}
    assert "rotated-pw-456" not in str(event.detail) + event.message


def test_clear_removes_the_secret(admin_client: Client, pg_integration):
    response = admin_client.post(
        change_url("db_postgres"), change_form(pg_integration, auth_type="none", clear__password="on")
    )
    assert response.status_code == 302
    pg_integration.refresh_from_db()
    assert pg_integration.credentials is None
    assert config_events("db_postgres")[-1].detail["changes"]["credentials.password"] == "cleared"
    page = admin_client.get(change_url("db_postgres")).content.decode()
    assert "Not set." in page


def test_clear_and_new_value_together_is_an_error(admin_client: Client, pg_integration):
    response = admin_client.post(
        change_url("db_postgres"),
        change_form(pg_integration, clear__password="on", **{"credential__password": "another-pw"}),
    )
    assert response.status_code == 200
    assert "Enter a new value or tick clear, not both." in response.content.decode()
    assert "another-pw" not in response.content.decode()  # not echoed back into the form
    pg_integration.refresh_from_db()
    assert pg_integration.credentials == {"password": "pg-password-123"}


def test_non_json_config_on_change_saves_nothing(admin_client: Client, pg_integration):
    events = len(config_events("db_postgres"))
    response = admin_client.post(
        change_url("db_postgres"),
        change_form(pg_integration, name="Renamed", config="{not json", **{"credential__password": "new-pw"}),
    )
    assert response.status_code == 200
    assert "Enter a valid JSON." in response.content.decode()
    pg_integration.refresh_from_db()
    assert pg_integration.name == "Warehouse" and pg_integration.credentials == {"password": "pg-password-123"}
    assert len(config_events("db_postgres")) == events


def test_group_sharing_and_deletion_are_recorded(admin_client: Client, admin_user, pg_integration):
    group = Group.objects.create(name="people-team")
    response = admin_client.post(change_url("db_postgres"), change_form(pg_integration, shared_with_groups=[group.pk]))
    assert response.status_code == 302
    shared = config_events("db_postgres")[-1]
    assert shared.detail["changes"] == {"shared_with_groups": {"from": [], "to": ["people-team"]}}
    assert shared.actor == admin_user.username

    response = admin_client.post(
        reverse("admin:integrations_integration_delete", args=["db_postgres"]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert not Integration.objects.filter(pk="db_postgres").exists()
    deleted = config_events("db_postgres")[-1]
    assert deleted.message == "deleted" and deleted.actor == admin_user.username


# -- events: read-only -------------------------------------------------------------------------


def test_events_are_read_only(admin_client: Client, pg_integration):
    event = config_events("db_postgres")[0]
    events_url = reverse("admin:integrations_integrationevent_changelist")
    listing = admin_client.get(events_url, {"integration_ref": "db_postgres"})
    assert listing.status_code == 200 and "created" in listing.content.decode()
    assert "Add integration event" not in listing.content.decode()

    assert admin_client.get(reverse("admin:integrations_integrationevent_add")).status_code == 403
    detail_url = reverse("admin:integrations_integrationevent_change", args=[event.pk])
    view = admin_client.get(detail_url)
    assert view.status_code == 200 and 'name="_save"' not in view.content.decode()
    assert admin_client.post(detail_url, {"message": "rewritten"}).status_code == 403
    delete_url = reverse("admin:integrations_integrationevent_delete", args=[event.pk])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    event.refresh_from_db()
    assert event.message == "created"

    link = admin_client.get(change_url("db_postgres")).content.decode()
    assert f"{events_url}?integration_ref=db_postgres" in link


# -- actions through the service layer ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_test_connection_action_runs_the_real_test(admin_client: Client, celery_eager, clean_redis, pg_url):
    from urllib.parse import urlparse

    pg = urlparse(pg_url)
    config = (
        f'{{"host": "{pg.hostname}", "port": {pg.port or 5432}, "database": "{pg.path.lstrip("/")}", '
        f'"username": "{pg.username or "postgres"}"}}'
    )
    assert admin_client.post(ADD_URL + "?kind=postgresql", add_form(config=config)).status_code == 302

    response = admin_client.post(
        LIST_URL, {"action": "test_connection", "_selected_action": ["db_postgres"]}, follow=True
    )
    assert "Connection test requested for db_postgres" in response.content.decode()
    test_event = IntegrationEvent.objects.filter(integration_ref="db_postgres", type=EventType.TEST).latest("id")
    assert test_event.ok is True, test_event.message
    assert test_event.latency_ms is not None


def test_connect_action_refuses_a_disabled_integration(admin_client: Client):
    Integration.objects.create(
        id="off_one", name="Off", kind="postgresql", enabled=False, config={"host": "h", "database": "d"}
    )
    response = admin_client.post(LIST_URL, {"action": "connect", "_selected_action": ["off_one"]}, follow=True)
    assert "Connect not requested for off_one: off_one is disabled; enable it first" in response.content.decode()
    assert Integration.objects.get(pk="off_one").status == Status.DISCONNECTED
