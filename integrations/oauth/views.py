"""OAuth2 authorization code: the start and callback views (``integrations.oauth.urls``).

The ``state`` sent to the provider is signed (SECRET_KEY, 10-minute lifetime) and names the user and a
one-time nonce; the nonce, the integration and the PKCE verifier stay in the user's session, server side.
The token lands in ``integrations.oauth.store``; the event and the status change go through the services.
"""

from __future__ import annotations

import logging
import secrets
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from connectors.auth.oauth2 import OAuth2Config, OAuth2Error, authorization_request, exchange_code
from connectors.errors import ConfigError, ConnectorError
from integrations import services
from integrations.api.permissions import can_manage
from integrations.models import AuthType, EventType, Integration, IntegrationEvent
from integrations.oauth.store import oauth2_config_for, token_status
from integrations.services.tokens import store_authorization
from integrations.target_policy import target_policy

log = logging.getLogger(__name__)

STATE_SALT = "integrations.oauth.state"
SESSION_FLOWS = "oauth2_flows"  # nonce -> {integration, verifier, redirect_uri, created}
SESSION_USED = "oauth2_used_nonces"  # the last few finished nonces, to say "already used" on a replay
MAX_PENDING_FLOWS = 10


def _state_max_age() -> int:
    """How long an authorization may take between start and callback (seconds)."""
    return int(getattr(settings, "OAUTH2_STATE_MAX_AGE_SECONDS", 600))


def _age_text(seconds: int) -> str:
    return f"{seconds // 60} minutes" if seconds >= 120 else f"{seconds} seconds"


class CallbackRefused(Exception):
    def __init__(self, reason: str, title: str, message: str) -> None:
        super().__init__(reason)
        self.reason, self.title, self.message = reason, title, message


def _result(
    request: HttpRequest,
    *,
    ok: bool,
    title: str,
    message: str,
    reason: str = "",
    integration: Integration | None = None,
) -> HttpResponse:
    context = {
        "ok": ok,
        "title": title,
        "message": message,
        "reason": reason,
        "integration": integration,
    }
    return render(request, "integrations/oauth_result.html", context, status=200 if ok else 400)


def _refused(
    request: HttpRequest, reason: str, title: str, message: str, integration: Integration | None = None
) -> HttpResponse:
    """The page that says why nothing was stored (400)."""
    return _result(request, ok=False, reason=reason, title=title, message=message, integration=integration)


def _visible(request: HttpRequest, integration_id: str) -> Integration | None:
    return Integration.objects.visible_to(request.user).filter(pk=integration_id).first()


def _may_authorize(request: HttpRequest, integration: Integration) -> bool:
    """Authorizing replaces the integration's credentials (maybe with another provider account):
    the owner's or staff's decision, like any credential change."""
    return can_manage(request.user, integration)


def _not_allowed(request: HttpRequest, integration: Integration) -> HttpResponse:
    response = _refused(
        request,
        "forbidden",
        "Not allowed to authorize",
        "Only the integration's owner or staff may authorize it. Nothing was stored.",
        integration,
    )
    response.status_code = 403
    return response


def public_callback_url() -> str | None:
    """HUB_PUBLIC_URL + /oauth/callback/ (None when the setting is empty). Never built from a request:
    its Host header is the client's to choose."""
    base = getattr(settings, "HUB_PUBLIC_URL", "")
    return f"{base}{reverse('oauth:callback')}" if base else None


def redirect_uri_for(config: OAuth2Config) -> str | None:
    """The callback URL to register with the provider: the integration's own setting, else the hub's."""
    return config.redirect_uri or public_callback_url()


