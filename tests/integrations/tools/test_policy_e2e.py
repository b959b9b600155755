"""The data policy end to end, as an agent meets it: a real agent token bound to a profile, calls
through REST (Celery eager) and through MCP (the SDK's own client, stdio), against the BambooHR
sandbox, a SQLite file and PostgreSQL; a profile's over-privileged PostgreSQL role refused at save
and flagged by the health check."""

from __future__ import annotations

import sqlite3
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest
from django.contrib.auth import get_user_model
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from integrations import services, tasks
from integrations.agents.models import AgentProfile
from integrations.models import IntegrationEvent
from integrations.tools.models import AgentToken

REPO = Path(__file__).resolve().parents[3]
PG = {"host": "127.0.0.1", "port": 5432, "database": "test", "username": "postgres", "sslmode": "disable"}
RESTRICTED = ("dateOfBirth", "homeEmail", "gender", "address1", "ssn", "payRate")


def _bearer(client: Any, raw: str) -> Any:
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def _agent(integration: Any, name: str, *, access: str = "read", hris: Any = None, database: Any = None) -> str:
    profile = AgentProfile.objects.create(name=f"{name}-{uuid.uuid4().hex[:6]}")
    profile.grants.create(integration=integration, access=access, hris=hris or {}, database=database or {})
    _token, raw = AgentToken.issue(name=name, profile=profile)
    return str(raw)


def _invoke(client: Any, tool: str, **arguments: Any) -> Any:
    return client.post(f"/api/tools/{tool}/invoke", arguments, format="json")


def _asked(sandbox: Any) -> str:
    return "\n".join(f"{r.path}?{r.query} {r.body.decode(errors='replace')}" for r in sandbox.request_log)


@pytest.fixture
def _eager(celery_eager: None) -> None:
    return None


@pytest.mark.django_db
def test_rest_hris_fields_scope_and_masking(_eager, api_client, hr_sandbox, make_hr_integration) -> None:
    from sandbox.bamboohr.data import TIME_OFF_TYPES, add_time_off

    hr = make_hr_integration(hr_sandbox)
    counts = Counter(str(r["department"]) for r in hr_sandbox.company.employees.values())
    department = counts.most_common(1)[0][0]
    inside = sorted(e for e, r in hr_sandbox.company.employees.items() if r["department"] == department)
    outside = sorted(e for e, r in hr_sandbox.company.employees.items() if r["department"] != department)
    rules = {"classes": ["public", "internal", "special"], "scope": {"departments": [department]}, "redact": True}
    client = _bearer(api_client, _agent(hr, "hr-agent", access="write", hris=rules))

    # Fields: the restricted ones are withheld and never asked of BambooHR.
    hr_sandbox.app.traffic.reset()
    one = _invoke(
        client,
        "query_hris",
        connector_id=hr.id,
        resource="employee",
        filters={"id": inside[0], "fields": list(RESTRICTED)},
    )
    assert one.status_code == 200, one.content
    result = one.json()["result"]
    assert set(RESTRICTED) <= set(result["withheld_fields"])
    assert not set(RESTRICTED) & set(result["items"][0].get("raw", {}))
    asked = _asked(hr_sandbox)
    assert asked and not [f for f in RESTRICTED if f in asked]

    # Scope: reads and writes stay in the department.
    listed = _invoke(client, "query_hris", connector_id=hr.id, resource="employees", limit=1000).json()["result"]
    assert sorted(int(i["id"]) for i in listed["items"]) == inside and listed["out_of_scope"] == len(outside)
    current = hr_sandbox.company.employees[inside[0]]["jobTitle"]
    title = next(t for t in hr_sandbox.company.options["jobTitle"] if t != current)
    ok = _invoke(
        client,
        "update_hris_record",
        connector_id=hr.id,
        entity_type="employee",
        entity_id=str(inside[0]),
        data={"jobTitle": title},
    )
    assert ok.status_code == 200 and ok.json()["ok"] is True, ok.content
    assert hr_sandbox.company.employees[inside[0]]["jobTitle"] == title
    before = dict(hr_sandbox.company.employees[outside[0]])
    refused = _invoke(
        client,
        "update_hris_record",
        connector_id=hr.id,
        entity_type="employee",
        entity_id=str(outside[0]),
        data={"jobTitle": title},
    )
    assert refused.status_code == 403, refused.content
    assert "department" in refused.json()["error"]["message"]
    assert hr_sandbox.company.employees[outside[0]] == before

    # Free text: a planted SSN and IBAN come back masked.
    ssn, iban = "536-22-8726", "DE89 3704 0044 0532 0130 00"
    import datetime as dt

    planted = add_time_off(
        hr_sandbox.company,
        employee_id=inside[0],
        type_id=TIME_OFF_TYPES[1][0],
        start=dt.date(2032, 5, 3),
        end=dt.date(2032, 5, 3),
        status="requested",
        dates={"2032-05-03": 1.0},
        notes={"employee": f"SSN {ssn}, refund to {iban}"},
        created=dt.date(2032, 5, 1),
        changed_by=inside[0],
    )
    window = {"start": "2032-05-01", "end": "2032-05-05"}
    out = _invoke(client, "query_hris", connector_id=hr.id, resource="time_off_requests", filters=window).json()
    note = next(i for i in out["result"]["items"] if i["id"] == str(planted.id))["notes"]["employee"]
    assert ssn not in note and "0532 0130" not in note and "<US_SSN>" in note and "<IBAN_CODE>" in note


