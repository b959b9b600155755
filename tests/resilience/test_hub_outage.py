"""The hub's own database and Redis fail under a flow of tool calls (issue 24).

A web process (Daphne) of its own runs on a private PostgreSQL (its database) and a private Redis, so
stopping them disturbs no other test run. Agent calls (``describe_access`` of a profile with a quota: it
reads the database and Redis, and is answered by the web process without a worker) flow from four
threads while the database is stopped and started again, then while Redis is killed. Every answer must be
JSON with a category (never Django's HTML 500 page), every "unavailable" must carry Retry-After >= 1, and
afterwards the audit trail must hold one row per call sent — the rows of calls made while the database was
down come from the web process's outbox once the database is back.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.resilience.conftest import Report, redis_start_command, redis_up
from tests.runtime_fixtures import REPO, ManagedProcess, free_port, port_open, wait_until

pytestmark = pytest.mark.skipif(
    not glob.glob("/usr/lib/postgresql/*/bin/initdb") or shutil.which("redis-server") is None,
    reason="needs PostgreSQL's server binaries and redis-server to run private servers",
)

TOOL = "describe_access"
AGENT = "outage-agent"


class PrivatePostgres:
    """A PostgreSQL cluster of this module's own (trust auth, loopback, no fsync), run as user postgres."""

    def __init__(self) -> None:
        self.bin = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
        self.port = free_port()
        self.dir = Path(f"/tmp/hub-outage-pg-{self.port}")
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *argv: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True, capture_output=True, timeout=120)

    def create(self) -> PrivatePostgres:
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        shutil.chown(self.dir, "postgres", "postgres")
        self._as_postgres(f"{self.bin}/initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres", "-N")
        self.start()
        return self

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(
            f"{self.bin}/pg_ctl",
            "-D",
            str(self.dir / "data"),
            "-o",
            options,
            "-w",
            "-l",
            str(self.dir / "log"),
            "start",
        )

    def stop(self) -> None:
        self._as_postgres(f"{self.bin}/pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")

    def up(self) -> bool:
        return port_open(self.port)

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres") as conn:
            return list(conn.execute(sql, params).fetchall())

    def remove(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class Answer:
    at: float
    status: int
    content_type: str
    body: Any
    retry_after: str | None


@dataclass
class Load:
    """Four threads calling the tool over REST as fast as answers come (with a short pause)."""

    url: str
    token: str
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self, threads: int = 4) -> Load:
        for _ in range(threads):
            thread = threading.Thread(target=self._run, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _run(self) -> None:
        with httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30, trust_env=False
        ) as client:
            while not self._stop.is_set():
                response = client.post(f"/api/tools/{TOOL}/invoke", json={})
                try:
                    body = response.json()
                except ValueError:
                    body = response.text[:300]
                self.answers.append(
                    Answer(
                        time.monotonic(),
                        response.status_code,
                        response.headers.get("content-type", ""),
                        body,
                        response.headers.get("Retry-After"),
                    )
                )
                time.sleep(0.02)

    def stop(self) -> list[Answer]:
        self._stop.set()
        for thread in self._threads:
            thread.join(40)
        return self.answers


def category(answer: Answer) -> str | None:
    if not isinstance(answer.body, dict):
        return None
    if answer.body.get("ok") is True:
        return "ok"
    return (answer.body.get("error") or {}).get("category")


@dataclass
class OutageHub:
    url: str
    token: str
    pg: PrivatePostgres
    redis_port: int
    web: ManagedProcess
    outbox: Path
    cookie: str

    def rows(self) -> int:
        return int(self.pg.query("SELECT count(*) FROM integrations_toolcall WHERE tool = %s", TOOL)[0][0])


_TOKEN_SCRIPT = """
from integrations.agents.models import AgentProfile
from integrations.tools.models import AgentToken
profile = AgentProfile.objects.create(name="outage", tools=["describe_access"], calls_per_minute=1000000)
token, raw = AgentToken.issue(name="%s", profile=profile)
print("TOKEN=" + raw)
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
user = get_user_model().objects.create_user("outage-staff", password="pw-outage-staff-1", is_staff=True)
session = SessionStore()
session.update({SESSION_KEY: str(user.pk), HASH_SESSION_KEY: user.get_session_auth_hash(),
                BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend"})
session.create()
print("SESSION=" + session.session_key)
"""


