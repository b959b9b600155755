"""At-most-once writes (integrations/tools/idempotency.py) on their own: ``run_write`` with the three
callables a tool gives it (snapshot, perform, reconcile), each counting what it was asked to do, so
every rule of the module docstring is checked without the HR sandbox in between (issue 26). The
tools' end-to-end behaviour is in test_hris_tools.py."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from django.utils import timezone

from connectors.errors import Category, ConnectorError
from integrations.tools.errors import ToolError
from integrations.tools.idempotency import _holder_key, derived_key, fingerprint, run_write
from integrations.tools.models import WriteIntent
from tests.factories import unique

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _ids_of_our_own() -> None:
    """The holder's heartbeat is a Redis key per intent id, and other test processes (each with a test
    database counting ids from 1) share this Redis: start this test's ids far from theirs (SQLite
    numbers the next row after the largest id)."""
    WriteIntent.objects.create(
        id=_unshared_id(),
        integration_ref="hr-0",
        key=unique("k"),
        tool="t",
        fingerprint="f",
        lease_until=timezone.now(),
    )


class HR:
    """A stand-in for the HR system's side of one tool: what was snapshotted, sent and looked up."""

    def __init__(self) -> None:
        self.snapshots = 0
        self.sent: list[dict[str, Any]] = []  # the context each write was sent with
        self.looked_up: list[dict[str, Any]] = []
        self.found: dict[str, Any] | None = None
        self.fail_with: Exception | None = None

    def snapshot(self) -> dict[str, Any]:
        self.snapshots += 1
        return {"ids_before": [1, 2], "snapshot": self.snapshots}

    def perform(self, context: dict[str, Any]) -> dict[str, Any]:
        self.sent.append(context)
        if self.fail_with is not None:
            raise self.fail_with
        return {"id": str(100 + len(self.sent))}

    def reconcile(self, context: dict[str, Any]) -> dict[str, Any] | None:
        self.looked_up.append(context)
        return self.found


def _write(hr: HR, key: str, arguments: dict[str, Any] | None = None, *, tool: str = "create_hris_record") -> dict:
    return run_write(
        integration_id="hr-1",
        tool=tool,
        key=key,
        arguments={"entity_type": "employee", "data": {"firstName": "Ada"}} if arguments is None else arguments,
        snapshot=hr.snapshot,
        perform=hr.perform,
        reconcile=hr.reconcile,
    )


def test_a_first_write_is_recorded_then_sent_once_and_a_retry_replays_it() -> None:
    hr, key = HR(), unique("k")
    first = _write(hr, key)
    assert first == {"id": "101"}
    assert hr.sent == [{"ids_before": [1, 2], "snapshot": 1}]  # sent with the snapshot taken before
    intent = WriteIntent.objects.get(key=key)
    assert (intent.state, intent.result, intent.attempts, intent.tool) == (
        "succeeded",
        {"id": "101"},
        1,
        "create_hris_record",
    )
    again = _write(hr, key)
    assert again == {"id": "101", "replayed": True}
    assert len(hr.sent) == 1 and hr.snapshots == 1 and hr.looked_up == []


def test_the_same_key_is_per_integration() -> None:
    hr, key = HR(), unique("k")
    _write(hr, key)
    other = run_write(
        integration_id="hr-2",
        tool="create_hris_record",
        key=key,
        arguments={"entity_type": "employee", "data": {"firstName": "Ada"}},
        snapshot=hr.snapshot,
        perform=hr.perform,
        reconcile=hr.reconcile,
    )
    assert other == {"id": "102"} and len(hr.sent) == 2


def test_a_key_reused_for_another_call_is_a_conflict_and_nothing_is_sent() -> None:
    hr, key = HR(), unique("k")
    _write(hr, key)
    for arguments, tool in (
        ({"entity_type": "employee", "data": {"firstName": "Eve"}}, "create_hris_record"),
        ({"entity_type": "employee", "data": {"firstName": "Ada"}}, "update_hris_record"),
    ):
        with pytest.raises(ToolError) as info:
            _write(hr, key, arguments, tool=tool)
        assert info.value.category == Category.CONFLICT
        assert info.value.message == "this idempotency key was already used for a different call; use a new key"
    assert len(hr.sent) == 1


