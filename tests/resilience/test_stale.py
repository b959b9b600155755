"""Staleness without waiting for beat: a watched integration whose last check is older than three intervals
is flagged in /api/health and on the dashboard list; a recent check, a disconnected or disabled one is not.
(tests/resilience/test_faults.py stops the real beat and watches the flag appear and go.)"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone


@pytest.fixture
def rows(db: None, django_user_model: Any) -> Any:
    from integrations.models import Integration

    staff = django_user_model.objects.create_user("stale-staff", is_staff=True)
    now = timezone.now()
    for integration_id, status, enabled, age in (
        ("old_check", "connected", True, 16),
        ("fresh", "degraded", True, 4),
        ("off", "disconnected", True, 600),
        ("paused", "error", False, 600),
    ):
        Integration.objects.create(
            id=integration_id,
            name=integration_id,
            kind="sqlite",
            config={"path": "/tmp/x"},
            status=status,
            enabled=enabled,
            health_check_interval=5,
            last_checked_at=now - timedelta(seconds=age),
        )
    return staff


def test_stale_checks_are_flagged_in_the_api_and_the_dashboard(rows, client):
    client.force_login(rows)
    body = client.get("/api/health").json()
    assert {row["id"]: row["stale"] for row in body["integrations"]} == {
        "old_check": True,
        "fresh": False,
        "off": False,
        "paused": False,
    }
    assert body["stale"] == 1
    page = client.get("/integrations").content.decode()
    stale_row = page[page.index('data-integration="old_check"') :]
    assert 'data-role="stale"' in stale_row[: stale_row.index("</tr>")]
    assert page.count('data-role="stale"') == 1
