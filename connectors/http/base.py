"""The HTTP family: httpx with a timeout on every call, TLS verification on, HTTPS only (plain HTTP
only to a loopback host when a config explicitly allows it), and ONE choke point, ``_request``.

``_request`` runs every attempt through ``Runtime.call`` (circuit breaker, shared rate limit, retry
with tenacity, metrics) and turns HTTP outcomes into ``ConnectorError``: subclasses only say where
the API lives, how to authenticate, and where the provider puts its error text.
"""

from __future__ import annotations

import email.utils
import ipaddress
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from connectors.base import ConfigT, Connector
from connectors.errors import Category, ConnectorError
from connectors.http.transport import checked_transport
from connectors.redact import mask_secrets

# Status -> category for answers that no retry can fix. 429/503/5xx are handled apart (transient).
_PERMANENT_STATUS: dict[int, Category] = {
    400: Category.INVALID,
    401: Category.AUTH,
    403: Category.PERMISSION,
    404: Category.NOT_FOUND,
    405: Category.INVALID,
    406: Category.INVALID,
    409: Category.CONFLICT,
    410: Category.NOT_FOUND,
    412: Category.INVALID,
    413: Category.INVALID,
    415: Category.INVALID,
    422: Category.INVALID,
}

_MAX_PROVIDER_TEXT = 300  # provider error text is quoted, never a whole HTML page


