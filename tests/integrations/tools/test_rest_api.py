"""REST: catalog, invocation with scoped agent tokens (and staff users), availability, audit trail.

Calls go through Celery in eager mode here (the same task code, run inline); test_worker_e2e.py runs
them in a real worker process."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from jsonschema import Draft202012Validator
from knox.models import AuthToken

from integrations.models import Status
from integrations.tools import catalog
from integrations.tools.models import AgentToken, ToolCall
from tests.factories import unique

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _eager(celery_eager: None) -> None:
    return None


def bearer(client, raw: str):
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def invoke(client, name: str, body: dict, **extra):
    return client.post(f"/api/tools/{name}/invoke", body, format="json", **extra)


def test_catalog_lists_every_tool_with_valid_schemas(api_client, hr_sandbox, make_hr_integration, make_token):
    _, raw = make_token(make_hr_integration(hr_sandbox, connect=False))
    assert api_client.get("/api/tools/").status_code == 401
    response = bearer(api_client, raw).get("/api/tools/")
    assert response.status_code == 200
    listed = {t["name"]: t for t in response.json()["tools"]}
    assert set(listed) == {
        "query_database",
        "list_tables",
        "describe_table",
        "query_hris",
        "create_hris_record",
        "update_hris_record",
        "set_time_off_request_status",
        "describe_access",  # about the caller's own profile (issue 16): the one tool without connector_id
    }
    for tool in listed.values():
        Draft202012Validator.check_schema(tool["input_schema"])
        Draft202012Validator.check_schema(tool["output_schema"])
        assert tool["input_schema"]["type"] == "object"
        assert ("connector_id" in tool["input_schema"]["required"]) is (tool["name"] != "describe_access")
        assert set(tool["annotations"]) >= {"readOnlyHint", "destructiveHint", "idempotentHint"}
    assert listed["query_hris"]["annotations"]["readOnlyHint"] is True
    assert listed["create_hris_record"]["annotations"]["readOnlyHint"] is False
    assert listed["create_hris_record"]["annotations"]["idempotentHint"] is True
    assert listed["update_hris_record"]["annotations"]["destructiveHint"] is True


def test_schemas_accept_good_arguments_and_refuse_bad_ones():
    tool = catalog.get("query_database")
    assert catalog.input_errors(tool, {"connector_id": "hr_db", "query": "SELECT 1", "params": {"a": 1}}) == []
    assert catalog.input_errors(tool, {"connector_id": "hr_db"})  # no query
    assert catalog.input_errors(tool, {"connector_id": "HR DB!", "query": "x"})  # bad id
    assert catalog.input_errors(tool, {"connector_id": "hr_db", "query": "x", "params": {"a": {"nested": 1}}})
    assert catalog.input_errors(tool, {"connector_id": "hr_db", "query": "x", "surprise": 1})
    create = catalog.get("create_hris_record")
    assert (
        catalog.input_errors(create, {"connector_id": "hr", "entity_type": "employee", "data": {"firstName": "A"}})
        == []
    )
    assert catalog.input_errors(create, {"connector_id": "hr", "entity_type": "payroll", "data": {"a": 1}})
    assert catalog.input_errors(create, {"connector_id": "hr", "entity_type": "employee", "data": {}})
    assert catalog.input_errors(create, "not an object") == ["arguments must be a JSON object"]


def test_token_reads_and_every_call_is_audited(api_client, hr_sandbox, make_hr_integration, make_token):
    hr = make_hr_integration(hr_sandbox)
    token, raw = make_token(hr, name="hr-reader")
    response = invoke(
        bearer(api_client, raw),
        "query_hris",
        {"connector_id": hr.id, "resource": "employees", "filters": {"department": "Engineering"}, "limit": 2},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ok"] is True and body["result"]["count"] <= 2
    assert all(item["department"] == "Engineering" for item in body["result"]["items"])
    call = ToolCall.objects.get(pk=body["call_id"])
    assert call.token == token and call.actor == f"token:hr-reader#{token.pk}" and call.via == "rest"
    assert call.outcome == "ok" and call.result_size > 0 and call.duration_ms is not None
    assert call.task_id  # it ran as a Celery task

    trail = api_client.get("/api/tools/calls/", {"integration": hr.id}).json()["results"]
    assert [c["id"] for c in trail] == [call.pk]
    assert trail[0]["arguments"]["filters"] == {"department": "Engineering"}
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_read_only_token_cannot_call_a_write_tool(api_client, fresh_sandbox, make_hr_integration, make_token):
    hr = make_hr_integration(fresh_sandbox)
    _, raw = make_token(hr, access="read")
    before = len(fresh_sandbox.company.employees)
    response = invoke(
        bearer(api_client, raw),
        "create_hris_record",
        {"connector_id": hr.id, "entity_type": "employee", "data": {"firstName": "No", "lastName": "Way"}},
    )
    assert response.status_code == 403
    assert response.json()["error"]["category"] == "permission"
    assert "read-only" in response.json()["error"]["message"]
    assert len(fresh_sandbox.company.employees) == before
    assert ToolCall.objects.get(pk=response.json()["call_id"]).outcome == "refused"


def test_token_for_a_cannot_touch_b(api_client, hr_sandbox, fresh_sandbox, make_hr_integration, make_token):
    a = make_hr_integration(hr_sandbox)
    b = make_hr_integration(fresh_sandbox)
    _, raw = make_token(a, access="write")
    before, sent = len(fresh_sandbox.company.employees), fresh_sandbox.requests
    client = bearer(api_client, raw)
    for name, body in (
        ("query_hris", {"connector_id": b.id, "resource": "employees"}),
        (
            "create_hris_record",
            {"connector_id": b.id, "entity_type": "employee", "data": {"firstName": "Sneaky", "lastName": "Write"}},
        ),
        ("query_hris", {"connector_id": "no_such_integration", "resource": "employees"}),
    ):
        response = invoke(client, name, body)
        assert response.status_code == 403, response.content
        assert "may not use integration" in response.json()["error"]["message"]
    assert len(fresh_sandbox.company.employees) == before
    assert fresh_sandbox.requests == sent  # nothing reached B
    assert invoke(client, "query_hris", {"connector_id": a.id, "resource": "employees", "limit": 1}).status_code == 200
    # And the token's audit trail shows only its own calls.
    assert all(c["actor"].startswith("token:") for c in client.get("/api/tools/calls/").json()["results"])


def test_revoked_and_unknown_tokens_are_refused(api_client, hr_sandbox, make_hr_integration, make_token):
    from django.utils import timezone

    hr = make_hr_integration(hr_sandbox, connect=False)
    token, raw = make_token(hr)
    AgentToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    assert bearer(api_client, raw).get("/api/tools/").status_code == 401
    assert bearer(api_client, "hubat_" + "x" * 43).get("/api/tools/").status_code == 401
    assert AgentToken.objects.filter(token_hash__contains=raw).count() == 0  # only the hash is stored
    assert raw not in str(list(AgentToken.objects.values()))


def test_staff_users_by_session_or_drf_token_and_others_refused(api_client, hr_sandbox, make_hr_integration):
    hr = make_hr_integration(hr_sandbox)
    User = get_user_model()
    staff = User.objects.create_user("tools-staff", password="pw-tools-staff-1", is_staff=True)
    plain = User.objects.create_user("tools-plain", password="pw-tools-plain-1")
    body = {"connector_id": hr.id, "resource": "employees", "limit": 1}

    api_client.force_login(plain)
    assert invoke(api_client, "query_hris", body).status_code == 403
    api_client.logout()

    api_client.force_login(staff)
    ok = invoke(api_client, "query_hris", body)
    assert ok.status_code == 200 and ok.json()["ok"] is True
    assert ToolCall.objects.get(pk=ok.json()["call_id"]).actor == "user:tools-staff"
    api_client.logout()

    key = AuthToken.objects.create(staff)[1]
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert invoke(api_client, "query_hris", body).json()["ok"] is True


def test_bad_input_gets_a_clear_4xx(api_client, hr_sandbox, make_hr_integration, make_token):
    hr = make_hr_integration(hr_sandbox)
    _, raw = make_token(hr)
    client = bearer(api_client, raw)
    unknown = invoke(client, "drop_everything", {"connector_id": hr.id})
    assert unknown.status_code == 404 and "catalog" in unknown.json()["error"]["message"]
    bad = invoke(client, "query_hris", {"connector_id": hr.id, "resource": "salaries"})
    assert bad.status_code == 400 and "resource" in bad.json()["error"]["message"]
    not_object = client.post("/api/tools/query_hris/invoke", [1, 2], format="json")
    assert not_object.status_code == 400
    malformed = client.post("/api/tools/query_hris/invoke", "{not json", content_type="application/json")
    assert malformed.status_code == 400
    assert client.post("/api/tools/query_hris/invoke?wait=maybe", {}, format="json").status_code == 400
    wrong_family = invoke(client, "query_database", {"connector_id": hr.id, "query": "SELECT 1"})
    assert wrong_family.status_code == 400


def test_idempotency_key_header_makes_a_retry_safe(api_client, fresh_sandbox, make_hr_integration, make_token):
    hr = make_hr_integration(fresh_sandbox)
    _, raw = make_token(hr, access="write")
    client = bearer(api_client, raw)
    body = {
        "connector_id": hr.id,
        "entity_type": "employee",
        "data": {"firstName": "Mary", "lastName": unique("Jackson")},
    }
    key = unique("header-key")
    first = invoke(client, "create_hris_record", body, HTTP_IDEMPOTENCY_KEY=key).json()
    second = invoke(client, "create_hris_record", body, HTTP_IDEMPOTENCY_KEY=key).json()
    assert first["ok"] and second["ok"] and first["result"]["id"] == second["result"]["id"]
    assert second["result"]["replayed"] is True
    named = [r for r in fresh_sandbox.company.employees.values() if r["lastName"] == body["data"]["lastName"]]
    assert len(named) == 1
    assert ToolCall.objects.filter(idempotency_key=key).count() == 2  # both attempts are in the trail


def test_unavailable_integrations_answer_with_retry_after(api_client, hr_sandbox, make_hr_integration, make_token):
    from connectors.circuit import RedisCircuitBreaker
    from connectors.shared import redis_client
    from integrations.models import Integration

    in_error = make_hr_integration(hr_sandbox)
    tripped = make_hr_integration(hr_sandbox)
    idle = make_hr_integration(hr_sandbox, connect=False)
    _, raw = make_token(in_error, tripped, idle)
    client = bearer(api_client, raw)

    Integration.objects.filter(pk=in_error.pk).update(status=Status.ERROR, last_error="network: connection refused")
    response = invoke(client, "query_hris", {"connector_id": in_error.id, "resource": "employees"})
    assert response.status_code == 200
    error = response.json()["error"]
    assert response.json()["ok"] is False and error["category"] == "unavailable"
    assert 0 < error["retry_after"] <= in_error.health_check_interval
    assert int(response["Retry-After"]) >= 1

    # Open the shared circuit the way failing calls do, through the breaker every worker uses.
    breaker = RedisCircuitBreaker(
        redis_client(settings.REDIS_URL), settings.CIRCUIT_FAILURE_THRESHOLD, float(settings.CIRCUIT_COOLDOWN_SECONDS)
    )
    for _ in range(settings.CIRCUIT_FAILURE_THRESHOLD):
        breaker.record_failure(tripped.id)
    before = hr_sandbox.requests
    response = invoke(client, "query_hris", {"connector_id": tripped.id, "resource": "employees"})
    error = response.json()["error"]
    assert error["category"] == "unavailable" and "circuit" in error["message"]
    assert 0 < error["retry_after"] <= settings.CIRCUIT_COOLDOWN_SECONDS
    assert hr_sandbox.requests == before  # failed fast: nothing sent
    breaker.reset(tripped.id)

    response = invoke(client, "query_hris", {"connector_id": idle.id, "resource": "employees"})
    assert (
        response.json()["error"]["category"] == "unavailable" and "not connected" in response.json()["error"]["message"]
    )
    assert (
        ToolCall.objects.filter(integration_ref__in=[in_error.id, tripped.id, idle.id], outcome="unavailable").count()
        == 3
    )


def test_not_waiting_returns_202_and_the_call_can_be_followed(api_client, hr_sandbox, make_hr_integration, make_token):
    hr = make_hr_integration(hr_sandbox)
    _, raw = make_token(hr)
    client = bearer(api_client, raw)
    response = client.post(
        "/api/tools/query_hris/invoke?wait=false",
        {"connector_id": hr.id, "resource": "employees", "limit": 2},
        format="json",
    )
    assert response.status_code == 202
    call_id = response.json()["call_id"]
    detail = client.get(f"/api/tools/calls/{call_id}").json()
    assert detail["outcome"] == "ok"
    assert detail["envelope"]["ok"] is True and detail["envelope"]["result"]["count"] == 2
    # Another token does not see it.
    _, other = make_token(hr)
    assert bearer(api_client, other).get(f"/api/tools/calls/{call_id}").status_code == 404
