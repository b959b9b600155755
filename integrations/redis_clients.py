"""The one way the Django side gets a Redis client (REDIS_URL).

A client (and its connection pool) is cached per process, per URL and per use; a forked child (Celery
prefork) drops the cache and builds its own, so no socket is shared across processes.
"""

from __future__ import annotations

import os
import threading
from typing import Any
from urllib.parse import urlparse

import redis
from django.conf import settings

_lock = threading.Lock()
_clients: dict[tuple[str, bool], redis.Redis] = {}


def redis_client(*, subscriber: bool = False) -> redis.Redis:
    """The process's client for ``settings.REDIS_URL``.

    ``subscriber=True`` gives a client for a long-lived pub/sub subscription: no read timeout (the
    subscription is idle most of the time; redis-py would cut it every few seconds) and TCP keepalive.
    Every other use gets bounded waits, so a Redis outage surfaces as an error, not a hung process.
    """
    key = (settings.REDIS_URL, subscriber)
    client = _clients.get(key)
    if client is not None:
        return client
    with _lock:
        client = _clients.get(key)
        if client is None:
            options: dict[str, Any] = (
                {"socket_timeout": None, "socket_keepalive": True} if subscriber else {"socket_timeout": 5}
            )
            client = _clients[key] = redis.Redis.from_url(
                settings.REDIS_URL, socket_connect_timeout=2, health_check_interval=30, **options
            )
        return client


def reset() -> None:
    """Forget every cached client (after a fork; a test that flushed or moved REDIS_URL)."""
    global _lock
    _lock = threading.Lock()  # a lock another thread of the parent held at fork time stays held in the child
    _clients.clear()


def db_tag() -> str:
    """The Redis database number of REDIS_URL: pub/sub channels are not scoped by it, so names include it."""
    return urlparse(settings.REDIS_URL).path.strip("/") or "0"


os.register_at_fork(after_in_child=reset)
