"""Token providers by auth type: what a connector's runtime asks for a fresh access token.

``TOKEN_PROVIDERS`` maps an auth type to the function that builds its provider for an integration;
an auth type that is not in it (none, basic, api_key) needs none. The token store itself (where a token
lives, which lock makes a refresh happen once) is ``integrations.oauth.store``, below this layer.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db import transaction

from connectors.auth.oauth2 import OAuth2TokenProvider, TokenEvent
from connectors.runtime import TokenProvider
from integrations.models import AuthType, EventType, Integration, Status
from integrations.oauth.store import DjangoTokenStore, oauth2_config_for
from integrations.services.events import record_event, set_status
from integrations.target_policy import target_policy


def record_token_event(integration_id: str, event: TokenEvent) -> None:
    """Token endpoint outcome → an event (no token values), and reconnect_required on a refusal."""
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
        if event.reconnect_required:
            set_status(integration, Status.RECONNECT_REQUIRED, message=event.message, actor="oauth2")


def token_provider_for(integration: Integration) -> OAuth2TokenProvider:
    """The ``TokenProvider`` a connector's runtime gets for an integration whose auth_type is oauth2."""
    config = oauth2_config_for(integration)
    store = DjangoTokenStore(integration.pk)
    client_secret = (integration.credentials or {}).get("client_secret")
    integration_id = integration.pk
    return OAuth2TokenProvider(
        config,
        client_secret if isinstance(client_secret, str) else None,
        store,
        on_event=lambda event: record_token_event(integration_id, event),
        cooldown_seconds=getattr(settings, "OAUTH2_REFRESH_COOLDOWN_SECONDS", 300.0),
        policy=target_policy(),
    )


# auth type -> the provider of its tokens; the runtime looks the integration's auth type up here.
TOKEN_PROVIDERS: dict[str, Callable[[Integration], TokenProvider]] = {
    AuthType.OAUTH2: token_provider_for,
}


def forget_token(integration: Integration, *, actor: str = "") -> None:
    """Drop the stored token set (the client secret stays); the next use needs a new authorization."""
    DjangoTokenStore(integration.pk).save(None)
    record_event(integration, EventType.TOKEN_REFRESH, ok=None, actor=actor, message="OAuth2 token removed")
