"""Real processes for end-to-end tests: Celery workers and beat, the Daphne ASGI server, the BambooHR sandbox.

Every process gets the test database and REDIS_URL of the pytest run, writes its output to a log file
(shown when a readiness wait fails), and is killed at teardown. Use with ``transactional_db``: the
processes only see committed rows.

    def test_x(transactional_db, celery_worker_process, daphne_server, ws_client_factory, staff_user): ...
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def database_url(settings_dict: dict[str, Any]) -> str:
    """The URL of the database this test process uses (the test database), for child processes."""
    engine, name = settings_dict["ENGINE"], settings_dict["NAME"]
    if engine.endswith("sqlite3"):
        return f"sqlite:///{name}"
    scheme = {"postgresql": "postgres", "mysql": "mysql"}[engine.rsplit(".", 1)[-1]]
    auth = settings_dict.get("USER") or ""
    if settings_dict.get("PASSWORD"):
        auth += f":{settings_dict['PASSWORD']}"
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"{scheme}://{auth + '@' if auth else ''}{host}{port}/{name}"


class ManagedProcess:
    """A child process in its own process group, with a log file; ``stop()`` kills the whole group."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.argv, self.env = name, argv, env
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(
            self.argv,
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, predicate: Callable[[], Any], timeout: float = 30.0) -> None:
        def ready() -> Any:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited early (code {self.proc.returncode}):\n{self.log_tail()}")
            return predicate()

        try:
            wait_until(ready, timeout, 0.1, f"{self.name} to be ready")
        except TimeoutError:
            raise TimeoutError(f"{self.name} not ready after {timeout} s:\n{self.log_tail()}") from None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.killpg(self.pid, sig)

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
            except ProcessLookupError:
                pass
        with contextlib.suppress(ProcessLookupError, PermissionError):  # pool children, anything left in the group
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)


@pytest.fixture
def process_env_overrides() -> dict[str, str]:
    """Extra environment for every child process; override this fixture in a test module to tune settings."""
    return {}


@pytest.fixture
def process_env(transactional_db: None, redis_url: str, process_env_overrides: dict[str, str]) -> dict[str, str]:
    """Environment for a child process: the same test database, Redis, settings and keys as this run."""
    from django.conf import settings
    from django.db import connection

    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings_test",
        DATABASE_URL=database_url(connection.settings_dict),
        REDIS_URL=redis_url,
        CREDENTIALS_KEY=settings.CREDENTIALS_KEY,
        DEBUG="true",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(REPO),
    )
    env.update(process_env_overrides)
    return env


@pytest.fixture
def process_factory(process_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., ManagedProcess]]:
    """Start any command with ``process_env`` (plus overrides); every process is stopped at teardown."""
    started: list[ManagedProcess] = []

    def start(name: str, argv: list[str], **env: str) -> ManagedProcess:
        proc = ManagedProcess(name, argv, {**process_env, **env}, tmp_path).start()
        started.append(proc)
        return proc

    yield start
    for proc in reversed(started):
        proc.stop()


def _alive_key_exists(redis_url: str, pattern: str) -> bool:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        return any(True for _ in client.scan_iter(pattern))
    finally:
        client.close()


@pytest.fixture
def celery_worker_factory(
    process_factory: Callable[..., ManagedProcess], redis_url: str
) -> Callable[..., ManagedProcess]:
    """``start(name="w1", concurrency=1, **env)`` → a ready `celery worker` (prefork) process."""

    def start(name: str = "w1", concurrency: int = 1, **env: str) -> ManagedProcess:
        node = f"{name}-{os.getpid()}-{time.monotonic_ns()}"
        proc = process_factory(
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
            **env,
        )
        proc.wait_ready(lambda: _alive_key_exists(redis_url, f"hub:alive:worker:{node}@*"), timeout=40)
        proc.node = node  # type: ignore[attr-defined]
        return proc

    return start


@pytest.fixture
def celery_worker_process(celery_worker_factory: Callable[..., ManagedProcess]) -> ManagedProcess:
    """One Celery worker with two pool processes."""
    return celery_worker_factory("worker", concurrency=2)


@pytest.fixture
def celery_beat_process(
    process_factory: Callable[..., ManagedProcess], redis_url: str, tmp_path: Path
) -> ManagedProcess:
    """Celery beat with the database scheduler (dispatches health checks every HEALTH_DISPATCH_SECONDS)."""
    proc = process_factory(
        "beat",
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
            str(tmp_path / "beat.pid"),
        ],
    )
    proc.wait_ready(lambda: _alive_key_exists(redis_url, "hub:alive:beat:*"), timeout=40)
    return proc


