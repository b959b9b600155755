"""The token provider connectors use, over a ``TokenStore`` (the hub: its database).

What it adds to the grants of ``connectors.auth.oauth2`` is what breaks real deployments when left out:
the refresh of one integration's token happens once across every process (a lock from the store, the
token re-read inside it, the rotated refresh token saved with the new access token), ahead of expiry by
a margin that fits the token's lifetime; a short transient failure puts it in a brief cool-down instead
of a retry storm; and a refusal (invalid_grant, invalid_client, a fresh token refused by the API) stops
every request to the provider until a person acts: a new authorization, or corrected client settings.
Token values never enter a log line, an error message or an event.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from connectors.auth.oauth2 import (
    DEFAULT_TIMEOUT_SECONDS,
    OAuth2Config,
    OAuth2Error,
    fetch_client_credentials,
    refresh_margin,
    refresh_token,
)
from connectors.errors import Category, ConnectorError
from connectors.policy import TargetPolicy

log = logging.getLogger(__name__)

TRANSIENT_COOLDOWN_SECONDS = 15.0  # after a network or 5xx failure
FRESH_TOKEN_SECONDS = 10.0  # a 401 this soon after a token was issued to us is a refusal, not staleness

# What a refusal leaves in the stored token set (``auth_state``) until a person acts.
RECONNECT_REQUIRED = "reconnect_required"  # the grant is dead: authorize again
CREDENTIALS_INVALID = "credentials_invalid"  # the client ID, secret or settings are refused: correct them

# Refusals of the client itself: a new authorization cannot fix them, corrected client settings can.
_CLIENT_REFUSALS = {"invalid_client", "unauthorized_client"}


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
    state: str | None = None  # RECONNECT_REQUIRED or CREDENTIALS_INVALID after a refusal
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def reconnect_required(self) -> bool:
        return self.state == RECONNECT_REQUIRED


class OAuth2TokenProvider:
    """``connectors.runtime.TokenProvider`` over a ``TokenStore``: refresh once, before expiry or after a 401."""

    def __init__(
        self,
        config: OAuth2Config,
        client_secret: str | None,
        store: TokenStore,
        *,
        on_event: Callable[[TokenEvent], None] | None = None,
        transient_cooldown_seconds: float = TRANSIENT_COOLDOWN_SECONDS,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.time,
        policy: TargetPolicy | None = None,
    ) -> None:
        self.config = config
        self._client_secret = client_secret
        self.store = store
        self.on_event = on_event
        self.transient_cooldown_seconds = transient_cooldown_seconds
        self.timeout = timeout
        self.clock = clock
        self.policy = policy
        self._cached: dict[str, Any] | None = None
        self._rejected: str | None = None  # the access token a 401 was answered for
        # The token just handed out in place of a rejected one, or just issued by our own grant: a 401
        # for it is a refusal, not staleness.
        self._replacement: str | None = None
        self._replacement_at = 0.0
        self._thread_lock = threading.Lock()

    def __repr__(self) -> str:  # never shows tokens or the secret
        return f"<OAuth2TokenProvider client_id={self.config.client_id!r} grant={self.config.grant_type}>"

    def _usable(self, token: Mapping[str, Any] | None) -> bool:
        if not token or not token.get("access_token") or token["access_token"] == self._rejected:
            return False
        if self._refused(token):
            return False
        expires_at = token.get("expires_at")
        return expires_at is None or float(expires_at) - refresh_margin(self.config, token) > self.clock()

    def get_token(self) -> str:
        cached = self._cached
        if self._usable(cached):
            return cached["access_token"]  # type: ignore[index]
        # Threads of one process queue here, processes queue on the store's lock.
        with self._thread_lock:
            outcome: _Outcome | None = None
            token = self.store.load()
            if not self._usable(token):
                self._raise_if_cooling_down(token)
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
            fresh = self._rejected or (outcome is not None and outcome.token is not None)
            self._replacement = token["access_token"] if fresh else None  # type: ignore[index]
            self._replacement_at = self.clock()
            self._rejected = None
            return token["access_token"]  # type: ignore[index]

    def refresh_if_expiring(self, within: float) -> bool:
        """Refresh now if the token enters its refresh margin within ``within`` seconds: the beat's
        ahead-of-time refresh, so that the first call after a quiet night does not wait for one.

        Single-flight with ``get_token``: the same locks, and the token re-read inside them, so a
        token another worker has just refreshed is left alone. True when this call refreshed it;
        a failure is recorded and raised like an on-demand one.
        """
        with self._thread_lock:
            if not self._expiring(self.store.load(), within):
                return False
            outcome: _Outcome | None = None
            with self.store.lock():
                token = self.store.load()
                if self._expiring(token, within):
                    outcome = self._obtain(token)
            if outcome is None:
                return False
            if outcome.event is not None and self.on_event is not None:
                self.on_event(outcome.event)
            if outcome.error is not None:
                raise outcome.error
            self._cached = outcome.token
            return True

    def _expiring(self, token: Mapping[str, Any] | None, within: float) -> bool:
        """A token that can be renewed without a person and enters its margin within ``within`` s."""
        if not token or not token.get("access_token") or self._refused(token):
            return False
        if float(token.get("refresh_blocked_until") or 0) > self.clock():
            return False
        if self.config.grant_type != "client_credentials" and not token.get("refresh_token"):
            return False
        expires_at = token.get("expires_at")
        return (
            expires_at is not None and float(expires_at) - refresh_margin(self.config, token) <= self.clock() + within
        )

    def invalidate(self, token: str) -> None:
        """The API answered 401 for ``token``: the next ``get_token`` gets a different one.

        A 401 for a token just issued (by our own grant, or handed out right after a 401) is not a stale
        token but a refusal of the authorization itself: no refresh can fix it, so it is marked like an
        invalid_grant.
        """
        if self._cached and self._cached.get("access_token") == token:
            self._cached = None
        if token == self._replacement and self.clock() - self._replacement_at < FRESH_TOKEN_SECONDS:
            self._replacement = None
            self._refuse_fresh(token)
            return
        self._rejected = token

    def _refuse_fresh(self, access_token: str) -> None:
        with self._thread_lock:
            event: TokenEvent | None = None
            with self.store.lock():
                token = self.store.load()
                if token and token.get("access_token") == access_token and not token.get("auth_state"):
                    grant = "client_credentials" if self.config.grant_type == "client_credentials" else "refresh_token"
                    exc = ConnectorError(
                        "the API refused a freshly issued access token (HTTP 401)", category=Category.AUTH
                    )
                    event = self._failed(token, grant, 0.0, exc, error="token_rejected").event
            if event is not None and self.on_event is not None:
                self.on_event(event)

    def current(self) -> dict[str, Any] | None:
        """The stored token dict, for status displays (callers must not show its values)."""
        return self.store.load()

    # Inside the store's lock from here on.

    def _client_fingerprint(self) -> str:
        """Names the client settings a refusal was for (never the secret itself): changing any lifts it."""
        material = self.config.model_dump_json() + "\0" + (self._client_secret or "")
        return hashlib.sha256(material.encode()).hexdigest()[:24]

    def _refused(self, token: Mapping[str, Any]) -> bool:
        """A refusal mark that still holds: any reconnect mark; a client mark for these client settings."""
        state = token.get("auth_state")
        return state == RECONNECT_REQUIRED or (
            state == CREDENTIALS_INVALID and token.get("refused_client") == self._client_fingerprint()
        )

    def _raise_if_cooling_down(self, token: Mapping[str, Any] | None) -> None:
        token = token or {}
        error = token.get("refresh_error") or "error"
        state = token.get("auth_state")
        if state == RECONNECT_REQUIRED:
            raise ConnectorError(
                f"the provider refused the OAuth2 authorization ({error}); reconnect the integration",
                category=Category.AUTH,
                permanent=True,
            )
        if state == CREDENTIALS_INVALID and token.get("refused_client") == self._client_fingerprint():
            raise ConnectorError(
                f"the provider refused the OAuth2 client credentials ({error}); correct the client ID, "
                "secret or OAuth2 settings (reconnecting does not help)",
                category=Category.AUTH,
                permanent=True,
            )
        remaining = float(token.get("refresh_blocked_until") or 0) - self.clock()
        if remaining > 0:
            raise ConnectorError(
                f"OAuth2 token refresh failed earlier ({error}); next attempt in {remaining:.0f} s",
                category=Category.UNAVAILABLE,
                permanent=False,
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
            if isinstance(exc, OAuth2Error):
                error = exc.error
            elif exc.status_code == 401:  # a token endpoint's 401 without an OAuth error body: the client
                error = "invalid_client"
            else:
                error = exc.category.value
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
        """Mark the stored token so that no process asks the provider again: for a short cool-down after
        a transient failure; after a refusal, until a person acts (``auth_state``).

        A refused grant is dropped (a rotated-away or revoked refresh token is never sent again); a
        refusal of the client keeps it, since corrected client credentials make it usable again.
        """
        marked = {k: v for k, v in (token or {}).items() if k not in ("refresh_blocked_until", "auth_state")}
        marked["refresh_error"] = error
        state: str | None = None
        if exc.permanent:
            if error in _CLIENT_REFUSALS or grant == "client_credentials":
                state = CREDENTIALS_INVALID
                marked["refused_client"] = self._client_fingerprint()
                advice = "correct the client ID, secret or OAuth2 settings (reconnecting does not help)"
            else:
                state = RECONNECT_REQUIRED
                marked.pop("refresh_token", None)
                advice = "reconnect the integration"
            marked["auth_state"] = state
            exc = ConnectorError(
                f"{exc.message}; {advice}", category=Category.AUTH, permanent=True, status_code=exc.status_code
            )
        else:
            marked["refresh_blocked_until"] = self.clock() + self.transient_cooldown_seconds
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
                state=state,
                detail={"grant": grant, "error": error},
            ),
        )


@dataclass
class _Outcome:
    token: dict[str, Any] | None = None
    event: TokenEvent | None = None
    error: ConnectorError | None = None
