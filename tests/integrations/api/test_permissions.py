"""Every endpoint x every kind of caller: anonymous, another user, the owner, a group member, staff.

The rule (README, section API): staff manage everything; others see and use (connect, disconnect,
test, metrics, events) what they own or what is shared with one of their groups, and change or
delete only what they own. What a user may not see answers 404, never 403.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from integrations.models import Integration, IntegrationEvent
from tests.integrations.api.conftest import bamboo_body

ROLES = ["anonymous", "other", "owner", "member", "staff"]


def _user(people: SimpleNamespace, role: str) -> Any:
    return None if role == "anonymous" else getattr(people, role)


# (method, path template, body) -> expected status per role
READS = [
    ("get", "/api/integrations/{id}"),
    ("get", "/api/integrations/{id}/"),
    ("get", "/api/integrations/{id}/metrics"),
    ("get", "/api/integrations/{id}/events"),
]
OPERATIONS = [
    ("post", "/api/integrations/{id}/connect"),
    ("post", "/api/integrations/{id}/disconnect/"),
    ("post", "/api/integrations/{id}/test"),
    ("post", "/api/integrations/{id}/test/"),
]
READ_STATUS = {"anonymous": 401, "other": 404, "owner": 200, "member": 200, "staff": 200}
OPERATE_STATUS = {"anonymous": 401, "other": 404, "owner": 202, "member": 202, "staff": 202}
CHANGE_STATUS = {"anonymous": 401, "other": 404, "owner": 200, "member": 403, "staff": 200}
DELETE_STATUS = {"anonymous": 401, "other": 404, "owner": 204, "member": 403, "staff": 204}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "path"), READS)
def test_reading_one_integration(people, client_for, shared, role, method, path):
    response = getattr(client_for(_user(people, role)), method)(path.format(id=shared.id))
    assert response.status_code == READ_STATUS[role], response.content


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_operating_an_integration(people, client_for, shared, role, method, path):
    response = getattr(client_for(_user(people, role)), method)(path.format(id=shared.id))
    assert response.status_code == OPERATE_STATUS[role], response.content
    if response.status_code == 202:
        assert response["Location"].endswith(f"/api/operations/{response.json()['id']}")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("method", ["patch", "put"])
def test_changing_an_integration(people, client_for, shared, role, method):
    response = getattr(client_for(_user(people, role)), method)(
        f"/api/integrations/{shared.id}", {"name": "Renamed"}, format="json"
    )
    assert response.status_code == CHANGE_STATUS[role], response.content
    shared.refresh_from_db()
    assert (shared.name == "Renamed") == (CHANGE_STATUS[role] == 200)


@pytest.mark.parametrize("role", ROLES)
def test_deleting_an_integration(people, client_for, shared, role):
    response = client_for(_user(people, role)).delete(f"/api/integrations/{shared.id}")
    assert response.status_code == DELETE_STATUS[role], response.content
    assert Integration.objects.filter(pk=shared.id).exists() == (DELETE_STATUS[role] != 204)


@pytest.mark.parametrize(
    ("role", "visible"),
    [
        ("other", []),
        ("owner", ["hr_db", "mine_only"]),
        ("member", ["hr_db"]),
        ("staff", ["hr_db", "mine_only", "orphan"]),
    ],
)
def test_list_shows_only_visible_integrations(people, client_for, shared, make_integration, role, visible):
    make_integration("mine_only", owner=people.owner)
    make_integration("orphan", owner=None)
    for path in ("/api/integrations", "/api/integrations/"):
        response = client_for(_user(people, role)).get(path)
        assert response.status_code == 200
        assert [row["id"] for row in response.json()["results"]] == visible


def test_anonymous_gets_401_with_token_challenge_everywhere(db, client_for):
    client = client_for(None)
    for path in ("/api/integrations", "/api/connector-types", "/api/health", "/api/operations/x", "/api/schema/"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert response["WWW-Authenticate"] == "Token"
    assert client.post("/api/integrations", {}, format="json").status_code == 401


def test_a_bad_token_is_refused(db):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.get("/api/integrations").status_code == 401


@pytest.mark.parametrize(("role", "expected"), [("other", 0), ("owner", 1), ("member", 1), ("staff", 1)])
def test_health_counts_only_visible_integrations(people, client_for, shared, role, expected):
    body = client_for(_user(people, role)).get("/api/health").json()
    assert body["total"] == expected
    assert [row["id"] for row in body["integrations"]] == ["hr_db"][:expected]


@pytest.mark.parametrize("role", ["other", "owner", "member", "staff"])
def test_connector_types_are_open_to_every_user(people, client_for, role):
    assert client_for(_user(people, role)).get("/api/connector-types").status_code == 200


@pytest.mark.parametrize("role", ROLES)
def test_following_an_operation(people, client_for, shared, role):
    operation = client_for(people.owner).post(f"/api/integrations/{shared.id}/test").json()
    response = client_for(_user(people, role)).get(f"/api/operations/{operation['id']}")
    assert response.status_code == OPERATE_STATUS[role], response.content  # 202: still pending, no worker here
    if response.status_code == 202:
        assert response.json()["integration"] == shared.id


def test_events_of_an_invisible_integration_are_404_even_with_history(people, client_for, shared):
    IntegrationEvent.objects.create(integration=shared, integration_ref=shared.id, type="test", message="x")
    assert client_for(people.other).get(f"/api/integrations/{shared.id}/events").status_code == 404
    assert client_for(people.member).get(f"/api/integrations/{shared.id}/events").json()["count"] == 1


def test_any_user_may_create_and_becomes_owner(people, client_for):
    body = bamboo_body(id="bobs_db")
    response = client_for(people.other).post("/api/integrations", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["owner"] == "bob"
    assert Integration.objects.get(pk=response.json()["id"]).owner == people.other


def test_only_staff_may_assign_another_owner(people, client_for):
    body = bamboo_body(id="for_alice", owner="alice")
    refused = client_for(people.other).post("/api/integrations", body, format="json")
    assert refused.status_code == 400
    assert "owner" in refused.json()
    created = client_for(people.staff).post("/api/integrations", body, format="json")
    assert created.status_code == 201, created.content
    assert client_for(people.owner).get("/api/integrations/for_alice").status_code == 200


def test_sharing_only_with_own_groups(people, client_for):
    body = bamboo_body(id="shared_db", shared_with=["ops"])
    refused = client_for(people.owner).post("/api/integrations", body, format="json")
    assert refused.status_code == 400
    assert "ops" in refused.json()["shared_with"][0]
    people.owner.groups.add(people.ops)
    created = client_for(people.owner).post("/api/integrations", body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["shared_with"] == ["ops"]
    assert client_for(people.member).get(f"/api/integrations/{created.json()['id']}").status_code == 200


def test_a_sharing_change_is_recorded_as_the_admin_records_it(people, client_for, shared):
    """The API writes the same config_change event as the admin (tests/integrations/test_admin.py)."""
    people.owner.groups.add(people.ops)
    client = client_for(people.owner)
    unchanged = client.patch(f"/api/integrations/{shared.id}", {"shared_with": ["ops"]}, format="json")
    assert unchanged.status_code == 200, unchanged.content
    assert not IntegrationEvent.objects.filter(integration_ref=shared.id, type="config_change").exists()

    unshared = client.patch(f"/api/integrations/{shared.id}", {"shared_with": []}, format="json")
    assert unshared.status_code == 200, unshared.content
    events = client.get(f"/api/integrations/{shared.id}/events?type=config_change").json()["results"]
    assert len(events) == 1
    assert events[0]["message"] == "changed: shared_with_groups"
    assert events[0]["actor"] == "alice"
    assert events[0]["detail"]["changes"] == {"shared_with_groups": {"from": ["ops"], "to": []}}

    created = client.post("/api/integrations", bamboo_body(id="ops_db", shared_with=["ops"]), format="json")
    assert created.status_code == 201, created.content
    sharing = IntegrationEvent.objects.filter(
        integration_ref=created.json()["id"], type="config_change", message="changed: shared_with_groups"
    ).get()
    assert sharing.detail["changes"] == {"shared_with_groups": {"from": [], "to": ["ops"]}}


def test_session_writes_need_the_csrf_token(people, shared):
    from rest_framework.test import APIClient

    client = APIClient(enforce_csrf_checks=True)
    client.force_login(people.owner)
    assert client.get(f"/api/integrations/{shared.id}").status_code == 200  # reads need no token
    refused = client.patch(f"/api/integrations/{shared.id}", {"name": "CSRF"}, format="json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    client.get("/api/integrations/?format=api")  # the browsable page sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    accepted = client.patch(f"/api/integrations/{shared.id}", {"name": "CSRF"}, format="json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 200, accepted.content