def _unknown_outcome(error: ConnectorError) -> ConnectorError:
    """A write that may or may not have happened: retrying could do it twice, so nobody should."""
    return ConnectorError(
        error.message + " (the outcome is unknown: not retried, to avoid doing it twice; check before repeating)",
        category=error.category,
        permanent=True,
        status_code=error.status_code,
    )


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(url: str, *, allow_insecure_loopback: bool = False) -> str:
    """The URL with a trailing slash, or ValueError saying why it may not be used.

    HTTPS only: credentials travel in every request. Plain HTTP is allowed solely for a loopback
    host (a sandbox or a test server on this machine) and only when the config says so.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL")
    if parts.username or parts.password:
        raise ValueError("must not contain credentials; they belong in the credentials")
    if parts.query or parts.fragment:
        raise ValueError("must not contain a query string or fragment")
    if parts.scheme == "http":
        if not is_loopback_host(parts.hostname):
            raise ValueError("must use https:// (http:// is only allowed for a loopback host)")
        if not allow_insecure_loopback:
            raise ValueError("uses http://; set allow_insecure_loopback to use a local sandbox")
    return url if url.endswith("/") else url + "/"


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP-date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT
        import datetime as dt

        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class HttpConnector(Connector[ConfigT]):
    """Base of HTTP connectors. Subclasses implement ``_base_url`` and may override the hooks below."""

    # Sent on every request (e.g. ``Accept: application/json`` where a provider defaults to XML).
    default_headers: ClassVar[Mapping[str, str]] = {}
    # Headers where the provider puts a human-readable error, first match wins.
    error_message_headers: ClassVar[tuple[str, ...]] = ()

    _client: httpx.Client | None = None

    # --- hooks -------------------------------------------------------------------------------
    def _base_url(self) -> str:
        raise NotImplementedError

    def _timeout_seconds(self) -> float:
        return float(getattr(self.config, "timeout_seconds", 30.0))

    def _allow_insecure_loopback(self) -> bool:
        return bool(getattr(self.config, "allow_insecure_loopback", False))

    def _static_auth(self) -> httpx.Auth | None:
        """Auth that does not change between calls (HTTP Basic with an API key...)."""
        return None

    def _uses_bearer_token(self) -> bool:
        return self.auth_type == "oauth2"

    def _classify(self, operation: str, response: httpx.Response, message: str) -> ConnectorError | None:
        """A provider-specific reading of a failed response; ``None`` keeps the generic mapping."""
        return None

    # --- lifecycle ---------------------------------------------------------------------------
    def _open(self) -> None:
        if self._client is not None:
            return
        try:
            base_url = check_base_url(self._base_url(), allow_insecure_loopback=self._allow_insecure_loopback())
        except ValueError as exc:
            raise ConnectorError(f"{self.label}: base_url {exc}", category=Category.CONFIG) from None
        if self._uses_bearer_token() and self.runtime.token_provider is None:
            raise ConnectorError(
                f"{self.label}: OAuth2 is not authorized yet (no token provider)", category=Category.CONFIG
            )
        self._client = httpx.Client(
            base_url=base_url,
            timeout=httpx.Timeout(self._timeout_seconds()),
            # Every connection is vetted by the runtime's target policy; no proxy from the environment,
            # which would connect to addresses the policy never sees.
            transport=checked_transport(self.runtime.policy, verify=True),
            follow_redirects=False,  # a redirect could carry the Authorization header elsewhere
            headers=dict(self.default_headers),
            auth=self._static_auth(),
            trust_env=False,
        )

    def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._open()
        assert self._client is not None
        return self._client

    # --- the choke point ---------------------------------------------------------------------
    def _request(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        ok: Iterable[int] = (200,),
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send one logical request; every attempt is guarded by the runtime. ``ok``: accepted statuses.

        ``idempotent`` (default: any method but POST): whether sending twice is harmless. A request
        that is not is retried only when it surely was not processed (connection refused, a 429/503
        throttle answer); after a timeout or a 5xx its outcome is unknown, so the error is permanent.
        """
        safe = method.upper() != "POST" if idempotent is None else idempotent
        client = self._http()
        accepted = frozenset(ok)
        request_headers = dict(headers or {})
        body = content
        if json is not None:
            import json as jsonlib

            # Exactly "application/json": some providers (BambooHR reports) parse anything else as XML.
            body = jsonlib.dumps(json, separators=(",", ":")).encode()
            request_headers.setdefault("Content-Type", "application/json")

        def attempt() -> httpx.Response:
            token = self._bearer(request_headers) if self._uses_bearer_token() else None
            response = self._send(client, operation, method, path, params, body, request_headers, safe)
            if response.status_code == 401 and token is not None and self.runtime.token_provider is not None:
                # The token may have been revoked or rotated elsewhere: one fresh token, one more try.
                response.close()
                self.runtime.token_provider.invalidate(token)
                fresh = self._bearer(request_headers)
                response = self._send(client, operation, method, path, params, body, request_headers, safe)
                if response.status_code == 401:
                    # A fresh token refused too: the authorization itself is gone, which the provider records.
                    self.runtime.token_provider.invalidate(fresh)
            if response.status_code in accepted:
                return response
            error = self._error(operation, response)
            if not safe and not error.permanent and response.status_code not in (429, 503):
                raise _unknown_outcome(error)
            raise error

        return self.runtime.call(operation, attempt)

    def _bearer(self, headers: dict[str, str]) -> str:
        provider = self.runtime.token_provider
        if provider is None:
            raise ConnectorError(
                f"{self.label}: OAuth2 is not authorized yet (no token provider)", category=Category.CONFIG
            )
        token = provider.get_token()
        headers["Authorization"] = f"Bearer {token}"
        return token

    def _send(
        self,
        client: httpx.Client,
        operation: str,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        body: bytes | None,
        headers: Mapping[str, str],
        safe: bool = True,
    ) -> httpx.Response:
        try:
            return client.request(method, path, params=params, content=body, headers=headers)
        except httpx.TransportError as exc:
            if isinstance(exc, httpx.TimeoutException):
                error = ConnectorError(
                    f"{self.label} {operation}: no answer within {self._timeout_seconds():g} s ({type(exc).__name__})",
                    category=Category.TIMEOUT,
                    permanent=False,
                )
            else:
                error = ConnectorError(
                    f"{self.label} {operation}: {type(exc).__name__}: {self._scrub(str(exc))}",
                    category=Category.NETWORK,
                    permanent=False,
                )
            # Nothing reached the server when the connection was never made: safe to try again.
            unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
            raise (error if safe or unsent else _unknown_outcome(error)) from None

    # --- error mapping -----------------------------------------------------------------------
    def _provider_message(self, response: httpx.Response) -> str:
        for name in self.error_message_headers:
            value = response.headers.get(name)
            if value:
                return self._scrub(value.strip())[:_MAX_PROVIDER_TEXT]
        return ""

    def _error(self, operation: str, response: httpx.Response) -> ConnectorError:
        status = response.status_code
        message = self._provider_message(response)
        response.close()
        text = f"{self.label} {operation}: HTTP {status}" + (
            f": {message}" if message else f" {response.reason_phrase}"
        )
        specific = self._classify(operation, response, text)
        if specific is not None:
            return specific
        if status in (429, 503):
            return ConnectorError(
                text,
                category=Category.RATE_LIMITED,
                permanent=False,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                status_code=status,
            )
        if status == 408:
            return ConnectorError(text, category=Category.TIMEOUT, permanent=False, status_code=status)
        if status >= 500:
            return ConnectorError(text, category=Category.UNKNOWN, permanent=False, status_code=status)
        category = _PERMANENT_STATUS.get(status, Category.INVALID if 400 <= status < 500 else Category.UNKNOWN)
        return ConnectorError(text, category=category, permanent=True, status_code=status)

    def _scrub(self, text: str) -> str:
        """Provider text is quoted in errors: make sure no credential we hold comes back in it."""
        values: list[Any] = list(self._credentials.values())
        for value in values:
            if isinstance(value, Mapping):  # a token set (access and refresh tokens)
                values.extend(value.values())
        return mask_secrets(text, values)
