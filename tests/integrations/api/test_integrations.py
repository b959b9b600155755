"""Create, read, change and delete integrations; the 400s a client gets for bad input."""

from __future__ import annotations

import re

import pytest

from integrations.models import Integration, IntegrationEvent
from tests.integrations.api.conftest import bamboo_body


@pytest.fixture
def alice(people, client_for):
    return client_for(people.owner)


@pytest.mark.parametrize("path", ["/api/integrations", "/api/integrations/"])
def test_create_then_read_back(alice, path):
    response = alice.post(path, bamboo_body(), format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert re.fullmatch(r"hr_db_[a-z0-9]{6}", created["id"])  # not staff: the id given is a prefix
    assert created["kind"] == "bamboohr"
    assert created["auth_type"] == "api_key"  # the kind's first auth type when none is given
    assert created["status"] == "disconnected"
    assert created["config"] == {"subdomain": "acme"}
    assert created["secrets"] == {"api_key": True, "client_secret": False, "webhook_private_key": False}
    assert created["url"] == f"http://testserver/api/integrations/{created['id']}"
    assert alice.get(f"/api/integrations/{created['id']}").json() == created
    # The service layer wrote the history.
    assert IntegrationEvent.objects.filter(integration_ref=created["id"], type="config_change").count() == 1


def test_unknown_kind_is_a_clear_400(alice):
    response = alice.post("/api/integrations", bamboo_body(kind="salesforce"), format="json")
    assert response.status_code == 400
    message = response.json()["kind"][0]
    assert "salesforce" in message and "bamboohr" in message


def test_staff_choose_exact_ids_and_a_taken_one_is_a_clear_400(people, client_for):
    staff = client_for(people.staff)
    created = staff.post("/api/integrations", bamboo_body(), format="json")
    assert created.status_code == 201 and created.json()["id"] == "hr_db"
    response = staff.post("/api/integrations", bamboo_body(name="Again"), format="json")
    assert response.status_code == 400
    assert response.json() == {"id": ["An integration with this id already exists."]}


def test_an_id_held_by_someone_else_cannot_be_told_from_a_free_one(people, client_for):
    """Issue 14, item 7: "an integration you cannot see looks as if it did not exist" — creating one with
    its id used to answer "already exists". For non-staff every id is a prefix: the same answer either way."""
    bob = client_for(people.other)
    taken = client_for(people.staff).post("/api/integrations", bamboo_body(id="secret_merger"), format="json")
    assert taken.status_code == 201
    answers = [
        bob.post("/api/integrations", bamboo_body(id=prefix), format="json")
        for prefix in ("secret_merger", "free_name")
    ]
    assert [a.status_code for a in answers] == [201, 201], [a.content for a in answers]
    ids = [a.json()["id"] for a in answers]
    assert re.fullmatch(r"secret_merger_[a-z0-9]{6}", ids[0]) and re.fullmatch(r"free_name_[a-z0-9]{6}", ids[1])
    assert {k for k in answers[0].json()} == {k for k in answers[1].json()}
    # The same prefix twice is two integrations, never "already exists".
    again = bob.post("/api/integrations", bamboo_body(id="free_name"), format="json")
    assert again.status_code == 201 and again.json()["id"] not in ids
    assert Integration.objects.get(pk="secret_merger").owner == people.staff


def test_without_an_id_one_is_made_from_the_name(alice):
    body = bamboo_body(name="Ünïcode HR — Payroll!")
    del body["id"]
    response = alice.post("/api/integrations", body, format="json")
    assert response.status_code == 201, response.content
    assert re.fullmatch(r"unicode_hr_payroll_[a-z0-9]{6}", response.json()["id"])


@pytest.mark.parametrize("role", ["owner", "staff"])
def test_the_id_new_is_reserved(people, client_for, role):
    response = client_for(getattr(people, role)).post("/api/integrations", bamboo_body(id="new"), format="json")
    assert response.status_code == 400
    assert response.json() == {"id": ["This id is reserved (the dashboard's /integrations/new); choose another."]}
    assert not Integration.objects.exists()


def test_a_prefix_leaves_room_for_the_suffix(alice, people, client_for):
    refused = alice.post("/api/integrations", bamboo_body(id="a" * 57), format="json")
    assert refused.status_code == 400 and "At most 56 characters" in refused.json()["id"][0]
    assert alice.post("/api/integrations", bamboo_body(id="a" * 56), format="json").status_code == 201
    assert (
        client_for(people.staff).post("/api/integrations", bamboo_body(id="b" * 63), format="json").status_code == 201
    )


def test_malformed_json_is_a_clear_400(alice):
    response = alice.post("/api/integrations", '{"id": "x", "name": ', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error")


@pytest.mark.parametrize("missing", ["name", "kind"])
def test_missing_field_is_named(alice, missing):
    body = bamboo_body()
    del body[missing]
    response = alice.post("/api/integrations", body, format="json")
    assert response.status_code == 400
    assert response.json() == {missing: ["This field is required."]}


def test_bad_id_slug(alice):
    response = alice.post("/api/integrations", bamboo_body(id="Has Spaces"), format="json")
    assert response.status_code == 400
    assert "lowercase" in response.json()["id"][0]


def test_config_errors_are_field_level(alice):
    body = bamboo_body(config={"subdomain": "acme", "colour": "blue"})
    response = alice.post("/api/integrations", body, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["config"]
    assert "colour" in response.json()["config"]


def test_postgres_port_error_names_the_field(alice):
    body = {
        "id": "pg",
        "name": "PG",
        "kind": "postgresql",
        "auth_type": "basic",
        "config": {"host": "127.0.0.1", "port": "not-a-port", "database": "test"},
        "credentials": {"username": "postgres", "password": "x"},
    }
    response = alice.post("/api/integrations", body, format="json")
    assert response.status_code == 400
    assert list(response.json()["config"]) == ["port"]


def test_credential_errors_are_field_level(alice):
    body = bamboo_body(credentials={"api_key": "k" * 40, "password": "x"})
    response = alice.post("/api/integrations", body, format="json")
    assert response.status_code == 400
    assert response.json() == {"credentials": {"password": ["unknown credential field"]}}
    missing = alice.post("/api/integrations", bamboo_body(credentials={}), format="json")
    assert missing.json() == {"credentials": {"api_key": ["required for this auth type"]}}


def test_unsupported_auth_type(alice):
    response = alice.post("/api/integrations", bamboo_body(auth_type="basic"), format="json")
    assert response.status_code == 400
    assert "auth_type" in response.json()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("config", "not-an-object"),
        ("credentials", ["a"]),
        ("enabled", "perhaps"),
        ("health_check_interval", 1),
        ("health_check_interval", 10**20),
        ("name", ""),
    ],
)
def test_wrong_types_are_400(alice, field, value):
    response = alice.post("/api/integrations", bamboo_body(**{field: value}), format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_nul_characters_in_config_are_refused(alice):
    response = alice.post(
        "/api/integrations", bamboo_body(config={"subdomain": "acme", "writable_fields": ["a\x00b"]}), format="json"
    )
    assert response.status_code == 400
    assert "config" in response.json()


def test_patch_changes_only_what_is_given(alice, shared):
    version = shared.config_version
    response = alice.patch(f"/api/integrations/{shared.id}", {"name": "Renamed", "enabled": False}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["name"], body["enabled"], body["kind"]) == ("Renamed", False, "bamboohr")
    assert body["config_version"] == version  # name/enabled do not touch the connector
    event = IntegrationEvent.objects.filter(integration_ref=shared.id, type="config_change").first()
    assert event is not None and "name" in event.message


def test_patch_config_is_validated_and_bumps_the_version(alice, shared):
    bad = alice.patch(f"/api/integrations/{shared.id}", {"config": {"nope": 1}}, format="json")
    assert bad.status_code == 400
    assert "config" in bad.json()
    ok = alice.patch(f"/api/integrations/{shared.id}/", {"config": {"subdomain": "other"}}, format="json")
    assert ok.status_code == 200, ok.content
    assert ok.json()["config"]["subdomain"] == "other"
    assert ok.json()["config_version"] == shared.config_version + 1


def test_put_replaces_settings_and_refuses_changing_kind_or_id(alice, shared):
    body = {"name": "Put", "config": {"subdomain": "acme"}, "enabled": True, "health_check_interval": 120}
    response = alice.put(f"/api/integrations/{shared.id}", body, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["health_check_interval"] == 120
    assert alice.put(f"/api/integrations/{shared.id}", body | {"kind": "postgresql"}, format="json").json() == {
        "kind": ["The kind cannot be changed; create a new integration."]
    }
    assert alice.put(f"/api/integrations/{shared.id}", body | {"id": "other"}, format="json").status_code == 400
    # The full representation read back is accepted as a PUT body (read-only fields are ignored).
    current = alice.get(f"/api/integrations/{shared.id}").json()
    assert alice.put(f"/api/integrations/{shared.id}", current, format="json").status_code == 200


def test_delete_keeps_the_event_history(alice, shared):
    IntegrationEvent.objects.create(integration=shared, integration_ref=shared.id, type="test", message="ok")
    response = alice.delete(f"/api/integrations/{shared.id}")
    assert response.status_code == 204
    assert not Integration.objects.filter(pk=shared.id).exists()
    history = IntegrationEvent.objects.filter(integration_ref=shared.id)
    assert history.filter(type="test").exists()
    assert history.filter(type="config_change", message="deleted").exists()
    assert alice.get(f"/api/integrations/{shared.id}").status_code == 404
    assert alice.delete(f"/api/integrations/{shared.id}/").status_code == 404


def test_filters_ordering_and_pagination(people, client_for, make_integration):
    make_integration("a_one", owner=people.owner, status="connected")
    make_integration("b_two", owner=people.owner, enabled=False)
    make_integration("c_three", owner=people.owner, status="error")
    client = client_for(people.owner)

    def ids(query):
        response = client.get(f"/api/integrations?{query}")
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    assert ids("status=connected") == ["a_one"]
    assert ids("enabled=false") == ["b_two"]
    assert ids("enabled=true&ordering=-id") == ["c_three", "a_one"]
    assert ids("kind=bamboohr&ordering=-status") == ["c_three", "b_two", "a_one"]  # error > disconnected > connected
    assert ids("search=two") == ["b_two"]
    page = client.get("/api/integrations?page_size=2").json()
    assert (page["count"], len(page["results"]), page["previous"]) == (3, 2, None)
    assert "page=2" in page["next"]
    assert client.get("/api/integrations?status=bogus").status_code == 400
    assert client.get("/api/integrations?kind=bogus").status_code == 400
    assert client.get("/api/integrations?page=99").status_code == 404


def test_events_are_paginated_and_filterable(alice, shared):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    for minutes, type_, ok in [(30, "test", True), (20, "test", False), (10, "health_check", True)]:
        IntegrationEvent.objects.create(
            integration=shared,
            integration_ref=shared.id,
            type=type_,
            ok=ok,
            created_at=now - timedelta(minutes=minutes),
        )

    def events(query=""):
        response = alice.get(f"/api/integrations/{shared.id}/events?{query}")
        assert response.status_code == 200, response.content
        return response.json()

    assert [e["type"] for e in events()["results"]] == ["health_check", "test", "test"]  # newest first
    assert events("type=test")["count"] == 2
    assert events("type=test&ok=false")["count"] == 1
    since = (now - timedelta(minutes=25)).isoformat()
    assert events(f"since={since.replace('+', '%2B')}")["count"] == 2
    assert events("page_size=1")["next"] is not None
    assert alice.get(f"/api/integrations/{shared.id}/events?since=yesterday").status_code == 400
    assert alice.get(f"/api/integrations/{shared.id}/events?type=bogus").status_code == 400


def test_metrics_have_the_documented_keys(alice, shared):
    response = alice.get(f"/api/integrations/{shared.id}/metrics")
    assert response.status_code == 200
    assert {
        "total",
        "successful",
        "failed",
        "success_rate",
        "avg_latency_ms",
        "p95_latency_ms",
        "uptime_seconds",
        "last_error",
    } <= set(response.json())


def test_connector_types_describe_every_kind(alice):
    from connectors import registry

    response = alice.get("/api/connector-types")
    assert response.status_code == 200
    kinds = {item["kind"]: item for item in response.json()}
    assert set(kinds) == set(registry.kinds())
    assert kinds["postgresql"]["config_schema"]["type"] == "object"
    assert any(f["name"] == "password" and f["secret"] for f in kinds["postgresql"]["credential_fields"])
    assert alice.get("/api/connector-types/bamboohr/").json()["kind"] == "bamboohr"
    assert alice.get("/api/connector-types/nope").status_code == 404


def test_health_summary(people, client_for, make_integration):
    make_integration("up", owner=people.owner, status="connected")
    make_integration("down", owner=people.owner, status="error")
    body = client_for(people.owner).get("/api/health/").json()
    assert body["overall"] == "unhealthy"
    assert body["counts"]["connected"] == 1 and body["counts"]["error"] == 1
    assert body["total"] == 2


def test_api_root_lists_the_resources(alice):
    body = alice.get("/api/").json()
    assert {"integrations", "connector-types"} <= set(body)


def test_the_fast_representation_equals_drfs(people, client_for, make_integration):
    """IntegrationSerializer writes its output by hand for speed; it must say exactly what DRF's fields say."""
    from django.contrib.auth.models import Group
    from django.utils import timezone
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from integrations import services
    from integrations.api.serializers import IntegrationSerializer

    extra = Group.objects.create(name="analysts")
    make_integration(
        "full",
        owner=people.owner,
        groups=(people.ops, extra),
        last_checked_at=timezone.now(),
        status="error",
        last_error="network: refused",
        health_check_interval=300,
    )
    make_integration("bare", owner=None, credentials=None)
    client = client_for(people.staff)
    listed = {row["id"]: row for row in client.get("/api/integrations").json()["results"]}
    request = Request(APIRequestFactory().get("/api/integrations"))
    for integration in Integration.objects.all():
        expected = IntegrationSerializer(integration, context={"request": request}).generic_representation(integration)
        expected["shared_with"] = sorted(expected["shared_with"])
        assert listed[integration.id] == expected
        detail = client.get(f"/api/integrations/{integration.id}").json()
        # one integration also carries its uptime (services.availability); a list row leaves it out
        assert detail.pop("availability") == services.availability(integration)
        assert detail == expected
    assert listed["full"]["shared_with"] == ["analysts", "ops"]
    assert listed["bare"]["owner"] is None and listed["bare"]["secrets"] == {
        "api_key": False,
        "client_secret": False,
        "webhook_private_key": False,
    }


def test_swagger_ui_works_offline(people, settings):
    """/api/docs/ takes Swagger UI from drf-spectacular-sidecar (served by the hub), not from a CDN."""
    from django.test import Client

    # As with DEBUG on; with DEBUG off scripts/run's collectstatic puts the same files in STATIC_ROOT.
    settings.WHITENOISE_USE_FINDERS = settings.WHITENOISE_AUTOREFRESH = True
    client = Client()
    assert client.get("/api/docs/").status_code == 302  # anonymous: to the login page
    client.force_login(people.owner)
    page = client.get("/api/docs/").content.decode()
    assert "cdn.jsdelivr" not in page and "unpkg.com" not in page
    assets = re.findall(r'src="([^"]+swagger-ui[^"]*\.js)"', page)
    assert assets and all("drf_spectacular_sidecar" in url for url in assets)
    for url in assets:
        response = client.get(url)
        assert response.status_code == 200, url
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert len(body) > 100_000  # the real bundle, not an error page


def test_browsable_api_renders_for_a_logged_in_user(people, client, shared):
    client.force_login(people.owner)
    page = client.get("/api/integrations/hr_db", HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    assert b"Integration Hub API" in page.content or b"Django REST framework" in page.content
    assert b"hr_db" in page.content


@pytest.mark.parametrize(
    "query",
    [
        "since=1002-08-25T14:27:52%2B22:08&until=0252-04-13T21:43:57%2B09:13",
        "since=0001-01-01T00:00:00%2B01:00",
        "until=9999-12-31T23:59:59-23:59",
        "since=0001-01-01T00:00:00Z&until=9999-12-31T23:59:59Z",
    ],
)
def test_event_time_filters_take_any_iso_time(alice, shared, query):
    """Offsets up to +-23:59 and years 1-9999 are valid ISO 8601: an answer, on every database backend."""
    response = alice.get(f"/api/integrations/{shared.id}/events?{query}")
    assert response.status_code == 200, response.content