@pytest.fixture
def people_db(tmp_path: Path) -> Iterator[str]:
    path = tmp_path / "people.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, salary REAL);"
        "INSERT INTO people VALUES (1, 'Ada', 9100.5);"
        "CREATE VIEW v_people AS SELECT id, name, salary FROM people;"
    )
    conn.close()
    integration_id = f"db_{uuid.uuid4().hex[:10]}"
    services.create_integration(
        actor="tests", id=integration_id, name="people", kind="sqlite", auth_type="none", config={"path": str(path)}
    )
    assert services.connect(integration_id)["ok"]
    yield integration_id
    services.close_connector(integration_id, everywhere=False)


@pytest.mark.django_db
def test_rest_sqlite_column_outside_the_list(_eager, api_client, people_db) -> None:
    from integrations.models import Integration

    db = Integration.objects.get(pk=people_db)
    tables = {"people": ["id", "name"], "v_people": ["id", "name", "salary"]}
    client = _bearer(api_client, _agent(db, "db-agent", database={"tables": tables}))
    ok = _invoke(client, "query_database", connector_id=db.id, query="SELECT id, name FROM people")
    assert ok.status_code == 200 and ok.json()["result"]["rows"] == [[1, "Ada"]], ok.content
    for sql in (
        "SELECT * FROM people",
        "SELECT p.salary AS pay FROM people p",
        "WITH c AS (SELECT salary FROM people) SELECT * FROM c",
        "SELECT name FROM v_people",
    ):
        refused = _invoke(client, "query_database", connector_id=db.id, query=sql)
        assert refused.status_code == 403, (sql, refused.content)
        assert "people.salary" in refused.json()["error"]["message"], sql


@pytest.fixture
def pg_role() -> Iterator[tuple[Any, str, str]]:
    suffix = uuid.uuid4().hex[:8]
    table, role = f"e2e_{suffix}", f"agent_{suffix}"
    conn = psycopg.connect("postgres://postgres@127.0.0.1:5432/test", autocommit=True)
    conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, name text, salary numeric)")
    conn.execute(f"INSERT INTO {table} VALUES (1, 'Ada', 9100.5)")
    conn.execute(f"CREATE ROLE {role} NOLOGIN")
    conn.execute(f"GRANT SELECT ON {table} TO {role}")  # the whole table: more than the list below
    yield conn, table, role
    conn.execute(f"DROP TABLE {table}")
    conn.execute(f"DROP OWNED BY {role}")
    conn.execute(f"DROP ROLE {role}")
    conn.close()


