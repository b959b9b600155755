"""Repeated bad tokens from one address get 429 with Retry-After: API tokens, agent tokens, the MCP endpoint."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import httpx
import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from integrations.tools.mcp import http_app
from tests import factories

pytestmark = pytest.mark.usefixtures("fresh_addresses")
LIMIT = 3


@pytest.fixture(autouse=True)
def low_limit(settings: Any) -> None:
    settings.TOKEN_FAILURE_LIMIT = LIMIT


def get(path: str, authorization: str, address: str = "10.0.0.7") -> Any:
    client = APIClient()
    return client.get(path, HTTP_AUTHORIZATION=authorization, REMOTE_ADDR=address)


def assert_throttled(response: Any) -> None:
    assert response.status_code == 429, response.content
    assert 0 < int(response["Retry-After"]) <= 15 * 60
    assert "Too many failed token authentications" in response.json()["detail"]


@pytest.mark.parametrize(
    ("path", "scheme"), [("/api/integrations", "Token"), ("/api/tools/", "Token"), ("/api/tools/", "Bearer")]
)
def test_bad_tokens_from_one_address_get_429_even_the_right_one_then(path: str, scheme: str, alice: User) -> None:
    good = f"Token {factories.api_token(alice)}"
    assert get(path, good).status_code == 200
    for n in range(LIMIT):
        assert get(path, f"{scheme} hubat_wrong-{n}").status_code == 401
    assert_throttled(get(path, f"{scheme} hubat_wrong-again"))
    assert_throttled(get(path, good))  # refused before the token is looked at: no guess can succeed now
    assert get(path, good, address="10.0.0.8").status_code == 200  # another address is not affected


def test_both_schemes_count_against_the_same_address(alice: User) -> None:
    assert get("/api/tools/", "Token wrong").status_code == 401
    assert get("/api/tools/", "Bearer hubat_wrong").status_code == 401
    assert get("/api/integrations", "Token wrong").status_code == 401
    assert_throttled(get("/api/tools/", "Bearer hubat_wrong"))


def test_a_session_from_a_throttled_address_still_works(alice: User) -> None:
    for _ in range(LIMIT):
        get("/api/integrations", "Token wrong")
    browser = APIClient()
    browser.force_login(alice)
    assert browser.get("/api/integrations", REMOTE_ADDR="10.0.0.7").status_code == 200


def test_the_mcp_endpoint_throttles_bad_bearer_tokens(db: Any) -> None:
    app = http_app()

    async def post(authorization: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("10.9.8.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8765") as client:
            return await client.post(
                "/mcp",
                json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                headers={"Authorization": authorization, "Accept": "application/json, text/event-stream"},
            )

    for n in range(LIMIT):
        assert asyncio.run(post(f"Bearer not-a-token-{n}")).status_code == 401
    throttled = asyncio.run(post("Bearer not-a-token"))
    assert throttled.status_code == 429
    assert 0 < int(throttled.headers["Retry-After"]) <= 15 * 60


def test_with_redis_down_tokens_are_still_checked_and_nothing_fails(settings: Any, alice: User) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    assert get("/api/integrations", "Token wrong").status_code == 401
    assert get("/api/integrations", f"Token {factories.api_token(alice)}").status_code == 200


@pytest.mark.parametrize(
    ("proxies", "expected"), [("0", "10.1.1.1"), ("1", "203.0.113.9"), ("2", "198.51.100.4")], ids=str
)
def test_the_client_address_behind_trusted_proxies(proxies: str, expected: str) -> None:
    """A client-sent X-Forwarded-For entry (6.6.6.6) is never taken: only what our own proxies appended."""
    script = (
        "from accounts.throttle import client_address; print(client_address({"
        "'REMOTE_ADDR': '10.1.1.1', 'HTTP_X_FORWARDED_FOR': '6.6.6.6, 198.51.100.4, 203.0.113.9'}))"
    )
    env = {**os.environ, "TRUSTED_PROXY_COUNT": proxies}
    out = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {script}"],
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings_test"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip().splitlines()[-1] == expected
