"""A profile's tools, grants and quotas as an agent meets them: REST catalog and calls (Celery eager),
describe_access, quota_exceeded with retry_after and one event per window."""

from __future__ import annotations

import time

import pytest

from integrations.agents import quotas
from integrations.agents.models import AgentProfile
from integrations.agents.services import quota_key
from integrations.models import IntegrationEvent
from integrations.tools.models import AgentToken, ToolCall

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _eager(celery_eager: None) -> None:
    return None


def bearer(client, raw: str):
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def _profile(hr, name: str, *, tools=None, access: str = "read", hris=None, **quota) -> AgentProfile:
    profile = AgentProfile.objects.create(name=name, tools=tools, **quota)
    profile.grants.create(integration=hr, access=access, hris=hris or {})
    return profile


def test_the_catalog_shows_only_the_profiles_tools_and_another_tool_is_refused_and_audited(
    api_client, hr_sandbox, make_hr_integration
):
    hr = make_hr_integration(hr_sandbox)
    profile = _profile(hr, "reader", tools=["query_hris", "describe_access"], access="write")
    _token, raw = AgentToken.issue(name="narrow", profile=profile)
    client = bearer(api_client, raw)

    listed = client.get("/api/tools/").json()["tools"]
    assert sorted(t["name"] for t in listed) == ["describe_access", "query_hris"]

    ok = client.post(
        "/api/tools/query_hris/invoke", {"connector_id": hr.id, "resource": "employees", "limit": 2}, format="json"
    )
    assert ok.status_code == 200 and ok.json()["ok"] is True, ok.content

    before = len(hr_sandbox.company.employees)
    # The grant is read/write, but the tool is not in the profile: refused, whatever the grant says.
    refused = client.post(
        "/api/tools/create_hris_record/invoke",
        {"connector_id": hr.id, "entity_type": "employee", "data": {"firstName": "No", "lastName": "Body"}},
        format="json",
    )
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["category"] == "permission" and "'reader'" in error["message"]
    assert "create_hris_record" in error["message"]
    assert len(hr_sandbox.company.employees) == before
    call = ToolCall.objects.get(pk=refused.json()["call_id"])
    assert (call.tool, call.outcome, call.error_category) == ("create_hris_record", "refused", "permission")


def test_a_grant_on_one_integration_gives_nothing_on_another(api_client, hr_sandbox, make_hr_integration):
    hr, other = make_hr_integration(hr_sandbox), make_hr_integration(hr_sandbox)
    _token, raw = AgentToken.issue(name="one-hr", profile=_profile(hr, "one-hr"))
    response = bearer(api_client, raw).post(
        "/api/tools/query_hris/invoke", {"connector_id": other.id, "resource": "employees"}, format="json"
    )
    assert response.status_code == 403 and "'one-hr' has no grant on it" in response.json()["error"]["message"]


def test_describe_access_returns_what_the_profile_allows(api_client, hr_sandbox, make_hr_integration):
    hr = make_hr_integration(hr_sandbox)
    profile = _profile(
        hr,
        "sales-hr",
        tools=["query_hris", "describe_access"],
        hris={"classes": ["public"], "fields": ["hire_date"], "scope": {"departments": ["Sales"], "active_only": True}},
        calls_per_minute=50,
        rows_per_day=1000,
    )
    _token, raw = AgentToken.issue(name="planner", profile=profile)
    response = bearer(api_client, raw).post("/api/tools/describe_access/invoke", {}, format="json")
    assert response.status_code == 200, response.content
    result = response.json()["result"]
    assert result["profile"] == "sales-hr"
    assert result["tools"] == ["query_hris", "describe_access"]
    (grant,) = result["integrations"]
    assert (grant["id"], grant["access"]) == (hr.id, "read")
    fields = grant["hris"]["employee_fields"]
    assert "hire_date" in fields["allowed"] and "department" in fields["allowed"]
    assert "status" in fields["withheld"]  # internal, and not named
    provider = grant["hris"]["provider_fields"]
    assert {"ssn", "dateOfBirth", "payRate", "bankAccountNumber"} <= set(provider["withheld"])
    assert {"workEmail", "department"} <= set(provider["allowed"]) and "ssn" not in provider["allowed"]
    assert grant["hris"]["record_scope"]["departments"] == ["sales"]
    assert grant["hris"]["record_scope"]["active_only"] is True
    assert result["quotas"]["calls_per_minute"]["limit"] == 50
    assert result["quotas"]["rows_per_day"]["remaining"] == 1000
    assert result["quotas"]["writes_per_day"]["limit"] is None


