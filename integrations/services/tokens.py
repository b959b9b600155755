"""Token providers by auth type: what a connector's runtime asks for a fresh access token.

``TOKEN_PROVIDERS`` maps an auth type to the function that builds its provider for an integration;
an auth type that is not in it (none, basic, api_key) needs none. The token store itself (where a token
lives, which lock makes a refresh happen once) is ``integrations.oauth.store``, below this layer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.db import transaction

from connectors.auth.token_provider import CREDENTIALS_INVALID, RECONNECT_REQUIRED, OAuth2TokenProvider, TokenEvent
from connectors.errors import ConnectorError
from connectors.runtime import TokenProvider
from integrations import connector_runtime
from integrations.models import AuthType, EventType, Integration, Status
from integrations.oauth.store import DjangoTokenStore, oauth2_config_for
from integrations.services.events import record_event, set_status
from integrations.target_policy import target_policy

log = logging.getLogger(__name__)


def record_token_event(integration_id: str, event: TokenEvent) -> None:
    """Token endpoint outcome → an event (no token values); after a refusal, the status a person acts on:
    reconnect_required (authorize again), or error when the client credentials are refused (which a new
    authorization cannot fix)."""
    integration = Integration.objects.filter(pk=integration_id).first()
    if integration is None:
        return
    with transaction.atomic():
        record_event(
            integration,
            EventType.TOKEN_REFRESH,
            ok=event.ok,
            latency_ms=event.latency_ms,
            actor="oauth2",
            message=event.message,
            detail=event.detail,
        )
        if event.state == RECONNECT_REQUIRED:
            set_status(integration, Status.RECONNECT_REQUIRED, message=event.message, actor="oauth2")
        elif event.state == CREDENTIALS_INVALID:
            set_status(integration, Status.ERROR, message=event.message, actor="oauth2")


def token_provider_for(integration: Integration, *, clock: Callable[[], float] = time.time) -> OAuth2TokenProvider:
    """The ``TokenProvider`` a connector's runtime gets for an integration whose auth_type is oauth2.

    ``clock`` (seconds since the epoch) is what expiry and cool-downs are measured against.
    """
    config = oauth2_config_for(integration)
    store = DjangoTokenStore(integration.pk)
    client_secret = (integration.credentials or {}).get("client_secret")
    integration_id = integration.pk
    return OAuth2TokenProvider(
        config,
        client_secret if isinstance(client_secret, str) else None,
        store,
        on_event=lambda event: record_token_event(integration_id, event),
        clock=clock,
        policy=target_policy(),
    )


# auth type -> the provider of its tokens; the runtime looks the integration's auth type up here.
TOKEN_PROVIDERS: dict[str, Callable[[Integration], TokenProvider]] = {
    AuthType.OAUTH2: token_provider_for,
}


def refresh_expiring_tokens(*, within: float, clock: Callable[[], float] = time.time) -> dict[str, int]:
    """The beat's ahead-of-time refresh: every enabled OAuth2 integration whose token enters its refresh
    margin within ``within`` seconds (the beat interval) is refreshed now, once across processes.

    A token whose whole lifetime is shorter than two intervals is left to the on-demand path: refreshing
    it on every beat would cost a grant a minute for nothing. Failures are recorded like on-demand ones
    (a refusal sets reconnect_required) and counted, never raised: one integration does not stop the rest.
    """
    counts = {"refreshed": 0, "failed": 0}
    oauth = Integration.objects.filter(enabled=True, auth_type=AuthType.OAUTH2).exclude(
        status=Status.RECONNECT_REQUIRED
    )
    for integration in oauth:
        lifetime = ((integration.credentials or {}).get("oauth_token") or {}).get("expires_in")
        if lifetime and float(lifetime) <= 2 * within:
            continue
        try:
            if token_provider_for(integration, clock=clock).refresh_if_expiring(within):
                counts["refreshed"] += 1
        except ConnectorError as exc:
            counts["failed"] += 1
            log.warning("ahead-of-time token refresh of %s failed: %s", integration.pk, exc.message)
    return counts


def forget_token(integration: Integration, *, actor: str = "") -> None:
    """Drop the stored token set (the client secret stays); the next use needs a new authorization."""
    DjangoTokenStore(integration.pk).save(None)
    record_event(integration, EventType.TOKEN_REFRESH, ok=None, actor=actor, message="OAuth2 token removed")


def store_authorization(integration: Integration, token: dict[str, Any], *, actor: str) -> None:
    """A new authorization (the code flow's callback): the token set replaces the old one with its
    refusal marks, the integration is connected, and its circuit is closed at once, so the first call
    after re-authorizing goes through. The caller then closes the live connectors (``close_connector``)."""
    with transaction.atomic():
        DjangoTokenStore(integration.pk).save(token)
        record_event(
            integration,
            EventType.CONNECT,
            ok=True,
            actor=actor,
            message="authorized through OAuth2",
            detail={
                "grant": "authorization_code",
                "scope": token.get("scope"),
                "refresh_token": bool(token.get("refresh_token")),
                "expires_at": token.get("expires_at"),
            },
        )
        set_status(integration, Status.CONNECTED, message="authorized through OAuth2", actor=actor)
    connector_runtime.reset_circuit(integration.pk)
