"""Nobody let in: every URL of config.urls (walked from the resolver, so a new view is covered the day it is
added), the WebSocket and the MCP endpoint, as an anonymous visitor and as another, plain user.

"Refused" means the final answer (after redirects) is a login page or a 4xx; a plain user may see
pages that are not about one integration (their own empty list, the API docs), but never a word of
an integration that is neither theirs nor shared with them.
"""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from django.urls import URLResolver, get_resolver

from tests.resilience.conftest import Hub, Report

PRIVATE_ID = "private_hr"
PRIVATE_NAME = "Private HR Vault"
PRIVATE_KEY = "private-ApiKey-4f1c9e0b7d"

# Pages anyone may open, and why.
PUBLIC = {
    r"^/accounts/(login|logout|password_reset|password_reset/done|reset/[^/]+/[^/]+|reset/done)/$": "signing in",
    r"^/admin/(login|logout)/$": "the admin's sign-in",
    r"^/api-auth/(login|logout)/$": "the browsable API's sign-in",
    r"^/healthz$": "liveness for load balancers: database, Redis, worker counts, no integration data",
}
LOGIN_PAGES = ("/accounts/login/", "/admin/login/", "/api-auth/login/")
REFUSED_STATUS = {400, 401, 403, 404, 405}

SAMPLES = {
    "integration_id": PRIVATE_ID,
    "pk": PRIVATE_ID,
    "object_id": PRIVATE_ID,
    "content_type_id": "1",
    "id": "1",
    "name": "query_hris",
    "action": "test",
    "kind": "bamboohr",
    "format": "json",
    "uidb64": "MQ",
    "token": "set-password",
    "url": "nowhere/",
    "app_label": "integrations",
    "path": f"integrations/{PRIVATE_ID}/x",
    "page": "toolcall/1/change/",  # the old admin addresses of the tools' models, redirected to /admin/tools/
    "delivery_id": "1",  # an outbound webhook delivery (its replay)
}


def _group_end(regex: str, start: int) -> int:
    depth = 0
    i = start
    while i < len(regex):
        if regex[i] == "\\":
            i += 2
            continue
        if regex[i] == "(":
            depth += 1
        elif regex[i] == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError(regex)


def example_path(regex: str, operation_id: str) -> str:
    """A concrete path that the pattern matches, with our samples for its named groups."""
    out = ""
    i = 0
    while i < len(regex):
        named = re.match(r"\(\?P<(\w+)>", regex[i:])
        if named:
            end = _group_end(regex, i)
            name, body = named.group(1), regex[i + named.end() : end]
            value = operation_id if name == "operation_id" else SAMPLES[name]
            if body == "[0-9]+":
                value = "1"
            elif name == "format" and body.startswith("\\."):
                value = ".json"
            out += value
            i = end + 1
            continue
        if regex.startswith("/?", i):
            out += "" if regex.startswith("\\.", i + 2) else "/"
            i += 2
        elif regex.startswith("\\Z", i) or regex[i] in "^$":
            i += 2 if regex[i] == "\\" else 1
        elif regex[i] == "\\":
            out += regex[i + 1]
            i += 2
        else:
            out += regex[i]
            i += 1
    return "/" + out


def url_patterns() -> Iterator[str]:
    def walk(patterns: list[Any], prefix: str) -> Iterator[str]:
        for pattern in patterns:
            regex = pattern.pattern.regex.pattern.lstrip("^")
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + regex)
            else:
                yield prefix + regex

    return walk(get_resolver().url_patterns, "")


def _public(path: str) -> bool:
    return any(re.match(rx, path) for rx in PUBLIC)


def _refused(response: Any) -> bool:
    final = response.redirect_chain[-1][0] if getattr(response, "redirect_chain", None) else ""
    return response.status_code in REFUSED_STATUS or final.split("?")[0].endswith(LOGIN_PAGES)


@pytest.fixture
def private(db: None, django_user_model: Any) -> Any:
    from integrations import operation_store, services

    owner = django_user_model.objects.create_user("walk-owner", password="pw-walk-owner-1")
    integration = services.create_integration(
        actor="test setup",  # as the hub (seed_demo) makes it: exactly this id (a user would get a suffix)
        id=PRIVATE_ID,
        name=PRIVATE_NAME,
        kind="bamboohr",
        auth_type="api_key",
        config={"subdomain": "acme"},
        credentials={"api_key": PRIVATE_KEY},
        owner=owner,
    )
    operation_id = str(uuid.uuid4())
    operation_store.remember_operation(operation_id, "test", PRIVATE_ID, "walk-owner")
    return integration, operation_id


