"""Fixtures for the integrations app's tests, used by the agent tools (tests/integrations/tools) and agent
profiles (tests/integrations/agents): a BambooHR sandbox in this process, integrations on it and on the
real databases of this machine, agent tokens, and a REST client."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sandbox.bamboohr import BambooHRSandbox
from tests import factories

HR_WRITABLE = [
    "firstName",
    "lastName",
    "workEmail",
    "department",
    "jobTitle",
    "hireDate",
    "timeOffRequest",
    "timeOffStatus",
]


@pytest.fixture(scope="module")
def hr_sandbox() -> Iterator[BambooHRSandbox]:
    with BambooHRSandbox(api_key=os.urandom(20).hex(), employees=30, seed=11) as server:
        yield server


@pytest.fixture
def fresh_sandbox() -> Iterator[BambooHRSandbox]:
    """A sandbox of one's own, for tests that count employees or inject faults."""
    with BambooHRSandbox(api_key=os.urandom(20).hex(), employees=5, seed=3) as server:
        yield server


@pytest.fixture(autouse=True)
def _own_redis_keys(redis_url: str) -> None:
    """Circuit and rate-limit state are keyed by integration id: ids are unique per test, so nothing to do
    but make sure this run talks to its own Redis database."""
    assert redis_url


@pytest.fixture
def make_hr_integration(db: None) -> Callable[..., Any]:
    def make(
        sandbox: BambooHRSandbox, *, writable: list[str] | None = HR_WRITABLE, connect: bool = True, **config: Any
    ) -> Any:
        settings = {} if writable is None else {"writable_fields": writable}
        return factories.bamboohr(sandbox=sandbox, name="HR sandbox", config=settings | config, connect=connect)

    return make


@pytest.fixture
def make_token(db: None) -> Callable[..., tuple[Any, str]]:
    def make(*integrations: Any, access: str = "read", name: str = "agent") -> tuple[Any, str]:
        return factories.agent_token(*integrations, access=access, name=name)

    return make


@pytest.fixture
def api_client() -> Any:
    from rest_framework.test import APIClient

    return APIClient()