@pytest.fixture(scope="module")
def outage_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OutageHub]:
    from django.conf import settings

    log_dir = tmp_path_factory.mktemp("outage")
    pg = PrivatePostgres().create()
    redis_port = free_port()
    subprocess.run(redis_start_command(redis_port), check=True, capture_output=True, timeout=30)
    wait_until(lambda: redis_up(redis_port), 20, 0.1, "the private redis-server")
    outbox = log_dir / "outbox"
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings_test",
        DATABASE_URL=pg.url,
        REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        CREDENTIALS_KEY=settings.CREDENTIALS_KEY,
        TOOLS_OUTBOX_DIR=str(outbox),
        DEBUG="true",  # as in the drill: an unhandled error would be Django's HTML debug page
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(REPO),
    )
    web: ManagedProcess | None = None
    try:
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True, timeout=300)
        made = subprocess.run(
            [*manage, "shell", "-c", _TOKEN_SCRIPT % AGENT],
            cwd=REPO,
            env=env,
            check=True,
            timeout=60,
            capture_output=True,
            text=True,
        )
        token = next(line[6:] for line in made.stdout.splitlines() if line.startswith("TOKEN="))
        session = next(line[8:] for line in made.stdout.splitlines() if line.startswith("SESSION="))
        port = free_port()
        web = ManagedProcess(
            "daphne-outage",
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
            env,
            log_dir,
        ).start()
        web.wait_ready(lambda: port_open(port), timeout=60)
        yield OutageHub(f"http://127.0.0.1:{port}", token, pg, redis_port, web, outbox, f"sessionid={session}")
    finally:
        if web is not None:
            web.stop(timeout=5)
        with contextlib.suppress(Exception):
            import redis

            redis.Redis(host="127.0.0.1", port=redis_port, socket_timeout=5).shutdown(nosave=True)
        pg.remove()


def _check_answers(answers: list[Answer], report: Report, store: str) -> list[Answer]:
    """Every answer JSON with a category; every unavailable one with Retry-After >= 1. Returns those."""
    html = [a for a in answers if "html" in a.content_type or not isinstance(a.body, dict)]
    assert not html, f"{len(html)} answers without an envelope, e.g. {html[0].status} {html[0].body!r:.300}"
    uncategorized = [a for a in answers if category(a) is None]
    assert not uncategorized, uncategorized[:3]
    unavailable = [a for a in answers if category(a) == "unavailable"]
    assert unavailable, f"no call was refused while the {store} was down"
    for answer in unavailable:
        # 503 when refused before the call was known (its token could not be looked up), else the envelope's 200
        assert answer.status in (200, 503) and answer.retry_after is not None and int(answer.retry_after) >= 1, answer
        assert answer.body["error"]["retry_after"] >= 1 and answer.body["error"]["permanent"] is False
        assert f"hub's {store} is unreachable" in answer.body["error"]["message"], answer.body
    report.requests(len(answers), 0)
    return unavailable


def _other_requests_answered_while_the_database_is_down(hub: OutageHub) -> None:
    """The REST API (session and token callers) and the pages: 503, Retry-After, a category, no 500 page."""
    with httpx.Client(base_url=hub.url, headers={"Cookie": hub.cookie}, timeout=20, trust_env=False) as client:
        for path in ("/api/integrations/", "/api/tools/calls/"):
            answer = client.get(path)
            assert answer.status_code == 503 and int(answer.headers["Retry-After"]) >= 1, (path, answer.text[:300])
            assert answer.json()["error"]["category"] == "unavailable", answer.text[:300]
        api_token = client.get("/api/integrations/", headers={"Authorization": "Token hubut_not-checkable-now"})
        assert api_token.status_code == 503 and api_token.json()["error"]["category"] == "unavailable"
        page = client.get("/integrations")
        assert page.status_code == 503 and "html" not in page.headers["content-type"], page.text[:300]
        assert int(page.headers["Retry-After"]) >= 1 and "database is unreachable" in page.text


