"""Production settings pass Django's deployment checks; models and migrations agree."""

from __future__ import annotations

from pathlib import Path

from tests.integrations.support import bare_env, manage
from tests.integrations.test_settings import GOOD_CRED_KEY, GOOD_SECRET


def test_check_deploy_is_clean_with_production_settings(tmp_path: Path):
    env = bare_env(
        tmp_path,
        DEBUG="false",
        SECRET_KEY=GOOD_SECRET,
        CREDENTIALS_KEY=GOOD_CRED_KEY,
        ALLOWED_HOSTS="hub.example.com",
        DATABASE_URL=f"sqlite:///{tmp_path / 'hub.sqlite3'}",
    )
    result = manage("check", "--deploy", "--fail-level", "DEBUG", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_check_deploy_flags_debug_on(tmp_path: Path):
    """The check above can fail: the same command complains about a development configuration."""
    env = bare_env(tmp_path, DEBUG="true", DATABASE_URL=f"sqlite:///{tmp_path / 'hub.sqlite3'}")
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode != 0
    assert "security.W018" in result.stderr  # DEBUG on in deployment


def test_migrations_match_the_models(tmp_path: Path):
    result = manage("makemigrations", "--check", "--dry-run", env=bare_env(tmp_path, DEBUG="true"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout
