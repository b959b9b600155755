"""Users, and a way to see everything the hub's database holds."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection

from accounts import throttle
from tests import factories


@pytest.fixture
def alice(db: Any) -> User:
    return factories.staff("alice")


@pytest.fixture
def bob(db: Any) -> User:
    return factories.staff("bob")


@pytest.fixture
def fresh_addresses() -> None:
    """The token failure counters of the addresses these tests use start at zero."""
    for address in ("127.0.0.1", "10.0.0.7", "10.0.0.8", "10.9.8.7"):
        throttle.reset(address)


def dump_database() -> str:
    """Every value of every table of the hub's database (found by introspection: any backend), as text."""
    out: list[str] = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        value = bytes(value).decode("latin-1")
                    out.append(f"{table}:{value}")
    return "\n".join(out)
