"""Issue 14, item 1, reproduced: an ordinary user owned a sqlite integration, PATCHed ``config.path`` to the hub's
own database (or another user's file) with ``read_only: false``, and an agent token then wrote to it.

Refused in the one lifecycle path (services), so the API, the admin and the wizard all refuse it: a file that
backs another owner's integration (whether or not it exists, without saying whose), and a writable file for
anyone but staff. The hub's own files and the allowed folders are the file policy's (connectors/).
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from integrations import rules
from integrations.models import EventType, Integration, IntegrationEvent

pytestmark = pytest.mark.django_db


def _database_file(folder: Path, name: str) -> str:
    path = folder / name
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS people (id INTEGER PRIMARY KEY, name TEXT)")
    return str(path)


@pytest.fixture
def client_for() -> Any:
    """Signed in as ``user`` (how a client authenticates is not what these tests are about)."""

    def make(user: Any) -> APIClient:
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def files(tmp_path: Path) -> SimpleNamespace:
    return SimpleNamespace(
        alice=_database_file(tmp_path, "alice.sqlite3"),
        bob=_database_file(tmp_path, "bob.sqlite3"),
        bob_missing=str(tmp_path / "bob-not-created-yet.sqlite3"),
        folder=tmp_path,
    )


def _create(client: Any, id: str, path: str, **config: Any) -> Any:
    body = {"id": id, "name": id.title(), "kind": "sqlite", "config": {"path": path, **config}}
    return client.post("/api/integrations", body, format="json")


@pytest.fixture
def integrations(people: SimpleNamespace, client_for: Any, files: SimpleNamespace) -> SimpleNamespace:
    alice, bob = client_for(people.owner), client_for(people.other)
    mine = _create(alice, "alice_db", files.alice)
    assert mine.status_code == 201, mine.json()
    theirs = _create(bob, "bob_db", files.bob)
    assert theirs.status_code == 201, theirs.json()
    pending = _create(bob, "bob_later", files.bob_missing)
    assert pending.status_code == 201, pending.json()
    return SimpleNamespace(alice=alice, bob=bob, mine=mine.json()["id"], theirs=theirs.json()["id"])


def _config_errors(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 400, (response.status_code, response.content[:500])
    return dict(response.json()["config"])


def _unchanged(integration_id: str, path: str) -> None:
    stored = Integration.objects.get(pk=integration_id)
    assert stored.config == {"path": path}, stored.config
    changes = IntegrationEvent.objects.filter(integration_ref=integration_id, type=EventType.CONFIG_CHANGE)
    assert [event.message for event in changes] == ["created"]


def test_the_attack_from_the_issue_is_refused(integrations: SimpleNamespace, files: SimpleNamespace) -> None:
    url = f"/api/integrations/{integrations.mine}"
    hub_database = str(settings.DATABASES["default"]["NAME"])
    for target in (hub_database, f"{hub_database}-wal", files.bob):
        response = integrations.alice.patch(url, {"config": {"path": target, "read_only": False}}, format="json")
        errors = _config_errors(response)
        assert errors["read_only"] == [rules.WRITABLE_FILE_STAFF_ONLY]
        if target == files.bob:
            assert errors["path"] == [rules.FILE_REFUSED]
        else:  # the hub's own files: the file policy (connectors/policy.py) refuses them for everyone
            assert errors["path"] and "refused" in errors["path"][0]
    _unchanged(integrations.mine, files.alice)


def test_another_owners_file_is_refused_read_only_too_whether_or_not_it_exists(
    integrations: SimpleNamespace, files: SimpleNamespace
) -> None:
    url = f"/api/integrations/{integrations.mine}"
    link = files.folder / "innocent-looking.sqlite3"
    os.symlink(files.bob, link)
    answers = []
    for target in (files.bob, files.bob_missing, str(link), str(files.folder / "." / "bob.sqlite3")):
        response = integrations.alice.patch(url, {"config": {"path": target}}, format="json")
        answers.append(_config_errors(response))
    # One answer for an existing file, a missing one and a symlink: no file-existence oracle, no owner's name.
    assert answers == [{"path": [rules.FILE_REFUSED]}] * 4
    assert "bob" not in rules.FILE_REFUSED
    _unchanged(integrations.mine, files.alice)


def test_another_owners_file_is_refused_on_create(
    integrations: SimpleNamespace, people: SimpleNamespace, client_for: Any, files: SimpleNamespace
) -> None:
    response = _create(client_for(people.member), "carol_db", files.bob)
    assert _config_errors(response) == {"path": [rules.FILE_REFUSED]}
    # The owner's own second integration on the file is theirs to make.
    assert _create(integrations.bob, "bob_again", files.bob).status_code == 201


def test_only_staff_make_a_file_integration_writable(
    integrations: SimpleNamespace, people: SimpleNamespace, client_for: Any, files: SimpleNamespace
) -> None:
    own_file = _database_file(files.folder, "alice-scratch.sqlite3")
    assert _config_errors(_create(integrations.alice, "alice_rw", own_file, read_only=False)) == {
        "read_only": [rules.WRITABLE_FILE_STAFF_ONLY]
    }
    url = f"/api/integrations/{integrations.mine}"
    response = integrations.alice.patch(url, {"config": {"path": files.alice, "read_only": False}}, format="json")
    assert _config_errors(response) == {"read_only": [rules.WRITABLE_FILE_STAFF_ONLY]}

    staff = client_for(people.staff)
    granted = staff.patch(url, {"config": {"path": files.alice, "read_only": False}}, format="json")
    assert granted.status_code == 200, granted.json()
    # The owner may tune what staff granted, but not point the writable connection somewhere else.
    tuned = integrations.alice.patch(
        url, {"config": {"path": files.alice, "read_only": False, "pool_size": 2}}, format="json"
    )
    assert tuned.status_code == 200, tuned.json()
    moved = integrations.alice.patch(url, {"config": {"path": own_file, "read_only": False}}, format="json")
    assert _config_errors(moved) == {"read_only": [rules.WRITABLE_FILE_STAFF_ONLY]}
    assert Integration.objects.get(pk=integrations.mine).config["path"] == files.alice


def test_giving_an_integration_to_another_owner_checks_the_file_again(
    integrations: SimpleNamespace, people: SimpleNamespace, client_for: Any, files: SimpleNamespace
) -> None:
    # Staff made a second integration on alice's file for themselves (staff are owners like anyone here).
    staff = client_for(people.staff)
    refused = _create(staff, "staff_copy", files.alice)
    assert _config_errors(refused) == {"path": [rules.FILE_REFUSED]}
    made = staff.post(
        "/api/integrations",
        {"id": "alice_copy", "name": "Copy", "kind": "sqlite", "config": {"path": files.alice}, "owner": "alice"},
        format="json",
    )
    assert made.status_code == 201, made.json()
    moved = staff.patch("/api/integrations/alice_copy", {"owner": "bob"}, format="json")
    assert _config_errors(moved) == {"path": [rules.FILE_REFUSED]}
    assert Integration.objects.get(pk="alice_copy").owner == people.owner


def test_the_admin_refuses_another_owners_file_with_a_form_error(
    integrations: SimpleNamespace, people: SimpleNamespace, files: SimpleNamespace, admin_user: Any
) -> None:
    client = Client()
    client.force_login(admin_user)
    form = {
        "kind": "sqlite",
        "id": "admin_copy",
        "name": "Copy",
        "auth_type": "none",
        "enabled": "on",
        "health_check_interval": "60",
        "owner": str(people.member.pk),
        "config": json.dumps({"path": files.bob}),
        "_save": "Save",
    }
    response = client.post(reverse("admin:integrations_integration_add") + "?kind=sqlite", form)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["config"] == [f"path: {rules.FILE_REFUSED}"]
    assert not Integration.objects.filter(pk="admin_copy").exists()
    form["owner"] = str(people.other.pk)  # bob's own: allowed
    assert client.post(reverse("admin:integrations_integration_add") + "?kind=sqlite", form).status_code == 302
