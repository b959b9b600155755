"""OAuth2 helper over Authlib (a helper, not a base-class layer).

The non-secret settings live in an integration's config under ``oauth2``; the client secret lives in
credentials under ``client_secret`` and the token set (access, refresh, expiry) under ``oauth_token``.

What this module adds to Authlib's httpx client is what breaks real deployments when left out:
the refresh of one integration's token happens once across every process (a lock from the
``TokenStore``, the token re-read inside it, the rotated refresh token saved with the new access
token), and a refused refresh puts the integration in a cool-down instead of a retry storm.
Token values never enter a log line, an error message or an event.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client, OAuthError
from pydantic import BaseModel, ConfigDict, Field

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
DEFAULT_COOLDOWN_SECONDS = 300.0  # after a refusal: no request to the provider before this
TRANSIENT_COOLDOWN_SECONDS = 15.0  # after a network or 5xx failure
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
    # The callback URL registered with the provider; when unset the hub derives it from the request.
    redirect_uri: str | None = Field(None, description="Redirect URI registered with the provider.")


def oauth2_targets(config: OAuth2Config | None, prefix: str = "oauth2") -> list[Target]:
    """The token and authorize URLs, for the target policy (https only; http only to loopback)."""
    if config is None:
        return []
    targets = [Target(f"{prefix}.token_url", "oauth_url", config.token_url)]
    if config.authorize_url:
        targets.append(Target(f"{prefix}.authorize_url", "oauth_url", config.authorize_url))
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
    config: OAuth2Config, *, redirect_uri: str, state: str, policy: TargetPolicy | None = None
) -> AuthorizationRequest:
    """The URL to send the user's browser to, with ``state`` and a fresh PKCE S256 challenge.

    The caller keeps ``code_verifier`` server-side (never in the browser) until the callback.
    """
    if not config.authorize_url:
        raise ConnectorError("this OAuth2 configuration has no authorize_url", category=Category.CONFIG)
    (policy or TargetPolicy()).check_url(config.authorize_url, what="authorize_url", https_only=True)
    verifier = generate_token(64)  # RFC 7636: 43-128 unreserved characters
    with _client(config, None, redirect_uri=redirect_uri, policy=policy) as client:
        url, _ = client.create_authorization_url(config.authorize_url, state=state, code_verifier=verifier)
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
) -> dict[str, Any]:
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
    return normalize_token(raw)


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


# ---------------------------------------------------------------------------------------------
# The token provider connectors use.


class TokenStore(Protocol):
    """Where one integration's token set lives, shared by every process (the hub: its database)."""

    def load(self) -> dict[str, Any] | None:
        """The current token dict (fields of TOKEN_FIELDS plus the provider's cool-down marks), fresh."""

    def save(self, token: dict[str, Any]) -> None:
        """Replace the whole token dict at once: access and rotated refresh token together."""

    def lock(self) -> AbstractContextManager[None]:
        """Exclusive across processes for this integration, bounded in time; raise ConnectorError if not had."""


@dataclass(frozen=True)
class TokenEvent:
    """What happened at the token endpoint; never holds a token."""

    grant: str  # "refresh_token" | "client_credentials"
    ok: bool
    latency_ms: float
    message: str
    error: str | None = None  # the OAuth error code, or the error category
    reconnect_required: bool = False
    detail: dict[str, Any] = field(default_factory=dict)


