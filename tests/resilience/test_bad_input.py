"""Bad input gets a clear refusal, never a traceback or a dead process: malformed WebSocket messages,
oversized bodies, invalid JSON and config, and OAuth2 callbacks that were forged, replayed, expired or
sent to the wrong user. (The generated-request fuzzing of the REST API is tests/integrations/api/test_fuzz.py, the
schemathesis run of [api]; the summary of this suite reports its outcome when both run together.)
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.core import signing

from tests.resilience.conftest import Hub, Report

SANDBOX_CONFIG = {"subdomain": "acme", "base_url": "http://127.0.0.1:9/api/v1/", "allow_insecure_loopback": True}


# ---------------------------------------------------------------------------------------------
# JSON and config through the API and the admin (Django test client: every database backend)
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def staff(db: None, django_user_model: Any) -> Any:
    return django_user_model.objects.create_user(
        "bad-input-staff", password="pw-bad-input-1", is_staff=True, is_superuser=True
    )


@pytest.fixture
def api(staff: Any) -> Any:
    from knox.models import AuthToken
    from rest_framework.test import APIClient

    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(staff)[1]}")
    return client


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def _body(**overrides: Any) -> dict[str, Any]:
    return {
        "id": "bad_input",
        "name": "Bad input",
        "kind": "bamboohr",
        "auth_type": "api_key",
        "config": dict(SANDBOX_CONFIG),
        "credentials": {"api_key": "k" * 40},
    } | overrides


BAD_BODIES = [
    ("not JSON", b"{not json", "JSON parse error"),
    ("truncated JSON", b'{"id": "x", "config": {', "JSON parse error"),
    ("a JSON list", b"[1, 2, 3]", "non_field_errors"),
    ("a JSON string", b'"config"', "non_field_errors"),
    ("NaN in JSON", json.dumps(_body(health_check_interval=float("nan"))).encode(), "NaN"),
    ("config is a string", json.dumps(_body(config="subdomain=acme")).encode(), "config"),
    ("config is a list", json.dumps(_body(config=[["subdomain", "acme"]])).encode(), "config"),
    ("unknown config key", json.dumps(_body(config={**SANDBOX_CONFIG, "subdomian": "x"})).encode(), "subdomian"),
    (
        "config value of the wrong type",
        json.dumps(_body(config={**SANDBOX_CONFIG, "timeout_seconds": "fast"})).encode(),
        "timeout_seconds",
    ),
    (
        "negative rate limit",
        json.dumps(_body(config={**SANDBOX_CONFIG, "rate_limit": {"requests": -1}})).encode(),
        "rate_limit",
    ),
    ("credentials is a list", json.dumps(_body(credentials=["k"])).encode(), "credentials"),
    ("unknown credential", json.dumps(_body(credentials={"api_key": "k" * 40, "pasword": "x"})).encode(), "pasword"),
    ("unknown kind", json.dumps(_body(kind="salesforce")).encode(), "kind"),
    (
        "JSON nested too deep to parse",
        ('{"id": "x", "name": "x", "kind": "bamboohr", "config": ' + "[" * 5000 + "]" * 5000 + "}").encode(),
        "nested too deeply",
    ),
    ("config nested 500 deep", json.dumps(_body(config={**SANDBOX_CONFIG, "x": _nested(500)})).encode(), "config"),
]


@pytest.mark.parametrize(("label", "raw", "field"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_invalid_json_and_config_are_4xx_with_a_reason(api, label, raw, field, report: Report):
    from integrations.models import Integration

    response = api.post("/api/integrations", raw, content_type="application/json")
    report.bad_inputs += 1
    assert response.status_code == 400, (label, response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    assert field in response.content.decode(), (label, response.content[:300])
    assert b"Traceback" not in response.content
    assert not Integration.objects.filter(pk="bad_input").exists()


def test_oversized_bodies_are_refused(api, settings, report: Report):
    """Bodies over DATA_UPLOAD_MAX_MEMORY_SIZE are refused before parsing; just under, the field limits apply."""
    huge = json.dumps(_body(name="x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10))).encode()
    for path in ("/api/integrations", "/api/tools/query_hris/invoke", "/api/integrations/bad_input"):
        method = api.patch if path.endswith("bad_input") else api.post
        response = method(path, huge, content_type="application/json")
        report.bad_inputs += 1
        assert response.status_code in (400, 404, 413), (path, response.status_code, response.content[:200])
        assert response.status_code != 404 or path.endswith("bad_input")
    long_name = api.post("/api/integrations", _body(name="n" * 100_000), format="json")
    report.bad_inputs += 1
    assert long_name.status_code == 400 and "name" in long_name.json()


def test_admin_form_with_invalid_config_json_shows_form_errors(staff, client, report: Report):
    from integrations.models import Integration

    client.force_login(staff)
    page = client.get("/admin/integrations/integration/add/?kind=bamboohr")
    assert page.status_code == 200
    fields = {
        "id": "admin_bad",
        "name": "Admin bad",
        "kind": "bamboohr",
        "auth_type": "api_key",
        "health_check_interval": "60",
        "enabled": "on",
        "api_key": "k" * 40,
    }
    config_fields = [name for name in page.context["adminform"].form.fields if "config" in name]
    for bad in ("{not json", "[1, 2]", '{"subdomain": 5}', '"acme"'):
        data = dict(fields)
        for name in config_fields:
            data[name] = bad
        if not config_fields:
            data["config"] = bad
        response = client.post("/admin/integrations/integration/add/?kind=bamboohr", data)
        report.bad_inputs += 1
        assert response.status_code == 200, (bad, response.status_code)
        assert "errorlist" in response.content.decode() or "errornote" in response.content.decode(), bad
    assert not Integration.objects.filter(pk="admin_bad").exists()


# ---------------------------------------------------------------------------------------------
# OAuth2 callbacks
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def oauth_integration(db: None, django_user_model: Any) -> Any:
    from integrations import services

    owner = django_user_model.objects.create_user("oauth-owner", password="pw-oauth-owner-1")
    integration = services.create_integration(
        actor="test setup",  # as the hub (seed_demo) makes it: exactly this id (a user would get a suffix)
        id="oauth_bad",
        name="OAuth target",
        kind="bamboohr",
        auth_type="oauth2",
        owner=owner,
        config={
            **SANDBOX_CONFIG,
            "oauth2": {
                "client_id": "hub",
                "authorize_url": "http://127.0.0.1:9/authorize",
                "token_url": "http://127.0.0.1:9/token",
                "grant_type": "authorization_code",
            },
        },
        credentials={"client_secret": "oauth-bad-ClientSecret-77"},
    )
    return owner, integration


def _state_from_start(client: Any) -> str:
    response = client.post("/oauth/oauth_bad/start/")  # a GET only shows the way (issue 14, item 6)
    assert response.status_code == 302, response.content[:300]
    return parse_qs(urlsplit(response["Location"]).query)["state"][0]


def test_bad_oauth_callbacks_store_nothing(oauth_integration, client, django_user_model, settings, report: Report):
    from django.test import Client

    from integrations.models import Integration, IntegrationEvent
    from integrations.oauth.views import STATE_SALT

    owner, _integration = oauth_integration
    client.force_login(owner)
    stranger = Client()
    stranger.force_login(django_user_model.objects.create_user("oauth-stranger"))
    cases: list[tuple[str, Any, dict[str, str], str]] = [
        ("no parameters", client, {}, "missing_state"),
        ("garbage state", client, {"state": "garbage", "code": "c"}, "invalid_state"),
        ("forged signature", client, {"state": _state_from_start(client)[:-3] + "abc", "code": "c"}, "invalid_state"),
        ("state of another user", stranger, {"state": _state_from_start(client), "code": "c"}, "other_user_state"),
        (
            "state signed with another key",
            client,
            {"state": signing.dumps({"u": owner.pk, "n": "x"}, key="not-the-secret-key", salt=STATE_SALT), "code": "c"},
            "invalid_state",
        ),
        (
            "state never started here",
            client,
            {"state": signing.dumps({"u": owner.pk, "n": "nonce-x"}, salt=STATE_SALT), "code": "c"},
            "unknown_state",
        ),
        ("provider error", client, {"state": _state_from_start(client), "error": "access_denied"}, "access_denied"),
        ("no code", client, {"state": _state_from_start(client)}, "missing_code"),
    ]
    replayed = _state_from_start(client)
    cases += [
        ("first use (code exchange fails: no provider)", client, {"state": replayed, "code": "c"}, "exchange"),
        ("replayed state", client, {"state": replayed, "code": "c"}, "replayed_state"),
    ]
    for label, who, params, reason in cases:
        response = who.get("/oauth/callback/", params)
        report.bad_inputs += 1
        assert response.status_code == 400, (label, response.status_code)
        text = response.content.decode()
        assert "Traceback" not in text and "oauth-bad-ClientSecret-77" not in text, label
        # The page says which check refused it (data-reason) and, in words, that nothing was stored.
        assert f'data-reason="{reason}' in text, (label, text[text.find("data-reason") :][:60])
        assert "Nothing was stored" in text or reason == "access_denied", label
    # Last, an answer that took longer than the state may live.
    old = _state_from_start(client)
    settings.OAUTH2_STATE_MAX_AGE_SECONDS = 1
    time.sleep(1.5)
    expired = client.get("/oauth/callback/", {"state": old, "code": "c"})
    report.bad_inputs += 1
    assert expired.status_code == 400 and 'data-reason="expired_state"' in expired.content.decode()
    integration = Integration.objects.get(pk="oauth_bad")
    assert "oauth_token" not in (integration.credentials or {})
    assert integration.status == "disconnected"
    assert not IntegrationEvent.objects.filter(integration_ref="oauth_bad", type="connect", ok=True).exists()


# ---------------------------------------------------------------------------------------------
# The WebSocket and big bodies on the real server
# ---------------------------------------------------------------------------------------------

MALFORMED = [
    "not json",
    "",
    "{",
    "[1, 2, 3]",
    "5",
    "null",
    '{"type": 5}',
    '{"type": ["ping"]}',
    '{"type": "subscribe", "integration": "../../etc"}',
    '{"type": "ping", "pad": "' + "x" * 200_000 + '"}',
    "[" * 20_000 + "]" * 20_000,
    b"\x00\xff\xfe binary frame",
]


@pytest.mark.slow
def test_malformed_websocket_messages_do_not_break_the_socket_or_the_server(hub: Hub, report: Report):
    from tests.runtime_fixtures import WSClient, session_cookie_for

    url = f"{hub.web.ws_url}/ws/integrations/"
    cookie = session_cookie_for(hub.people.staff)
    for message in MALFORMED:
        ws = WSClient(url, cookie, origin=hub.url)
        try:
            ws.wait_for(lambda m: m["event"] == "hello", 10)
            mark = ws.mark()
            ws.conn.send(message)
            if not (isinstance(message, str) and message.startswith('{"type": "ping"')):
                # A JSON error message, not a close; and the socket keeps answering.
                error = ws.wait_for(lambda m: m["event"] == "error", 10, since=mark)
                assert error["message"] and "Traceback" not in error["message"]
            ws.conn.send('{"type": "ping"}')
            ws.wait_for(lambda m: m["event"] == "pong", 10, since=mark)
            report.bad_inputs += 1
        finally:
            ws.close()
    log = (hub.log_dir / "daphne.log").read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
    assert hub.web.process.alive()


@pytest.mark.slow
def test_oversized_bodies_on_the_real_server(hub: Hub, report: Report):
    from django.conf import settings

    api = hub.api(hub.people.staff)
    size = settings.DATA_UPLOAD_MAX_MEMORY_SIZE * 8
    for path in ("/api/integrations", "/api/tools/query_hris/invoke"):
        started = time.monotonic()
        response = api.post(
            path, content=b'{"name": "' + b"x" * size + b'"}', headers={"Content-Type": "application/json"}
        )
        report.bad_inputs += 1
        assert response.status_code in (400, 413), (path, response.status_code, response.text[:200])
        assert time.monotonic() - started < 20
    assert httpx.get(f"{hub.url}/healthz", timeout=10).status_code in (200, 503)
    assert hub.web.process.alive()
