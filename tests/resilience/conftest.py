"""The whole hub as real processes, the machine's services as targets of faults, and the run's summary.

``hub``: Daphne, two Celery workers, beat and the BambooHR sandbox, started together against this
run's test database and Redis database, with quick schedules (health checks dispatched every second,
hysteresis of two) so a fault and its recovery take seconds. Everything is stopped at teardown, and
PostgreSQL, MariaDB and Redis are brought back up whatever a test did to them.

``report``: what the tests injected and checked; ``pytest_terminal_summary`` prints it at the end.
"""

from __future__ import annotations

import base64
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from tests.runtime_fixtures import ManagedProcess, Sandbox, Server, free_port, port_open, session_cookie_for, wait_until

logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would bury a failure's story

# ---------------------------------------------------------------------------------------------
# The summary
# ---------------------------------------------------------------------------------------------


@dataclass
class Report:
    faults: list[tuple[str, str]] = field(default_factory=list)  # (fault, "survived" | "NOT survived" | "skipped: ...")
    requests_sent: int = 0
    requests_lost: int = 0
    leak_places: int = 0
    leaks: list[str] = field(default_factory=list)
    refusals: int = 0
    refusal_failures: int = 0
    bad_inputs: int = 0

    @contextmanager
    def fault(self, name: str) -> Iterator[None]:
        """Injects ``name`` inside the block; survived when the block (its recovery checks) passes."""
        index = len(self.faults)
        self.faults.append((name, "injected"))
        try:
            yield
        except BaseException as exc:
            if isinstance(exc, pytest.skip.Exception):
                self.faults[index] = (name, f"skipped: {exc}")
            else:
                self.faults[index] = (name, "NOT survived")
            raise
        self.faults[index] = (name, "survived")

    def skipped(self, name: str, reason: str) -> None:
        self.faults.append((name, f"skipped: {reason}"))

    def requests(self, sent: int, lost: int) -> None:
        self.requests_sent += sent
        self.requests_lost += lost

    def refused(self, checked: int, failed: int = 0) -> None:
        self.refusals += checked
        self.refusal_failures += failed

    def used(self) -> bool:
        return bool(self.faults or self.requests_sent or self.leak_places or self.refusals or self.bad_inputs)


REPORT = Report()


@pytest.fixture
def report() -> Report:
    return REPORT


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not REPORT.used():
        return
    write = terminalreporter.write_line
    terminalreporter.section("reliability suite (tests/resilience)")
    survived = sum(1 for _, state in REPORT.faults if state == "survived")
    write(f"faults injected: {sum(1 for _, s in REPORT.faults if not s.startswith('skipped'))}, survived: {survived}")
    for name, state in REPORT.faults:
        write(f"  - {name}: {state}")
    write(f"requests sent under faults and load: {REPORT.requests_sent}, lost: {REPORT.requests_lost}")
    write(f"secret leaks found: {len(REPORT.leaks)} (places searched: {REPORT.leak_places})")
    for leak in REPORT.leaks[:20]:
        write(f"  - {leak}")
    write(f"refusals checked: {REPORT.refusals}, wrongly allowed: {REPORT.refusal_failures}")
    write(f"bad inputs sent: {REPORT.bad_inputs}")
    fuzz = [
        r
        for key in ("passed", "failed", "error")
        for r in terminalreporter.stats.get(key, [])
        if "tests/integrations/api/test_fuzz.py" in getattr(r, "nodeid", "") and getattr(r, "when", "call") == "call"
    ]
    outcome = ", ".join(sorted({r.outcome for r in fuzz})) if fuzz else "not run in this session"
    write(f"schemathesis run of the API: tests/integrations/api/test_fuzz.py ({outcome})")


# ---------------------------------------------------------------------------------------------
# The machine's services: PostgreSQL, MariaDB, Redis. Always left running.
# ---------------------------------------------------------------------------------------------

