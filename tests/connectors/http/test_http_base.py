"""The HTTP family's choke point: URL policy, Retry-After, and how every HTTP outcome becomes a
ConnectorError, exercised over real HTTP against the BambooHR sandbox's fault controls."""

from __future__ import annotations

import email.utils
import socket
import time
from collections.abc import Callable

import pytest

from connectors.circuit import MemoryCircuitBreaker
from connectors.errors import Category, ConnectorError
from connectors.http.bamboohr import BambooHRConnector
from connectors.http.base import check_base_url, is_loopback_host, parse_retry_after
from connectors.metrics import MemoryMetrics
from sandbox.bamboohr import BambooHRSandbox
from tests.sandbox.bamboohr_fixtures import fast_runtime

Make = Callable[..., BambooHRConnector]


# --- pure helpers --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [("3", 3.0), ("1.5", 1.5), ("-4", 0.0), (" 7 ", 7.0), ("", None), (None, None), ("soon", None), ("inf", None)],
)
def test_parse_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after(email.utils.formatdate(now + 12, usegmt=True), now=now) == pytest.approx(12, abs=1)
    assert parse_retry_after(email.utils.formatdate(now - 60, usegmt=True), now=now) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480.0 - 5) == pytest.approx(5)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True), ("localhost", True)]
    + [("10.0.0.1", False), ("example.com", False), ("127.0.0.1.nip.io", False), ("0.0.0.0", False)],
)
def test_is_loopback_host(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_check_base_url() -> None:
    assert check_base_url("https://acme.bamboohr.com/api/v1") == "https://acme.bamboohr.com/api/v1/"
    assert check_base_url("http://127.0.0.1:8765/api/v1/", allow_insecure_loopback=True).startswith("http://")
    for url, allow in [
        ("http://acme.bamboohr.com/api/v1/", True),  # plain HTTP to a real host: never
        ("http://127.0.0.1:8765/api/v1/", False),  # loopback, but not allowed by the config
        ("ftp://acme.bamboohr.com/", False),
        ("https://user:pass@acme.bamboohr.com/", False),
        ("https://acme.bamboohr.com/api/v1/?key=1", False),
        ("acme.bamboohr.com/api/v1", False),
    ]:
        with pytest.raises(ValueError):
            check_base_url(url, allow_insecure_loopback=allow)


# --- status -> error mapping over real HTTP ----------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "category", "permanent"),
    [
        (400, Category.INVALID, True),
        (401, Category.AUTH, True),
        (403, Category.PERMISSION, True),
        (404, Category.NOT_FOUND, True),
        (406, Category.INVALID, True),
        (409, Category.CONFLICT, True),
        (412, Category.INVALID, True),
        (422, Category.INVALID, True),
        (429, Category.RATE_LIMITED, False),
        (500, Category.UNKNOWN, False),
        (502, Category.UNKNOWN, False),
        (503, Category.UNAVAILABLE, False),  # BambooHR's throttle is 429 since 16 September 2026
        (504, Category.UNKNOWN, False),
    ],
)
def test_status_mapping_and_retries(
    make_bamboohr: Make, bamboohr_server: BambooHRSandbox, status: int, category: Category, permanent: bool
) -> None:
    bamboohr_server.fail(status)
    with pytest.raises(ConnectorError) as info:
        make_bamboohr(runtime=fast_runtime(max_retries=2)).get_employee(1)
    error = info.value
    assert (error.category, error.permanent, error.status_code) == (category, permanent, status)
    assert f"HTTP {status}" in error.message and "<html>" not in error.message  # HTML bodies are not quoted
    # Permanent answers are not retried; transient ones are, a bounded number of times.
    assert bamboohr_server.requests == (1 if permanent else 3)


