"""The three grants through connectors.auth.oauth2 (Authlib's httpx client) against the real server."""

from __future__ import annotations

import hashlib
import time
from base64 import urlsafe_b64encode
from typing import Any

import pytest
from authlib.integrations.httpx_client import OAuth2Client

from connectors.auth.oauth2 import (
    OAuth2Error,
    authorization_request,
    exchange_code,
    fetch_client_credentials,
    refresh_token,
)
from connectors.auth.presets import preset_config
from connectors.auth.token_provider import OAuth2TokenProvider, TokenEvent
from connectors.errors import ConnectorError
from tests.connectors.policies import LOOPBACK
from tests.integrations.oauth.authserver import clients
from tests.integrations.oauth.conftest import AuthServer, MemoryStore, ProviderBrowser, query

REDIRECT = clients.HUB_REDIRECT_URI
SECRET = clients.CODE_CLIENT_SECRET


def authorize(authserver: AuthServer, browser: ProviderBrowser, state: str = "s-1") -> tuple[str, str]:
    """Run the browser part of the code flow; return (code, verifier)."""
    request = authorization_request(authserver.code_config(), redirect_uri=REDIRECT, state=state, policy=LOOPBACK)
    answer = query(browser.authorize(request.url))
    assert answer["state"] == state
    return answer["code"], request.code_verifier


def test_authorization_url_carries_state_and_an_s256_challenge(authserver: AuthServer) -> None:
    request = authorization_request(authserver.code_config(), redirect_uri=REDIRECT, state="abc", policy=LOOPBACK)
    params = query(request.url)
    assert params["state"] == "abc" and params["response_type"] == "code"
    assert params["code_challenge_method"] == "S256"
    expected = urlsafe_b64encode(hashlib.sha256(request.code_verifier.encode()).digest()).rstrip(b"=").decode()
    assert params["code_challenge"] == expected
    assert request.code_verifier not in request.url
    assert 43 <= len(request.code_verifier) <= 128


def test_authorization_code_flow_with_pkce(authserver: AuthServer, provider_browser: ProviderBrowser) -> None:
    code, verifier = authorize(authserver, provider_browser)
    token = exchange_code(
        authserver.code_config(), SECRET, code=code, code_verifier=verifier, redirect_uri=REDIRECT, policy=LOOPBACK
    )
    assert token["access_token"] and token["refresh_token"] and token["token_type"] == "Bearer"
    assert token["expires_at"] > time.time() + 3000
    assert set(token["scope"].split()) == {"read", "write"}
    me = authserver.resource(token["access_token"])
    assert me.status_code == 200 and me.json()["user"] == clients.PROVIDER_USER
    assert authserver.stats().get("authorization_code:200") == 1


def test_server_refuses_an_authorization_request_without_pkce(
    authserver: AuthServer, provider_browser: ProviderBrowser
) -> None:
    # Build the URL with Authlib but no code_verifier: no code_challenge is sent.
    with OAuth2Client(client_id=clients.CODE_CLIENT_ID, redirect_uri=REDIRECT, scope="read") as plain:
        url, _ = plain.create_authorization_url(authserver.authorize_url, state="no-pkce")
    answer = provider_browser.consent_page(url)
    # PKCE_REQUIRED: the provider sends the browser back to the client with an error, no consent form.
    assert answer.status_code == 302
    refused = query(answer.headers["location"])
    assert refused["error"] == "invalid_request" and "challenge" in refused["error_description"].lower()


def test_wrong_pkce_verifier_is_refused_by_the_server(
    authserver: AuthServer, provider_browser: ProviderBrowser
) -> None:
    code, verifier = authorize(authserver, provider_browser)
    with pytest.raises(OAuth2Error) as refused:
        exchange_code(
            authserver.code_config(),
            SECRET,
            code=code,
            code_verifier=verifier[::-1],
            redirect_uri=REDIRECT,
            policy=LOOPBACK,
        )
    assert refused.value.error == "invalid_grant"
    assert refused.value.permanent and refused.value.category == "auth"
    assert authserver.stats().get("authorization_code:400") == 1
    assert "invalid_grant" in refused.value.message and verifier not in refused.value.message


def test_client_credentials(authserver: AuthServer) -> None:
    token = fetch_client_credentials(authserver.cc_config(), clients.CC_CLIENT_SECRET, policy=LOOPBACK)
    assert token["access_token"] and not token["refresh_token"]
    me = authserver.resource(token["access_token"])
    assert me.status_code == 200 and me.json() == {"user": None, "client_id": clients.CC_CLIENT_ID, "scope": "read"}


def test_client_credentials_with_a_wrong_secret(authserver: AuthServer) -> None:
    with pytest.raises(OAuth2Error) as refused:
        fetch_client_credentials(authserver.cc_config(), "not-the-secret", policy=LOOPBACK)
    assert refused.value.error == "invalid_client" and refused.value.permanent
    assert "not-the-secret" not in str(refused.value)


def test_refresh_rotates_the_refresh_token_and_the_old_one_dies(
    authserver: AuthServer, provider_browser: ProviderBrowser
) -> None:
    code, verifier = authorize(authserver, provider_browser)
    first = exchange_code(
        authserver.code_config(), SECRET, code=code, code_verifier=verifier, redirect_uri=REDIRECT, policy=LOOPBACK
    )
    second = refresh_token(authserver.code_config(), SECRET, first["refresh_token"], policy=LOOPBACK)
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]  # rotated
    assert authserver.resource(second["access_token"]).status_code == 200
    assert authserver.resource(first["access_token"]).status_code in (401, 403)  # the old access token was revoked
    # What the loser of a refresh race would do: use the rotated-away refresh token.
    with pytest.raises(OAuth2Error) as refused:
        refresh_token(authserver.code_config(), SECRET, first["refresh_token"], policy=LOOPBACK)
    assert refused.value.error == "invalid_grant"
    assert authserver.stats().get("refresh_token") == 2


