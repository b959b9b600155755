"""Shared fixtures. Area-specific fixtures live in their own modules, listed in pytest_plugins."""

from __future__ import annotations

import os

import pytest

pytest_plugins: list[str] = ["tests.runtime_fixtures", "tests.sandbox.bamboohr_fixtures"]


@pytest.fixture
def redis_url() -> str:
    return os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def pg_url() -> str:
    return os.environ.get("PG_URL", "postgres://postgres@127.0.0.1:5432/test")


@pytest.fixture
def mysql_url() -> str:
    return os.environ.get("MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