@pytest.mark.django_db
def test_rest_over_privileged_postgresql_role_refused_at_save_and_by_the_health_check(
    _eager, api_client, pg_role
) -> None:
    conn, table, role = pg_role
    integration_id = f"pg_{uuid.uuid4().hex[:10]}"
    db = services.create_integration(
        actor="tests", id=integration_id, name="pg", kind="postgresql", auth_type="none", config=PG
    )
    assert services.connect(integration_id)["ok"]
    try:
        staff = get_user_model().objects.create_user(f"admin-{uuid.uuid4().hex[:6]}", password="x", is_staff=True)
        api_client.force_authenticate(staff)
        grant = {"integration": db.id, "database": {"tables": {table: ["id", "name"]}, "role": role}}
        saved = api_client.post("/api/agent-profiles", {"name": f"pg-{role}", "grants": [grant]}, format="json")
        assert saved.status_code == 400, saved.content
        assert f"{table} (salary)" in str(saved.json())

        conn.execute(f"REVOKE SELECT ON {table} FROM {role}")
        conn.execute(f"GRANT SELECT (id, name) ON {table} TO {role}")
        saved = api_client.post("/api/agent-profiles", {"name": f"pg-{role}", "grants": [grant]}, format="json")
        assert saved.status_code == 201, saved.content
        api_client.force_authenticate(None)
        profile = AgentProfile.objects.get(name=f"pg-{role}")
        _token, raw = AgentToken.issue(name="pg-agent", profile=profile)
        client = _bearer(api_client, raw)
        sql = f"SELECT id, name, current_user AS who FROM {table}"
        ok = _invoke(client, "query_database", connector_id=db.id, query=sql)
        assert ok.status_code == 200 and ok.json()["result"]["rows"] == [[1, "Ada", role]], ok.content

        # Widened after saving: the health check reads it from the server, flags it, calls are refused.
        conn.execute(f"GRANT SELECT ON {table} TO {role}")
        tasks.health_check_batch.apply(args=([db.id],)).get()
        flagged = IntegrationEvent.objects.filter(integration_ref=db.id, ok=False, message__contains=role)
        assert flagged.exists()
        refused = _invoke(client, "query_database", connector_id=db.id, query=sql)
        assert refused.status_code == 403 and "salary" in refused.json()["error"]["message"], refused.content
    finally:
        services.close_connector(integration_id, everywhere=False)


async def _mcp_calls(params: Any, hr_id: str, eid: str, db_id: str) -> tuple[Any, Any, Any]:
    async with Client(params, read_timeout_seconds=60) as client:
        hris = await client.call_tool(
            "query_hris",
            {
                "connector_id": hr_id,
                "resource": "employee",
                "filters": {"id": eid, "fields": ["dateOfBirth", "jobTitle"]},
            },
        )
        ok = await client.call_tool("query_database", {"connector_id": db_id, "query": "SELECT id, name FROM people"})
        refused = await client.call_tool("query_database", {"connector_id": db_id, "query": "SELECT * FROM v_people"})
    return hris, ok, refused


@pytest.mark.django_db(transaction=True)
def test_mcp_with_a_profile_token(hr_sandbox, make_hr_integration, people_db, process_env) -> None:
    from integrations.models import Integration

    hr = make_hr_integration(hr_sandbox)
    db = Integration.objects.get(pk=people_db)
    profile = AgentProfile.objects.create(name=f"mcp-{uuid.uuid4().hex[:6]}")
    profile.grants.create(integration=hr, access="read", hris={"classes": ["public", "internal"]})
    profile.grants.create(
        integration=db, access="read", database={"tables": {"people": ["id", "name"], "v_people": "*"}}
    )
    _token, raw = AgentToken.issue(name="mcp-agent", profile=profile)
    eid = str(next(iter(hr_sandbox.company.employees)))
    hr_sandbox.app.traffic.reset()
    params = StdioServerParameters(
        command=sys.executable,
        args=["manage.py", "mcp_server", "--inline"],
        cwd=str(REPO),
        env={**process_env, "HUB_AGENT_TOKEN": raw},
    )
    hris, ok, refused = anyio.run(_mcp_calls, params, hr.id, eid, db.id)
    assert hris.is_error is False, hris
    result = hris.structured_content["result"]
    assert result["withheld_fields"] == ["dateOfBirth"] and "dateOfBirth" not in result["items"][0]["raw"]
    assert "dateOfBirth" not in _asked(hr_sandbox)
    assert ok.is_error is False and ok.structured_content["result"]["rows"] == [[1, "Ada"]]
    assert refused.is_error is True and "people.salary" in refused.structured_content["error"]["message"]