def test_transient_failure_then_success(make_bamboohr: Make, bamboohr_server: BambooHRSandbox) -> None:
    bamboohr_server.fail(502, count=2)
    metrics = MemoryMetrics()
    runtime = fast_runtime(max_retries=3)
    runtime.metrics = metrics
    assert make_bamboohr(runtime=runtime).get_employee(2)["id"] == "2"
    assert bamboohr_server.requests == 3
    snapshot = metrics.snapshot(runtime.key)  # every attempt went through the runtime
    assert (snapshot["total"], snapshot["failed"], snapshot["successful"]) == (3, 2, 1)
    assert "HTTP 502" in snapshot["last_error"]


def test_open_circuit_fails_fast_without_a_request(make_bamboohr: Make, bamboohr_server: BambooHRSandbox) -> None:
    bamboohr_server.fail(500)
    runtime = fast_runtime(max_retries=0)
    runtime.circuit = MemoryCircuitBreaker(threshold=2, cooldown=60)
    connector = make_bamboohr(runtime=runtime)
    for _ in range(2):
        with pytest.raises(ConnectorError):
            connector.get_employee(1)
    sent = bamboohr_server.requests
    with pytest.raises(ConnectorError) as info:
        connector.get_employee(1)
    assert info.value.category == Category.UNAVAILABLE and info.value.retry_after
    assert bamboohr_server.requests == sent


def test_timeout(make_bamboohr: Make, bamboohr_server: BambooHRSandbox) -> None:
    bamboohr_server.slow(0.6)
    started = time.monotonic()
    with pytest.raises(ConnectorError) as info:
        make_bamboohr(timeout_seconds=0.2, runtime=fast_runtime(max_retries=0)).get_employee(1)
    assert info.value.category == Category.TIMEOUT and not info.value.permanent
    assert time.monotonic() - started < 0.55


def test_connection_refused_is_network(make_bamboohr: Make) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        connector = make_bamboohr(base_url=f"http://127.0.0.1:{port}/api/v1/", runtime=fast_runtime(max_retries=1))
        with pytest.raises(ConnectorError) as info:
            connector.get_employee(1)
    assert info.value.category == Category.NETWORK and not info.value.permanent


# --- writes that must not happen twice ---------------------------------------------------------------
def test_create_is_not_retried_after_a_5xx(make_bamboohr: Make, bamboohr_server: BambooHRSandbox) -> None:
    bamboohr_server.fail(500, count=1)
    with pytest.raises(ConnectorError) as info:
        make_bamboohr().create_employee({"firstName": "Once", "lastName": "Only"})
    assert info.value.permanent and "outcome is unknown" in info.value.message
    assert bamboohr_server.requests == 1


def test_create_after_a_timeout_is_not_repeated(make_bamboohr: Make, bamboohr_server: BambooHRSandbox) -> None:
    before = len(bamboohr_server.company.employees)
    bamboohr_server.slow(0.4)
    with pytest.raises(ConnectorError) as info:
        make_bamboohr(timeout_seconds=0.15).create_employee({"firstName": "Slow", "lastName": "Write"})
    assert info.value.category == Category.TIMEOUT and info.value.permanent
    time.sleep(0.5)  # the server did finish the write: a retry would have made a second employee
    assert bamboohr_server.stats()["by_route"]["create-employee"] == 1
    assert len(bamboohr_server.company.employees) == before + 1


def test_create_is_retried_after_a_throttle_answer(make_bamboohr: Make, bamboohr_server: BambooHRSandbox) -> None:
    bamboohr_server.fail(503, count=1)  # a request refused as unavailable was not processed: safe to send again
    new_id = make_bamboohr().create_employee({"firstName": "Second", "lastName": "Try"})
    assert new_id.isdigit() and bamboohr_server.requests == 2


def test_provider_text_never_carries_our_secrets(make_bamboohr: Make) -> None:
    connector = make_bamboohr(
        credentials={"api_key": "key-1234567890", "oauth_token": {"access_token": "tok-abcdef", "expires_at": 1}}  # type: ignore[dict-item]
    )
    echoed = connector._scrub("denied for key-1234567890 (token tok-abcdef)")
    assert echoed == "denied for *** (token ***)"
