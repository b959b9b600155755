"""The token store: one integration's OAuth2 token set, shared by every process.

``connectors.auth.oauth2`` speaks to the provider; this module decides where tokens live (encrypted in
``Integration.credentials["oauth_token"]``) and which lock makes a refresh happen once across processes
(Redis when ``REDIS_URL`` is set, else a database row lock). It knows nothing of events or statuses:
the service layer (``integrations.services.tokens``) records what the provider said.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from django.conf import settings
from django.db import transaction
from pydantic import ValidationError

from connectors.auth.oauth2 import OAuth2Config
from connectors.errors import Category, ConfigError, ConnectorError
from integrations.models import Integration
from integrations.redis_clients import redis_client

log = logging.getLogger(__name__)

LOCK_TTL_SECONDS = 30.0  # a crashed holder frees the Redis lock after this
LOCK_WAIT_SECONDS = 40.0  # longer than one refresh (token request timeout 10 s) plus margin


def oauth2_config_for(integration: Integration) -> OAuth2Config:
    """The integration's ``config["oauth2"]``, validated; field errors come back as ``oauth2.<field>``."""
    raw = (integration.config or {}).get("oauth2")
    if not isinstance(raw, dict):
        raise ConfigError("OAuth2 is not configured (config.oauth2 is missing)", {"oauth2": ["required for OAuth2"]})
    try:
        return OAuth2Config.model_validate(raw)
    except ValidationError as exc:
        errors: dict[str, list[str]] = {}
        for err in exc.errors():
            errors.setdefault(".".join(["oauth2", *map(str, err["loc"])]), []).append(err["msg"])
        raise ConfigError("invalid OAuth2 settings: " + ", ".join(sorted(errors)), errors) from None


def _lock_backend() -> str:
    """``redis`` works on every hub database; the row lock is the fallback without Redis."""
    return getattr(settings, "OAUTH2_LOCK", None) or ("redis" if settings.REDIS_URL else "database")


class DjangoTokenStore:
    """``connectors.auth.token_provider.TokenStore`` over the integration row (encrypted credentials)."""

    def __init__(self, integration_id: str) -> None:
        self.integration_id = integration_id
        self._in_row_lock = False

    def __repr__(self) -> str:
        return f"<DjangoTokenStore {self.integration_id!r}>"

    def load(self) -> dict[str, Any] | None:
        rows = Integration.objects.filter(pk=self.integration_id).only("credentials")
        if self._in_row_lock:  # read under the lock we hold (MySQL's snapshot would be stale otherwise)
            rows = rows.select_for_update()
        row = rows.first()
        if row is None:
            raise ConnectorError("the integration no longer exists", category=Category.CONFIG)
        token = (row.credentials or {}).get("oauth_token")
        return dict(token) if isinstance(token, dict) else None

    def save(self, token: dict[str, Any] | None) -> None:
        """Replace ``oauth_token`` (access and rotated refresh token in one write); other secrets kept."""
        with transaction.atomic():
            row = Integration.objects.select_for_update().only("credentials").filter(pk=self.integration_id).first()
            if row is None:
                raise ConnectorError("the integration no longer exists", category=Category.CONFIG)
            credentials = dict(row.credentials or {})
            if token is None:
                credentials.pop("oauth_token", None)
            else:
                credentials["oauth_token"] = token
            Integration.objects.filter(pk=self.integration_id).update(credentials=credentials or None)

    @contextmanager
    def lock(self) -> Iterator[None]:
        if _lock_backend() == "redis":
            with self._redis_lock():
                yield
        else:
            with self._row_lock():
                yield

    @contextmanager
    def _redis_lock(self) -> Iterator[None]:
        client = redis_client()
        lock = client.lock(
            f"hub:oauth2:refresh:{self.integration_id}", timeout=LOCK_TTL_SECONDS, blocking_timeout=LOCK_WAIT_SECONDS
        )
        try:
            acquired = lock.acquire()
        except redis.RedisError as exc:
            raise ConnectorError(
                f"cannot take the token refresh lock: Redis is unreachable ({type(exc).__name__})",
                category=Category.UNAVAILABLE,
                retry_after=5,
            ) from None
        if not acquired:
            raise ConnectorError(
                "another process has been refreshing this token for too long",
                category=Category.UNAVAILABLE,
                retry_after=5,
            )
        try:
            yield
        finally:
            try:
                lock.release()
            except redis.RedisError:  # expired while we held it (a very slow provider): nothing to free
                log.warning("the token refresh lock of %s expired before release", self.integration_id)

    @contextmanager
    def _row_lock(self) -> Iterator[None]:
        # SELECT ... FOR UPDATE on PostgreSQL/MariaDB; on SQLite the IMMEDIATE transaction itself is the lock.
        with transaction.atomic():
            Integration.objects.select_for_update().filter(pk=self.integration_id).values_list("pk").first()
            self._in_row_lock = True
            try:
                yield
            finally:
                self._in_row_lock = False


def token_status(integration: Integration) -> dict[str, Any]:
    """What may be shown about the stored token: presence and times, never values."""
    token = (integration.credentials or {}).get("oauth_token") or {}
    return {
        "authorized": bool(token.get("access_token")),
        "has_refresh_token": bool(token.get("refresh_token")),
        "expires_at": token.get("expires_at"),
        "scope": token.get("scope"),
        "refresh_error": token.get("refresh_error"),
        "refresh_blocked_until": token.get("refresh_blocked_until"),
        "auth_state": token.get("auth_state"),  # reconnect_required / credentials_invalid after a refusal
    }
