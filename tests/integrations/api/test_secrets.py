"""Secrets go in through the API and never come out: not in JSON, not on browsable pages, not in the schema."""

from __future__ import annotations

import pytest

from integrations.models import Integration
from tests.integrations.api.conftest import BAMBOO_API_KEY, OAUTH_CLIENT_SECRET

SECRETS = (BAMBOO_API_KEY, OAUTH_CLIENT_SECRET, BAMBOO_API_KEY + "-rotated")


@pytest.fixture
def with_secrets(people, client_for):
    """Two integrations created through the API with known secrets, one of them changed afterwards.

    Staff create them for alice (only staff choose exact ids); alice changes one and reads them."""
    client = client_for(people.owner)
    staff = client_for(people.staff)
    created = [
        staff.post(
            "/api/integrations",
            {
                "owner": "alice",
                "id": "bamboo",
                "name": "Bamboo",
                "kind": "bamboohr",
                "auth_type": "api_key",
                "config": {"subdomain": "acme"},
                "credentials": {"api_key": BAMBOO_API_KEY},
            },
            format="json",
        ),
        staff.post(
            "/api/integrations",
            {
                "owner": "alice",
                "id": "bamboo_oauth",
                "name": "Bamboo (OAuth2)",
                "kind": "bamboohr",
                "auth_type": "oauth2",
                "config": {
                    "subdomain": "acme",
                    "oauth2": {"client_id": "hub", "token_url": "https://acme.bamboohr.com/token.php"},
                },
                "credentials": {"client_secret": OAUTH_CLIENT_SECRET},
            },
            format="json",
        ),
        client.patch(
            "/api/integrations/bamboo", {"credentials": {"api_key": BAMBOO_API_KEY + "-rotated"}}, format="json"
        ),
    ]
    for response in created:
        assert response.status_code in (200, 201), response.content
    return client


def _assert_clean(content: bytes, where: str) -> None:
    text = content.decode()
    for secret in SECRETS:
        assert secret not in text, f"a secret leaked in {where}"


def test_responses_say_which_secrets_are_set_never_their_values(with_secrets, people):
    body = with_secrets.get("/api/integrations/bamboo").json()
    assert body["secrets"] == {"api_key": True, "client_secret": False, "webhook_private_key": False}
    assert "credentials" not in body
    oauth = with_secrets.get("/api/integrations/bamboo_oauth").json()
    assert oauth["secrets"] == {"api_key": False, "client_secret": True, "webhook_private_key": False}
    # The secret was stored (encrypted) and the rotation took effect.
    assert Integration.objects.get(pk="bamboo").credentials["api_key"] == BAMBOO_API_KEY + "-rotated"


def test_a_required_secret_cannot_be_cleared(with_secrets):
    response = with_secrets.patch("/api/integrations/bamboo", {"credentials": {"api_key": None}}, format="json")
    assert response.status_code == 400
    assert response.json() == {"credentials": {"api_key": ["required for this auth type"]}}
    assert with_secrets.get("/api/integrations/bamboo").json()["secrets"]["api_key"] is True


def test_no_json_response_contains_a_secret(with_secrets, people, client_for):
    paths = [
        "/api/integrations",
        "/api/integrations/bamboo_oauth",
        "/api/integrations/bamboo_oauth/events",
        "/api/integrations/bamboo_oauth/metrics",
        "/api/integrations/bamboo/events",
        "/api/health",
        "/api/connector-types",
        "/api/",
    ]
    for client in (with_secrets, client_for(people.staff)):
        for path in paths:
            response = client.get(path)
            assert response.status_code == 200, path
            _assert_clean(response.content, path)
    operation = with_secrets.post("/api/integrations/bamboo_oauth/test")
    _assert_clean(operation.content, "the 202")
    _assert_clean(with_secrets.get(f"/api/operations/{operation.json()['id']}").content, "the operation")


def test_no_browsable_page_contains_a_secret(with_secrets, people):
    from django.test import Client

    browser = Client()
    browser.force_login(people.owner)
    for path in (
        "/api/integrations/",
        "/api/integrations/bamboo_oauth/",
        "/api/integrations/bamboo/",
        "/api/integrations/bamboo_oauth/events/",
        "/api/health/",
    ):
        response = browser.get(path, HTTP_ACCEPT="text/html")
        assert response.status_code == 200, path
        assert response["Content-Type"].startswith("text/html")
        assert b"bamboo" in response.content
        _assert_clean(response.content, f"the browsable page {path}")


def test_schema_and_docs_contain_no_secret(with_secrets, people):
    from django.test import Client

    for path in ("/api/schema/", "/api/schema/?format=json"):
        response = with_secrets.get(path)
        assert response.status_code == 200, path
        _assert_clean(response.content, path)
    browser = Client()
    browser.force_login(people.owner)
    docs = browser.get("/api/docs/")
    assert docs.status_code == 200
    _assert_clean(docs.content, "/api/docs/")


def test_the_stored_row_is_encrypted(with_secrets):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM integrations_integration WHERE id = %s", ["bamboo"])
        (raw,) = cursor.fetchone()
    assert BAMBOO_API_KEY.encode() not in bytes(raw)
