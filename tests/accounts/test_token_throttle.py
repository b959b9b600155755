"""Repeated bad tokens from one address get 429 with Retry-After: API tokens, agent tokens, the MCP endpoint."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from django.contrib.auth.models import User
from knox.models import AuthToken
from rest_framework.test import APIClient

from integrations.tools.mcp import http_app

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
    good = f"Token {AuthToken.objects.create(alice)[1]}"
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
