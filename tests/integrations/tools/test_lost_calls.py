"""Calls whose process died are closed within a minute, and calls journaled while the database was down
reach the audit trail through the same beat task (issue 24)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.conf import settings
from django.utils import timezone

from integrations.tools import outbox
from integrations.tools.models import Outcome, ToolCall
from integrations.tools.tasks import lost_after_seconds, release_lost_calls

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _own_outbox(settings, tmp_path):
    settings.TOOLS_OUTBOX_DIR = str(tmp_path / "outbox")


def test_the_beat_runs_it_at_least_every_minute():
    entry = next(e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == release_lost_calls.name)
    assert float(entry["schedule"]) <= 60


def test_a_call_running_past_its_time_limits_is_closed_and_a_live_one_is_not():
    now = timezone.now()
    lost = ToolCall.objects.create(
        via="rest", actor="token:x", tool="query_hris", created_at=now - dt.timedelta(seconds=lost_after_seconds() + 1)
    )
    live = ToolCall.objects.create(
        via="rest",
        actor="token:x",
        tool="query_hris",
        created_at=now - dt.timedelta(seconds=settings.TOOLS_TIMEOUT_SECONDS),
    )
    assert release_lost_calls() == {"lost_calls": 1, "replayed": 0}
    lost.refresh_from_db()
    live.refresh_from_db()
    assert lost.outcome == Outcome.TIMEOUT and lost.finished_at is not None and "stopped" in lost.error_message
    assert live.outcome == Outcome.RUNNING
    # Bounded: a call is closed at most its bound plus one beat interval after it was recorded.
    assert lost_after_seconds() + 30 <= 2 * settings.TOOLS_TIMEOUT_SECONDS + 60


def test_journaled_calls_are_written_once_and_the_journal_removed():
    created = timezone.now() - dt.timedelta(seconds=5)
    fields = {
        "via": "rest",
        "actor": "user:someone",
        "tool": "describe_access",
        "integration_ref": "",
        "arguments": {},
        "idempotency_key": "",
        "created_at": created.isoformat(),
        "finished_at": timezone.now().isoformat(),
        "duration_ms": 3.0,
        "outcome": "unavailable",
        "error_category": "unavailable",
        "error_message": "the hub's database is unreachable",
    }
    outbox.record(dict(fields))
    # A journal a replayer had moved aside and then died with, holding the same entry: replayed, not doubled.
    aside = outbox.folder() / "tool-calls-elsewhere-1.jsonl.1.replaying"
    aside.write_text(json.dumps({"kind": "record", "fields": fields}) + "\n")
    assert release_lost_calls()["replayed"] == 2
    rows = ToolCall.objects.filter(actor="user:someone")
    assert rows.count() == 1
    assert rows[0].outcome == "unavailable" and rows[0].created_at == created
    assert outbox.pending() == []
    assert release_lost_calls()["replayed"] == 0
