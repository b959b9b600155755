"""OAuth2 helper over Authlib (a helper, not a base-class layer).

The non-secret settings live in an integration's config under ``oauth2``; the client secret lives in
credentials under ``client_secret`` and the token set (access, refresh, expiry) under ``oauth_token``.

This module holds the settings and the grants, one Authlib call each; the token provider that
connectors use (refresh once across processes, refusals that wait for a person) is
``connectors.auth.token_provider``.
Token values never enter a log line, an error message or an event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client, OAuthError
from pydantic import BaseModel, ConfigDict, Field

from connectors.auth import oidc
from connectors.errors import Category, ConnectorError
from connectors.http.transport import checked_transport
from connectors.policy import Target, TargetPolicy, url_endpoint

try:  # Authlib's httpx client is built on httpx2 when installed, else on httpx: catch both.
    import httpx2 as _httpx2

    _HTTP_ERRORS: tuple[type[Exception], ...] = (_httpx2.HTTPError,)
    _TIMEOUTS: tuple[type[Exception], ...] = (_httpx2.TimeoutException,)
    _STATUS_ERRORS: tuple[type[Exception], ...] = (_httpx2.HTTPStatusError,)
    _TRANSPORT: type[Any] = _httpx2.HTTPTransport
except ImportError:  # pragma: no cover - depends on the environment
    _HTTP_ERRORS, _TIMEOUTS, _STATUS_ERRORS = (), (), ()
    _TRANSPORT = None  # type: ignore[assignment]
import httpx

_TRANSPORT = _TRANSPORT or httpx.HTTPTransport

_HTTP_ERRORS += (httpx.HTTPError,)
_TIMEOUTS += (httpx.TimeoutException,)
_STATUS_ERRORS += (httpx.HTTPStatusError,)

log = logging.getLogger(__name__)

# expires_in is kept as the token's lifetime: the refresh margin is at most half of it.
TOKEN_FIELDS = ("access_token", "refresh_token", "expires_at", "expires_in", "token_type", "scope")
# OAuth error codes from a token endpoint that a retry cannot fix (RFC 6749 §5.2): the grant or the
# client registration must change, so the integration needs a person to reconnect it.
_REFUSALS = {"invalid_grant", "invalid_client", "unauthorized_client", "unsupported_grant_type", "invalid_scope"}
DEFAULT_TIMEOUT_SECONDS = 10.0


class OAuth2Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str = Field(min_length=1)
    authorize_url: str | None = Field(None, description="Authorization endpoint (authorization_code grant).")
    token_url: str = Field(min_length=1, description="Token endpoint.")
    scopes: list[str] = Field(default_factory=list)
    grant_type: Literal["authorization_code", "client_credentials"] = "authorization_code"
    # Refresh this many seconds before expiry (BambooHR's SDK uses 5 minutes), but never more than half
    # of the token's lifetime: a 5-second token would otherwise be refreshed on every call.
    refresh_margin_seconds: int = Field(300, ge=0)
    # How the client authenticates at the token endpoint: HTTP Basic (RFC 6749's default) or form
    # fields (what BambooHR's SDK sends).
    token_endpoint_auth_method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"
    # The callback URL registered with the provider; when unset the hub's (HUB_PUBLIC_URL + /oauth/callback/).
    redirect_uri: str | None = Field(None, description="Redirect URI registered with the provider.")
    # OpenID Connect: with an issuer and the openid scope, the code exchange validates the id_token
    # (keys and endpoints from the issuer's discovery document).
    issuer: str | None = Field(None, description="OpenID Connect issuer URL (enables discovery and id_token checks).")

    @property
    def uses_openid(self) -> bool:
        return bool(self.issuer) and "openid" in self.scopes


def oauth2_targets(config: OAuth2Config | None, prefix: str = "oauth2") -> list[Target]:
    """The token and authorize URLs, for the target policy (https only; http only to loopback)."""
    if config is None:
        return []
    targets = [Target(f"{prefix}.token_url", "oauth_url", config.token_url)]
    if config.authorize_url:
        targets.append(Target(f"{prefix}.authorize_url", "oauth_url", config.authorize_url))
    if config.issuer:
        targets.append(Target(f"{prefix}.issuer", "oauth_url", config.issuer))
    return targets


class OAuth2Error(ConnectorError):
    """The provider answered a token request with an OAuth error (``error`` is its code, never a secret)."""

    def __init__(self, error: str, description: str | None, *, status_code: int | None = None) -> None:
        self.error = error
        self.description = description
        refused = error in _REFUSALS
        text = f"the token endpoint refused the request: {error}"
        if description:
            text += f" ({description[:200]})"
        super().__init__(
            text,
            category=Category.AUTH if refused else Category.UNKNOWN,
            permanent=refused,
            status_code=status_code,
        )


# ---------------------------------------------------------------------------------------------
# The grants, one Authlib call each.


@dataclass(frozen=True)
class AuthorizationRequest:
    url: str
    state: str
    code_verifier: str


def _client(
    config: OAuth2Config,
    client_secret: str | None,
    *,
    policy: TargetPolicy | None,
    redirect_uri: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> OAuth2Client:
    """Authlib's client over a transport that connects only where ``policy`` (default: the strict one) allows."""
    return OAuth2Client(
        client_id=config.client_id,
        client_secret=client_secret or None,
        token_endpoint_auth_method=config.token_endpoint_auth_method if client_secret else "none",
        scope=" ".join(config.scopes) or None,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        timeout=timeout,
        transport=checked_transport(policy or TargetPolicy(), _TRANSPORT, verify=True),
        trust_env=False,  # an environment proxy would connect where the policy cannot look
    )


