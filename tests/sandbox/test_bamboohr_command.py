"""``manage.py bamboohr_sandbox``: a real process other tests (e2e, resilience) and demos drive over HTTP."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

REPO = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(DEBUG="1", HUB_DATA_DIR=str(tmp_path), PYTHONUNBUFFERED="1")
    env.pop("BAMBOOHR_SANDBOX_API_KEY", None)
    return env


def _start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "manage.py", "bamboohr_sandbox", "--port", "0", *args],
        cwd=REPO,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _banner(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    lines = []
    while not lines or "Ctrl-C" not in lines[-1]:
        line = process.stdout.readline()
        assert line, "".join(lines) or "the sandbox exited without output"
        lines.append(line)
    return "".join(lines)


def _stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    try:
        rest, _ = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:  # pragma: no cover - only when the command hangs
        process.kill()
        raise
    return rest


def test_command_serves_and_takes_faults_over_http(tmp_path: Path) -> None:
    key = "command-test-key-0123456789"
    # Two processes started together (Django's start-up is the slow part): a chosen key and a made-up one.
    chosen = _start(tmp_path, "--api-key", key, "--employees", "25")
    generated = _start(tmp_path / "other", "--employees", "1")
    try:
        banner = _banner(chosen)
        url = re.search(r"at (http://127\.0\.0\.1:\d+/api/v1/)", banner)
        assert url and "/api/gateway.php/acme/v1/" in banner, banner
        assert key not in banner  # a key the user chose is not echoed
        url_text = url.group(1)
        with httpx.Client(auth=(key, "x"), headers={"Accept": "application/json"}, timeout=10) as client:
            report = client.post(url_text + "reports/custom", params={"format": "json"}, json={"fields": ["lastName"]})
            assert len(report.json()["employees"]) == 25
            root = url_text.removesuffix("/api/v1/")
            faults = client.post(root + "/__sandbox__/faults", json={"throttle": {"retry_after": 7, "count": 1}})
            assert faults.is_success
            throttled = client.get(url_text + "employees/1")
            assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "7"
            assert client.get(url_text + "employees/1").status_code == 200
            assert client.get(root + "/__sandbox__/stats").json()["by_status"] == {"200": 2, "429": 1}

        other = _banner(generated)
        made_up = re.search(r"API key: ([0-9a-f]{40})", other)
        other_url = re.search(r"at (http://\S+/api/v1/)", other)
        assert made_up and other_url, other
        assert httpx.get(other_url.group(1) + "employees/1", auth=(made_up.group(1), "x")).status_code == 200
    finally:
        rest = _stop(chosen)
        _stop(generated)
    assert chosen.returncode == 0 and "stopped" in rest


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"port": 70000}, "--port must be between 0 and 65535"),
        ({"employees": -3}, "--employees must be between"),
        ({"api_key": "short"}, "--api-key must be at least 8 characters"),
    ],
)
def test_bad_arguments_are_clear_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("bamboohr_sandbox", **options)


def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(CommandError, match=f"cannot start the sandbox on 127.0.0.1:{port}"):
            call_command("bamboohr_sandbox", port=port, employees=1, api_key="long-enough-key")


def test_python_dash_m_entry_point(tmp_path: Path) -> None:
    """``python -m sandbox.bamboohr``: the same server without Django (the benchmark uses it)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.bamboohr", "--port", "0", "--employees", "3"],
        cwd=REPO,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = process.stdout.readline() + process.stdout.readline()
        url, key = re.search(r"at (http://\S+/api/v1/)", lines), re.search(r"API key: (\w+)", lines)
        assert url and key, lines
        assert httpx.get(url.group(1) + "employees/3", auth=(key.group(1), "x")).status_code == 200
    finally:
        _stop(process)
    assert process.returncode == 0
