"""Issue 14, items 1-3, through the API: a connector aimed where its owner should not reach is a 400 with a
field error, on create and on PATCH, never a 500; and a target that passed validation is checked again at
connect (a symlink swapped afterwards, a policy that changed).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.conf import settings
from django.test import Client as DjangoClient
from django.test import override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from connectors.policy import SQLITE_REFUSAL
from integrations import services
from integrations.models import EventType, Integration, IntegrationEvent

pytestmark = pytest.mark.django_db
Client = Callable[[Any], APIClient]

NO_LOOPBACK = override_settings(HUB_ALLOW_LOOPBACK_TARGETS=False)


def _sqlite_file(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS people (id INTEGER PRIMARY KEY, name TEXT)")
    return str(path)


def _post(client: APIClient, kind: str, config: dict[str, Any], **extra: Any) -> Any:
    body = {"id": "target", "name": "Target", "kind": kind, "config": config, **extra}
    return client.post("/api/integrations", body, format="json")


def _field_error(response: Any, field: str) -> str:
    assert response.status_code == 400, (response.status_code, response.content[:500])
    errors = response.json()["config"]
    assert list(errors) == [field], errors
    return str(errors[field][0])


def _database(host: str, port: int = 5432) -> dict[str, Any]:
    return {"host": host, "port": port, "database": "test", "username": "postgres"}


def _oauth(**urls: str) -> dict[str, Any]:
    return {"subdomain": "acme", "oauth2": {"client_id": "hub", "token_url": "https://acme.example/token", **urls}}


OAUTH_SECRET = {"client_secret": "s" * 20}


@pytest.mark.parametrize(
    ("kind", "config", "field", "extra"),
    [
        ("postgresql", _database("169.254.169.254"), "host", {"auth_type": "none"}),
        ("mysql", _database("fe80::1", 3306), "host", {"auth_type": "none"}),
        ("postgresql", _database("::ffff:169.254.169.254"), "host", {"auth_type": "none"}),
        (
            "bamboohr",
            {"subdomain": "acme", "base_url": "https://169.254.169.254/latest/meta-data/"},
            "base_url",
            {"credentials": {"api_key": "0" * 40}},
        ),
        (
            "bamboohr",
            _oauth(token_url="https://169.254.169.254/token"),
            "oauth2.token_url",
            {"auth_type": "oauth2", "credentials": OAUTH_SECRET},
        ),
        (
            "bamboohr",
            _oauth(authorize_url="https://[fd00:ec2::254]/authorize"),
            "oauth2.authorize_url",
            {"auth_type": "oauth2", "credentials": OAUTH_SECRET},
        ),
        (
            "bamboohr",
            _oauth(token_url="http://acme.example/token"),  # the client secret would travel in clear
            "oauth2.token_url",
            {"auth_type": "oauth2", "credentials": OAUTH_SECRET},
        ),
    ],
)
def test_metadata_link_local_and_cleartext_targets_are_field_errors(
    people: SimpleNamespace, client_for: Client, kind: str, config: dict[str, Any], field: str, extra: dict[str, Any]
) -> None:
    message = _field_error(_post(client_for(people.owner), kind, config, **extra), field)
    assert "refused" in message or "https" in message
    assert not Integration.objects.filter(pk="target").exists()


def test_a_name_resolving_to_loopback_is_refused_with_debug_off(people: SimpleNamespace, client_for: Client) -> None:
    client = client_for(people.owner)
    with NO_LOOPBACK:
        for host in ("127.0.0.1", "localhost", "::1"):
            assert "loopback" in _field_error(_post(client, "postgresql", _database(host), auth_type="none"), "host")
    # Tests run with DEBUG on, where loopback is allowed by default: the machine's PostgreSQL.
    assert _post(client, "postgresql", _database("127.0.0.1"), auth_type="none").status_code == 201


def test_hub_allowed_targets_opens_one_loopback_port(people: SimpleNamespace, client_for: Client) -> None:
    client = client_for(people.owner)
    with NO_LOOPBACK, override_settings(HUB_ALLOWED_TARGETS=["127.0.0.1:5432"]):
        # The hub's Redis is still out of reach; the sidecar database is in.
        assert "loopback" in _field_error(_post(client, "postgresql", _database("127.0.0.1", 6379)), "host")
        created = _post(client, "postgresql", _database("127.0.0.1", 5432), auth_type="none")
        assert created.status_code == 201, created.json()
    with override_settings(HUB_BLOCKED_TARGETS=["127.0.0.0/8"]):  # blocked wins even with loopback allowed
        assert "HUB_BLOCKED_TARGETS" in _field_error(_post(client, "postgresql", _database("127.0.0.2")), "host")


def test_patch_to_a_refused_host_is_refused_and_nothing_changes(people: SimpleNamespace, client_for: Client) -> None:
    client = client_for(people.owner)
    created = _post(client, "postgresql", _database("10.20.30.40"), auth_type="none")
    assert created.status_code == 201, created.json()
    url = f"/api/integrations/{created.json()['id']}"  # non-staff ids may be chosen by the server
    response = client.patch(url, {"config": _database("169.254.169.254")}, format="json")
    assert "always refused" in _field_error(response, "host")
    assert Integration.objects.get(pk=created.json()["id"]).config["host"] == "10.20.30.40"
    events = IntegrationEvent.objects.filter(integration_ref=created.json()["id"], type=EventType.CONFIG_CHANGE)
    assert events.count() == 1


# ------------------------------------------------------------------------------------------ SQLite files


def test_the_hubs_own_database_is_refused_on_create_and_patch_even_in_an_allowed_folder(
    people: SimpleNamespace, client_for: Client, tmp_path: Path
) -> None:
    hub_database = Path(settings.DATABASES["default"]["NAME"])
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        pytest.skip("the hub's database is not a file here")
    client = client_for(people.staff)
    with override_settings(SQLITE_ALLOWED_DIRS=[str(tmp_path), str(hub_database.parent)]):
        for path in (hub_database, Path(f"{hub_database}-wal"), Path(f"{hub_database}-shm")):
            message = _field_error(_post(client, "sqlite", {"path": str(path)}), "path")
            assert message == f"SQLite {SQLITE_REFUSAL}"
        mine = _sqlite_file(tmp_path / "mine.sqlite3")
        created = _post(client, "sqlite", {"path": mine})
        assert created.status_code == 201, created.json()
        url = f"/api/integrations/{created.json()['id']}"
        response = client.patch(url, {"config": {"path": str(hub_database)}}, format="json")
        assert _field_error(response, "path") == f"SQLite {SQLITE_REFUSAL}"
    assert Integration.objects.get(pk=created.json()["id"]).config == {"path": mine}


def test_key_file_passwd_and_a_missing_file_get_the_same_answer(
    people: SimpleNamespace, client_for: Client, tmp_path: Path
) -> None:
    client = client_for(people.owner)
    key_file = Path(settings.DATA_DIR) / "credentials.key"
    answers = {
        str(path): _field_error(_post(client, "sqlite", {"path": str(path)}), "path")
        for path in (key_file, Path("/etc/passwd"), Path("/nonexistent/hr.sqlite3"), Path(settings.DATA_DIR) / "x.db")
    }
    assert set(answers.values()) == {f"SQLite {SQLITE_REFUSAL}"}, answers
    with override_settings(SQLITE_ALLOWED_DIRS=[str(settings.DATA_DIR)]):  # the folder allowed: still the hub's
        assert _field_error(_post(client, "sqlite", {"path": str(key_file)}), "path") == f"SQLite {SQLITE_REFUSAL}"


def test_production_default_refuses_every_sqlite_file(
    people: SimpleNamespace, client_for: Client, tmp_path: Path
) -> None:
    path = _sqlite_file(tmp_path / "hr.sqlite3")
    with override_settings(SQLITE_ALLOWED_DIRS=[]):
        assert _field_error(_post(client_for(people.owner), "sqlite", {"path": path}), "path")


def test_a_symlink_swapped_after_validation_is_refused_at_connect(people: SimpleNamespace, tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    secret = _sqlite_file(outside / "secret.sqlite3")
    link = tmp_path / "hr.sqlite3"
    link.symlink_to(_sqlite_file(tmp_path / "real.sqlite3"))
    with override_settings(SQLITE_ALLOWED_DIRS=[str(tmp_path)]):
        integration = services.create_integration(
            actor=people.owner,
            owner=people.owner,
            id="linked",
            name="Linked",
            kind="sqlite",
            config={"path": str(link)},
        )
        connector = services.build_connector(integration)
        try:
            assert connector.test_connection().ok
            connector.disconnect()
            link.unlink()
            link.symlink_to(secret)  # swapped after validation, between two connects
            result = connector.test_connection()
        finally:
            connector.disconnect()
    assert (result.ok, result.category, result.message) == (False, "permission", f"SQLite {SQLITE_REFUSAL}")


def test_the_admin_shows_a_refused_target_as_a_form_error(admin_user: Any) -> None:
    client = DjangoClient()
    client.force_login(admin_user)
    form = {
        "kind": "postgresql",
        "id": "admin_db",
        "name": "Metadata",
        "auth_type": "none",
        "enabled": "on",
        "health_check_interval": "60",
        "config": json.dumps(_database("169.254.169.254")),
        "_save": "Save",
    }
    response = client.post(reverse("admin:integrations_integration_add") + "?kind=postgresql", form)
    assert response.status_code == 200
    [error] = response.context["adminform"].form.errors["config"]
    assert error.startswith("host: host 169.254.169.254:5432 is refused by the hub's network policy")
    assert not Integration.objects.filter(pk="admin_db").exists()
