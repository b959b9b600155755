"""Secrets in, never out: integrations of every kind created with known secrets, every feature used (create,
rotate, connect, test, scheduled checks, tool reads and writes, failures with wrong credentials, OAuth2
token fetch, live pushes), then every place a secret could surface is searched: zero occurrences.

Places: the database dump (dumpdata, and the SQLite file itself), the logs of every process the suite
started, every key of the Celery broker / result / cache database in Redis (message bodies decoded),
API responses, admin and dashboard HTML, /metrics, event and audit rows, and WebSocket pushes.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.integrations.oauth.authserver import clients
from tests.integrations.oauth.conftest import authserver  # noqa: F401 - the OAuth2 provider on loopback (a fixture)
from tests.resilience.conftest import CHECK_INTERVAL, Hub, Report, postgres_config, secret_variants
from tests.resilience.helpers import agent_token, call_tool, wait_status
from tests.runtime_fixtures import WSClient, session_cookie_for, wait_until
from tests.sqlite_files import sqlite_file_bytes

pytestmark = pytest.mark.slow


def _redis_text(client: redis.Redis) -> dict[str, str]:
    """Every key of this run's Redis database as text, Celery/kombu message bodies base64-decoded."""
    out: dict[str, str] = {}
    for key in client.scan_iter(count=500):
        kind = client.type(key).decode()
        if kind == "string":
            values = [client.get(key) or b""]
        elif kind == "list":
            values = client.lrange(key, 0, -1)
        elif kind == "hash":
            values = [k + b"=" + v for k, v in client.hgetall(key).items()]
        elif kind == "set":
            values = list(client.smembers(key))
        elif kind == "zset":
            values = [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":
            values = [json.dumps(entry, default=str).encode() for entry in client.xrange(key)]
        else:
            values = []
        texts = []
        for value in values:
            text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
            texts.append(text)
            texts.extend(_decoded_bodies(text))
        out[key.decode(errors="replace")] = "\n".join(texts)
    return out


def _decoded_bodies(text: str) -> list[str]:
    """kombu keeps a message as JSON with a base64 body: the task's arguments are only visible decoded."""
    found: list[str] = []
    start = text.find("{")
    if start < 0:
        return found
    try:
        data = json.loads(text[start:])
    except ValueError:
        return found

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            body = node.get("body")
            if isinstance(body, str):
                with contextlib.suppress(ValueError):
                    found.append(base64.b64decode(body, validate=True).decode(errors="replace"))
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)
        elif isinstance(node, str) and node[:1] in "[{":
            with contextlib.suppress(ValueError):
                visit(json.loads(node))

    visit(data)
    return found


