"""People and integrations for the API tests: an owner, another user, a group member and staff."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from integrations.models import Integration
from tests import factories

# Known secrets: the leak tests search every response for these exact strings.
BAMBOO_API_KEY = "bhr-ApiKey-0b8d2e6f4a"
OAUTH_CLIENT_SECRET = "oauth-ClientSecret-91c4d7"


@pytest.fixture
def people(db: Any) -> SimpleNamespace:
    ops = factories.group("ops")
    factories.user("dave")  # member of no group, owns nothing
    member = factories.user("carol", groups=(ops,))
    return SimpleNamespace(
        owner=factories.user("alice"),
        other=factories.user("bob"),
        member=member,
        staff=factories.staff("root"),
        ops=ops,
    )


@pytest.fixture
def client_for(db: Any) -> Callable[[User | None], APIClient]:
    """An API client authenticated the way programs do (``Authorization: Token ...``); None = anonymous."""

    tokens: dict[int, str] = {}

    def make(user: User | None) -> APIClient:
        client = APIClient()
        if user is not None:
            if user.pk not in tokens:
                tokens[user.pk] = factories.api_token(user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {tokens[user.pk]}")
        return client

    return make


BAMBOO_CONFIG = {"subdomain": "acme"}


def bamboo_body(**overrides: Any) -> dict[str, Any]:
    """A valid POST body (BambooHR, API key)."""
    body = {
        "id": "hr_db",
        "name": "HR",
        "kind": "bamboohr",
        "config": dict(BAMBOO_CONFIG),
        "credentials": {"api_key": "0" * 40},
    }
    return body | overrides


@pytest.fixture
def make_integration(db: Any) -> Callable[..., Integration]:
    """A row as the service layer would store it (setup only; the API under test writes through services)."""

    def make(
        id: str = "hr_db", *, owner: User | None = None, groups: tuple[Group, ...] = (), **fields: Any
    ) -> Integration:
        fields.setdefault("name", id.replace("_", " ").title())
        fields.setdefault("kind", "bamboohr")
        fields.setdefault("auth_type", "api_key")
        fields.setdefault("config", dict(BAMBOO_CONFIG))
        fields.setdefault("credentials", {"api_key": "0" * 40})
        integration = Integration.objects.create(id=id, owner=owner, **fields)
        if groups:
            integration.shared_with_groups.set(groups)
        return integration

    return make


@pytest.fixture
def shared(people: SimpleNamespace, make_integration: Callable[..., Integration]) -> Integration:
    """alice's integration, shared with the ops group (carol)."""
    return make_integration("hr_db", owner=people.owner, groups=(people.ops,))
