"""Runtime figures: health checks end to end with two worker processes, and live-push latency.

    .venv/bin/python bench/bench_runtime.py [--integrations 1000] [--workers 2] [--status-changes 100]
                                            [--redis-url redis://127.0.0.1:6379/14] [--database-url URL]

Real processes throughout: Daphne (the ASGI server), N Celery worker processes (prefork, one pool
process each), Redis as broker and channel layer, a WebSocket client logged in as staff. The hub's
database is a throw-away SQLite file (the README's default) unless --database-url is given; the Redis
database of --redis-url is FLUSHED, so give it one nobody else uses.

1. Throughput: N SQLite integrations (a sample HR file) marked connected and due; one dispatcher
   run enqueues a check for each; measured until every check has its event row AND its push at the
   WebSocket client (target: 1,000 in <= 10 s).
2. Push latency: status changes made by a worker (an integration's config is broken, its check turns
   it to error), one every 20 ms; latency from the worker's change ("at") to the client (target p95
   <= 500 ms).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
THROUGHPUT_TARGET_S = 10.0
LATENCY_TARGET_MS = 500.0


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, int(round(fraction * len(ordered))) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--integrations", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="Worker processes (one pool process each).")
    parser.add_argument("--status-changes", type=int, default=100)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14", help="FLUSHED before the run.")
    parser.add_argument("--database-url", default=None, help="Hub database (default: a temporary SQLite file).")
    args = parser.parse_args()
    if args.integrations < 1 or args.workers < 1 or args.status_changes < 1:
        parser.error("counts must be positive")

    workdir = Path(tempfile.mkdtemp(prefix="bench-runtime-"))
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "true",
        "HUB_DATA_DIR": str(workdir),
        "SQLITE_ALLOWED_DIRS": str(workdir),  # the sample HR file lives here
        "REDIS_URL": args.redis_url,
        "CREDENTIALS_KEY": secrets.token_urlsafe(48),
        "CONNECTOR_MAX_RETRIES": "0",
        "HUB_LIVE_CONNECTORS_MAX": str(args.integrations),
        "LOG_LEVEL": "WARNING",
    }
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    os.environ.update(env)

    import redis

    client = redis.Redis.from_url(args.redis_url)
    try:
        client.ping()
    except redis.RedisError as exc:
        print(f"bench: Redis at {args.redis_url} does not answer ({type(exc).__name__})", file=sys.stderr)
        return 1
    client.flushdb()

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from integrations import tasks
    from integrations.models import Integration, IntegrationEvent, Status
    from tests.runtime_fixtures import ManagedProcess, WSClient, free_port, port_open, session_cookie_for, wait_until

    call_command("migrate", verbosity=0)
    hr_db = workdir / "hr.sqlite3"
    db = sqlite3.connect(hr_db)
    db.executescript(
        "CREATE TABLE employees (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO employees VALUES (1, 'Ada');"
    )
    db.close()

    processes: list[ManagedProcess] = []
    child_env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    try:
        port = free_port()
        web = ManagedProcess(
            "daphne",
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
            child_env,
            workdir,
        ).start()
        processes.append(web)
        for n in range(args.workers):
            processes.append(
                ManagedProcess(
                    f"worker{n}",
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "config",
                        "worker",
                        "-l",
                        os.environ.get("BENCH_WORKER_LOG_LEVEL", "WARNING"),
                        "-P",
                        "prefork",
                        "-c",
                        "1",
                        "-n",
                        f"bench{n}@%h",
                        "--without-gossip",
                        "--without-mingle",
                    ],
                    child_env,
                    workdir,
                ).start()
            )
        web.wait_ready(lambda: port_open(port), 60)
        wait_until(
            lambda: sum(1 for _ in client.scan_iter("hub:alive:worker:*")) >= args.workers, 90, 0.2, "the workers"
        )

        staff = get_user_model().objects.create_user("bench", is_staff=True)
        ws = WSClient(f"ws://127.0.0.1:{port}/ws/integrations/", session_cookie_for(staff), f"http://127.0.0.1:{port}")
        ws.wait_for(lambda m: m["event"] == "hello", 10)

        ids = [f"bench_{n:05d}" for n in range(args.integrations)]
        Integration.objects.bulk_create(
            Integration(
                id=i,
                name=i,
                kind="sqlite",
                auth_type="none",
                config={"path": str(hr_db)},
                status=Status.CONNECTED,
                health_check_interval=3600,
            )
            for i in ids
        )

        # --- 1. dispatch → event row → push, for every integration; first with connectors to build
        # (the first check after a worker starts), then again with every connector held open.
        def round_trip() -> dict[str, float]:
            IntegrationEvent.objects.filter(type="health_check").delete()
            Integration.objects.filter(pk__in=ids).update(last_checked_at=None)
            mark = ws.mark()
            started = time.perf_counter()
            tasks.dispatch_health_checks.delay()
            pushed: set[str] = set()
            first_push = 0.0
            while len(pushed) < len(ids):
                message = ws.wait_for(lambda m: m["event"] == "health_check", 60, since=mark)
                ws.seen.remove(message)
                pushed.add(message["integration"])
                first_push = first_push or time.perf_counter() - started
            pushes_done = time.perf_counter() - started
            wait_until(
                lambda: IntegrationEvent.objects.filter(type="health_check").count() >= len(ids),
                60,
                0.05,
                "the event rows",
            )
            rows_done = time.perf_counter() - started
            return {
                "elapsed": max(pushes_done, rows_done),
                "first_push": first_push,
                "rows": rows_done,
                "pushes": pushes_done,
                "healthy": IntegrationEvent.objects.filter(type="health_check", ok=True).count(),
            }

        rounds = {"cold": round_trip(), "warm": round_trip()}

        # --- 2. worker status change → WebSocket client
        latencies: list[float] = []
        broken = ids[: args.status_changes]
        Integration.objects.filter(pk__in=broken).update(
            config={"path": str(workdir / "missing.sqlite3")}, config_version=2
        )
        mark = ws.mark()
        for integration_id in broken:
            tasks.health_check_integration.delay(integration_id)
            time.sleep(0.02)
        for integration_id in broken:
            message = ws.wait_for(
                lambda m, i=integration_id: m["event"] == "status_change" and m["integration"] == i, 60, since=mark
            )
            sent_at = datetime.fromisoformat(message["at"]).timestamp()
            latencies.append((message["_received_at"] - sent_at) * 1000)
        ws.close()
    finally:
        for process in reversed(processes):
            process.stop()
        if os.environ.get("BENCH_KEEP_WORKDIR") != "1":  # logs are kept on request, for a failed run
            shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"bench_runtime: {args.integrations} integrations, {args.workers} worker processes, hub database "
        f"{'SQLite' if not args.database_url else args.database_url.split(':', 1)[0]}, Redis {args.redis_url}"
    )
    target = THROUGHPUT_TARGET_S * args.integrations / 1000
    for name, label in (("cold", "connectors built on first use"), ("warm", "connectors held open")):
        r = rounds[name]
        print(
            f"  health checks end to end (dispatch -> event row -> push), {label}: {r['elapsed']:.2f} s "
            f"({args.integrations / r['elapsed']:.0f} checks/s; first push {r['first_push']:.2f} s; "
            f"{r['healthy']:.0f} healthy)  target <= {target:.0f} s: {'OK' if r['elapsed'] <= target else 'MISSED'}"
        )
    p50, p95 = statistics.median(latencies), percentile(latencies, 0.95)
    print(
        f"  push latency, worker status change -> WebSocket client ({len(latencies)} changes): "
        f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {max(latencies):.1f} ms  target p95 <= {LATENCY_TARGET_MS:.0f} ms: "
        f"{'OK' if p95 <= LATENCY_TARGET_MS else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