def test_no_secret_anywhere(
    hub: Hub,
    report: Report,
    authserver,  # noqa: F811
    mysql_account,
    pg_url: str,
    tmp_path: Path,
):
    from django.conf import settings
    from django.core.management import call_command

    from integrations.models import Integration, IntegrationEvent
    from integrations.tools.models import ToolCall, WriteIntent

    suffix = uuid.uuid4().hex[:10]
    pg_password = f"Pg-Password-{suffix}"
    wrong_mysql_password = f"Wrong-MySQL-{suffix}"
    rotated_from = f"Old-Pg-Password-{suffix}"
    secrets = {
        "BambooHR API key": hub.sandbox.api_key,
        "OAuth2 client secret": clients.CC_CLIENT_SECRET,
        "PostgreSQL password": pg_password,
        "PostgreSQL password before rotation": rotated_from,
        "MariaDB password": mysql_account.password,
        "wrong MariaDB password": wrong_mysql_password,
        "CREDENTIALS_KEY": settings.CREDENTIALS_KEY,
    }
    staff = hub.people.staff
    api = hub.api(staff)
    ws = WSClient(f"{hub.web.ws_url}/ws/integrations/", session_cookie_for(staff), origin=hub.url)
    responses: dict[str, str] = {}

    def keep(name: str, response: Any) -> Any:
        responses[name] = response.text
        return response

    sandbox = {
        "subdomain": "acme",
        "base_url": hub.sandbox.base_url,
        "allow_insecure_loopback": True,
        "timeout_seconds": 5,
        "writable_fields": ["firstName", "lastName", "department"],
    }
    sqlite_path = tmp_path / "secrets-target.sqlite3"
    import sqlite3

    with sqlite3.connect(sqlite_path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS people (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO people (name) VALUES ('Ada')")
    bodies = [
        {
            "id": "sec_hr",
            "kind": "bamboohr",
            "auth_type": "api_key",
            "config": sandbox,
            "credentials": {"api_key": hub.sandbox.api_key},
        },
        {
            "id": "sec_hr_oauth",
            "kind": "bamboohr",
            "auth_type": "oauth2",
            "config": {
                **sandbox,
                "oauth2": {
                    "client_id": clients.CC_CLIENT_ID,
                    "token_url": authserver.token_url,
                    "grant_type": "client_credentials",
                    "scopes": ["read"],
                },
            },
            "credentials": {"client_secret": clients.CC_CLIENT_SECRET},
        },
        {
            "id": "sec_pg",
            "kind": "postgresql",
            "auth_type": "basic",
            "config": postgres_config(pg_url),
            "credentials": {"password": rotated_from},
        },
        {
            "id": "sec_maria",
            "kind": "mysql",
            "auth_type": "basic",
            "config": {
                "host": "127.0.0.1",
                "port": 3306,
                "database": "test",
                "username": mysql_account.user,
                "pool_size": 2,
                "connect_timeout": 3,
            },
            "credentials": {"password": mysql_account.password},
        },
        {
            "id": "sec_maria_wrong",
            "kind": "mysql",
            "auth_type": "basic",
            "config": {
                "host": "127.0.0.1",
                "port": 3306,
                "database": "test",
                "username": mysql_account.user,
                "pool_size": 1,
                "connect_timeout": 3,
            },
            "credentials": {"password": wrong_mysql_password},
        },
        {"id": "sec_sqlite", "kind": "sqlite", "auth_type": "none", "config": {"path": str(sqlite_path)}},
    ]
    for body in bodies:
        keep(
            f"create {body['id']}",
            hub.api(staff).post(
                "/api/integrations", json={**body, "name": body["id"], "health_check_interval": CHECK_INTERVAL}
            ),
        )
        assert responses[f"create {body['id']}"] and Integration.objects.filter(pk=body["id"]).exists(), responses
    # A rotation through the API: the old value must be gone for good too.
    keep("rotate", api.patch("/api/integrations/sec_pg", json={"credentials": {"password": pg_password}}))

    for integration_id in ("sec_hr", "sec_pg", "sec_maria", "sec_sqlite", "sec_maria_wrong", "sec_hr_oauth"):
        keep(f"connect {integration_id}", api.post(f"/api/integrations/{integration_id}/connect", params={"wait": 30}))
        keep(f"test {integration_id}", api.post(f"/api/integrations/{integration_id}/test", params={"wait": 30}))
    for integration_id in ("sec_hr", "sec_pg", "sec_maria", "sec_sqlite"):
        assert Integration.objects.get(pk=integration_id).status == "connected", integration_id
    assert wait_status(api, "sec_maria_wrong", "error", 10)["last_error"].startswith("auth:")
    assert Integration.objects.get(pk="sec_hr_oauth").status in ("reconnect_required", "error")
    oauth_token = (Integration.objects.get(pk="sec_hr_oauth").credentials or {}).get("oauth_token") or {}
    assert oauth_token.get("access_token"), "the worker fetched a token with the client secret"
    secrets["OAuth2 access token"] = oauth_token["access_token"]

    # Agent tools: reads on every kind, a write, a failing query.
    raw = agent_token("sec_hr", "sec_pg", "sec_maria", "sec_sqlite", access="write", name="secrets-agent")
    secrets["agent token"] = raw
    tool_calls = [
        ("query_hris", {"connector_id": "sec_hr", "resource": "employees", "limit": 3}),
        (
            "create_hris_record",
            {
                "connector_id": "sec_hr",
                "entity_type": "employee",
                "idempotency_key": f"secrets-{suffix}",
                "data": {"firstName": "Secret", "lastName": f"Keeper{suffix}"},
            },
        ),
        ("query_database", {"connector_id": "sec_pg", "query": "SELECT current_user AS who"}),
        ("query_database", {"connector_id": "sec_maria", "query": "SELECT CURRENT_USER() AS who"}),
        ("query_database", {"connector_id": "sec_sqlite", "query": "SELECT name FROM people"}),
        ("list_tables", {"connector_id": "sec_maria"}),
        ("query_database", {"connector_id": "sec_pg", "query": "SELECT * FROM no_such_table_here"}),
    ]
    outcomes = []
    for tool, arguments in tool_calls:
        call = call_tool(hub.url, raw, tool, arguments, timeout=30)
        report.requests(1, 1 if call.lost else 0)
        outcomes.append(call.ok if call.ok else call.category)
    assert outcomes == [True] * 6 + ["invalid"], outcomes
    # Scheduled checks ran on each (beat → worker), with their events and pushes.
    wait_until(
        lambda: IntegrationEvent.objects.filter(integration_ref="sec_pg", type="health_check").exists(),
        3 * CHECK_INTERVAL,
        0.5,
        "a scheduled check",
    )

    # What a user and an operator read.
    browser = hub.browser(staff)
    pages: dict[str, str] = {}
    for path in [
        "/integrations",
        "/admin/",
        "/admin/integrations/integration/",
        "/admin/integrations/integrationevent/",
        "/admin/tools/toolcall/",
        "/admin/tools/agenttoken/",
        "/admin/tools/writeintent/",
        "/api/health",
        "/api/integrations",
        "/api/tools/calls/?limit=500",
        "/api/schema/",
        "/metrics",
        "/healthz",
        *[f"/integrations/{b['id']}" for b in bodies],
        *[f"/admin/integrations/integration/{b['id']}/change/" for b in bodies],
        *[f"/api/integrations/{b['id']}" for b in bodies],
        *[f"/api/integrations/{b['id']}/events" for b in bodies],
        *[f"/api/integrations/{b['id']}/metrics" for b in bodies],
    ]:
        response = browser.get(path)
        assert response.status_code in (200, 503), (path, response.status_code)
        pages[path] = response.text
    for call in ToolCall.objects.all()[:200]:
        pages[f"/admin/tools/toolcall/{call.pk}/change/"] = browser.get(f"/admin/tools/toolcall/{call.pk}/change/").text
        pages[f"/api/tools/calls/{call.pk}"] = browser.get(f"/api/tools/calls/{call.pk}").text
    for intent in WriteIntent.objects.all()[:50]:
        pages[f"/admin/tools/writeintent/{intent.pk}/change/"] = browser.get(
            f"/admin/tools/writeintent/{intent.pk}/change/"
        ).text
    ws.mark()
    ws.close()

    # The database, as a dump and as bytes.
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump, verbosity=0)
    stores = {"dumpdata": dump.getvalue()}
    for file_name, content in sqlite_file_bytes().items():
        stores[f"database file {file_name}"] = content.decode("latin-1")
    stores["event rows"] = "\n".join(
        f"{e.integration_ref} {e.message} {json.dumps(e.detail)}" for e in IntegrationEvent.objects.all()
    )
    stores["audit rows"] = "\n".join(f"{c.arguments} {c.error_message}" for c in ToolCall.objects.all())
    client = redis.Redis.from_url(hub.redis_url)
    try:
        broker = _redis_text(client)
    finally:
        client.close()
    logs = {name: text for name, text in hub.logs().items() if not name.startswith("bamboohr-sandbox")}
    assert any(name.startswith("worker-") for name in logs) and "daphne.log" in logs

    places: dict[str, str] = {
        **{f"API response: {k}": v for k, v in responses.items()},
        **{f"page {k}": v for k, v in pages.items()},
        **stores,
        **{f"Redis key {k}": v for k, v in broker.items()},
        **{f"log {k}": v for k, v in logs.items()},
        "WebSocket pushes": json.dumps(ws.seen),
    }
    # The places hold what was done (ids are not secret): an empty place would prove nothing.
    for place in ("dumpdata", "page /integrations", "audit rows", "event rows"):
        assert "sec_maria" in places[place], place
    assert "Redis key hub:metrics:sec_maria" in places
    assert len(ws.seen) > 5 and len(broker) > 3 and any(k.startswith("celery-task-meta-") for k in broker)
    leaks = [
        f"{label} in {place}"
        for place, text in places.items()
        for label, secret in secrets.items()
        if any(variant in text for variant in secret_variants(secret))
    ]
    report.leak_places += len(places)
    report.leaks.extend(leaks)
    assert not leaks, leaks
    # The search would see them: the secrets are really stored (encrypted), and message bodies are decoded.
    assert Integration.objects.get(pk="sec_pg").credentials["password"] == pg_password
    message = {
        "body": base64.b64encode(json.dumps([["canary-arg"], {}, {}]).encode()).decode(),
        "properties": {"body_encoding": "base64"},
    }
    assert "canary-arg" in " ".join(_decoded_bodies(json.dumps(message)))