def oauth_details(integration: Integration) -> dict[str, Any] | None:
    """What the details page shows of an OAuth2 integration: the redirect URI to register, the token's
    expiry and the last refresh (times and states, never token values)."""
    if integration.auth_type != AuthType.OAUTH2:
        return None
    try:
        config: OAuth2Config | None = oauth2_config_for(integration)
    except ConfigError:
        config = None
    status = token_status(integration)
    expires_at = status.get("expires_at")
    last_refresh = (
        IntegrationEvent.objects.filter(integration=integration, type=EventType.TOKEN_REFRESH, ok=True)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    return {
        "redirect_uri": redirect_uri_for(config) if config and config.grant_type == "authorization_code" else None,
        "authorized": status["authorized"],
        "expires_at": datetime.fromtimestamp(float(expires_at), tz=UTC) if expires_at else None,
        "last_refresh": last_refresh,
        "auth_state": status.get("auth_state"),
    }


def _startable(request: HttpRequest, integration_id: str) -> tuple[Integration, OAuth2Config] | HttpResponse:
    """The integration and its OAuth2 settings when an authorization may start; else the page saying why."""
    integration = _visible(request, integration_id)
    if integration is None:
        return _refused(
            request,
            "not_found",
            "Integration not found",
            f"There is no integration {integration_id!r} you may connect.",
        )
    if not _may_authorize(request, integration):
        return _not_allowed(request, integration)
    if integration.auth_type != AuthType.OAUTH2:
        return _refused(
            request,
            "not_oauth2",
            "Not an OAuth2 integration",
            "This integration does not use OAuth2; connect it from its page instead.",
            integration,
        )
    try:
        config = oauth2_config_for(integration)
    except ConfigError as exc:
        return _refused(request, "config", "OAuth2 settings are incomplete", exc.message, integration)
    if config.grant_type != "authorization_code" or not config.authorize_url:
        return _refused(
            request,
            "no_authorization_step",
            "No authorization step",
            "This integration uses the client-credentials grant (or has no authorize URL): "
            "its token is fetched when it connects, without a browser step.",
            integration,
        )
    return integration, config


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def start(request: HttpRequest, integration_id: str) -> HttpResponse:
    """GET: a page that says where the browser is about to go, with a button (a CSRF-checked POST).
    POST: redirect the browser to the provider with a signed single-use state and a PKCE S256 challenge.

    A GET changes nothing, not even the session: a link, a prefetch or another site's <img> must not
    start an authorization that a provider which remembers the user's consent would complete silently,
    replacing the integration's token (the reason django-allauth also starts logins on POST only).
    """
    checked = _startable(request, integration_id)
    if isinstance(checked, HttpResponse):
        return checked
    integration, config = checked
    if request.method != "POST":
        return render(
            request,
            "integrations/oauth_start.html",
            {
                "integration": integration,
                "provider": urlsplit(config.authorize_url or "").hostname or "the provider",
                "redirect_uri": redirect_uri_for(config),
                "title": f"Connect {integration.name} with its provider",
            },
        )
    redirect_uri = redirect_uri_for(config)
    if redirect_uri is None:
        return _refused(
            request,
            "no_public_url",
            "The hub's public address is not set",
            "Set HUB_PUBLIC_URL to the address browsers use to reach the hub (e.g. https://hub.example.com); "
            "the redirect URI to register with the provider is that address followed by /oauth/callback/. "
            "Nothing was started.",
            integration,
        )
    nonce = secrets.token_urlsafe(24)
    state = signing.dumps({"n": nonce, "u": request.user.pk}, salt=STATE_SALT, compress=True)
    oidc_nonce = secrets.token_urlsafe(24) if config.uses_openid else None
    try:
        auth = authorization_request(
            config, redirect_uri=redirect_uri, state=state, policy=target_policy(), nonce=oidc_nonce
        )
    except ConnectorError as exc:
        return _refused(request, "config", "OAuth2 settings are incomplete", exc.message, integration)
    now = time.time()
    flows = {
        key: flow
        for key, flow in (request.session.get(SESSION_FLOWS) or {}).items()
        if now - flow["created"] < _state_max_age()
    }
    flows[nonce] = {
        "integration": integration.pk,
        "verifier": auth.code_verifier,
        "redirect_uri": redirect_uri,
        "oidc_nonce": oidc_nonce,
        "created": now,
    }
    request.session[SESSION_FLOWS] = dict(sorted(flows.items(), key=lambda kv: kv[1]["created"])[-MAX_PENDING_FLOWS:])
    return HttpResponseRedirect(auth.url)


def _take_flow(request: HttpRequest) -> dict[str, Any]:
    """Check ``state`` and consume its flow (single use). Raise CallbackRefused saying what is wrong."""
    state = request.GET.get("state")
    if not state:
        raise CallbackRefused(
            "missing_state",
            "Authorization refused: no state",
            "The answer from the provider carries no state parameter, so it cannot be matched "
            "to an authorization you started. Nothing was stored.",
        )
    try:
        payload = signing.loads(state, salt=STATE_SALT, max_age=_state_max_age())
    except signing.SignatureExpired:
        raise CallbackRefused(
            "expired_state",
            "Authorization expired",
            f"This authorization was started more than {_age_text(_state_max_age())} ago. "
            "Start it again from the integration's page. Nothing was stored.",
        ) from None
    except signing.BadSignature:
        raise CallbackRefused(
            "invalid_state",
            "Authorization refused: invalid state",
            "The state parameter was not issued by this hub (forged or altered). Nothing was stored.",
        ) from None
    if not isinstance(payload, dict) or payload.get("u") != request.user.pk:
        raise CallbackRefused(
            "other_user_state",
            "Authorization refused: started by another user",
            "This authorization was started by a different user; only that user can finish it. Nothing was stored.",
        )
    nonce = str(payload.get("n"))
    flows = dict(request.session.get(SESSION_FLOWS) or {})
    flow = flows.pop(nonce, None)
    used = list(request.session.get(SESSION_USED) or [])
    if flow is None:
        if nonce in used:
            raise CallbackRefused(
                "replayed_state",
                "Authorization already used",
                "This authorization answer was already used once; it cannot be used again. Nothing was stored.",
            )
        raise CallbackRefused(
            "unknown_state",
            "Authorization refused: not started here",
            "This authorization was not started in this browser session (or it was replaced). "
            "Start it again from the integration's page. Nothing was stored.",
        )
    # Consumed before anything else happens: a second request with the same state finds nothing.
    request.session[SESSION_FLOWS] = flows
    request.session[SESSION_USED] = [*used, nonce][-20:]
    request.session.save()
    return flow


@never_cache
@login_required
@require_http_methods(["GET"])
def callback(request: HttpRequest) -> HttpResponse:
    try:
        flow = _take_flow(request)
    except CallbackRefused as refused:
        log.warning("OAuth2 callback refused for user %s: %s", request.user.pk, refused.reason)
        return _refused(request, refused.reason, refused.title, refused.message)

    integration = _visible(request, flow["integration"])
    if integration is None:
        return _refused(
            request,
            "not_found",
            "Integration not found",
            "The integration this authorization was for no longer exists. Nothing was stored.",
        )
    if not _may_authorize(request, integration):
        return _not_allowed(request, integration)
    error = request.GET.get("error")
    if error:
        description = request.GET.get("error_description", "")[:300]
        log.warning("OAuth2 authorization of %s ended with provider error %s", integration.pk, error[:50])
        if error == "access_denied":
            return _refused(
                request,
                "access_denied",
                "Access denied at the provider",
                "The authorization was declined at the provider, so the hub received no access. "
                "Nothing was stored; start again and approve to connect.",
                integration,
            )
        return _refused(
            request,
            "provider_error",
            "The provider reported an error",
            f"The provider answered {error[:50]!r}"
            + (f": {description}" if description else "")
            + ". Nothing was stored.",
            integration,
        )
    code = request.GET.get("code")
    if not code:
        return _refused(
            request,
            "missing_code",
            "No authorization code",
            "The provider's answer carries neither a code nor an error. Nothing was stored.",
            integration,
        )
    try:
        config = oauth2_config_for(integration)
        secret = (integration.credentials or {}).get("client_secret")
        token = exchange_code(
            config,
            secret if isinstance(secret, str) else None,
            code=code,
            code_verifier=flow["verifier"],
            redirect_uri=flow["redirect_uri"],
            policy=target_policy(),
            nonce=flow.get("oidc_nonce"),
        )
    except OAuth2Error as exc:
        log.warning("OAuth2 code exchange for %s refused: %s", integration.pk, exc.error)
        explanation = (
            " The code is unknown, expired, already used, or the PKCE verifier does not match it."
            if exc.error == "invalid_grant"
            else ""
        )
        return _refused(
            request,
            "exchange_refused",
            "The provider refused the authorization code",
            f"Exchanging the code for a token failed: {exc.error}"
            + (f" ({exc.description[:200]})" if exc.description else "")
            + f".{explanation} Nothing was stored; start the authorization again.",
            integration,
        )
    except ConnectorError as exc:
        log.warning("OAuth2 code exchange for %s failed: %s", integration.pk, exc.message)
        return _refused(
            request, "exchange_failed", "The code exchange failed", f"{exc.message}. Nothing was stored.", integration
        )

    store_authorization(integration, token, actor=request.user.get_username())
    # Workers built a connector around the old state; they rebuild it with the new token provider.
    services.close_connector(integration.pk)
    return _result(
        request,
        ok=True,
        integration=integration,
        title="Connected",
        message=f"{integration.name} is authorized; the hub now holds an access token"
        + (" and a refresh token" if token.get("refresh_token") else "")
        + " (stored encrypted).",
    )