class Server:
    def __init__(self, process: ManagedProcess, port: int) -> None:
        self.process, self.port = process, port
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}"


@pytest.fixture
def daphne_server(process_factory: Callable[..., ManagedProcess]) -> Server:
    """The real ASGI server (HTTP + WebSockets) on a free loopback port."""
    port = free_port()
    proc = process_factory(
        "daphne", [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"]
    )
    proc.wait_ready(lambda: port_open(port), timeout=30)
    return Server(proc, port)


class Sandbox:
    """The BambooHR sandbox process; ``stop()`` and ``start()`` keep the same port and key."""

    def __init__(self, factory: Callable[..., ManagedProcess], api_key: str, employees: int) -> None:
        self.factory, self.api_key, self.employees = factory, api_key, employees
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.url}/api/v1/"
        self.process: ManagedProcess | None = None

    def start(self) -> Sandbox:
        self.process = self.factory(
            "bamboohr-sandbox",
            [
                sys.executable,
                "manage.py",
                "bamboohr_sandbox",
                "--port",
                str(self.port),
                "--api-key",
                self.api_key,
                "--employees",
                str(self.employees),
            ],
        )
        self.process.wait_ready(lambda: port_open(self.port), timeout=60)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            wait_until(lambda: not port_open(self.port), 10, what="the sandbox port to close")


@pytest.fixture
def bamboohr_sandbox(process_factory: Callable[..., ManagedProcess]) -> Sandbox:
    return Sandbox(process_factory, api_key="sandbox-key-" + os.urandom(6).hex(), employees=50).start()


@pytest.fixture
def celery_eager() -> Iterator[None]:
    """Tasks run inline when enqueued (at commit), results stored in Redis: no worker process needed."""
    from config.celery import app

    # The settings are set under the names config/settings.py gives them (CELERY_ namespace): with a
    # namespace, Celery 5.6 reads those first, and an assignment to app.conf.task_always_eager is not seen.
    keys = ("CELERY_TASK_ALWAYS_EAGER", "CELERY_TASK_STORE_EAGER_RESULT")
    before = {key: app.conf.get(key) for key in keys}
    app.conf.update(dict.fromkeys(keys, True))
    assert app.conf.task_always_eager and app.conf.task_store_eager_result
    yield
    app.conf.update(before)


@pytest.fixture
def clean_redis(redis_url: str) -> Iterator[None]:
    """FLUSHDB of this run's own Redis database (REDIS_URL), before the test."""
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    from integrations import redis_clients

    redis_clients.reset()  # a fresh client after the flush
    yield


class WSClient:
    """A WebSocket client on a thread: every JSON message lands in a queue; ``wait_for`` picks one."""

    def __init__(self, url: str, cookie: str | None, origin: str) -> None:
        from websockets.sync.client import connect

        headers = {"Cookie": cookie} if cookie else {}
        self.conn = connect(url, origin=origin, additional_headers=headers, open_timeout=10, proxy=None, legacy=True)
        self.messages: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for raw in self.conn:
                self.messages.put((time.time(), json.loads(raw)))
        except Exception:  # closed
            return

    def mark(self) -> int:
        """A position in the history: ``wait_for(..., since=ws.mark())`` only matches later messages."""
        self._drain()
        return len(self.seen)

    def _drain(self) -> None:
        while True:
            try:
                received_at, message = self.messages.get_nowait()
            except queue.Empty:
                return
            message["_received_at"] = received_at
            self.seen.append(message)

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 20.0, since: int = 0
    ) -> dict[str, Any]:
        """The first message (from position ``since`` of the history) that matches, waiting for new ones."""
        self._drain()
        for message in self.seen[since:]:
            if predicate(message):
                return message
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching WebSocket event in {timeout} s; last seen: {self.seen[-5:]}")
            try:
                received_at, message = self.messages.get(timeout=remaining)
            except queue.Empty:
                continue
            message["_received_at"] = received_at
            self.seen.append(message)
            if predicate(message):
                return message

    def close(self) -> None:
        self.conn.close()


def session_cookie_for(user: Any) -> str:
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


@pytest.fixture
def ws_client_factory(daphne_server: Server) -> Iterator[Callable[..., WSClient]]:
    """``connect(user_or_None)`` → a WSClient on /ws/integrations/ logged in as that user."""
    clients: list[WSClient] = []

    def connect(user: Any = None) -> WSClient:
        cookie = session_cookie_for(user) if user is not None else None
        client = WSClient(f"{daphne_server.ws_url}/ws/integrations/", cookie, origin=daphne_server.url)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()


@pytest.fixture
def staff_user(transactional_db: None) -> Any:
    from tests import factories

    return factories.staff("runtime-staff", password="pw-runtime-staff-1")