def test_database_stopped_under_load_every_call_answered_and_audited(outage_hub: OutageHub, report: Report):
    hub = outage_hub
    before = hub.rows()
    load = Load(hub.url, hub.token).start()
    try:
        wait_until(lambda: any(category(a) == "ok" for a in load.answers), 15, 0.05, "a first successful call")
        with report.fault("the hub's PostgreSQL stopped for 3 s under tool calls"):
            hub.pg.stop()
            down = time.monotonic()
            _other_requests_answered_while_the_database_is_down(hub)
            time.sleep(max(0.0, down + 3 - time.monotonic()))
            # Answers until start() is called are from a stopped server; start() returns once the server
            # already accepts connections, so calls answered during it may rightly be "ok".
            restarting = time.monotonic()
            hub.pg.start()
            up = time.monotonic()
            wait_until(lambda: any(a.at > up and category(a) == "ok" for a in load.answers), 15, 0.05, "calls to work")
            time.sleep(1.2)  # past the outbox's scan interval: a later call replays the journal
    finally:
        answers = load.stop()
    outage = [a for a in answers if down <= a.at <= up]
    unavailable = _check_answers(answers, report, "database")
    stopped = [a for a in outage if down + 0.5 < a.at < restarting]
    assert len(outage) >= 4 and stopped, (len(outage), len(stopped))
    assert all(category(a) == "unavailable" for a in stopped), [(round(a.at - down, 2), category(a)) for a in stopped]
    assert all(a.body["call_id"] is None for a in stopped)  # no row could be made
    # One more call after the last: it finds the journal (if the load's last calls did not) and replays it.
    httpx.post(
        f"{hub.url}/api/tools/{TOOL}/invoke", json={}, headers={"Authorization": f"Bearer {hub.token}"}, timeout=30
    )
    sent = len(answers) + 1
    wait_until(lambda: hub.rows() - before >= sent, 10, 0.2, f"{sent} audit rows")
    assert hub.rows() - before == sent  # one per call: none lost, none written twice
    refused = hub.pg.query(
        "SELECT actor, outcome, error_category, token_id IS NOT NULL FROM integrations_toolcall "
        "WHERE tool = %s AND outcome = 'unavailable'",
        TOOL,
    )
    assert len(refused) == len(unavailable)
    assert {row[0].split("#")[0] for row in refused} == {f"token:{AGENT}"}  # the token, resolved at replay
    assert all(row[2] == "unavailable" and row[3] for row in refused)
    assert not list(hub.outbox.glob("*")), "journals replayed are removed"


def _kill_redis(port: int) -> None:
    import redis

    with contextlib.suppress(redis.ConnectionError):  # the server closes the connection as it goes
        redis.Redis(host="127.0.0.1", port=port, socket_timeout=5).shutdown(nosave=True)
    wait_until(lambda: not redis_up(port), 10, 0.05, "redis-server to stop")


def _start_redis(port: int) -> None:
    subprocess.run(redis_start_command(port), check=True, capture_output=True, timeout=30)
    wait_until(lambda: redis_up(port), 20, 0.05, "redis-server to answer")


def test_redis_killed_under_load_every_call_answered_and_audited(outage_hub: OutageHub, report: Report):
    hub = outage_hub
    before = hub.rows()
    load = Load(hub.url, hub.token).start()
    try:
        wait_until(lambda: any(category(a) == "ok" for a in load.answers), 15, 0.05, "a first successful call")
        with report.fault("the hub's Redis killed for 3 s under tool calls"):
            _kill_redis(hub.redis_port)
            down = time.monotonic()
            time.sleep(3)
            restarting = time.monotonic()  # _start_redis returns once Redis answers: calls may work before it does
            _start_redis(hub.redis_port)
            up = time.monotonic()
            wait_until(lambda: any(a.at > up and category(a) == "ok" for a in load.answers), 15, 0.05, "calls to work")
    finally:
        answers = load.stop()
    _check_answers(answers, report, "Redis")
    stopped = [a for a in answers if down + 0.5 < a.at < restarting]
    assert stopped and all(category(a) == "unavailable" for a in stopped), [
        (round(a.at - down, 2), category(a)) for a in stopped
    ]
    wait_until(lambda: hub.rows() - before >= len(answers), 10, 0.2, f"{len(answers)} audit rows")
    assert hub.rows() - before == len(answers)


def test_redis_killed_websockets_are_told_to_reconnect_not_closed_with_1011(outage_hub: OutageHub, report: Report):
    from tests.runtime_fixtures import WSClient

    hub = outage_hub
    ws_url = hub.url.replace("http://", "ws://") + "/ws/integrations/"
    ws = WSClient(ws_url, hub.cookie, origin=hub.url)
    try:
        ws.wait_for(lambda m: m["event"] == "hello", 10)
        with report.fault("the hub's Redis killed under an open WebSocket"):
            _kill_redis(hub.redis_port)
            try:
                told = ws.wait_for(lambda m: m["event"] == "reconnect", 10)
                assert told["retry_after"] >= 1 and f"reconnect in {told['retry_after']} s" in told["reason"]
                wait_until(lambda: ws.conn.close_code is not None, 10, 0.05, "the socket to close")
                assert ws.conn.close_code == 4013, ws.conn.close_code  # "try again later", not 1011
            finally:
                _start_redis(hub.redis_port)
            # What the client is told to do works: a new socket gets its hello.
            again = wait_until(lambda: _open(ws_url, hub), 20, 0.5, "a new socket after Redis is back")
            again.wait_for(lambda m: m["event"] == "hello", 10)
            again.close()
    finally:
        ws.close()


def _open(url: str, hub: OutageHub) -> Any:
    from tests.runtime_fixtures import WSClient

    try:
        return WSClient(url, hub.cookie, origin=hub.url)
    except Exception:  # refused while the layer reconnects: try again
        return None