class OAuth2TokenProvider:
    """``connectors.runtime.TokenProvider`` over a ``TokenStore``: refresh once, before expiry or after a 401."""

    def __init__(
        self,
        config: OAuth2Config,
        client_secret: str | None,
        store: TokenStore,
        *,
        on_event: Callable[[TokenEvent], None] | None = None,
        cooldown_seconds: float = DEFAULT_COOLDOWN_SECONDS,
        transient_cooldown_seconds: float = TRANSIENT_COOLDOWN_SECONDS,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.time,
        policy: TargetPolicy | None = None,
    ) -> None:
        self.config = config
        self._client_secret = client_secret
        self.store = store
        self.on_event = on_event
        self.cooldown_seconds = cooldown_seconds
        self.transient_cooldown_seconds = transient_cooldown_seconds
        self.timeout = timeout
        self.clock = clock
        self.policy = policy
        self._cached: dict[str, Any] | None = None
        self._rejected: str | None = None  # the access token a 401 was answered for
        self._thread_lock = threading.Lock()

    def __repr__(self) -> str:  # never shows tokens or the secret
        return f"<OAuth2TokenProvider client_id={self.config.client_id!r} grant={self.config.grant_type}>"

    def _usable(self, token: Mapping[str, Any] | None) -> bool:
        if not token or not token.get("access_token") or token["access_token"] == self._rejected:
            return False
        expires_at = token.get("expires_at")
        return expires_at is None or float(expires_at) - refresh_margin(self.config, token) > self.clock()

    def get_token(self) -> str:
        cached = self._cached
        if self._usable(cached):
            return cached["access_token"]  # type: ignore[index]
        # Threads of one process queue here, processes queue on the store's lock.
        with self._thread_lock:
            token = self.store.load()
            if not self._usable(token):
                self._raise_if_cooling_down(token)
                outcome: _Outcome | None = None
                with self.store.lock():
                    token = self.store.load()  # another process may have refreshed while we waited
                    if not self._usable(token):
                        self._raise_if_cooling_down(token)
                        outcome = self._obtain(token)
                # Events are written after the lock is released: other processes wait for the token only.
                if outcome is not None:
                    if outcome.event is not None and self.on_event is not None:
                        self.on_event(outcome.event)
                    if outcome.error is not None:
                        raise outcome.error
                    token = outcome.token
            self._cached = token
            self._rejected = None
            return token["access_token"]  # type: ignore[index]

    def invalidate(self, token: str) -> None:
        """The API answered 401 for ``token``: the next ``get_token`` gets a different one."""
        self._rejected = token
        if self._cached and self._cached.get("access_token") == token:
            self._cached = None

    def current(self) -> dict[str, Any] | None:
        """The stored token dict, for status displays (callers must not show its values)."""
        return self.store.load()

    # Inside the store's lock from here on.

    def _raise_if_cooling_down(self, token: Mapping[str, Any] | None) -> None:
        until = float((token or {}).get("refresh_blocked_until") or 0)
        remaining = until - self.clock()
        if remaining > 0:
            error = (token or {}).get("refresh_error") or "error"
            refused = error in _REFUSALS or error == "no_refresh_token"
            raise ConnectorError(
                f"OAuth2 token refresh failed earlier ({error}); "
                + ("reconnect the integration" if refused else f"next attempt in {remaining:.0f} s"),
                category=Category.AUTH if refused else Category.UNAVAILABLE,
                permanent=refused,
                retry_after=remaining,
            )

    def _obtain(self, token: dict[str, Any] | None) -> _Outcome:
        """Fetch a new token set and store it; on failure store a cool-down mark and return the error."""
        if self.config.grant_type == "client_credentials":
            grant = "client_credentials"
        elif token and token.get("refresh_token"):
            grant = "refresh_token"
        elif not token or not token.get("access_token"):
            return _Outcome(
                error=ConnectorError(
                    "not authorized yet: connect the integration through its OAuth2 authorization page",
                    category=Category.AUTH,
                )
            )
        else:
            exc = ConnectorError(
                "the access token expired and the provider issued no refresh token; reconnect the integration",
                category=Category.AUTH,
            )
            return self._failed(token, "refresh_token", 0.0, exc, error="no_refresh_token")
        started = time.perf_counter()
        try:
            if grant == "client_credentials":
                new = fetch_client_credentials(
                    self.config, self._client_secret, timeout=self.timeout, policy=self.policy
                )
            else:
                new = refresh_token(
                    self.config,
                    self._client_secret,
                    token["refresh_token"],  # type: ignore[index]
                    timeout=self.timeout,
                    policy=self.policy,
                )
        except ConnectorError as exc:
            error = exc.error if isinstance(exc, OAuth2Error) else exc.category.value
            return self._failed(token, grant, (time.perf_counter() - started) * 1000, exc, error=error)
        latency_ms = (time.perf_counter() - started) * 1000
        self.store.save(new)
        previous_refresh = (token or {}).get("refresh_token")
        rotated = grant == "refresh_token" and new.get("refresh_token") != previous_refresh
        log.info("OAuth2 %s for client %s succeeded in %.0f ms", grant, self.config.client_id, latency_ms)
        return _Outcome(
            token=new,
            event=TokenEvent(
                grant=grant,
                ok=True,
                latency_ms=latency_ms,
                message="access token refreshed" if grant == "refresh_token" else "access token fetched",
                detail={
                    "grant": grant,
                    "rotated": rotated,
                    "expires_at": new.get("expires_at"),
                    "scope": new.get("scope"),
                },
            ),
        )

    def _failed(
        self, token: dict[str, Any] | None, grant: str, latency_ms: float, exc: ConnectorError, *, error: str
    ) -> _Outcome:
        """Mark the stored token so that no process asks the provider again before the cool-down ends."""
        refused = exc.permanent
        marked = dict(token or {})
        marked["refresh_blocked_until"] = self.clock() + (
            self.cooldown_seconds if refused else self.transient_cooldown_seconds
        )
        marked["refresh_error"] = error
        self.store.save(marked)
        log.warning("OAuth2 %s for client %s failed: %s", grant, self.config.client_id, exc.message)
        return _Outcome(
            error=exc,
            event=TokenEvent(
                grant=grant,
                ok=False,
                latency_ms=latency_ms,
                message=exc.message,
                error=error,
                reconnect_required=refused,
                detail={"grant": grant, "error": error},
            ),
        )


@dataclass
class _Outcome:
    token: dict[str, Any] | None = None
    event: TokenEvent | None = None
    error: ConnectorError | None = None
