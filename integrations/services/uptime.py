"""Uptime and SLA per integration, from its status history (the status_change events ``set_status`` writes).

An integration is *up* while connected or degraded (it answers calls), *down* while in error or waiting
for an operator to reconnect it, and *unmonitored* while disconnected on purpose or connecting: that
time counts neither way, so an integration switched off for a week keeps the uptime it had. The status
over a window is read from the changes inside it alone: the first change says what the status was
before it (``detail.from``), and with no change the current status held throughout. Status events are
never pruned (only health checks are), so 30 days of history are there.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Max
from django.utils import timezone

from integrations.models import EventType, Integration, IntegrationEvent, Status

UP_STATUSES = frozenset({Status.CONNECTED, Status.DEGRADED})
DOWN_STATUSES = frozenset({Status.ERROR, Status.RECONNECT_REQUIRED})

# The uptime windows (API, /metrics) and the timeline's ranges (details page, API).
UPTIME_WINDOWS = {"24h": dt.timedelta(hours=24), "7d": dt.timedelta(days=7), "30d": dt.timedelta(days=30)}
TIMELINE_RANGES = {"1h": dt.timedelta(hours=1), "24h": dt.timedelta(hours=24), "7d": dt.timedelta(days=7)}


def state_of(status: str) -> str:
    if status in UP_STATUSES:
        return "up"
    if status in DOWN_STATUSES:
        return "down"
    return "unmonitored"


@dataclass(frozen=True)
class Change:
    at: dt.datetime
    before: str
    after: str


@dataclass(frozen=True)
class Segment:
    status: str
    start: dt.datetime
    end: dt.datetime

    @property
    def state(self) -> str:
        return state_of(self.status)

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "state": self.state,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "seconds": round(self.seconds, 3),
        }


def _change(created_at: dt.datetime, detail: Any) -> Change:
    return Change(created_at, str(detail.get("from", "")), str(detail.get("to", "")))


def _changes_since(integration_ids: Sequence[str], since: dt.datetime) -> dict[str, list[Change]]:
    """Each integration's status changes at or after ``since``, oldest first, in one query."""
    out: dict[str, list[Change]] = defaultdict(list)
    rows = (
        IntegrationEvent.objects.filter(
            integration_ref__in=list(integration_ids), type=EventType.STATUS_CHANGE, created_at__gte=since
        )
        .order_by("integration_ref", "created_at", "id")
        .values("integration_ref", "created_at", "detail")
    )
    for row in rows:
        out[row["integration_ref"]].append(_change(row["created_at"], row["detail"]))
    return out


def segments(
    current: str, created_at: dt.datetime, changes: Iterable[Change], since: dt.datetime, until: dt.datetime
) -> list[Segment]:
    """The statuses held between ``since`` and ``until`` (nothing before ``created_at``), oldest first."""
    start = max(since, created_at)
    inside = [c for c in changes if start <= c.at <= until]
    if start >= until:
        return []
    out: list[Segment] = []
    status = inside[0].before if inside else current
    for change in inside:
        if change.at > start:
            out.append(Segment(status, start, change.at))
        start, status = change.at, change.after
    if until > start:
        out.append(Segment(status, start, until))
    return out


def uptime_ratio(spans: Iterable[Segment]) -> float | None:
    """Up time over monitored time (None: not monitored at all in the window)."""
    up = down = 0.0
    for span in spans:
        if span.state == "up":
            up += span.seconds
        elif span.state == "down":
            down += span.seconds
    return round(up / (up + down), 6) if up + down > 0 else None


def _down_since(integration: Integration, recent: Sequence[Change]) -> dt.datetime | None:
    """When the current outage began: the last change from a status that was not down into one that is."""
    if state_of(integration.status) != "down":
        return None
    for change in reversed(recent):
        if state_of(change.before) != "down":
            return change.at
    older = IntegrationEvent.objects.filter(integration_ref=integration.id, type=EventType.STATUS_CHANGE).order_by(
        "-created_at", "-id"
    )
    for row in older.iterator(chunk_size=200):
        change = _change(row.created_at, row.detail)
        if state_of(change.before) != "down":
            return change.at
    return integration.created_at


def last_successes(integration_ids: Sequence[str]) -> dict[str, dt.datetime]:
    """The time of each integration's latest successful check, test or connect, in one query."""
    rows = (
        IntegrationEvent.objects.filter(integration_ref__in=list(integration_ids), ok=True)
        .values("integration_ref")
        .annotate(last=Max("created_at"))
        .order_by()
    )
    return {row["integration_ref"]: row["last"] for row in rows}


def availability_many(integrations: Sequence[Integration], now: dt.datetime | None = None) -> dict[str, dict[str, Any]]:
    """Uptime over each window, "down since" and "last success" of several integrations (a few queries)."""
    now = now or timezone.now()
    ids = [integration.id for integration in integrations]
    longest = max(UPTIME_WINDOWS.values())
    changes = _changes_since(ids, now - longest)
    successes = last_successes(ids)
    out: dict[str, dict[str, Any]] = {}
    for integration in integrations:
        mine = changes.get(integration.id, [])
        down_since = _down_since(integration, mine)
        last_success = successes.get(integration.id)
        out[integration.id] = {
            "state": state_of(integration.status),
            "uptime": {
                name: uptime_ratio(segments(integration.status, integration.created_at, mine, now - span, now))
                for name, span in UPTIME_WINDOWS.items()
            },
            "down_since": down_since.isoformat() if down_since else None,
            "last_success": last_success.isoformat() if last_success else None,
        }
    return out


def availability(integration: Integration, now: dt.datetime | None = None) -> dict[str, Any]:
    return availability_many([integration], now)[integration.id]


def timeline(integration: Integration, range_name: str, now: dt.datetime | None = None) -> dict[str, Any]:
    """The state timeline over one of ``TIMELINE_RANGES``, with the uptime over it. KeyError: unknown range."""
    now = now or timezone.now()
    since = now - TIMELINE_RANGES[range_name]
    changes = _changes_since([integration.id], since).get(integration.id, [])
    spans = segments(integration.status, integration.created_at, changes, since, now)
    return {
        "range": range_name,
        "from": since.isoformat(),
        "to": now.isoformat(),
        "uptime": uptime_ratio(spans),
        "segments": [span.as_dict() for span in spans],
    }
