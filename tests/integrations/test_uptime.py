"""Uptime and SLA from the status history: an outage of 90 minutes written with chosen timestamps shows
the right uptime over 24 h / 7 d / 30 d and the right timeline, in the API, on /metrics and on the page."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from integrations.models import EventType, Integration, IntegrationEvent, Status
from tests import factories

OUTAGE = dt.timedelta(minutes=90)
OFF = dt.timedelta(minutes=121)  # disconnected 2 h, then 1 min connecting: counts neither up nor down


def change(integration: Integration, at: dt.datetime, before: str, after: str) -> None:
    IntegrationEvent.objects.create(
        integration=integration,
        integration_ref=integration.id,
        type=EventType.STATUS_CHANGE,
        created_at=at,
        ok=after == Status.CONNECTED,
        message=f"{before} → {after}",
        detail={"from": before, "to": after},
    )


@pytest.fixture
def history(db: None) -> dict[str, Any]:
    now = timezone.now()
    flaky = factories.bamboohr("flaky")
    Integration.objects.filter(pk="flaky").update(created_at=now - dt.timedelta(days=40), status=Status.CONNECTED)
    change(flaky, now - dt.timedelta(days=35), Status.CONNECTING, Status.CONNECTED)  # before every window
    change(flaky, now - dt.timedelta(days=5), Status.CONNECTED, Status.DISCONNECTED)
    change(flaky, now - dt.timedelta(days=5) + dt.timedelta(hours=2), Status.DISCONNECTED, Status.CONNECTING)
    change(flaky, now - dt.timedelta(days=5) + OFF, Status.CONNECTING, Status.CONNECTED)
    outage_start = now - dt.timedelta(hours=3)
    change(flaky, outage_start, Status.CONNECTED, Status.DEGRADED)  # degraded still answers: up
    change(flaky, outage_start + dt.timedelta(minutes=5), Status.DEGRADED, Status.ERROR)
    change(flaky, outage_start + dt.timedelta(minutes=5) + OUTAGE, Status.ERROR, Status.CONNECTED)

    broken = factories.bamboohr("broken")
    Integration.objects.filter(pk="broken").update(
        created_at=now - dt.timedelta(hours=2), status=Status.RECONNECT_REQUIRED
    )
    change(broken, now - dt.timedelta(hours=2), Status.CONNECTING, Status.CONNECTED)
    IntegrationEvent.objects.create(
        integration=broken,
        integration_ref="broken",
        type=EventType.HEALTH_CHECK,
        ok=True,
        created_at=now - dt.timedelta(minutes=26),
    )
    change(broken, now - dt.timedelta(minutes=25), Status.CONNECTED, Status.ERROR)
    change(broken, now - dt.timedelta(minutes=10), Status.ERROR, Status.RECONNECT_REQUIRED)
    return {"now": now, "outage_start": outage_start}


def expected_uptime(window: dt.timedelta, unmonitored: dt.timedelta = dt.timedelta(0)) -> float:
    monitored = window - unmonitored
    return (monitored - OUTAGE) / monitored


@pytest.fixture
def staff_client(client: Any, db: None) -> Any:
    client.force_login(factories.staff("uptime-reader"))
    return client


def test_api_detail_shows_uptime_down_since_and_last_success(staff_client: Any, history: dict[str, Any]) -> None:
    body = staff_client.get("/api/integrations/flaky").json()["availability"]
    assert body["state"] == "up" and body["down_since"] is None
    assert body["uptime"]["24h"] == pytest.approx(expected_uptime(dt.timedelta(hours=24)), abs=1e-5)  # 0.9375
    assert body["uptime"]["7d"] == pytest.approx(expected_uptime(dt.timedelta(days=7), OFF), abs=1e-5)
    assert body["uptime"]["30d"] == pytest.approx(expected_uptime(dt.timedelta(days=30), OFF), abs=1e-5)
    assert body["uptime"]["24h"] == pytest.approx(0.9375, abs=1e-5)
    recovered = history["outage_start"] + dt.timedelta(minutes=5) + OUTAGE
    assert dt.datetime.fromisoformat(body["last_success"]) == recovered  # the status change back to connected

    broken = staff_client.get("/api/integrations/broken").json()["availability"]
    now = history["now"]
    assert broken["state"] == "down"
    assert dt.datetime.fromisoformat(broken["down_since"]) == now - dt.timedelta(minutes=25)  # not the later change
    assert dt.datetime.fromisoformat(broken["last_success"]) == now - dt.timedelta(minutes=26)  # its last good check
    # up 95 of its 120 minutes, and down a little longer by the time of the request (it is still down)
    assert broken["uptime"]["24h"] == pytest.approx(95 / 120, abs=5e-3)


def test_timeline_has_the_outage_where_it_happened(staff_client: Any, history: dict[str, Any]) -> None:
    day = staff_client.get("/api/integrations/flaky/timeline?range=24h").json()
    states = [(s["status"], s["state"], round(s["seconds"] / 60)) for s in day["segments"]]
    assert states == [
        ("connected", "up", 21 * 60),
        ("degraded", "up", 5),
        ("error", "down", 90),
        ("connected", "up", 85),
    ]
    assert day["uptime"] == pytest.approx(0.9375, abs=1e-5)
    hour = staff_client.get("/api/integrations/flaky/timeline?range=1h").json()
    assert [(s["state"], round(s["seconds"])) for s in hour["segments"]] == [("up", 3600)] and hour["uptime"] == 1
    week = staff_client.get("/api/integrations/flaky/timeline?range=7d").json()
    assert [s["status"] for s in week["segments"]] == [
        "connected",
        "disconnected",
        "connecting",
        "connected",
        "degraded",
        "error",
        "connected",
    ]
    assert staff_client.get("/api/integrations/flaky/timeline?range=2d").status_code == 400


def test_metrics_serve_uptime_and_down_since(staff_client: Any, history: dict[str, Any]) -> None:
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(staff_client.get("/metrics").content.decode())
        for s in family.samples
    }
    flaky = (("integration", "flaky"), ("kind", "bamboohr"))
    assert samples[("hub_integration_uptime_ratio", (*flaky, ("window", "24h")))] == pytest.approx(0.9375, abs=1e-5)
    assert samples[("hub_integration_down_since_seconds", flaky)] == 0
    broken = (("integration", "broken"), ("kind", "bamboohr"))
    began = (history["now"] - dt.timedelta(minutes=25)).timestamp()
    assert samples[("hub_integration_down_since_seconds", broken)] == pytest.approx(began, abs=1e-3)


def test_details_page_draws_the_timeline_for_the_chosen_range(staff_client: Any, history: dict[str, Any]) -> None:
    page = staff_client.get("/integrations/flaky?range=24h").content.decode()
    assert re.search(r'data-uptime="24h">93\.75%<', page)
    bars = re.findall(r'class="timeline-seg timeline-(\w+)" style="width: ([\d.]+)%"', page)
    assert [state for state, _width in bars] == ["up", "up", "down", "up"]
    assert float(bars[2][1]) == pytest.approx(100 * 90 / (24 * 60), abs=0.01)  # 6.25% of the bar
    assert 'data-range="24h" aria-current="true"' in page
    hour = staff_client.get("/integrations/flaky?range=1h").content.decode()
    assert re.findall(r"timeline-seg timeline-(\w+)", hour) == ["up"]
    broken = staff_client.get("/integrations/broken?range=1h").content.decode()
    assert re.findall(r'data-state="(\w+)" data-status', broken) == ["up", "down", "down"]
    assert 'data-role="down-since"' in broken
    shown = re.search(r'data-uptime="24h">([\d.]+)%<', broken)
    assert shown and float(shown.group(1)) == pytest.approx(100 * 95 / 120, abs=0.5)  # 79.17%, as the clock runs