def authorization_request(
    config: OAuth2Config,
    *,
    redirect_uri: str,
    state: str,
    policy: TargetPolicy | None = None,
    nonce: str | None = None,
) -> AuthorizationRequest:
    """The URL to send the user's browser to, with ``state`` and a fresh PKCE S256 challenge (and the
    OpenID ``nonce`` when given).

    The caller keeps ``code_verifier`` (and the nonce) server-side until the callback.
    """
    if not config.authorize_url:
        raise ConnectorError("this OAuth2 configuration has no authorize_url", category=Category.CONFIG)
    (policy or TargetPolicy()).check_url(config.authorize_url, what="authorize_url", https_only=True)
    verifier = generate_token(64)  # RFC 7636: 43-128 unreserved characters
    with _client(config, None, redirect_uri=redirect_uri, policy=policy) as client:
        extra = {"nonce": nonce} if nonce else {}
        url, _ = client.create_authorization_url(config.authorize_url, state=state, code_verifier=verifier, **extra)
    return AuthorizationRequest(url=url, state=state, code_verifier=verifier)


def normalize_token(raw: Mapping[str, Any], *, previous_refresh_token: str | None = None) -> dict[str, Any]:
    """Keep only what the hub stores. A provider that does not rotate keeps the previous refresh token."""
    if not raw.get("access_token"):
        raise ConnectorError("the token endpoint answered without an access_token", category=Category.AUTH)
    token = {name: raw.get(name) for name in TOKEN_FIELDS}
    token["refresh_token"] = token["refresh_token"] or previous_refresh_token
    token["token_type"] = token["token_type"] or "Bearer"
    if raw.get("expires_in"):
        lifetime = token["expires_in"] = int(raw["expires_in"])
        if token["expires_at"] is None:
            token["expires_at"] = int(time.time()) + lifetime
    return token


def refresh_margin(config: OAuth2Config, token: Mapping[str, Any] | None) -> float:
    """Seconds before expiry at which a token is renewed: the configured margin, at most half its lifetime.

    Half leaves every token in use for as long as it is fresh, whatever its lifetime, and renewed
    once per lifetime across every worker (the refresh happens under the store's lock).
    """
    margin = float(config.refresh_margin_seconds)
    lifetime = (token or {}).get("expires_in")
    if lifetime:
        margin = min(margin, float(lifetime) / 2)
    return margin