@pytest.fixture
def private_profile(private: Any) -> Any:
    """An agent profile with a grant on the private integration: its pages name the integration."""
    from integrations.agents.models import AgentProfile, GrantAccess, ProfileGrant

    profile = AgentProfile.objects.create(name="private agent", description="reads the vault")
    ProfileGrant.objects.create(profile=profile, integration=private[0], access=GrantAccess.WRITE)
    return profile


def test_every_url_refuses_anonymous_and_other_users(private, private_profile, django_user_model, report: Report):
    from django.test import Client
    from knox.models import AuthToken

    from integrations.models import Integration, IntegrationEvent

    integration, operation_id = private
    paths = {example_path(rx, operation_id) for rx in url_patterns()}
    assert len(paths) > 100 and f"/integrations/{PRIVATE_ID}" in paths, paths
    # The agent profiles' routes with the private profile's id (the resolver walk puts 1 for an <int:pk>).
    profile_paths = [f"/agents/{private_profile.pk}"] + [
        f"/api/agent-profiles/{private_profile.pk}{tail}" for tail in ("", "/quota", "/tokens")
    ]
    assert {"/agents", "/api/agent-profiles/", "/admin/integrations/toolcall/1/change/"} <= paths, paths
    paths = sorted(paths | set(profile_paths))

    intruder = django_user_model.objects.create_user("walk-intruder", password="pw-walk-intruder-1")
    token = AuthToken.objects.create(intruder)[1]
    # A 5xx is a finding of its own (a traceback instead of an answer): collected, not raised.
    client = Client(raise_request_exception=False)
    other = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Token {token}")
    other.force_login(intruder)
    staff = Client()
    staff.force_login(django_user_model.objects.create_user("walk-staff", is_staff=True, is_superuser=True))

    wrong: list[str] = []
    checked = 0
    for path in paths:
        if _public(path):
            continue
        for method in ("get", "post", "patch", "delete"):
            for who, user_client in (("anonymous", client), ("other user", other)):
                response = getattr(user_client, method)(path, follow=True)
                checked += 1
                if response.status_code >= 500:
                    wrong.append(f"{who} {method.upper()} {path} -> {response.status_code} (server error)")
                    continue
                about_private = (
                    PRIVATE_ID in path
                    or path in profile_paths
                    or path.startswith(("/admin/", "/metrics", "/api/tools/", "/api/operations/"))
                )
                if who == "anonymous" or about_private:
                    if not _refused(response):
                        wrong.append(f"{who} {method.upper()} {path} -> {response.status_code}")
                elif response.status_code == 200:
                    body = response.content.decode(errors="replace")
                    if PRIVATE_ID in body or PRIVATE_NAME in body or PRIVATE_KEY in body:
                        wrong.append(f"{who} {method.upper()} {path} shows the private integration")
    report.refused(checked, len(wrong))
    assert not wrong, "\n".join(wrong)

    # Nothing was changed or started by the refused requests.
    after = Integration.objects.get(pk=PRIVATE_ID)
    assert (after.name, after.config, after.enabled, after.status) == (
        PRIVATE_NAME,
        integration.config,
        True,
        "disconnected",
    )
    assert not IntegrationEvent.objects.filter(actor__in=["walk-intruder", ""]).exclude(type="config_change").exists()

    # The samples reach real pages: the same URLs serve the private integration to staff.
    for path in (
        f"/integrations/{PRIVATE_ID}",
        f"/api/integrations/{PRIVATE_ID}",
        f"/api/integrations/{PRIVATE_ID}/events",
        f"/admin/integrations/integration/{PRIVATE_ID}/change/",
        f"/api/operations/{operation_id}",
        "/agents",
        "/api/agent-profiles",
        *profile_paths[:2],
    ):
        response = staff.get(path)
        assert response.status_code in (200, 202) and PRIVATE_ID in response.content.decode(), path  # 202: pending


