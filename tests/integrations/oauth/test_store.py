"""The hub's token store and provider (integrations.oauth.store, integrations.services.tokens) against the real provider: refresh on 401 across
processes, client credentials, invalid_grant → reconnect_required with a cool-down, then a reconnect."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from connectors.errors import ConnectorError
from integrations.models import EventType, Integration, IntegrationEvent, Status
from integrations.services import token_provider_for
from tests.integrations.oauth.authserver import clients
from tests.integrations.oauth.conftest import AuthServer, ProviderBrowser, authorized_token

pytestmark = pytest.mark.django_db


def refresh_events(integration_id: str) -> list[IntegrationEvent]:
    return list(
        IntegrationEvent.objects.filter(integration_ref=integration_id, type=EventType.TOKEN_REFRESH).order_by("id")
    )


@pytest.mark.parametrize("lock", ["redis", "database"])
def test_a_401_in_two_workers_refreshes_once(
    lock: str, settings: Any, authserver: AuthServer, provider_browser: ProviderBrowser, make_integration: Any
) -> None:
    settings.OAUTH2_LOCK = lock
    token = authorized_token(authserver, provider_browser)
    integration = make_integration(token=token)
    worker_a, worker_b = token_provider_for(integration), token_provider_for(integration)  # two processes' caches
    assert worker_a.get_token() == worker_b.get_token() == token["access_token"]

    authserver.expire(token["access_token"])  # the API now answers 401 to both
    assert authserver.resource(token["access_token"]).status_code == 401
    worker_a.invalidate(token["access_token"])
    fresh = worker_a.get_token()
    worker_b.invalidate(token["access_token"])
    assert worker_b.get_token() == fresh  # re-read inside the lock: no second refresh with a dead refresh token
    assert authserver.resource(fresh).status_code == 200
    assert authserver.stats().get("refresh_token") == 1
    stored = Integration.objects.get(pk=integration.pk).credentials["oauth_token"]
    assert stored["access_token"] == fresh and stored["refresh_token"] != token["refresh_token"]
    [event] = refresh_events(integration.pk)
    assert event.ok and event.actor == "oauth2" and event.detail["rotated"] is True
    assert fresh not in event.message + str(event.detail) and stored["refresh_token"] not in str(event.detail)


def test_client_credentials_token_is_fetched_once_and_again_before_expiry(
    authserver: AuthServer, make_integration: Any
) -> None:
    integration = make_integration("machine", grant="client_credentials", refresh_margin_seconds=120)
    first = token_provider_for(integration).get_token()
    assert authserver.resource(first).json()["client_id"] == clients.CC_CLIENT_ID
    # Another worker uses the stored token: no second request.
    assert token_provider_for(Integration.objects.get(pk="machine")).get_token() == first
    assert authserver.stats().get("client_credentials") == 1

    integration = Integration.objects.get(pk="machine")
    credentials = integration.credentials
    credentials["oauth_token"]["expires_at"] = int(time.time()) + 60  # within the 120 s margin
    Integration.objects.filter(pk="machine").update(credentials=credentials)
    second = token_provider_for(integration).get_token()
    assert second != first and authserver.resource(second).status_code == 200
    assert authserver.stats().get("client_credentials") == 2
    assert [e.detail["grant"] for e in refresh_events("machine")] == ["client_credentials"] * 2


def test_invalid_grant_requires_a_reconnect_without_a_retry_storm(
    authserver: AuthServer, provider_browser: ProviderBrowser, make_integration: Any, hub_client: Client
) -> None:
    token = authorized_token(authserver, provider_browser)
    authserver.revoke(token["refresh_token"])  # e.g. the user removed the app at the provider
    integration = make_integration(token=token | {"expires_at": int(time.time()) - 1})
    Integration.objects.filter(pk=integration.pk).update(status=Status.CONNECTED)

    with pytest.raises(ConnectorError) as refused:
        token_provider_for(integration).get_token()
    assert refused.value.category == "auth" and refused.value.permanent
    integration.refresh_from_db()
    assert integration.status == Status.RECONNECT_REQUIRED and "invalid_grant" in integration.last_error
    [event] = refresh_events(integration.pk)
    assert not event.ok and event.detail == {"grant": "refresh_token", "error": "invalid_grant"}

    # Workers keep calling (new processes too): no request reaches the provider, no event piles up.
    for _ in range(5):
        with pytest.raises(ConnectorError, match="reconnect the integration"):
            token_provider_for(Integration.objects.get(pk=integration.pk)).get_token()
    assert authserver.stats().get("refresh_token") == 1
    assert len(refresh_events(integration.pk)) == 1
    assert (
        IntegrationEvent.objects.filter(
            integration_ref=integration.pk, type=EventType.STATUS_CHANGE, detail__to=Status.RECONNECT_REQUIRED
        ).count()
        == 1
    )

    # The dashboard's reconnect is the authorization-code flow again; afterwards tokens flow.
    redirect = provider_browser.authorize(hub_client.post(reverse("oauth:start", args=[integration.pk]))["Location"])
    assert hub_client.get(redirect.removeprefix("http://testserver")).status_code == 200
    integration.refresh_from_db()
    assert integration.status == Status.CONNECTED
    assert "refresh_blocked_until" not in integration.credentials["oauth_token"]
    assert authserver.resource(token_provider_for(integration).get_token()).status_code == 200


def test_not_yet_authorized(make_integration: Any, authserver: AuthServer) -> None:
    with pytest.raises(ConnectorError, match="not authorized yet") as missing:
        token_provider_for(make_integration()).get_token()
    assert missing.value.category == "auth"
    assert authserver.stats() == {}


def test_bad_oauth2_settings_are_field_errors(make_integration: Any) -> None:
    from connectors.errors import ConfigError

    integration = make_integration()
    integration.config = {"oauth2": {"client_id": "", "token_url": "x", "grant_type": "password"}}
    with pytest.raises(ConfigError) as bad:
        token_provider_for(integration)
    assert {"oauth2.client_id", "oauth2.grant_type"} <= set(bad.value.errors)


def test_token_status_shows_no_values_and_forget_token_drops_the_token(make_integration: Any) -> None:
    from integrations.oauth import token_status
    from integrations.services import forget_token

    token = {
        "access_token": "at-value-123456",
        "refresh_token": "rt-value-123456",
        "expires_at": 2_000_000_000,
        "token_type": "Bearer",
        "scope": "read",
    }
    integration = make_integration(token=token)
    status = token_status(integration)
    assert status["authorized"] and status["has_refresh_token"] and status["expires_at"] == 2_000_000_000
    assert "at-value-123456" not in str(status) and "rt-value-123456" not in str(status)

    forget_token(integration, actor="operator")
    integration.refresh_from_db()
    assert integration.credentials == {"client_secret": clients.CODE_CLIENT_SECRET}
    assert token_status(integration)["authorized"] is False
    assert refresh_events(integration.pk)[-1].message == "OAuth2 token removed"