def test_unreachable_token_endpoint_is_a_transient_network_error() -> None:
    from connectors.auth.oauth2 import OAuth2Config

    config = OAuth2Config(client_id="x", token_url="http://127.0.0.1:9/token", grant_type="client_credentials")
    with pytest.raises(ConnectorError) as failed:
        fetch_client_credentials(config, "secret", timeout=2, policy=LOOPBACK)
    assert failed.value.category == "network" and not failed.value.permanent


def test_bamboohr_preset() -> None:
    config = preset_config("bamboohr", subdomain="acme")
    assert config["authorize_url"] == "https://acme.bamboohr.com/authorize.php"
    assert config["token_url"] == "https://acme.bamboohr.com/token.php?request=token"
    assert "offline_access" in config["scopes"] and config["token_endpoint_auth_method"] == "client_secret_post"
    assert "openid" not in config["scopes"]  # no issuer to check an id_token against
    with pytest.raises(ConnectorError, match="subdomain"):
        preset_config("bamboohr")


# ---------------------------------------------------------------------------------------------
# OAuth2TokenProvider over an in-process store, against the same server


def _code_token(authserver: AuthServer, browser: ProviderBrowser) -> dict[str, Any]:
    code, verifier = authorize(authserver, browser)
    return exchange_code(
        authserver.code_config(), SECRET, code=code, code_verifier=verifier, redirect_uri=REDIRECT, policy=LOOPBACK
    )


def test_provider_refreshes_only_inside_the_margin(authserver: AuthServer, provider_browser: ProviderBrowser) -> None:
    token = _code_token(authserver, provider_browser)
    store = MemoryStore(token | {"expires_at": int(time.time()) + 400})
    events: list[TokenEvent] = []
    provider = OAuth2TokenProvider(
        authserver.code_config(refresh_margin_seconds=300), SECRET, store, on_event=events.append, policy=LOOPBACK
    )
    assert provider.get_token() == token["access_token"]
    assert authserver.stats().get("refresh_token", 0) == 0

    store.token = store.load() | {"expires_at": int(time.time()) + 200}  # time passes: now inside the margin
    provider._cached = None
    fresh = provider.get_token()
    assert fresh != token["access_token"] and authserver.resource(fresh).status_code == 200
    assert store.token["refresh_token"] != token["refresh_token"]  # the rotated one was stored with it
    assert authserver.stats().get("refresh_token") == 1
    assert [e.ok for e in events] == [True] and events[0].detail["rotated"] is True
    assert provider.get_token() == fresh and authserver.stats().get("refresh_token") == 1


def test_provider_refreshes_once_after_a_401(authserver: AuthServer, provider_browser: ProviderBrowser) -> None:
    token = _code_token(authserver, provider_browser)
    store = MemoryStore(token)
    provider = OAuth2TokenProvider(authserver.code_config(), SECRET, store, policy=LOOPBACK)
    assert provider.get_token() == token["access_token"]
    authserver.expire(token["access_token"])  # the provider now answers 401 for it
    assert authserver.resource(token["access_token"]).status_code == 401
    provider.invalidate(token["access_token"])
    fresh = provider.get_token()
    assert fresh != token["access_token"] and authserver.resource(fresh).status_code == 200
    assert provider.get_token() == fresh
    assert authserver.stats().get("refresh_token") == 1


def test_invalid_grant_cools_down_instead_of_retrying(
    authserver: AuthServer, provider_browser: ProviderBrowser
) -> None:
    token = _code_token(authserver, provider_browser)
    authserver.revoke(token["refresh_token"])
    store = MemoryStore(token | {"expires_at": int(time.time()) - 10})
    events: list[TokenEvent] = []
    now = [time.time()]
    provider = OAuth2TokenProvider(
        authserver.code_config(), SECRET, store, on_event=events.append, clock=lambda: now[0], policy=LOOPBACK
    )
    with pytest.raises(ConnectorError) as first:
        provider.get_token()
    assert first.value.category == "auth" and first.value.permanent
    assert [(e.ok, e.error, e.reconnect_required) for e in events] == [(False, "invalid_grant", True)]
    for _ in range(5):  # callers keep asking, for an hour: nobody goes to the provider until a reconnect
        now[0] += 720
        with pytest.raises(ConnectorError, match="reconnect") as again:
            provider.get_token()
        assert again.value.retry_after is None  # waiting does not help: no promise of a later attempt
    assert authserver.stats().get("refresh_token") == 1 and len(events) == 1
    assert "refresh_token" not in store.token  # the refused refresh token is never sent again
    assert token["refresh_token"] not in str(store.token.get("refresh_error"))


def test_client_credentials_provider_fetches_and_fetches_again_before_expiry(authserver: AuthServer) -> None:
    store = MemoryStore()
    events: list[TokenEvent] = []
    provider = OAuth2TokenProvider(
        authserver.cc_config(refresh_margin_seconds=60),
        clients.CC_CLIENT_SECRET,
        store,
        on_event=events.append,
        policy=LOOPBACK,
    )
    first = provider.get_token()
    assert authserver.resource(first).status_code == 200 and provider.get_token() == first
    assert authserver.stats().get("client_credentials") == 1
    store.token = store.load() | {"expires_at": int(time.time()) + 30}  # inside the 60 s margin
    provider._cached = None
    second = provider.get_token()
    assert second != first and authserver.resource(second).status_code == 200
    assert authserver.stats().get("client_credentials") == 2
    assert [e.grant for e in events] == ["client_credentials", "client_credentials"]