# ---------------------------------------------------------------------------------------------
# The WebSocket and the MCP endpoint, on the running hub
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_websocket_refuses_strangers_and_filters_events(hub: Hub, report: Report):
    from websockets.exceptions import InvalidStatus

    from tests.runtime_fixtures import WSClient, session_cookie_for

    people = hub.people
    owner_api = hub.api(people.owner)
    body = {
        "id": "ws_private",
        "name": PRIVATE_NAME,
        "kind": "bamboohr",
        "auth_type": "api_key",
        "config": {"subdomain": "acme", "base_url": hub.sandbox.base_url, "allow_insecure_loopback": True},
        "credentials": {"api_key": hub.sandbox.api_key},
    }
    created = owner_api.post("/api/integrations", json=body)
    assert created.status_code == 201, created.text
    private_id = created.json()["id"]  # ws_private_ and a suffix: the owner is not staff

    url = f"{hub.web.ws_url}/ws/integrations/"
    refused = 0
    for cookie, origin in (
        (None, hub.url),
        ("sessionid=forged-session-key", hub.url),
        (session_cookie_for(people.owner), "http://evil.example"),
    ):
        with pytest.raises(InvalidStatus) as info:
            WSClient(url, cookie, origin=origin)
        assert info.value.response.status_code == 403
        refused += 1

    owner = WSClient(url, session_cookie_for(people.owner), origin=hub.url)
    intruder = WSClient(url, session_cookie_for(people.intruder), origin=hub.url)
    try:
        assert private_id in owner.wait_for(lambda m: m["event"] == "hello")["integrations"]
        assert private_id not in intruder.wait_for(lambda m: m["event"] == "hello")["integrations"]
        mark = intruder.mark()
        done = owner_api.post(f"/api/integrations/{private_id}/connect", params={"wait": 30})
        assert done.status_code == 200, done.text
        owner.wait_for(
            lambda m: (
                m.get("event") == "status_change"
                and m.get("status") == "connected"
                and m.get("integration") == private_id
            ),
            20,
        )
        intruder.conn.send('{"type": "ping"}')
        intruder.wait_for(lambda m: m["event"] == "pong", 10, since=mark)  # all earlier pushes have arrived
        leaked = [m for m in intruder.seen[mark:] if private_id in str(m) or PRIVATE_NAME in str(m)]
        assert not leaked
        refused += 1
    finally:
        owner.close()
        intruder.close()
    report.refused(refused)


@pytest.mark.slow
def test_mcp_endpoint_refuses_without_a_valid_token(hub: Hub, report: Report):
    from django.utils import timezone
    from knox.models import AuthToken
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    from integrations.models import Integration
    from integrations.tools.models import AgentToken
    from tests.runtime_fixtures import free_port, port_open, session_cookie_for

    staff_api = hub.api(hub.people.staff)
    for integration_id in ("mcp_mine", "mcp_theirs"):
        body = {
            "id": integration_id,
            "name": integration_id,
            "kind": "bamboohr",
            "auth_type": "api_key",
            "config": {"subdomain": "acme", "base_url": hub.sandbox.base_url, "allow_insecure_loopback": True},
            "credentials": {"api_key": hub.sandbox.api_key},
        }
        assert staff_api.post("/api/integrations", json=body).status_code == 201
        assert staff_api.post(f"/api/integrations/{integration_id}/connect", params={"wait": 30}).status_code == 200
    mine = Integration.objects.get(pk="mcp_mine")
    _, scoped = AgentToken.issue(name="mcp-scoped", access="read", integrations=[mine])
    revoked_row, revoked = AgentToken.issue(name="mcp-revoked", access="read", integrations=[mine])
    AgentToken.objects.filter(pk=revoked_row.pk).update(revoked_at=timezone.now())
    expired_row, expired = AgentToken.issue(
        name="mcp-expired",
        access="read",
        integrations=[mine],
        expires_at=timezone.now() - timezone.timedelta(minutes=1),
    )
    staff_token = AuthToken.objects.create(hub.people.staff)[1]

    port = free_port()
    server = hub.start_process("mcp-http", [sys.executable, "manage.py", "mcp_server", "--http", "--port", str(port)])
    server.wait_ready(lambda: port_open(port), timeout=60)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        attempts = [
            {},
            {"Authorization": "Bearer hubat_forged"},
            {"Authorization": f"Bearer {revoked}"},
            {"Authorization": f"Bearer {expired}"},
            {"Authorization": f"Token {staff_token}"},
            {"Authorization": f"Bearer {staff_token}"},
            {"Cookie": session_cookie_for(hub.people.staff)},
        ]
        for headers in attempts:
            response = httpx.post(
                url,
                json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                headers={**headers, "Accept": "application/json, text/event-stream"},
                timeout=10,
                trust_env=False,
            )
            assert response.status_code == 401, (headers, response.status_code, response.text[:200])

        async def calls() -> tuple[Any, Any]:
            async with (
                create_mcp_http_client(headers={"Authorization": f"Bearer {scoped}"}) as http,
                Client(streamable_http_client(url, http_client=http), read_timeout_seconds=60) as mcp,
            ):
                allowed = await mcp.call_tool(
                    "query_hris", {"connector_id": "mcp_mine", "resource": "employees", "limit": 1}
                )
                denied = await mcp.call_tool("query_hris", {"connector_id": "mcp_theirs", "resource": "employees"})
                return allowed, denied

        allowed, denied = anyio.run(calls)
        assert allowed.structured_content["ok"] is True, allowed.structured_content
        assert denied.is_error and denied.structured_content["error"]["category"] == "permission"
        assert "may not use integration" in denied.structured_content["error"]["message"]
        report.refused(len(attempts) + 1)
    finally:
        server.stop()
