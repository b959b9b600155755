"""`scripts/run` on a machine with no hub data: it sets up, prints the login, and serves the admin."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import httpx
import pytest

from tests.integrations.support import bare_env
from tests.runtime_fixtures import ManagedProcess, free_port, port_open, wait_until

pytestmark = pytest.mark.slow


def test_run_script_serves_the_admin_and_prints_how_to_log_in(tmp_path: Path, redis_url: str):
    port = free_port()
    data = tmp_path / "data"
    # Nothing of the hub's environment: development mode, SQLite in a fresh data folder, no key.
    env = bare_env(
        data,
        PORT=str(port),
        SANDBOX_PORT=str(free_port()),
        REDIS_URL=redis_url,
        HUB_SEED_DEMO="0",
        HUB_DEV="1",  # the development requirements scripts/test installed: no second pip run
        WORKER_CONCURRENCY="1",
    )
    run = ManagedProcess("run", ["scripts/run"], env, tmp_path).start()
    try:
        run.wait_ready(lambda: port_open(port), timeout=120)
        log = run.log_tail(400)
        login = re.search(rf"Log in at http://127\.0\.0\.1:{port}/admin/ as admin / (\S+)", log)
        assert login, log
        assert f"Created a development credentials key in {data / 'credentials.key'}" in log
        assert stat.S_IMODE((data / "credentials.key").stat().st_mode) == 0o600
        assert stat.S_IMODE((data / "dev-admin-password").stat().st_mode) == 0o600

        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=20) as client:
            assert client.get("/static/admin/css/base.css").status_code == 200  # the admin is styled
            page = client.get("/admin/login/?next=/admin/")
            assert page.status_code == 200
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
            response = client.post(
                "/admin/login/?next=/admin/",
                data={"csrfmiddlewaretoken": token, "username": "admin", "password": login.group(1), "next": "/admin/"},
                headers={"Referer": f"{base}/admin/login/"},
                follow_redirects=True,
            )
            assert response.status_code == 200
            assert "Site administration" in response.text
            assert 'href="/admin/integrations/integration/"' in response.text
    finally:
        run.stop()
    wait_until(lambda: not port_open(port), timeout=20, what="the web server to stop")
