"""Worker and beat liveness: each process writes a heartbeat key in Redis that expires unless renewed,
so /healthz and /metrics count live workers without a broadcast to them.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time

import redis

from integrations.redis_clients import redis_client

_ALIVE_TTL = 15  # seconds; heartbeats are written every third of that


def start_heartbeat(role: str, name: str | None = None) -> None:
    """Write hub:alive:<role>:<name>:<pid> every few seconds from a daemon thread."""
    key = f"hub:alive:{role}:{name or socket.gethostname()}:{os.getpid()}"

    def beat() -> None:
        while True:
            with contextlib.suppress(redis.RedisError):
                redis_client().set(key, str(time.time()), ex=_ALIVE_TTL)
            time.sleep(_ALIVE_TTL / 3)

    threading.Thread(target=beat, name=f"hub-heartbeat-{role}", daemon=True).start()


def alive(role: str) -> int:
    """How many processes of ``role`` ("worker", "beat") have a fresh heartbeat. Raises redis.RedisError."""
    return sum(1 for _ in redis_client().scan_iter(f"hub:alive:{role}:*", count=100))
