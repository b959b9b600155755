"""Connector invalidation across processes (Redis pub/sub): a config change, a disconnect or a delete
in one process makes every other process close its live connector for that integration.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable

import redis

from integrations.redis_clients import db_tag, redis_client

log = logging.getLogger(__name__)


def _channel() -> str:
    return f"hub:{db_tag()}:connectors:invalidate"


def publish_invalidation(integration_id: str, keep_version: int | None) -> None:
    try:
        redis_client().publish(_channel(), json.dumps({"id": integration_id, "keep": keep_version}))
    except redis.RedisError:
        log.warning("could not ask other processes to close %s's connector (Redis unreachable)", integration_id)


_listener_pid = 0
_listener_lock = threading.Lock()


def ensure_invalidation_listener(discard: Callable[[str, int | None], bool]) -> None:
    """Start (once per process) a daemon thread that closes connectors other processes invalidated."""
    global _listener_pid
    if _listener_pid == os.getpid():
        return
    with _listener_lock:
        if _listener_pid == os.getpid():
            return
        _listener_pid = os.getpid()
        threading.Thread(target=_listen, args=(discard,), name="hub-invalidation", daemon=True).start()


def _listen(discard: Callable[[str, int | None], bool]) -> None:
    while True:
        try:
            pubsub = redis_client(subscriber=True).pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(_channel())
                for message in pubsub.listen():
                    try:
                        data = json.loads(message["data"])
                        if discard(str(data["id"]), data.get("keep")):
                            log.info("closed the connector of %s (changed elsewhere)", data["id"])
                    except (ValueError, KeyError, TypeError):
                        continue
            finally:
                pubsub.close()  # its connection goes back to the pool (or is dropped if broken)
        # Redis restarting. A connection closed under the reader can also surface as OSError or
        # ValueError ("I/O operation on closed file"): the listener must outlive all of them.
        except (redis.RedisError, OSError, ValueError):
            time.sleep(2)  # try again; connectors are also checked on every use