def test_quota_exceeded_carries_retry_after_and_one_event_per_window(api_client, hr_sandbox, make_hr_integration):
    hr = make_hr_integration(hr_sandbox)
    profile = _profile(hr, "tight", calls_per_minute=1000, rows_per_day=5)
    _token, raw = AgentToken.issue(name="hungry", profile=profile)
    client = bearer(api_client, raw)
    body = {"connector_id": hr.id, "resource": "employees", "limit": 4}

    first = client.post("/api/tools/query_hris/invoke", body, format="json")
    assert first.status_code == 200 and first.json()["result"]["count"] == 4
    second = client.post("/api/tools/query_hris/invoke", body, format="json")  # 1 row left: this call may run
    assert second.status_code == 200
    for _ in range(3):  # rows spent: refused, however often it is asked
        refused = client.post("/api/tools/query_hris/invoke", body, format="json")
        assert refused.status_code == 429
        error = refused.json()["error"]
        assert error["category"] == "quota_exceeded" and "rows per day" in error["message"]
        assert 0 < error["retry_after"] <= 86400 and int(refused["Retry-After"]) >= 1
    remaining = quotas.remaining(quota_key(profile), quotas.Quotas(rows_per_day=5))["rows_per_day"]
    assert remaining["remaining"] == 0  # never negative, although 8 rows came back
    events = IntegrationEvent.objects.filter(integration_ref=hr.id, message__contains="quota_exceeded")
    assert events.count() == 1 and events.get().detail["quota"] == "rows_per_day"
    assert ToolCall.objects.filter(token__profile=profile, error_category="quota_exceeded").count() == 3


def test_describe_access_is_not_charged_to_the_quota(api_client, hr_sandbox, make_hr_integration):
    hr = make_hr_integration(hr_sandbox)
    profile = _profile(hr, "one-call", calls_per_minute=1)
    if time.time() % 60 > 45:  # the two calls must fall in one clock minute
        time.sleep(61 - time.time() % 60)
    _token, raw = AgentToken.issue(name="asker", profile=profile)
    client = bearer(api_client, raw)
    for _ in range(3):
        assert client.post("/api/tools/describe_access/invoke", {}, format="json").status_code == 200
    body = {"connector_id": hr.id, "resource": "employees", "limit": 1}
    assert client.post("/api/tools/query_hris/invoke", body, format="json").status_code == 200
    refused = client.post("/api/tools/query_hris/invoke", body, format="json")
    assert refused.status_code == 429 and "calls per minute" in refused.json()["error"]["message"]
    assert 0 < refused.json()["error"]["retry_after"] <= 60


def test_the_old_flags_of_create_agent_token_generate_a_profile_and_profile_is_accepted(
    hr_sandbox, make_hr_integration
):
    import io

    from django.core.management import call_command
    from django.core.management.base import CommandError

    hr = make_hr_integration(hr_sandbox, connect=False)
    out = io.StringIO()
    call_command(
        "create_agent_token", "legacy-bot", "--integration", hr.id, "--write", stdout=out, stderr=io.StringIO()
    )
    legacy = AgentToken.authenticate(out.getvalue().strip())
    assert legacy is not None and legacy.profile is not None and legacy.profile.generated
    assert list(legacy.profile.grants.values_list("integration_id", "access")) == [(hr.id, "write")]

    profile = _profile(hr, "named", tools=["query_hris"])
    out = io.StringIO()
    call_command("create_agent_token", "named-bot", "--profile", "named", stdout=out, stderr=io.StringIO())
    token = AgentToken.authenticate(out.getvalue().strip())
    assert token is not None and token.profile == profile and token.access == "read"
    with pytest.raises(CommandError, match="no such agent profile"):
        call_command("create_agent_token", "x", "--profile", "nope", stdout=io.StringIO())
    with pytest.raises(CommandError, match="leave out --integration"):
        call_command("create_agent_token", "x", "--profile", "named", "--integration", hr.id, stdout=io.StringIO())


def test_writes_per_day_counts_writing_sql_and_write_tools(tmp_path, hr_sandbox, make_hr_integration):
    import sqlite3
    import uuid

    from integrations import services
    from integrations.tools.invocation import Principal, invoke

    path = tmp_path / "w.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.commit()
    conn.close()
    db_id = f"db_{uuid.uuid4().hex[:10]}"
    services.create_integration(
        actor="tests",
        id=db_id,
        name="notes",
        kind="sqlite",
        auth_type="none",
        config={"path": str(path), "read_only": False},
    )
    assert services.connect(db_id)["ok"]
    try:
        profile = AgentProfile.objects.create(name="one-write", writes_per_day=1)
        profile.grants.create(integration_id=db_id, access="write")
        token, _raw = AgentToken.issue(name="writer", profile=profile)
        agent = Principal.for_token(token)

        def run(sql: str) -> dict:
            return invoke("query_database", {"connector_id": db_id, "query": sql}, agent, via="python", inline=True)

        assert run("INSERT INTO notes (body) VALUES ('first')")["ok"] is True
        second = run("INSERT INTO notes (body) VALUES ('second')")
        assert second["error"]["category"] == "quota_exceeded" and "writes per day" in second["error"]["message"]
        assert run("SELECT body FROM notes")["result"]["rows"] == [["first"]]  # reads go on
    finally:
        services.close_connector(db_id, everywhere=False)
