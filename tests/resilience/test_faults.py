"""Faults against the running hub (Daphne, two workers, beat, Redis, the sandbox, the machine's databases).

Each test breaks one thing while tool calls keep flowing, then checks what a user would see: every
call answered (a result, or a failure with a category and a message, never a hang or a 5xx page), a
clear status in /api/health, and recovery by itself once the fault is gone, without restarting
anything of the hub.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.resilience.conftest import (
    CHECK_INTERVAL,
    Hub,
    Report,
    ensure_services,
    hub_database_vendor,
    hub_redis_port,
    mysql_connection_ids,
    pg_cluster_command,
    postgres_config,
    postgres_up,
    redis_start_command,
    redis_up,
)
from tests.resilience.helpers import (
    ToolLoad,
    agent_token,
    brief,
    call_tool,
    connect,
    create,
    lost,
    unclear,
    unfinished_tool_calls,
    wait_status,
)
from tests.runtime_fixtures import Sandbox, wait_until

pytestmark = pytest.mark.slow


def bamboohr(
    hub: Hub, integration_id: str = "hr", sandbox: Sandbox | None = None, **config: object
) -> dict[str, object]:
    sandbox = sandbox or hub.sandbox
    return {
        "id": integration_id,
        "kind": "bamboohr",
        "auth_type": "api_key",
        "config": {
            "subdomain": "acme",
            "base_url": sandbox.base_url,
            "allow_insecure_loopback": True,
            "timeout_seconds": 2,
            **config,
        },
        "credentials": {"api_key": sandbox.api_key},
        "health_check_interval": CHECK_INTERVAL,
    }


def employees(integration_id: str = "hr") -> dict[str, object]:
    return {"connector_id": integration_id, "resource": "employees", "limit": 5}


def _account(report: Report, load: ToolLoad) -> None:
    calls = load.stop()
    report.requests(len(calls), len(lost(calls)))
    assert not lost(calls), [c.lost for c in lost(calls)][:5]
    assert not unclear(calls), [(c.category, c.message) for c in unclear(calls)][:5]
    assert unfinished_tool_calls() == 0


def test_sandbox_503_storm_then_slow_answers(hub: Hub, report: Report):
    own = hub.new_sandbox()  # its request counter sees this test's integration only
    api = hub.api(hub.people.staff)
    create(api, **bamboohr(hub, sandbox=own))
    connect(api, "hr")
    token = agent_token("hr")
    load = ToolLoad(hub.url, token, "query_hris", employees(), threads=2, pause=0.1, timeout=10).start()
    try:
        load.wait_for(lambda c: bool(c.ok), 20, "a first successful call")

        with report.fault("BambooHR answers 503 to everything (storm)"):
            hub.sandbox_control(sandbox=own, spec={"fail": {"status": 503, "count": None}})
            storm = time.monotonic()
            row = wait_status(api, "hr", "error", timeout=40)
            # Since 16 September 2026 BambooHR's 503 means "temporarily unavailable" (it throttles with 429).
            assert row["last_error"].startswith("unavailable:") and "HTTP 503" in row["last_error"], row
            # In error the hub stops bothering BambooHR: calls are refused at once, with a retry time.
            hub.sandbox_stats(reset=True, sandbox=own)
            quiet = time.monotonic()
            refused = load.wait_for(lambda c: c.category == "unavailable", 20, "a refusal while in error", since=quiet)
            assert "in error" in refused.message
            time.sleep(3)
            during = load.since(quiet)
            hitting = hub.sandbox_stats(sandbox=own)["requests"]
            # Only the scheduled health checks (one per interval, one retry) reach BambooHR.
            assert len(during) >= 10 and hitting <= 4, (len(during), hitting)
            assert all(c.seconds < 10 for c in load.since(storm))

            hub.sandbox_control(sandbox=own, spec={"clear": True})
            wait_status(api, "hr", "connected", timeout=30)
            recovered = time.monotonic()
            load.wait_for(lambda c: bool(c.ok), 20, "a successful call after the storm", since=recovered)
            assert brief(api, "hr")["last_error"] == ""

        with report.fault("BambooHR answers after 4 s (timeout 2 s)"):
            hub.sandbox_control(sandbox=own, spec={"slow": {"seconds": 4}})
            slow = time.monotonic()
            row = wait_status(api, "hr", ("degraded", "error"), timeout=30)
            # The checks time out, or find the circuit that timing-out calls opened: either says why.
            assert row["last_error"].startswith(("timeout:", "unavailable: circuit open")), row
            load.wait_for(lambda c: c.category in ("timeout", "unavailable"), 20, "calls to fail", since=slow)
            during = load.since(slow)
            assert {c.category for c in during} <= {"timeout", "unavailable", None}, {c.category for c in during}
            # Only timeouts can open the circuit here: both say the caller should come back later.
            assert all(
                "no answer within 2 s" in c.message or "circuit open" in c.message or "in error" in c.message
                for c in during
                if not c.ok
            ), {c.message for c in during if not c.ok}
            # No call waits longer than the integration's timeout allows (2 s, one retry, a little slack).
            assert max(c.seconds for c in during) < 9
            hub.sandbox_control(sandbox=own, spec={"clear": True})
            wait_status(api, "hr", "connected", timeout=30)
            load.wait_for(lambda c: bool(c.ok), 20, "a successful call after the slow spell", since=time.monotonic())
    finally:
        hub.sandbox_control(sandbox=own, spec={"clear": True})
        _account(report, load)


def test_worker_killed_with_sigkill_under_load(hub: Hub, report: Report):
    own = hub.new_sandbox()
    api = hub.api(hub.people.staff)
    create(api, **bamboohr(hub, "hr_kill", sandbox=own))
    connect(api, "hr_kill")
    token = agent_token("hr_kill")
    # Half a second per answer: calls are surely in flight in the worker when it dies.
    hub.sandbox_control({"slow": {"seconds": 0.5}}, sandbox=own)
    load = ToolLoad(hub.url, token, "query_hris", employees("hr_kill"), threads=4, pause=0.05, timeout=8).start()
    try:
        load.wait_for(lambda c: bool(c.ok), 20, "a first successful call")
        with report.fault("a Celery worker killed with SIGKILL (main and pool processes) under load"):
            victim = hub.live_workers()[0]
            victim.signal(signal.SIGKILL)
            wait_until(lambda: not victim.alive(), 10, what="the worker to die")
            killed = time.monotonic()
            # Calls the dead worker had taken end as timeouts (the caller is told, the audit row closed);
            # every later call is served by the other worker.
            after = killed + 9
            load.wait_for(lambda c: bool(c.ok), 30, "successful calls after the kill", since=after)
            assert brief(api, "hr_kill")["status"] == "connected"
            health = httpx.get(f"{hub.url}/healthz", timeout=10).json()
            assert health["checks"]["workers"]["ok"], health
            hub.start_worker("w3")  # a replacement joins without restarting anything else
            joined = time.monotonic()
            load.wait_for(lambda c: bool(c.ok), 20, "successful calls with the new worker", since=joined)
            failures = [c for c in load.since(after) if not c.ok]
            assert not failures, [(c.category, c.message) for c in failures][:5]
    finally:
        hub.sandbox_control({"clear": True}, sandbox=own)
        _account(report, load)


def _dashboard_row(hub: Hub, integration_id: str) -> str:
    page = hub.browser(hub.people.staff).get("/integrations").text
    start = page.index(f'data-integration="{integration_id}"')
    return page[start : page.index("</tr>", start)]


def test_beat_stopped_checks_go_stale_then_resume(hub: Hub, report: Report):
    api = hub.api(hub.people.staff)
    create(api, **bamboohr(hub, "hr_beat"))
    connect(api, "hr_beat")
    first = brief(api, "hr_beat")["last_checked_at"]
    wait_until(lambda: brief(api, "hr_beat")["last_checked_at"] != first, 20, 0.5, "a scheduled check")
    assert brief(api, "hr_beat")["stale"] is False
    with report.fault("Celery beat stopped"):
        hub.beat.signal(signal.SIGKILL)
        wait_until(lambda: not hub.beat.alive(), 10, what="beat to stop")
        # Three intervals without a check: the API and the dashboard say so.
        row = wait_until(
            lambda: (r := brief(api, "hr_beat"))["stale"] and r,
            4 * CHECK_INTERVAL + 10,
            0.5,
            "the integration to be reported stale",
        )
        assert row["status"] == "connected"  # the last known status is kept, flagged as old news
        assert api.get("/api/health").json()["stale"] >= 1
        assert 'data-role="stale"' in _dashboard_row(hub, "hr_beat")
        beat = wait_until(
            lambda: (h := httpx.get(f"{hub.url}/healthz", timeout=10).json())["checks"]["beat"]["ok"] is False and h,
            20,
            0.5,
            "/healthz to report beat gone",
        )
        assert beat["checks"]["beat"]["alive"] == 0

        hub.start_beat()
        wait_until(lambda: brief(api, "hr_beat")["stale"] is False, 20, 0.5, "checks to resume")
        assert 'data-role="stale"' not in _dashboard_row(hub, "hr_beat")


def test_postgresql_restarted_under_load(hub: Hub, report: Report, quiet_machine: None, pg_url: str):
    if hub_database_vendor() == "postgresql":
        report.skipped("PostgreSQL restarted under load", "the hub's own database is PostgreSQL in this run")
        pytest.skip("the hub's own database is PostgreSQL in this run: restarting it is not this test's subject")
    api = hub.api(hub.people.staff)
    create(
        api,
        id="warehouse",
        kind="postgresql",
        auth_type="basic",
        config=postgres_config(pg_url),
        credentials={"password": "unused-with-trust-auth"},
        health_check_interval=CHECK_INTERVAL,
    )
    connect(api, "warehouse")
    token = agent_token("warehouse")
    load = ToolLoad(
        hub.url,
        token,
        "query_database",
        {"connector_id": "warehouse", "query": "SELECT 1 AS one"},
        threads=2,
        pause=0.1,
        timeout=10,
    ).start()
    try:
        load.wait_for(lambda c: bool(c.ok), 20, "a first successful query")
        with report.fault("PostgreSQL restarted under load"):
            subprocess.run(pg_cluster_command("restart"), check=True, capture_output=True, timeout=120)
            restarted = time.monotonic()
            load.wait_for(lambda c: bool(c.ok), 30, "a successful query after the restart", since=restarted)
            assert brief(api, "warehouse")["status"] in ("connected", "degraded")

        with report.fault("PostgreSQL down until the integration is in error, then started again"):
            subprocess.run(pg_cluster_command("stop"), check=True, capture_output=True, timeout=120)
            stopped = time.monotonic()
            row = wait_status(api, "warehouse", "error", timeout=40)
            assert row["last_error"].startswith(("network:", "unavailable:", "timeout:")), row
            failed = [c for c in load.since(stopped) if not c.ok]
            assert failed and all(c.category in ("network", "unavailable", "timeout") for c in failed), {
                (c.category, c.message) for c in failed
            }
            subprocess.run(pg_cluster_command("start"), check=True, capture_output=True, timeout=120)
            wait_until(postgres_up, 60, 0.3, "PostgreSQL to accept connections")
            row = wait_status(api, "warehouse", "connected", timeout=40)
            assert row["last_error"] == ""
            load.wait_for(lambda c: bool(c.ok), 30, "a successful query after recovery", since=time.monotonic())
    finally:
        ensure_services()
        _account(report, load)


def test_mariadb_connections_killed(hub: Hub, report: Report, mysql_account):
    api = hub.api(hub.people.staff)
    create(
        api,
        id="crm_db",
        kind="mysql",
        auth_type="basic",
        config={
            "host": "127.0.0.1",
            "port": 3306,
            "database": "test",
            "username": mysql_account.user,
            "pool_size": 2,
            "connect_timeout": 3,
            "statement_timeout_seconds": 8,
        },
        credentials={"password": mysql_account.password},
        health_check_interval=CHECK_INTERVAL,
    )
    connect(api, "crm_db")
    token = agent_token("crm_db")
    load = ToolLoad(
        hub.url,
        token,
        "query_database",
        {"connector_id": "crm_db", "query": "SELECT CONNECTION_ID() AS id"},
        threads=2,
        pause=0.1,
        timeout=10,
    ).start()
    try:
        load.wait_for(lambda c: bool(c.ok), 20, "a first successful query")
        with report.fault("MariaDB connections of the integration killed (KILL <id>)"):
            victims = mysql_connection_ids(mysql_account.admin)
            assert victims, "the integration holds pooled connections"
            with mysql_account.admin.cursor() as cursor:
                for victim in victims:
                    cursor.execute(f"KILL {int(victim)}")
            killed = time.monotonic()
            load.wait_for(lambda c: bool(c.ok), 20, "a successful query after the kill", since=killed)
            # Pools notice dead connections and open new ones: after a moment every query works again.
            settled = time.monotonic() + 2
            time.sleep(4)
            assert all(c.ok for c in load.since(settled)), [(c.category, c.message) for c in load.since(settled)]
            assert set(mysql_connection_ids(mysql_account.admin)).isdisjoint(victims)
            assert brief(api, "crm_db")["status"] in ("connected", "degraded")

        with report.fault("MariaDB connection killed in the middle of a query"):
            outcome: list = []
            thread = threading.Thread(
                target=lambda: outcome.append(
                    call_tool(
                        hub.url,
                        token,
                        "query_database",
                        {"connector_id": "crm_db", "query": "SELECT SLEEP(4) AS slept"},
                        timeout=20,
                    )
                )
            )
            thread.start()

            def sleeping() -> list[int]:
                with mysql_account.admin.cursor() as cursor:
                    cursor.execute(
                        "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s AND INFO LIKE %s",
                        (mysql_account.user, "%SLEEP(4)%"),
                    )
                    return [int(row[0]) for row in cursor.fetchall()]

            busy = wait_until(sleeping, 20, 0.1, "the query to run in MariaDB")
            with mysql_account.admin.cursor() as cursor:
                cursor.execute(f"KILL {busy[0]}")
            thread.join(30)
            (call,) = outcome
            assert call.lost is None, call
            # A read may be tried again on a fresh connection, or fail saying the connection was lost.
            assert call.ok or call.category in ("network", "unavailable"), call
            report.requests(1, 0)
            load.wait_for(lambda c: bool(c.ok), 20, "queries to keep working", since=time.monotonic())
    finally:
        _account(report, load)


def _redis_shutdown(port: int) -> None:
    import redis

    with contextlib.suppress(redis.ConnectionError):  # the server closes the connection as it goes
        redis.Redis(host="127.0.0.1", port=port, socket_timeout=5).shutdown(nosave=True)
    wait_until(lambda: not redis_up(port), 20, 0.1, "redis-server to stop")


def test_redis_restarted(hub: Hub, report: Report, request: pytest.FixtureRequest):
    from tests.runtime_fixtures import WSClient, session_cookie_for

    port = hub_redis_port()
    if port == 6379:  # the machine's shared Redis; a private server on another port disturbs nobody
        request.getfixturevalue("quiet_machine")

    api = hub.api(hub.people.staff)
    own = hub.new_sandbox()  # slowed below: connection tests are in flight (delivered, not yet acked) as Redis goes
    create(api, **bamboohr(hub, "hr_redis", sandbox=own, timeout_seconds=5))
    connect(api, "hr_redis")
    token = agent_token("hr_redis")
    ws = WSClient(f"{hub.web.ws_url}/ws/integrations/", session_cookie_for(hub.people.staff), origin=hub.url)
    ws.wait_for(lambda m: m["event"] == "hello")
    load = ToolLoad(hub.url, token, "query_hris", employees("hr_redis"), threads=4, pause=0.2, timeout=8).start()
    try:
        load.wait_for(lambda c: bool(c.ok), 20, "a first successful call")
        workers = hub.live_workers()
        with report.fault("Redis restarted (broker, rate limiter, channel layer, locks at once)"):
            hub.sandbox_control(sandbox=own, spec={"slow": {"seconds": 3}})
            for _ in range(4):  # tests are acked late: delivered, not yet acked as Redis goes
                assert api.post("/api/integrations/hr_redis/test").status_code in (200, 202)
            time.sleep(1)
            _redis_shutdown(port)
            down = time.monotonic()
            try:
                healthz = httpx.get(f"{hub.url}/healthz", timeout=20)
                assert healthz.status_code == 503 and healthz.json()["checks"]["redis"]["ok"] is False
                refused = api.post("/api/integrations/hr_redis/test")
                assert refused.status_code == 503, refused.text
                assert "Redis" in refused.json()["detail"]
                page = hub.browser(hub.people.staff).get("/integrations")
                assert page.status_code == 200 and 'data-integration="hr_redis"' in page.text
                load.wait_for(
                    lambda c: c.category == "unavailable", 20, "calls refused while Redis is down", since=down
                )
            finally:
                subprocess.run(redis_start_command(port), check=True, capture_output=True, timeout=30)
                wait_until(lambda: redis_up(port), 30, 0.1, "redis-server to answer")
            up = time.monotonic()
            hub.sandbox_control(sandbox=own, spec={"clear": True})
            # Every process reconnects by itself: workers (heartbeats), web, beat (checks), the WebSocket.
            wait_until(
                lambda: httpx.get(f"{hub.url}/healthz", timeout=10).status_code == 200,
                30,
                0.5,
                "/healthz to be healthy again",
            )
            load.wait_for(lambda c: bool(c.ok), 30, "a successful call after the restart", since=up)
            # Live pushes: a socket opened now gets them (the dashboard's script reconnects by itself); the old
            # one either kept working or was closed, so that its browser reconnects too.
            fresh = WSClient(f"{hub.web.ws_url}/ws/integrations/", session_cookie_for(hub.people.staff), origin=hub.url)
            fresh.wait_for(lambda m: m["event"] == "hello")
            mark = ws.mark()
            done = api.post("/api/integrations/hr_redis/test", params={"wait": 20})
            assert done.status_code == 200 and done.json()["state"] == "succeeded", done.text
            fresh.wait_for(lambda m: m.get("event") == "test" and m.get("integration") == "hr_redis", 20)
            fresh.close()
            try:
                ws.wait_for(lambda m: m.get("event") == "test" and m.get("integration") == "hr_redis", 5, since=mark)
            except TimeoutError:
                with pytest.raises(ConnectionClosed):
                    ws.conn.send('{"type": "ping"}')
            checked = brief(api, "hr_redis")["last_checked_at"]
            wait_until(
                lambda: brief(api, "hr_redis")["last_checked_at"] != checked, 20, 0.5, "beat to dispatch checks again"
            )
            failures = [c for c in load.since(up + 5) if not c.ok]
            assert not failures, [(c.category, c.message) for c in failures][:5]
            # No worker exited on the way (the README: a worker survives a Redis restart).
            dead = {w.name: w.log_path.read_text(errors="replace")[-2000:] for w in workers if not w.alive()}
            assert not dead, dead
    finally:
        ensure_services()
        ws.close()
        _account(report, load)
