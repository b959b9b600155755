"""A worker killed with SIGKILL in the middle of a connect: the task runs again; nothing stays `connecting`.

The PostgreSQL integration goes through a loopback TCP proxy that holds its first connection open
without answering, so the connect is provably in flight when the kill lands; later connections are
forwarded to the real server.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from integrations import services
from integrations.models import EventType, Integration, IntegrationEvent
from tests.runtime_fixtures import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def process_env_overrides() -> dict[str, str]:
    # A message whose whole worker died comes back after 5 s instead of an hour.
    return {"CELERY_VISIBILITY_TIMEOUT": "5"}


class StallingProxy:
    """Forwards TCP to ``target`` except the first ``stall`` connections, which are held silent."""

    def __init__(self, target: tuple[str, int], stall: int = 1) -> None:
        self.target, self.stall = target, stall
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self.held: list[socket.socket] = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            if self.accepted <= self.stall:
                self.held.append(client)
                continue
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.closed = True
        self.listener.close()
        for s in self.held:
            s.close()


@pytest.fixture
def stalling_pg(pg_url):
    pg = urlparse(pg_url)
    proxy = StallingProxy((pg.hostname or "127.0.0.1", pg.port or 5432))
    yield proxy, pg
    proxy.close()


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _create(staff_user, proxy, pg) -> None:
    services.create_integration(
        actor=staff_user,
        id="slow_pg",
        name="Slow PG",
        kind="postgresql",
        auth_type="basic",
        config={
            "host": "127.0.0.1",
            "port": proxy.port,
            "database": pg.path.lstrip("/"),
            "username": pg.username or "postgres",
            "pool_size": 1,
            "connect_timeout": 60,
        },
        credentials={"password": "unused-with-trust-auth"},
    )


def _assert_connected_after_redelivery(proxy) -> None:
    wait_until(
        lambda: Integration.objects.get(pk="slow_pg").status == "connected",
        60,
        0.2,
        "slow_pg to be connected by the redelivered task",
    )
    assert proxy.accepted >= 2  # the second delivery opened a connection of its own
    assert not Integration.objects.filter(status="connecting").exists()
    connects = IntegrationEvent.objects.filter(integration_ref="slow_pg", type=EventType.CONNECT, ok=True)
    assert connects.count() == 1


def test_pool_process_killed_mid_connect_runs_again(clean_redis, celery_worker_factory, stalling_pg, staff_user):
    proxy, pg = stalling_pg
    worker = celery_worker_factory("killed", concurrency=1)
    _create(staff_user, proxy, pg)
    op = services.request_connect("slow_pg", actor=staff_user)
    wait_until(lambda: proxy.accepted >= 1, 30, what="the connect to reach the database")
    assert Integration.objects.get(pk="slow_pg").status == "connecting"
    (child,) = children(worker.pid)
    os.kill(child, signal.SIGKILL)

    _assert_connected_after_redelivery(proxy)
    assert services.wait_for_operation(op, 10)["state"] == "succeeded"
    assert "WorkerLostError" in worker.log_path.read_text()  # it really died mid-task


def test_whole_worker_killed_mid_connect_runs_again_on_another(
    clean_redis, celery_worker_factory, stalling_pg, staff_user
):
    proxy, pg = stalling_pg
    doomed = celery_worker_factory("doomed", concurrency=1)
    _create(staff_user, proxy, pg)
    services.request_connect("slow_pg", actor=staff_user)
    wait_until(lambda: proxy.accepted >= 1, 30, what="the connect to reach the database")
    doomed.signal(signal.SIGKILL)  # main process and pool process at once: no chance to requeue
    time.sleep(0.5)
    assert Integration.objects.get(pk="slow_pg").status == "connecting"

    celery_worker_factory("rescuer", concurrency=1)
    _assert_connected_after_redelivery(proxy)