def test_the_fingerprint_ignores_the_key_itself_and_the_order_of_arguments() -> None:
    a = fingerprint("create_hris_record", {"entity_type": "employee", "data": {"x": 1, "y": 2}})
    b = fingerprint("create_hris_record", {"data": {"y": 2, "x": 1}, "entity_type": "employee", "idempotency_key": "k"})
    assert a == b
    assert a != fingerprint("update_hris_record", {"entity_type": "employee", "data": {"x": 1, "y": 2}})
    assert a != fingerprint("create_hris_record", {"entity_type": "employee", "data": {"x": 1, "y": 3}})


def test_a_derived_key_is_the_same_for_the_same_caller_and_call_only() -> None:
    call = {"entity_type": "employee", "data": {"firstName": "Ada"}}
    key = derived_key("token:bot#1", "create_hris_record", call)
    assert key.startswith("auto-") and len(key) == len("auto-") + 48
    assert key == derived_key("token:bot#1", "create_hris_record", {**call, "idempotency_key": None})
    assert key != derived_key("token:bot#2", "create_hris_record", call)
    assert key != derived_key("token:bot#1", "create_hris_record", {**call, "data": {"firstName": "Eve"}})
    assert len(key) <= (WriteIntent._meta.get_field("key").max_length or 0)  # fits the column


def test_a_key_older_than_its_ttl_is_forgotten(settings) -> None:
    settings.TOOLS_IDEMPOTENCY_TTL_HOURS = 24
    hr, key = HR(), unique("k")
    _write(hr, key)
    WriteIntent.objects.filter(key=key).update(created_at=timezone.now() - dt.timedelta(hours=23))
    assert _write(hr, key)["replayed"] is True  # within the day: remembered
    WriteIntent.objects.filter(key=key).update(created_at=timezone.now() - dt.timedelta(hours=25))
    assert _write(hr, key) == {"id": "102"}  # a day later: a new write
    assert WriteIntent.objects.filter(key=key).count() == 1


def test_a_pending_write_within_its_lease_is_refused_with_the_lease_left(settings) -> None:
    settings.TOOLS_WRITE_LEASE_SECONDS = 600
    hr, key = HR(), unique("k")
    _write(hr, key)
    WriteIntent.objects.filter(key=key).update(state="pending", result=None)
    with pytest.raises(ToolError) as info:
        _write(hr, key)
    assert info.value.category == Category.CONFLICT
    assert info.value.message == "an earlier call with this idempotency key is still running; retry with the same key"
    assert 590 <= (info.value.retry_after or 0) <= 600
    # The last moments of a lease are still at least a second to wait.
    WriteIntent.objects.filter(key=key).update(lease_until=timezone.now() + dt.timedelta(seconds=0.3))
    with pytest.raises(ToolError) as info:
        _write(hr, key)
    assert info.value.retry_after == 1.0
    assert len(hr.sent) == 1 and hr.looked_up == []


def test_a_pending_write_after_its_lease_is_looked_up_and_adopted() -> None:
    hr, key = HR(), unique("k")
    _write(hr, key)
    WriteIntent.objects.filter(key=key).update(state="pending", result=None, lease_until=timezone.now())
    hr.found = {"id": "101"}
    again = _write(hr, key)
    assert again == {"id": "101", "recovered": True, "replayed": True}
    assert hr.looked_up == [{"ids_before": [1, 2], "snapshot": 1}]  # with what was recorded before the write
    assert len(hr.sent) == 1
    intent = WriteIntent.objects.get(key=key)
    assert (intent.state, intent.result, intent.attempts) == ("succeeded", {"id": "101", "recovered": True}, 2)
    assert _write(hr, key) == {"id": "101", "recovered": True, "replayed": True}


def test_a_pending_write_not_found_after_its_lease_is_sent_again_with_its_first_snapshot(settings) -> None:
    settings.TOOLS_WRITE_LEASE_SECONDS = 600
    hr, key = HR(), unique("k")
    _write(hr, key)
    WriteIntent.objects.filter(key=key).update(state="pending", result=None, lease_until=timezone.now())
    before = timezone.now()
    assert _write(hr, key) == {"id": "102"}
    assert hr.sent == [{"ids_before": [1, 2], "snapshot": 1}] * 2 and hr.snapshots == 1
    intent = WriteIntent.objects.get(key=key)
    assert (intent.state, intent.attempts) == ("succeeded", 2)
    assert intent.lease_until >= before + dt.timedelta(seconds=590)  # the retry held a fresh lease


