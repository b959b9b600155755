"""Fixtures for talking to an in-process BambooHR sandbox (no Django needed).

``bamboohr_server``: a sandbox shared by the tests of one module, faults cleared and counters reset
for each test. ``make_bamboohr``: a connected-on-demand BambooHRConnector pointed at a sandbox.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors.http.bamboohr import BambooHRConfig, BambooHRConnector
from connectors.retry import RetryPolicy
from connectors.runtime import Runtime
from sandbox.bamboohr import BambooHRSandbox
from tests.connectors.policies import LOOPBACK

API_KEY = "0123456789abcdef0123456789abcdef01234567"  # 40 hex characters, like BambooHR's keys


def fast_runtime(key: str | None = None, **retry: Any) -> Runtime:
    """Short, jitter-free backoff so that retry tests take milliseconds."""
    policy = RetryPolicy(**{"initial_backoff": 0.01, "max_backoff": 0.05, "jitter": 0.0, "max_retries": 2, **retry})
    return Runtime(key=key or f"test-bamboohr-{uuid.uuid4().hex[:8]}", retry=policy, policy=LOOPBACK)


@pytest.fixture(scope="module")
def _bamboohr_module_server() -> Iterator[BambooHRSandbox]:
    with BambooHRSandbox(api_key=API_KEY, employees=60, seed=7) as server:
        yield server


@pytest.fixture
def bamboohr_server(_bamboohr_module_server: BambooHRSandbox) -> Iterator[BambooHRSandbox]:
    _bamboohr_module_server.clear_faults()
    _bamboohr_module_server.reset_stats()
    yield _bamboohr_module_server
    _bamboohr_module_server.clear_faults()


@pytest.fixture
def make_bamboohr(bamboohr_server: BambooHRSandbox) -> Iterator[Callable[..., BambooHRConnector]]:
    made: list[BambooHRConnector] = []

    def make(
        server: BambooHRSandbox | None = None,
        *,
        credentials: dict[str, str] | None = None,
        runtime: Runtime | None = None,
        auth_type: str | None = None,
        **config: Any,
    ) -> BambooHRConnector:
        server = server or bamboohr_server
        settings = {"subdomain": server.company.name, "base_url": server.url, "allow_insecure_loopback": True}
        settings.update(config)
        connector = BambooHRConnector(
            BambooHRConfig.model_validate(settings),
            {"api_key": server.api_key} if credentials is None else credentials,
            runtime or fast_runtime(),
            auth_type=auth_type,
        )
        made.append(connector)
        return connector

    yield make
    for connector in made:
        connector.disconnect()
