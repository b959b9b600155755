"""Where connectors may point, from the environment (issue 14): loopback is refused with DEBUG off and allowed
with it on, HUB_ALLOWED_TARGETS opens one host:port, SQLite files are refused in production until an operator
names a folder, and a bad list entry stops start-up with one line. Each case runs manage.py in a fresh process
with a clean environment, as an operator would.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integrations.support import bare_env, manage

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "a-production-like-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "CREDENTIALS_KEY": "a-production-like-credentials-key-0123456789-abcdef",
}

# Validate configs the way every create and update does, and print the outcome per target.
SCRIPT = """
from connectors.errors import ConfigError
from django.conf import settings
from integrations import services
targets = [
    ("postgresql", {"host": "127.0.0.1", "port": 5432, "database": "x"}),
    ("postgresql", {"host": "localhost", "port": 6379, "database": "x"}),
    ("sqlite", {"path": str(settings.DATA_DIR / "sqlite" / "hr.sqlite3")}),
]
for kind, config in targets:
    try:
        services.validate_config(kind, config)
        print(kind, "accepted")
    except ConfigError as exc:
        print(kind, "refused:", exc.message)
"""


def _outcomes(tmp_path: Path, **env: str) -> list[str]:
    result = manage("shell", "-c", SCRIPT, env=bare_env(tmp_path, **env))
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line.startswith(("postgresql ", "sqlite "))]


def test_debug_off_refuses_loopback_and_every_sqlite_file(tmp_path: Path) -> None:
    outcomes = _outcomes(tmp_path, **PRODUCTION)
    assert [line.split(":")[0] for line in outcomes] == ["postgresql refused", "postgresql refused", "sqlite refused"]
    assert "loopback" in outcomes[0] and "(resolves to" in outcomes[1]
    assert "SQLITE_ALLOWED_DIRS" in outcomes[2]


def test_debug_on_allows_loopback_and_the_demo_folder(tmp_path: Path) -> None:
    assert _outcomes(tmp_path, DEBUG="true") == ["postgresql accepted", "postgresql accepted", "sqlite accepted"]


def test_operator_settings_open_one_port_and_one_folder(tmp_path: Path) -> None:
    outcomes = _outcomes(
        tmp_path,
        **PRODUCTION,
        HUB_ALLOWED_TARGETS="127.0.0.1:5432, [::1]:5432",
        SQLITE_ALLOWED_DIRS=str(tmp_path / "sqlite"),
    )
    assert outcomes[0] == "postgresql accepted" and outcomes[2] == "sqlite accepted"
    assert outcomes[1].startswith("postgresql refused") and "loopback" in outcomes[1]  # Redis's port stays shut


@pytest.mark.parametrize(
    ("name", "value"), [("HUB_ALLOWED_TARGETS", "10.0.0.0/33"), ("HUB_BLOCKED_TARGETS", "db.example.com")]
)
def test_a_bad_target_entry_stops_start_up_with_one_line(tmp_path: Path, name: str, value: str) -> None:
    result = manage("check", env=bare_env(tmp_path, **PRODUCTION, **{name: value}))
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"configuration error: {name}: ") and "Traceback" not in lines[0]
