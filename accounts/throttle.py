"""Throttling of failed token authentication, one counter per client address, shared by every process.

Every token scheme — API tokens (``Authorization: Token``), agent tokens (``Bearer hubat_...``) on the REST
API and on the MCP endpoint — counts its failures here. After ``TOKEN_FAILURE_LIMIT`` failures from one
address within ``TOKEN_FAILURE_WINDOW_SECONDS``, every token from that address is refused with 429 and
``Retry-After`` until the window ends, before the token is even looked up: a guess that happens to be right
is refused like the others, so guessing stops paying. Logins by password are throttled by django-axes.

The counter is a fixed window in Redis (``INCR`` + ``EXPIRE``). If Redis is unreachable the throttle lets
requests through (the token itself is still checked) rather than locking every client out.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from types import SimpleNamespace
from typing import Any

import redis
from asgiref.sync import sync_to_async
from axes.helpers import get_client_ip_address
from django.conf import settings
from rest_framework import exceptions
from rest_framework.request import Request

from integrations.redis_clients import redis_client

log = logging.getLogger(__name__)

_KEY = "hub:token-auth-failures:{}"
TOKEN_SCHEMES = ("token", "bearer")
MESSAGE = "Too many failed token authentications from this address; try again later."


def client_address(meta: Mapping[str, Any]) -> str:
    """The client's address as django-axes sees it (REMOTE_ADDR, or X-Forwarded-For behind
    TRUSTED_PROXY_COUNT proxies), so logins and tokens are counted against the same address."""
    return get_client_ip_address(SimpleNamespace(META=meta)) or "unknown"  # type: ignore[arg-type]


def retry_after(address: str) -> int | None:
    """Seconds until ``address`` may present tokens again, or None if it may now."""
    key = _KEY.format(address)
    try:
        pipe = redis_client().pipeline()
        pipe.get(key)
        pipe.ttl(key)
        count, ttl = pipe.execute()
    except redis.RedisError as exc:
        log.warning("token failure throttle skipped, Redis unavailable: %s", type(exc).__name__)
        return None
    if count is None or int(count) < settings.TOKEN_FAILURE_LIMIT:
        return None
    return max(int(ttl), 1)


def record_failure(address: str) -> None:
    key = _KEY.format(address)
    try:
        pipe = redis_client().pipeline()
        pipe.set(key, 0, ex=settings.TOKEN_FAILURE_WINDOW_SECONDS, nx=True)  # the window starts at the first failure
        pipe.incr(key)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("token failure not counted, Redis unavailable: %s", type(exc).__name__)
        return
    log.info("failed token authentication from %s", address)


def reset(address: str) -> None:
    redis_client().delete(_KEY.format(address))


def _scheme(authorization: str) -> str:
    return authorization.split(" ", 1)[0].strip().lower()


class FailureThrottledAuthentication:
    """A mixin for DRF authentication classes whose header keyword is ``keyword``: the class's own
    ``authenticate`` runs only for an address that is not throttled, and its refusals are counted."""

    keyword: str

    def authenticate(self, request: Request) -> Any:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if _scheme(header) != self.keyword.lower():
            return super().authenticate(request)  # type: ignore[misc]
        address = client_address(request.META)
        wait = retry_after(address)
        if wait is not None:
            raise exceptions.Throttled(wait=wait, detail=MESSAGE)
        try:
            return super().authenticate(request)  # type: ignore[misc]
        except exceptions.AuthenticationFailed:
            record_failure(address)
            raise


ASGIApp = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Any]


class FailureThrottleMiddleware:
    """The same throttle around an ASGI app that answers a bad token with 401 (the MCP endpoint)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if scope["type"] != "http" or _scheme(headers.get("authorization", "")) not in TOKEN_SCHEMES:
            await self.app(scope, receive, send)
            return
        meta = {"REMOTE_ADDR": (scope.get("client") or ("", 0))[0]}
        if "x-forwarded-for" in headers:
            meta["HTTP_X_FORWARDED_FOR"] = headers["x-forwarded-for"]
        address = client_address(meta)
        wait = await sync_to_async(retry_after, thread_sensitive=False)(address)
        if wait is not None:
            body = json.dumps({"error": "too_many_failed_authentications", "error_description": MESSAGE}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 429,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"retry-after", str(wait).encode()),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        status: list[int] = []

        async def send_and_watch(message: Any) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await self.app(scope, receive, send_and_watch)
        if status and status[0] == 401:
            await sync_to_async(record_failure, thread_sensitive=False)(address)
