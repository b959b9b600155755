"""End to end with real processes: Celery worker and beat, Daphne, Redis, the BambooHR sandbox, PostgreSQL.

Connect → `connected` reaches a browser-like WebSocket client; the sandbox stops → the scheduled
health check marks it error and the push arrives; the sandbox comes back → it recovers.
"""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from integrations import services
from integrations.models import EventType, Integration, IntegrationEvent

pytestmark = pytest.mark.slow


@pytest.fixture
def process_env_overrides() -> dict[str, str]:
    # Quick hysteresis and schedule so the scenario takes seconds, not minutes.
    return {
        "HEALTH_DISPATCH_SECONDS": "1",
        "HEALTH_FAILURES_TO_ERROR": "2",
        "HEALTH_SUCCESSES_TO_RECOVER": "1",
        "CIRCUIT_COOLDOWN_SECONDS": "2",
        "CONNECTOR_MAX_RETRIES": "1",
        "CONNECTOR_RETRY_BACKOFF_MS": "200",
    }


def _status(integration_id: str, status: str):
    return lambda m: (
        m.get("event") == "status_change" and m.get("integration") == integration_id and m.get("status") == status
    )


def test_connect_outage_and_recovery_reach_the_browser(
    clean_redis, celery_worker_process, celery_beat_process, ws_client_factory, bamboohr_sandbox, staff_user, pg_url
):
    ws = ws_client_factory(staff_user)
    ws.wait_for(lambda m: m["event"] == "hello")
    pg = urlparse(pg_url)
    services.create_integration(
        actor=staff_user,
        id="hr_sandbox",
        name="HR sandbox",
        kind="bamboohr",
        auth_type="api_key",
        config={
            "subdomain": "acme",
            "base_url": bamboohr_sandbox.base_url,
            "allow_insecure_loopback": True,
            "timeout_seconds": 2,
        },
        credentials={"api_key": bamboohr_sandbox.api_key},
        health_check_interval=5,
    )
    services.create_integration(
        actor=staff_user,
        id="warehouse",
        name="Warehouse",
        kind="postgresql",
        auth_type="basic",
        config={
            "host": pg.hostname,
            "port": pg.port or 5432,
            "database": pg.path.lstrip("/"),
            "username": pg.username or "postgres",
            "pool_size": 2,
        },
        credentials={"password": "unused-with-trust-auth"},
        health_check_interval=5,
    )

    hr_op = services.request_connect("hr_sandbox", actor=staff_user)
    pg_op = services.request_connect("warehouse", actor=staff_user)
    ws.wait_for(_status("hr_sandbox", "connected"), timeout=30)
    ws.wait_for(_status("warehouse", "connected"), timeout=30)
    assert services.wait_for_operation(hr_op, 5)["state"] == "succeeded"
    assert services.wait_for_operation(pg_op, 5)["state"] == "succeeded"

    # The scheduled checks run and are pushed while all is well.
    ws.wait_for(lambda m: m["event"] == "health_check" and m["integration"] == "hr_sandbox" and m["ok"], timeout=20)

    bamboohr_sandbox.stop()
    outage = ws.mark()
    failed = ws.wait_for(
        lambda m: m["event"] == "health_check" and m["integration"] == "hr_sandbox" and m["ok"] is False,
        timeout=40,
        since=outage,
    )
    assert failed["message"].startswith(("network", "timeout", "unavailable"))
    error = ws.wait_for(_status("hr_sandbox", "error"), timeout=60, since=outage)
    assert error["ok"] is False
    hr = Integration.objects.get(pk="hr_sandbox")
    assert hr.status == "error" and hr.last_error
    assert IntegrationEvent.objects.filter(integration_ref="hr_sandbox", type=EventType.HEALTH_CHECK, ok=False).exists()
    # The PostgreSQL integration was never disturbed by the other's outage.
    assert Integration.objects.get(pk="warehouse").status == "connected"
    assert not [
        m for m in ws.seen[outage:] if m.get("event") == "status_change" and m.get("integration") == "warehouse"
    ]

    bamboohr_sandbox.start()
    ws.wait_for(_status("hr_sandbox", "connected"), timeout=60, since=ws.mark())
    assert Integration.objects.get(pk="hr_sandbox").status == "connected"
    assert Integration.objects.get(pk="hr_sandbox").last_error == ""
