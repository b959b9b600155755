"""At-most-once HRIS writes: an intent recorded before the write, looked up on every retry.

The sequence for a key never seen before:
  1. ``snapshot()`` — what the reconciliation will need (e.g. the time just before the write);
  2. a WriteIntent row (pending, with a lease) is INSERTed and committed — the unique (integration,
     key) constraint makes a concurrent twin fail here, before anything is sent;
  3. the write is sent; its outcome is stored (succeeded with the new id, or failed when the HR
     system refused it, so nothing was written).
A retry with the same key and arguments then gets:
  - succeeded → the stored outcome, marked ``replayed``; nothing is sent;
  - pending, lease running → "conflict, retry after N s" (the first attempt may still be writing);
  - pending, lease over (its worker was killed, or lost the answer) → the retry claims the intent
    with a conditional UPDATE (one winner), asks the HR system whether the record exists
    (``reconcile``) and adopts it (``recovered``); only when it is not there is the write sent again;
  - failed → the write is tried again (the HR system said no, so nothing exists).
The lease outlives the task's hard time limit (the worker process is killed by then) plus a margin
for a request still in flight, so a retry never races a live first attempt.

The lease is the fallback. While an attempt holds an intent, its process says so every second (a
Redis key per intent, holding the attempt's number). A retry that finds the current attempt silent
for ``HOLDER_STALE`` seconds knows its process is gone (SIGKILL, a lost machine) and waits only the
in-flight grace (``TOOLS_INFLIGHT_GRACE_SECONDS``), counted from the last sign of life, not the
whole lease. No key (Redis down or flushed, an attempt not yet started): the lease decides.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import redis
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from connectors.errors import PERMANENT_CATEGORIES, Category, ConnectorError, wait_seconds
from integrations.redis_clients import redis_client
from integrations.tools import conf
from integrations.tools.errors import ToolError
from integrations.tools.models import IntentState, WriteIntent

# Failures that prove the request was not applied: the HR system (or our own limiter/circuit,
# before sending) refused it. Anything else (timeout, network, unknown) leaves the write uncertain.
_NOT_WRITTEN = PERMANENT_CATEGORIES | {Category.UNAVAILABLE, Category.RATE_LIMITED}


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def fingerprint(tool: str, arguments: Mapping[str, Any]) -> str:
    payload = {k: v for k, v in arguments.items() if k != "idempotency_key"}
    return hashlib.sha256(canonical([tool, payload]).encode()).hexdigest()


def derived_key(actor: str, tool: str, arguments: Mapping[str, Any]) -> str:
    """For a create sent without a key: the same caller sending the same create is a retry."""
    return "auto-" + hashlib.sha256(canonical([actor, fingerprint(tool, arguments)]).encode()).hexdigest()[:48]


# The holder's heartbeat: written every HOLDER_BEAT s; HOLDER_STALE s without one and the holder is gone.
HOLDER_BEAT = 1.0
HOLDER_STALE = 3.0


def _holder_key(intent_pk: int) -> str:
    return f"hub:write-holder:{intent_pk}"


@contextlib.contextmanager
def _holding(intent_pk: int, attempt: int) -> Iterator[None]:
    """While the block runs, this process says every HOLDER_BEAT s that attempt ``attempt`` is alive."""
    key = _holder_key(intent_pk)
    lifetime_ms = int(conf.write_lease_seconds() * 1000)
    stop = threading.Event()

    def beat_once() -> None:
        # The value carries the key's lifetime, so a reader counts the silence from the TTL left
        # (Redis's clock), whatever lease its own settings say.
        with contextlib.suppress(redis.RedisError):
            redis_client().set(key, f"{attempt}:{lifetime_ms}", px=lifetime_ms)

    def beat() -> None:
        while not stop.wait(HOLDER_BEAT):
            beat_once()

    beat_once()
    thread = threading.Thread(target=beat, name=f"hub-write-holder-{intent_pk}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(HOLDER_BEAT * 2)
        with contextlib.suppress(redis.RedisError):
            redis_client().delete(key)  # ended: the state (or the grace lease) speaks for it now


def holder_silence(intent: WriteIntent) -> float | None:
    """Seconds since the attempt holding ``intent`` last said it was alive (HOLDER_STALE or more: its
    process is gone). None: nothing known, the lease decides."""
    try:
        pipe = redis_client().pipeline(transaction=False)
        pipe.get(_holder_key(intent.pk))
        pipe.pttl(_holder_key(intent.pk))
        value, left_ms = pipe.execute()
    except redis.RedisError:
        return None
    if value is None or left_ms is None or int(left_ms) < 0:
        return None
    attempt, _, lifetime_ms = value.decode().partition(":")
    if not attempt.isdigit() or int(attempt) != intent.attempts or not lifetime_ms.isdigit():
        return None  # an earlier attempt's key: the current one has not beaten yet
    return max(0.0, (int(lifetime_ms) - int(left_ms)) / 1000)


def _lease() -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=conf.write_lease_seconds())


def _finish(intent: WriteIntent, state: str, result: Any) -> None:
    WriteIntent.objects.filter(pk=intent.pk).update(state=state, result=result, updated_at=timezone.now())


def run_write(
    *,
    integration_id: str,
    tool: str,
    key: str,
    arguments: Mapping[str, Any],
    snapshot: Callable[[], dict[str, Any]],
    perform: Callable[[dict[str, Any]], dict[str, Any]],
    reconcile: Callable[[dict[str, Any]], dict[str, Any] | None],
) -> dict[str, Any]:
    """Run ``perform`` at most once per (integration, key); see the module docstring."""
    print_ = fingerprint(tool, arguments)
    intent = WriteIntent.objects.filter(integration_ref=integration_id, key=key).first()
    if intent is not None and intent.created_at < timezone.now() - dt.timedelta(seconds=conf.idempotency_ttl_seconds()):
        WriteIntent.objects.filter(pk=intent.pk).delete()  # keys are remembered for a day, not forever
        intent = None

    if intent is None:
        context = snapshot()
        try:
            with transaction.atomic():
                intent = WriteIntent.objects.create(
                    integration_ref=integration_id,
                    key=key,
                    tool=tool,
                    fingerprint=print_,
                    state=IntentState.PENDING,
                    lease_until=_lease(),
                    context=context,
                )
        except IntegrityError:
            # A twin call with the same key got there first: treat this one as its retry.
            return run_write(
                integration_id=integration_id,
                tool=tool,
                key=key,
                arguments=arguments,
                snapshot=snapshot,
                perform=perform,
                reconcile=reconcile,
            )
        return _perform(intent, perform)

    if intent.fingerprint != print_ or intent.tool != tool:
        raise ToolError("conflict", "this idempotency key was already used for a different call; use a new key")
    if intent.state == IntentState.SUCCEEDED:
        return dict(intent.result or {}) | {"replayed": True}

    now = timezone.now()
    if intent.state == IntentState.PENDING and intent.lease_until > now:
        wait = (intent.lease_until - now).total_seconds()
        silent = holder_silence(intent)
        if silent is not None:
            # Were the holder to stop now, a retry could go after the staleness and the in-flight grace (a
            # request it sent may still be processed by the HR system meanwhile), counted from its last beat.
            wait = min(wait, max(HOLDER_STALE, conf.inflight_grace_seconds()) - silent)
        if silent is not None and silent >= HOLDER_STALE:
            if wait > 0:
                raise ToolError(
                    "conflict",
                    f"the process running an earlier call with this idempotency key stopped {silent:.0f} s "
                    f"ago; retry with the same key after {wait_seconds(wait)} s (the retry checks first)",
                    retry_after=wait,
                )
        else:
            raise ToolError(
                "conflict",
                "an earlier call with this idempotency key is still running; retry with the same key",
                retry_after=max(1.0, wait),
            )
    # Claim it: only one retry wins the conditional update; the others see a running lease.
    claimed = WriteIntent.objects.filter(pk=intent.pk, state=intent.state, lease_until=intent.lease_until).update(
        state=IntentState.PENDING,
        lease_until=_lease(),
        attempts=F("attempts") + 1,
        updated_at=now,
    )
    if not claimed:
        raise ToolError(
            "conflict", "another retry with this idempotency key is running; retry shortly", retry_after=1.0
        )
    intent.attempts += 1  # this attempt's number, as the claim stored it
    if intent.state == IntentState.PENDING:
        # The earlier attempt may have written before it died: look before writing again.
        found = reconcile(dict(intent.context or {}))
        if found is not None:
            result = found | {"recovered": True}
            _finish(intent, IntentState.SUCCEEDED, result)
            return result | {"replayed": True}
    else:  # failed before: nothing exists; start from a fresh snapshot
        context = snapshot()
        WriteIntent.objects.filter(pk=intent.pk).update(context=context)
        intent.context = context
    return _perform(intent, perform)


def _perform(intent: WriteIntent, perform: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    try:
        with _holding(intent.pk, intent.attempts):
            result = perform(dict(intent.context or {}))
    except (ToolError, ConnectorError) as exc:
        category = exc.category
        if category in _NOT_WRITTEN:
            _finish(intent, IntentState.FAILED, {"error": category})
            raise
        # Uncertain (timeout, connection lost): the HR system may still be processing the request, so
        # the retry waits a short grace, then looks the record up before writing again.
        grace = conf.inflight_grace_seconds()
        WriteIntent.objects.filter(pk=intent.pk).update(
            lease_until=timezone.now() + dt.timedelta(seconds=grace), updated_at=timezone.now()
        )
        raise ToolError(
            category,
            f"{exc.message} — the write may or may not have happened; retry with the same idempotency_key "
            f"after {wait_seconds(grace)} s (the retry checks first)",
            retry_after=grace,
        ) from None
    _finish(intent, IntentState.SUCCEEDED, result)
    return result