REDIS_START = [
    "redis-server",
    "--daemonize",
    "yes",
    "--bind",
    "127.0.0.1",
    "-::1",
    "--port",
    "6379",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    "/var/lib/redis",
    "--logfile",
    "/var/log/redis/ci.log",
]
MARIADB_START = ["start-stop-daemon", "--start", "--oknodo", "--background", "--exec", "/usr/sbin/mariadbd"]


def pg_cluster_command(action: str) -> list[str]:
    versions = sorted(os.listdir("/etc/postgresql"))
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", action]


def postgres_up() -> bool:
    import psycopg

    try:
        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=2"):
            return True
    except psycopg.Error:
        return False


def redis_up(port: int = 6379) -> bool:
    import redis

    try:
        return bool(redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def hub_redis_port() -> int:
    """The port of the Redis server the hub uses (REDIS_URL): the one the Redis fault restarts."""
    from urllib.parse import urlparse

    return urlparse(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")).port or 6379


def redis_start_command(port: int) -> list[str]:
    """The machine's own start command for its Redis; the same settings for a private one on another port."""
    if port == 6379:
        return REDIS_START
    folder = f"/tmp/hub-redis-{port}"
    os.makedirs(folder, exist_ok=True)
    return [
        "redis-server",
        "--daemonize",
        "yes",
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        folder,
        "--logfile",
        f"{folder}/redis.log",
    ]


def mariadb_up() -> bool:
    return port_open(3306)


def _run(argv: list[str]) -> None:
    subprocess.run(argv, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)


def ensure_services() -> None:
    """Start whatever of PostgreSQL, MariaDB and Redis is down (the machine's own start commands)."""
    if not redis_up():
        os.makedirs("/var/log/redis", exist_ok=True)
        _run(REDIS_START)
        wait_until(redis_up, 30, 0.2, "redis-server to answer")
    if not postgres_up() and os.path.isdir("/etc/postgresql"):
        _run(pg_cluster_command("start"))
        wait_until(postgres_up, 60, 0.3, "PostgreSQL to accept connections")
    if not mariadb_up() and os.path.exists("/usr/sbin/mariadbd"):
        _run(MARIADB_START)
        wait_until(mariadb_up, 60, 0.3, "MariaDB to accept connections")


@pytest.fixture(scope="session", autouse=True)
def _services_restored() -> Iterator[None]:
    yield
    ensure_services()


def other_test_runs() -> list[str]:
    """Other pytest processes on this machine (a developer's or another helper's run), not ours.

    A fault on a shared server (Redis, PostgreSQL) would break them, so those tests wait for a quiet
    machine. CI runs one pytest at a time, so there they always run.
    """
    mine = {os.getpid()}
    pid = os.getppid()
    while pid > 1:
        mine.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        names = [os.path.basename(a.decode(errors="replace")) for a in argv[:4]]
        if "pytest" in names or any(names[i : i + 2] == ["-m", "pytest"] for i in range(len(names))):
            found.append(entry.name)
    return found


@pytest.fixture
def quiet_machine(report: Report, request: pytest.FixtureRequest) -> None:
    """Skip a test that restarts a shared server while another test run uses it (never the case in CI)."""
    others = other_test_runs()
    if others and os.environ.get("HUB_RESILIENCE_FORCE") != "1":
        reason = f"another pytest run is using the shared servers (pids {', '.join(others[:5])})"
        report.skipped(request.node.name, reason)
        pytest.skip(reason)


# ---------------------------------------------------------------------------------------------
# The hub
# ---------------------------------------------------------------------------------------------

# Quick schedules: a fault and its recovery take seconds. Given to every process of the hub.
HUB_ENV = {
    "HEALTH_DISPATCH_SECONDS": "1",
    "HEALTH_FAILURES_TO_ERROR": "2",
    "HEALTH_SUCCESSES_TO_RECOVER": "1",
    "CIRCUIT_FAILURE_THRESHOLD": "3",
    "CIRCUIT_COOLDOWN_SECONDS": "2",
    "CONNECTOR_MAX_RETRIES": "1",
    "CONNECTOR_RETRY_BACKOFF_MS": "100",
    "CELERY_VISIBILITY_TIMEOUT": "10",
    "TOOLS_TIMEOUT_SECONDS": "15",
}
CHECK_INTERVAL = 5  # seconds: the smallest health_check_interval an integration may have


def _alive(redis_url: str, pattern: str) -> bool:
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        return any(True for _ in client.scan_iter(pattern))
    except redis.RedisError:
        return False
    finally:
        client.close()


@dataclass
class Hub:
    web: Server
    workers: list[ManagedProcess]
    beat: ManagedProcess
    sandbox: Sandbox
    people: SimpleNamespace
    start_process: Callable[..., ManagedProcess]
    redis_url: str
    log_dir: Path
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.web.url

    def api(self, user: Any = None, **headers: str) -> httpx.Client:
        """An HTTP client on the web process; ``Authorization: Token`` for ``user`` (None: anonymous)."""
        if user is not None:
            from knox.models import AuthToken

            key = self.tokens.get(user.username)
            if key is None:
                key = self.tokens[user.username] = AuthToken.objects.create(user)[1]
            headers.setdefault("Authorization", f"Token {key}")
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, trust_env=False)

    def browser(self, user: Any) -> httpx.Client:
        """An HTTP client with the user's session cookie (dashboard and admin pages)."""
        return httpx.Client(
            base_url=self.url, headers={"Cookie": session_cookie_for(user)}, timeout=60, trust_env=False
        )

    def new_sandbox(self, employees: int = 20) -> Sandbox:
        """A BambooHR sandbox of one test's own: its counters see only that test's integration."""
        return Sandbox(self.start_process, api_key=os.urandom(20).hex(), employees=employees).start()

    def sandbox_control(self, spec: dict[str, Any], sandbox: Sandbox | None = None) -> dict[str, Any]:
        sandbox = sandbox or self.sandbox
        response = httpx.post(
            f"{sandbox.url}/__sandbox__/faults", json=spec, auth=(sandbox.api_key, "x"), timeout=10, trust_env=False
        )
        response.raise_for_status()
        return response.json()

    def sandbox_stats(self, reset: bool = False, sandbox: Sandbox | None = None) -> dict[str, Any]:
        sandbox = sandbox or self.sandbox
        response = httpx.request(
            "DELETE" if reset else "GET",
            f"{sandbox.url}/__sandbox__/stats",
            auth=(sandbox.api_key, "x"),
            timeout=10,
            trust_env=False,
        )
        response.raise_for_status()
        return response.json()

    def live_workers(self) -> list[ManagedProcess]:
        return [w for w in self.workers if w.alive()]

    def start_worker(self, name: str, concurrency: int = 2) -> ManagedProcess:
        proc = _start_worker(self.start_process, name, concurrency)
        proc.wait_ready(lambda: _alive(self.redis_url, f"hub:alive:worker:{proc.node}@*"), timeout=60)  # type: ignore[attr-defined]
        self.workers.append(proc)
        return proc

    def start_beat(self) -> ManagedProcess:
        self.beat = _start_beat(self.start_process, self.log_dir, f"beat-{time.monotonic_ns()}")
        self.beat.wait_ready(lambda: _alive(self.redis_url, "hub:alive:beat:*"), timeout=60)
        return self.beat

    def logs(self) -> dict[str, str]:
        """Everything every started process wrote, by file name."""
        return {path.name: path.read_text(errors="replace") for path in sorted(self.log_dir.glob("*.log"))}


def _start_worker(start: Callable[..., ManagedProcess], name: str, concurrency: int) -> ManagedProcess:
    node = f"{name}-{os.getpid()}-{time.monotonic_ns()}"
    proc = start(
        f"worker-{name}",
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-l",
            "INFO",
            "-P",
            "prefork",
            "-c",
            str(concurrency),
            "-n",
            f"{node}@%h",
            "--without-gossip",
            "--without-mingle",
        ],
    )
    proc.node = node  # type: ignore[attr-defined]
    return proc


