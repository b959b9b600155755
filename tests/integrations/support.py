"""Helpers for the foundation tests: raw ciphertext, and manage.py in a child process on the test database."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from django.db import connection

from tests.runtime_fixtures import REPO, database_url

OLD_KEY = "old-credentials-key-for-rotation-tests-0123456789"
WRONG_KEY = "wrong-credentials-key-for-rotation-tests-987654321"


def raw_credentials() -> dict[str, bytes | None]:
    """Integration id -> the ciphertext exactly as stored, bypassing the field's decryption."""
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {qn('id')}, {qn('credentials')} FROM {qn('integrations_integration')} ORDER BY 1")
        return {pk: None if raw is None else bytes(raw) for pk, raw in cursor.fetchall()}


def child_env(**overrides: str) -> dict[str, str]:
    """The environment of a child manage.py: real settings module, this run's test database."""
    from django.conf import settings

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "true",
        "CREDENTIALS_KEY": settings.CREDENTIALS_KEY,
        "DATABASE_URL": database_url(connection.settings_dict),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("OLD_CREDENTIALS_KEY", None)
    env.pop("CREDENTIALS_KEY_FALLBACKS", None)
    env.update(overrides)
    return env


def manage(*args: str, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def bare_env(tmp_path: Any, **overrides: str) -> dict[str, str]:
    """An environment with none of the hub's variables, data in ``tmp_path``: settings as on a new machine."""
    hub_vars = {
        "DEBUG",
        "SECRET_KEY",
        "CREDENTIALS_KEY",
        "CREDENTIALS_KEY_FALLBACKS",
        "DATABASE_URL",
        "ALLOWED_HOSTS",
        "DJANGO_SETTINGS_MODULE",
        "HUB_DATA_DIR",
        "OLD_CREDENTIALS_KEY",
    }
    env = {k: v for k, v in os.environ.items() if k not in hub_vars}
    env.update({"HUB_DATA_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"})
    env.update(overrides)
    return env