def test_a_retry_claims_only_its_own_intent() -> None:
    """Two writes whose leases ended at the same instant: the retry of one takes over that one only."""
    hr, mine, other = HR(), unique("k"), unique("k")
    _write(hr, mine)
    _write(hr, other, {"entity_type": "employee", "data": {"firstName": "Eve"}})
    ended = timezone.now()
    WriteIntent.objects.filter(key__in=[mine, other]).update(state="pending", result=None, lease_until=ended)
    assert _write(hr, mine) == {"id": "103"}
    untouched = WriteIntent.objects.get(key=other)
    assert (untouched.state, untouched.attempts, untouched.lease_until) == ("pending", 1, ended)


@pytest.mark.parametrize("category", [Category.CONFLICT, Category.INVALID, Category.UNAVAILABLE, Category.RATE_LIMITED])
def test_a_write_refused_before_it_was_applied_may_be_tried_again(category: Category) -> None:
    """Refused (by the HR system, or our own limiter or circuit before sending): nothing exists, so
    the error goes back as it is, and a retry with the same key takes a fresh snapshot and sends."""
    hr, key = HR(), unique("k")
    hr.fail_with = ConnectorError("refused", category=category)
    with pytest.raises(ConnectorError) as info:
        _write(hr, key)
    assert info.value is hr.fail_with
    intent = WriteIntent.objects.get(key=key)
    assert (intent.state, intent.result) == ("failed", {"error": category.value})
    hr.fail_with = None
    assert _write(hr, key) == {"id": "102"}
    assert hr.sent[-1] == {"ids_before": [1, 2], "snapshot": 2} and hr.looked_up == []
    assert WriteIntent.objects.get(key=key).context == {"ids_before": [1, 2], "snapshot": 2}


@pytest.mark.parametrize("category", [Category.TIMEOUT, Category.NETWORK, Category.UNKNOWN])
def test_a_write_with_an_unknown_outcome_is_held_for_the_grace_then_looked_up(settings, category: Category) -> None:
    settings.TOOLS_INFLIGHT_GRACE_SECONDS = 30
    hr, key = HR(), unique("k")
    hr.fail_with = ConnectorError("no answer", category=category)
    started = timezone.now()
    with pytest.raises(ToolError) as info:
        _write(hr, key)
    assert info.value.category == category and info.value.retry_after == 30
    assert info.value.message == (
        "no answer — the write may or may not have happened; retry with the same idempotency_key "
        "after 30 s (the retry checks first)"
    )
    intent = WriteIntent.objects.get(key=key)
    assert intent.state == "pending" and intent.updated_at >= started
    assert started + dt.timedelta(seconds=29) <= intent.lease_until <= timezone.now() + dt.timedelta(seconds=30)
    with pytest.raises(ToolError) as info:  # within the grace: not sent, not looked up
        _write(hr, key)
    assert info.value.category == Category.CONFLICT and len(hr.sent) == 1 and hr.looked_up == []


def test_a_twin_that_recorded_the_key_first_is_answered_as_a_retry() -> None:
    """Two calls with one key at once: the second INSERT fails on the unique key, and that call is
    answered from the twin's intent instead of writing."""
    hr, key = HR(), unique("k")
    arguments = {"entity_type": "employee", "data": {"firstName": "Ada"}}

    def twin_gets_there_first() -> dict[str, Any]:
        WriteIntent.objects.create(
            integration_ref="hr-1",
            key=key,
            tool="create_hris_record",
            fingerprint=fingerprint("create_hris_record", arguments),
            state="succeeded",
            lease_until=timezone.now(),
            result={"id": "77"},
        )
        return {}

    out = run_write(
        integration_id="hr-1",
        tool="create_hris_record",
        key=key,
        arguments=arguments,
        snapshot=twin_gets_there_first,
        perform=hr.perform,
        reconcile=hr.reconcile,
    )
    assert out == {"id": "77", "replayed": True} and hr.sent == []