def _start_beat(start: Callable[..., ManagedProcess], log_dir: Path, name: str) -> ManagedProcess:
    return start(
        name,
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "beat",
            "-l",
            "INFO",
            "-S",
            "django_celery_beat.schedulers:DatabaseScheduler",
            "--pidfile",
            str(log_dir / f"{name}.pid"),
        ],
    )


def _flush_redis(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        client.flushdb()  # this run's own database only (REDIS_URL), never FLUSHALL
    except redis.RedisError:
        pass
    finally:
        client.close()
    from integrations import redis_clients

    redis_clients.reset()  # a fresh client after the flush


@pytest.fixture(scope="session")
def _test_database(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """The test database, also when no test of the session asks pytest-django for one.

    pytest-django creates it only for tests marked ``django_db`` (or taking ``db``); the tests that
    share a hub for a whole module take neither (see ``hub_db``), so when they run alone they create
    it here, the way pytest-django would, and drop it at the end.
    """
    from django.db import connection

    created = None
    with django_db_blocker.unblock():
        if connection.settings_dict["NAME"] != connection.creation._get_test_db_name():  # noqa: SLF001
            created = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    yield
    if created is not None:
        with django_db_blocker.unblock():
            connection.creation.destroy_test_db(created, verbosity=0)


@pytest.fixture(scope="package")
def hub_db(_test_database: None, django_db_blocker: Any) -> Iterator[None]:
    """The test database for the whole package: the hub's processes outlive single tests, so rows do too.

    Tests on the hub use unique ids and take no db fixture (a transactional one would flush the users
    under the running processes). At the end the tables are emptied, as Django's TransactionTestCase
    does, so the tests after this package start clean.
    """
    from django.core.management import call_command
    from django.db import connection, connections

    with django_db_blocker.unblock():
        assert connection.settings_dict["NAME"] == connection.creation._get_test_db_name()  # noqa: SLF001
        yield
        for each in connections.all():
            each.close()  # a connection a killed server dropped must not fail the flush
        call_command("flush", interactive=False, verbosity=0)


@pytest.fixture(scope="package")
def people(hub_db: None) -> SimpleNamespace:
    """staff (manages everything), owner (a plain user with integrations), intruder (a plain user, owns nothing)."""
    from django.contrib.auth.models import User

    return SimpleNamespace(
        staff=User.objects.create_user("res-staff", password="pw-res-staff-1", is_staff=True, is_superuser=True),
        owner=User.objects.create_user("res-owner", password="pw-res-owner-1"),
        intruder=User.objects.create_user("res-intruder", password="pw-res-intruder-1"),
    )


@pytest.fixture(scope="package")
def hub(hub_db: None, people: SimpleNamespace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """Daphne, two workers (two pool processes each), beat and the sandbox, started side by side once and
    shared by the tests of this package (each test uses integrations of its own, and leaves the hub
    running: a test that kills a worker or stops beat starts a new one)."""
    from django.conf import settings
    from django.db import connection
    from django.test import override_settings

    from tests.runtime_fixtures import REPO, database_url

    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    _flush_redis(redis_url)
    log_dir = tmp_path_factory.mktemp("hub")
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings_test",
        DATABASE_URL=database_url(connection.settings_dict),
        REDIS_URL=redis_url,
        CREDENTIALS_KEY=settings.CREDENTIALS_KEY,
        DEBUG="true",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(REPO),
        **HUB_ENV,
    )
    started: list[ManagedProcess] = []

    def start(name: str, argv: list[str], **extra: str) -> ManagedProcess:
        proc = ManagedProcess(name, argv, {**env, **extra}, log_dir).start()
        started.append(proc)
        return proc

    # This process enqueues, and serves the Django test client: the same knobs as the hub's processes.
    overrides = override_settings(**{name: int(value) for name, value in HUB_ENV.items()})
    overrides.enable()
    try:
        port = free_port()
        web = start(
            "daphne", [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"]
        )
        workers = [_start_worker(start, "w1", 2), _start_worker(start, "w2", 2)]
        beat = _start_beat(start, log_dir, "beat")
        sandbox = Sandbox(start, api_key=os.urandom(20).hex(), employees=40)
        sandbox.process = start(
            "bamboohr-sandbox",
            [
                sys.executable,
                "manage.py",
                "bamboohr_sandbox",
                "--port",
                str(sandbox.port),
                "--api-key",
                sandbox.api_key,
                "--employees",
                str(sandbox.employees),
            ],
        )
        web.wait_ready(lambda: port_open(port), timeout=60)
        for worker in workers:
            worker.wait_ready(lambda w=worker: _alive(redis_url, f"hub:alive:worker:{w.node}@*"), timeout=60)
        beat.wait_ready(lambda: _alive(redis_url, "hub:alive:beat:*"), timeout=60)
        sandbox.process.wait_ready(lambda: port_open(sandbox.port), timeout=60)
        yield Hub(
            web=Server(web, port),
            workers=workers,
            beat=beat,
            sandbox=sandbox,
            people=people,
            start_process=start,
            redis_url=redis_url,
            log_dir=log_dir,
        )
    finally:
        # Nothing here needs a graceful end (logs are unbuffered; Redis is flushed below): a kill saves the
        # seconds each warm shutdown would take.
        for proc in started:
            proc.signal(signal.SIGKILL)
        for proc in started:
            proc.stop(timeout=5)
        overrides.disable()
        ensure_services()
        _flush_redis(redis_url)


# ---------------------------------------------------------------------------------------------
# Integrations on the machine's real servers
# ---------------------------------------------------------------------------------------------

MYSQL_USER = "hub_resilience"


@pytest.fixture
def mysql_account(mysql_url: str) -> Iterator[SimpleNamespace]:
    """A MariaDB account of this suite's own (its connections are ours to kill), with a known password."""
    import MySQLdb

    password = "MariaDB-Pw-" + os.urandom(6).hex()
    admin = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", database="test", autocommit=True)
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP USER IF EXISTS '{MYSQL_USER}'@'%'")
            cursor.execute(f"CREATE USER '{MYSQL_USER}'@'%%' IDENTIFIED BY %s", (password,))
            cursor.execute(f"GRANT SELECT ON test.* TO '{MYSQL_USER}'@'%'")
        yield SimpleNamespace(user=MYSQL_USER, password=password, admin=admin)
    finally:
        try:
            with admin.cursor() as cursor:
                cursor.execute(f"DROP USER IF EXISTS '{MYSQL_USER}'@'%'")
        finally:
            admin.close()


def mysql_connection_ids(admin: Any, user: str = MYSQL_USER) -> list[int]:
    with admin.cursor() as cursor:
        cursor.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s", (user,))
        return [int(row[0]) for row in cursor.fetchall()]


def postgres_config(pg_url: str, **extra: Any) -> dict[str, Any]:
    from urllib.parse import urlparse

    pg = urlparse(pg_url)
    return {
        "host": pg.hostname or "127.0.0.1",
        "port": pg.port or 5432,
        "database": pg.path.lstrip("/") or "test",
        "username": pg.username or "postgres",
        "pool_size": 2,
        "connect_timeout": 3,
        "statement_timeout_seconds": 5,
        **extra,
    }


def secret_variants(secret: str) -> list[str]:
    """The forms a secret could leak in: as is, and inside a Basic authorization header."""
    variants = [secret]
    for pair in (f"{secret}:x", f"{secret}:"):
        variants.append(base64.b64encode(pair.encode()).decode().rstrip("="))
    return variants


def hub_database_vendor() -> str:
    from django.db import connection

    return connection.vendor