def _token_call(
    fn: Callable[[OAuth2Client], Any],
    config: OAuth2Config,
    client_secret: str | None,
    *,
    policy: TargetPolicy | None,
    redirect_uri: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> Any:
    """Run one token-endpoint request, turning every failure into a ConnectorError without secrets.

    The client secret goes in this request: https only (http only to loopback), and the connection
    itself goes only to an address the policy vets.
    """
    url_endpoint(config.token_url, what="token_url", https_only=True)
    try:
        with _client(config, client_secret, redirect_uri=redirect_uri, timeout=timeout, policy=policy) as client:
            return fn(client)
    except OAuthError as exc:
        raise OAuth2Error(str(exc.error or "error"), exc.description) from None
    except _STATUS_ERRORS as exc:
        status = exc.response.status_code  # type: ignore[attr-defined]
        raise ConnectorError(
            f"the token endpoint answered HTTP {status}",
            category=Category.UNKNOWN if status >= 500 or status == 429 else Category.AUTH,
            permanent=not (status >= 500 or status == 429),
            status_code=status,
        ) from None
    except _TIMEOUTS:
        raise ConnectorError(
            f"the token endpoint did not answer within {timeout:g} s", category=Category.TIMEOUT
        ) from None
    except _HTTP_ERRORS as exc:
        raise ConnectorError(
            f"cannot reach the token endpoint ({type(exc).__name__})", category=Category.NETWORK
        ) from None
    except ValueError:
        raise ConnectorError("the token endpoint answered with something other than a JSON object") from None


def exchange_code(
    config: OAuth2Config,
    client_secret: str | None,
    *,
    code: str,
    code_verifier: str,
    redirect_uri: str,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    policy: TargetPolicy | None = None,
    nonce: str | None = None,
) -> dict[str, Any]:
    """The token set for an authorization code. With OpenID (an issuer and the openid scope) the
    id_token must pass ``oidc.validate_id_token`` against the issuer's keys and ``nonce``, or nothing is
    returned; only its subject is kept."""
    raw = _token_call(
        lambda c: c.fetch_token(
            config.token_url, grant_type="authorization_code", code=code, code_verifier=code_verifier
        ),
        config,
        client_secret,
        redirect_uri=redirect_uri,
        timeout=timeout,
        policy=policy,
    )
    token = normalize_token(raw)
    if config.uses_openid:
        if not nonce:
            raise ConnectorError("an OpenID authorization needs a nonce", category=Category.CONFIG)
        metadata = oidc.discover(config.issuer, policy=policy, timeout=timeout)  # type: ignore[arg-type]
        claims = oidc.validate_id_token(
            raw.get("id_token"),
            jwks=oidc.fetch_jwks(metadata["jwks_uri"], policy=policy, timeout=timeout),
            issuer=metadata["issuer"],
            client_id=config.client_id,
            nonce=nonce,
            access_token=token["access_token"],
        )
        token["subject"] = claims.get("sub")
    return token


def fetch_client_credentials(
    config: OAuth2Config,
    client_secret: str | None,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    policy: TargetPolicy | None = None,
) -> dict[str, Any]:
    raw = _token_call(
        lambda c: c.fetch_token(config.token_url, grant_type="client_credentials"),
        config,
        client_secret,
        timeout=timeout,
        policy=policy,
    )
    return normalize_token(raw)


def refresh_token(
    config: OAuth2Config,
    client_secret: str | None,
    refresh: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    policy: TargetPolicy | None = None,
) -> dict[str, Any]:
    raw = _token_call(
        lambda c: c.refresh_token(config.token_url, refresh_token=refresh),
        config,
        client_secret,
        timeout=timeout,
        policy=policy,
    )
    return normalize_token(raw, previous_refresh_token=refresh)
