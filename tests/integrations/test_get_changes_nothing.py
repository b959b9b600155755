"""No state change on GET (issue 14, item 6): every GET route of the resolver, walked as an ordinary owner and as
staff, leaves the database, the queue, Redis and the session as they were.

``GET /api/integrations/{id}/test`` used to queue a connection test; the OAuth start view stored a pending
authorization in the session (a provider that remembers consent would then finish it unseen). Both are POST
now. A new route with a parameter this walk cannot fill fails here: give it a sample below.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from integrations import services
from integrations.agents.models import AgentProfile, GrantAccess, ProfileGrant
from integrations.models import Integration
from integrations.sync.models import ChangeEvent, OutboundDelivery, Subscription
from integrations.tools.models import ToolCall, WriteIntent
from tests import factories

pytestmark = pytest.mark.django_db

OAUTH_CONFIG = {
    "subdomain": "acme",
    "oauth2": {
        "client_id": "hub-client",
        "authorize_url": "https://login.example.com/authorize",
        "token_url": "https://login.example.com/token",
    },
}


def _routes() -> Iterator[tuple[str, list[str]]]:
    """(namespaced name, parameter names) of every named route."""

    def walk(patterns: list[Any], namespaces: list[str]) -> Iterator[tuple[str, list[str]]]:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, namespaces + ([pattern.namespace] if pattern.namespace else []))
            elif isinstance(pattern, URLPattern) and pattern.name:
                yield ":".join([*namespaces, pattern.name]), list(pattern.pattern.regex.groupindex)

    yield from walk(get_resolver().url_patterns, [])


@pytest.fixture
def world(django_user_model: Any) -> dict[str, Any]:
    """One of everything a route can name, owned by an ordinary user."""
    owner = django_user_model.objects.create_user("walker", password="pw-walker-123")
    staff = django_user_model.objects.create_superuser("walk-staff", password="pw-walk-staff-1")
    integration = services.create_integration(
        actor=owner,
        id="walk_hr",
        name="HR",
        kind="bamboohr",
        auth_type="oauth2",
        config=OAUTH_CONFIG,
        credentials={"client_secret": "walk-secret-123"},
        owner=owner,
    )
    operation = services.request_test(integration.id, actor=owner)
    factories.agent_token(integration, name="walk agent")
    profile = AgentProfile.objects.create(name="walk profile", calls_per_minute=5, rows_per_day=100)
    ProfileGrant.objects.create(profile=profile, integration=integration, access=GrantAccess.READ)
    call = ToolCall.objects.create(
        via="rest", user=owner, actor=owner.username, tool="query_hris", integration_ref=integration.id
    )
    WriteIntent.objects.create(
        integration_ref=integration.id,
        key="k1",
        tool="create_employee",
        fingerprint="0" * 64,
        lease_until=timezone.now() + timedelta(minutes=1),
    )
    # The HR mirror's feed, a subscription with one delivery (its replay is a POST).
    change = ChangeEvent.objects.create(integration=integration, remote_id="7", action="created")
    subscription = Subscription.objects.create(
        owner=owner, integration=integration, url="https://subscriber.example.com/hook", secret="whsec_walk"
    )
    delivery = OutboundDelivery.objects.create(subscription=subscription, change=change)
    return {
        "owner": owner,
        "staff": staff,
        "integration_id": integration.id,
        "operation_id": operation,
        "call_id": call.pk,
        "profile_id": profile.pk,
        "subscription_id": subscription.pk,
        "delivery_id": delivery.pk,
    }


def _kwargs(name: str, params: list[str], world: dict[str, Any]) -> list[dict[str, Any]]:
    """Concrete arguments for a route: one set, or one per value where a parameter picks a behaviour."""
    samples: dict[str, list[Any]] = {
        "integration_id": [world["integration_id"]],
        "operation_id": [world["operation_id"]],
        "kind": ["bamboohr", "sqlite"],
        "action": ["connect", "disconnect", "test", "delete"],
        "name": ["query_hris", "query_database"],
        "app_label": ["integrations"],
        "uidb64": ["MQ"],
        "token": ["set-password"],
        "id": [world["owner"].pk],  # the admin's password form of a user
        "delivery_id": [world["delivery_id"]],
    }
    if "pk" in params:
        if name.startswith("tools-"):
            samples["pk"] = [world["call_id"]]
        elif name.startswith(("agents:", "agent-profile-")):
            samples["pk"] = [world["profile_id"]]
        elif name.startswith("sync:subscription-"):
            samples["pk"] = [world["subscription_id"]]
        else:
            samples["pk"] = [world["integration_id"]]
    if "object_id" in params:
        for model in admin.site._registry:  # noqa: SLF001 - the admin's own list of what it shows
            if name.startswith(f"admin:{model._meta.app_label}_{model._meta.model_name}_"):
                first = model._default_manager.order_by("pk").first()
                samples["object_id"] = [first.pk if first is not None else 1]
    if "content_type_id" in params:  # the admin's "view on site" redirect
        samples["content_type_id"] = [ContentType.objects.get_for_model(Integration).pk]
        samples["object_id"] = [world["integration_id"]]
    unknown = [param for param in params if param not in samples]
    assert not unknown, f"the GET walk has no sample for {name} {unknown}: add one"
    combinations: list[dict[str, Any]] = [{}]
    for param in params:
        combinations = [dict(c, **{param: value}) for c in combinations for value in samples[param]]
    return combinations


def _database() -> dict[str, list[dict[str, Any]]]:
    """Every row of every table but sessions (compared apart, as the session's own data)."""
    return {
        model._meta.label: list(model._default_manager.order_by("pk").values())
        for model in apps.get_models()
        if model is not Session
    }


def _redis_keys(client: redis.Redis) -> set[bytes]:
    return set(client.scan_iter(count=1000))


@pytest.mark.parametrize("role", ["owner", "staff"])
def test_every_get_route_changes_nothing(
    world: dict[str, Any], role: str, django_capture_on_commit_callbacks: Any
) -> None:
    browser = Client()
    browser.force_login(world[role])
    store = redis.Redis.from_url(settings.REDIS_URL)
    walked: list[str] = []
    for name, params in _routes():
        for kwargs in _kwargs(name, params, world):
            path = reverse(name, kwargs=kwargs)
            rows, keys, session = _database(), _redis_keys(store), dict(browser.session.items())
            with django_capture_on_commit_callbacks() as queued:
                response = browser.get(path)
            assert response.status_code != 500, (path, response.status_code)  # 503: /healthz without workers
            assert not queued, f"GET {path} queued work to run after commit ({response.status_code})"
            assert _database() == rows, f"GET {path} changed the database ({response.status_code})"
            assert _redis_keys(store) - keys == set(), f"GET {path} wrote to Redis ({response.status_code})"
            assert dict(browser.session.items()) == session, f"GET {path} changed the session"
            walked.append(path)
    # The routes that used to start work are in the walk.
    assert f"/api/integrations/{world['integration_id']}/test" in walked
    assert f"/oauth/{world['integration_id']}/start/" in walked
    assert f"/integrations/{world['integration_id']}/test" in walked
    # The agent profiles' pages and API (the quota is read from Redis, never spent by a read).
    profile_id = world["profile_id"]
    for path in ("/agents", f"/agents/{profile_id}", f"/api/agent-profiles/{profile_id}/quota"):
        assert path in walked, path
    assert {"/api/agent-profiles", f"/api/agent-profiles/{profile_id}"} <= {p.rstrip("/") for p in walked}
    # The mirror's routes, those that start work (resync, replay) among them.
    integration_id, subscription_id = world["integration_id"], world["subscription_id"]
    for path in (
        f"/api/integrations/{integration_id}/mirror/resync",
        f"/api/subscriptions/{subscription_id}/deliveries/{world['delivery_id']}/replay",
        f"/hooks/bamboohr/{integration_id}/",
    ):
        assert path in walked, path
    assert Integration.objects.get(pk=world["integration_id"]).status == "disconnected"