# ----------------------------------------------------------------------------- the holder's heartbeat
# While an attempt runs, its process renews a Redis key per intent ("attempt:lifetime_ms", expiring
# after the lease); a retry reads how long it has been silent from the key's TTL. These tests write
# the key as a holder that last beat ``silent`` seconds ago would have left it.


def _holder_beat(intent: WriteIntent, *, attempt: int, silent: float, lifetime: float = 600) -> None:
    from integrations.redis_clients import redis_client

    redis_client().set(_holder_key(intent.pk), f"{attempt}:{int(lifetime * 1000)}", px=int((lifetime - silent) * 1000))


def _pending(hr: HR, key: str) -> WriteIntent:
    _write(hr, key)
    # An id of its own on every database (see _ids_of_our_own).
    WriteIntent.objects.filter(key=key).update(state="pending", result=None, id=_unshared_id())
    return WriteIntent.objects.get(key=key)


def _unshared_id() -> int:
    return random.randrange(10**9, 2 * 10**9)


def test_while_the_write_is_sent_its_process_says_it_is_alive_then_clears_the_key() -> None:
    from integrations.redis_clients import redis_client

    hr, key = HR(), unique("k")
    seen: list[bytes | None] = []
    hr.perform = lambda context: (
        seen.append(  # type: ignore[method-assign]
            redis_client().get(_holder_key(WriteIntent.objects.get(key=key).pk))
        )
        or {"id": "1"}
    )
    _write(hr, key)
    intent = WriteIntent.objects.get(key=key)
    assert seen and seen[0] is not None and seen[0].decode().startswith(f"{intent.attempts}:")
    assert redis_client().get(_holder_key(intent.pk)) is None


def test_a_retry_waits_for_a_holder_that_still_beats(settings) -> None:
    settings.TOOLS_WRITE_LEASE_SECONDS = 600
    settings.TOOLS_INFLIGHT_GRACE_SECONDS = 15
    hr, key = HR(), unique("k")
    intent = _pending(hr, key)
    _holder_beat(intent, attempt=intent.attempts, silent=0.5)
    with pytest.raises(ToolError) as info:
        _write(hr, key)
    # Were it to stop now: 15 s of grace after its last beat, 0.5 s ago.
    assert info.value.category == Category.CONFLICT and "still running" in info.value.message
    assert 14.3 <= (info.value.retry_after or 0) <= 14.5
    assert len(hr.sent) == 1 and hr.looked_up == []


def test_a_silent_holder_is_known_gone_and_its_retry_waits_only_the_grace(settings) -> None:
    settings.TOOLS_WRITE_LEASE_SECONDS = 600
    settings.TOOLS_INFLIGHT_GRACE_SECONDS = 10
    hr, key = HR(), unique("k")
    intent = _pending(hr, key)
    _holder_beat(intent, attempt=intent.attempts, silent=4)
    with pytest.raises(ToolError) as info:
        _write(hr, key)
    assert info.value.category == Category.CONFLICT
    assert info.value.message.startswith("the process running an earlier call with this idempotency key stopped 4 s")
    assert 5.8 <= (info.value.retry_after or 0) <= 6.0  # the grace counts from its last beat
    # Once the grace is over too, the retry looks the record up (the lease has 10 minutes left).
    settings.TOOLS_INFLIGHT_GRACE_SECONDS = 2
    hr.found = {"id": "101"}
    assert _write(hr, key) == {"id": "101", "recovered": True, "replayed": True}
    assert len(hr.sent) == 1


def test_an_earlier_attempts_heartbeat_says_nothing_of_the_current_one(settings) -> None:
    settings.TOOLS_WRITE_LEASE_SECONDS = 600
    settings.TOOLS_INFLIGHT_GRACE_SECONDS = 2
    hr, key = HR(), unique("k")
    intent = _pending(hr, key)
    _holder_beat(intent, attempt=intent.attempts + 1, silent=30)
    with pytest.raises(ToolError) as info:
        _write(hr, key)
    assert "still running" in info.value.message and (info.value.retry_after or 0) > 590  # the lease decides
