"""A short-lived cache of the employee ids inside a record scope, shared by every process (Redis).

A scoped time-off listing keeps only the requests of the scope's employees, and learning who they are
is a second BambooHR request (everyone's scope fields) on every call: under the connector's rate
limit that doubled the call. The ids are kept per integration, config version and scope for
``settings.AGENT_SCOPE_CACHE_SECONDS`` (60 s; 0 turns the cache off).

Only listings read it. A write or a time-off decision reads its target's current record
(``PolicedBambooHR.check_write_scope``), so a stale entry never lets a write through. A change made
through the hub (an employee created or updated) drops the integration's entries at once; a change
made in BambooHR itself is seen when the entry expires. An entry computed while such a write ran is
never served: ``forget`` moves the integration's epoch, and an entry is good only for the epoch it
was computed under. Without Redis the ids are read live (the cache never fails a read).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

import redis
from django.conf import settings

from connectors.datapolicy.hris_scope import RecordScope
from integrations.redis_clients import redis_client

log = logging.getLogger(__name__)


def _keys(integration_id: str) -> tuple[str, str]:
    base = f"hub:agents:scope-ids:{integration_id}"
    return base, f"{base}:epoch"


def scope_name(scope: RecordScope, version: str) -> str:
    """A stable name for a scope (frozensets print in a per-process order, so sort them) under one
    version of the integration (its creation and config version: an integration recreated with the
    same id, or pointed elsewhere, starts afresh)."""
    return json.dumps(
        [
            version,
            sorted(scope.departments),
            sorted(scope.divisions),
            sorted(scope.locations),
            scope.active_only,
            sorted(scope.reports_of),
            scope.indirect,
        ],
        separators=(",", ":"),
    )


def in_scope_ids(integration_id: str, name: str, compute: Callable[[], set[str]]) -> set[str]:
    """The ids ``compute`` gives, from the cache when a live entry for ``name`` is there."""
    ttl = settings.AGENT_SCOPE_CACHE_SECONDS
    if ttl <= 0:
        return compute()
    entries, epoch_key = _keys(integration_id)
    client = redis_client()
    try:
        pipe = client.pipeline(transaction=False)
        pipe.hget(entries, name)
        pipe.get(epoch_key)
        cached, epoch = pipe.execute()
    except (redis.RedisError, OSError) as exc:
        log.warning("scope cache unavailable, reading the scope live: %s", exc)
        return compute()
    epoch = int(epoch or 0)
    if cached is not None:
        entry = json.loads(cached)
        if entry["epoch"] == epoch and 0 <= time.time() - entry["at"] < ttl:
            return set(entry["ids"])
    started = time.time()  # the entry's age counts from before the read, not after it
    ids = compute()
    value = json.dumps({"epoch": epoch, "at": started, "ids": sorted(ids)})
    try:
        pipe = client.pipeline(transaction=False)
        pipe.hset(entries, name, value)
        pipe.expire(entries, ttl)
        pipe.execute()
    except (redis.RedisError, OSError) as exc:
        log.warning("scope cache unavailable, not kept: %s", exc)
    return ids


def forget(integration_id: str) -> None:
    """Drop an integration's entries (its employees changed through the hub)."""
    entries, epoch_key = _keys(integration_id)
    try:
        pipe = redis_client().pipeline(transaction=False)
        pipe.incr(epoch_key)
        pipe.delete(entries)
        pipe.execute()
    except (redis.RedisError, OSError) as exc:  # the write is done: say so rather than fail it
        log.warning("scope cache of %s not dropped (its entries expire on their own): %s", integration_id, exc)
