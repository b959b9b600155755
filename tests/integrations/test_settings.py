"""Start-up configuration: bad environment values stop manage.py with one clear line, never a traceback."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.integrations.support import bare_env, manage

GOOD_SECRET = "a-production-like-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
GOOD_CRED_KEY = "a-production-like-credentials-key-0123456789-abcdef"


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("configuration error: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        ({"DEBUG": "false", "SECRET_KEY": GOOD_SECRET, "CREDENTIALS_KEY": None}, ["CREDENTIALS_KEY must be set"]),
        ({"DEBUG": "false"}, ["SECRET_KEY must be set"]),
        ({"DEBUG": "true", "CREDENTIALS_KEY": "too-short"}, ["CREDENTIALS_KEY must be at least 32 characters"]),
        ({"DEBUG": "true", "CREDENTIALS_KEY": "   "}, ["CREDENTIALS_KEY must be at least 32 characters"]),
        ({"DEBUG": "true", "SECRET_KEY": GOOD_SECRET, "CREDENTIALS_KEY": GOOD_SECRET}, ["must differ from SECRET_KEY"]),
        ({"DEBUG": "true", "CREDENTIALS_KEY_FALLBACKS": f"{GOOD_SECRET}x,short"}, ["CREDENTIALS_KEY_FALLBACKS"]),
        ({"DEBUG": "maybe"}, ["DEBUG must be a boolean"]),
        ({"DEBUG": "true", "DATABASE_URL": "not a url"}, ["DATABASE_URL is not a database URL"]),
        (
            {"DEBUG": "true", "DATABASE_URL": "postgres://hub:s3cret-pw@db:notaport/hub"},
            ["DATABASE_URL cannot be parsed"],
        ),
        ({"DEBUG": "true", "DATABASE_URL": "ftp://files.example.com/hub"}, ["unsupported scheme 'ftp'"]),
        ({"DEBUG": "true", "DATABASE_URL": "oracle://u:p@host/db"}, ["unsupported scheme 'oracle'"]),
        ({"DEBUG": "true", "DATABASE_URL": "sqlite://"}, ["must name a SQLite file"]),
        ({"DEBUG": "true", "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/"}, ["names no database"]),
        (
            {"DEBUG": "true", "HEALTH_EVENT_RETENTION_DAYS": "two"},
            ["HEALTH_EVENT_RETENTION_DAYS must be a whole number"],
        ),
    ],
    ids=lambda value: "-".join(value) if isinstance(value, list) else None,
)
def test_bad_environment_stops_start_up_with_one_line(
    tmp_path: Path, overrides: dict[str, str | None], fragments: list[str]
):
    # Everything else valid, so each case shows the message of its own bad value.
    env = bare_env(tmp_path, CREDENTIALS_KEY=GOOD_CRED_KEY)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    result = manage("check", env=env)
    assert_one_line_error(result, *fragments)
    # A password inside a bad DATABASE_URL is never echoed back.
    assert "s3cret-pw" not in result.stderr


def test_development_key_file_is_created_once_owner_only(tmp_path: Path):
    env = bare_env(tmp_path, DEBUG="true")
    first = manage("check", env=env)
    assert first.returncode == 0, first.stderr
    key_file = tmp_path / "credentials.key"
    assert f"Created a development credentials key in {key_file} (mode 0600)" in first.stderr
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    assert len(key) >= 32

    second = manage("check", env=env)
    assert second.returncode == 0, second.stderr
    assert "Created a development credentials key" not in second.stderr
    assert key_file.read_text().strip() == key  # the same key every time: stored credentials stay readable


def test_development_key_file_is_not_used_with_debug_off(tmp_path: Path):
    (tmp_path / "credentials.key").write_text("k" * 48 + "\n")
    result = manage("check", env=bare_env(tmp_path, DEBUG="false", SECRET_KEY=GOOD_SECRET))
    assert_one_line_error(result, "CREDENTIALS_KEY must be set when DEBUG is off")


def test_production_environment_starts(tmp_path: Path):
    env = bare_env(
        tmp_path, DEBUG="false", SECRET_KEY=GOOD_SECRET, CREDENTIALS_KEY=GOOD_CRED_KEY, ALLOWED_HOSTS="hub.example.com"
    )
    result = manage("check", env=env)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "credentials.key").exists()
