"""/api/agent-profiles: validation that names what is unknown, staff-only writes, minted tokens within the
profile's TTL, and the dashboard pages."""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from integrations import services
from integrations.agents.models import AgentProfile
from integrations.tools.models import AgentToken
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(api_client):
    user = get_user_model().objects.create_user(f"admin-{uuid.uuid4().hex[:6]}", password="x", is_staff=True)
    api_client.force_authenticate(user)
    return api_client


@pytest.fixture
def sqlite_db(tmp_path: Path):
    path = tmp_path / "hr.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE employees (id INTEGER PRIMARY KEY, name TEXT, salary REAL)")
    conn.commit()
    conn.close()
    integration_id = f"db_{uuid.uuid4().hex[:10]}"
    services.create_integration(
        actor="tests", id=integration_id, name="HR db", kind="sqlite", auth_type="none", config={"path": str(path)}
    )
    assert services.connect(integration_id)["ok"]
    yield integration_id
    services.close_connector(integration_id, everywhere=False)


def test_unknown_tools_fields_tables_and_columns_are_named(staff, hr_sandbox, make_hr_integration, sqlite_db):
    hr = make_hr_integration(hr_sandbox, connect=False)
    response = staff.post(
        "/api/agent-profiles",
        {"name": "bad-tools", "tools": ["query_hris", "drop_everything", "send_mail"]},
        format="json",
    )
    assert response.status_code == 400
    message = " ".join(response.json()["tools"])
    named = message.split(";")[0]
    assert "drop_everything" in named and "send_mail" in named and "query_hris" not in named

    response = staff.post(
        "/api/agent-profiles",
        {
            "name": "bad-fields",
            "grants": [
                {
                    "integration": hr.id,
                    "hris": {"classes": ["public", "secretish"], "fields": ["hireDate", "shoeSize"]},
                },
                {"integration": sqlite_db, "database": {"tables": {"employees": ["id", "ssn"], "payroll": "*"}}},
            ],
        },
        format="json",
    )
    assert response.status_code == 400, response.content
    hris_errors, db_errors = response.json()["grants"]
    assert any("secretish" in e for e in hris_errors["hris"])
    assert any("shoeSize" in e and "hireDate" not in e for e in hris_errors["hris"])
    assert any("payroll" in e for e in db_errors["database"])
    assert any("ssn" in e and "employees" in e for e in db_errors["database"])
    assert not AgentProfile.objects.filter(name__startswith="bad-").exists()


def test_a_valid_profile_is_saved_with_its_grants_and_a_classed_custom_field(
    staff, hr_sandbox, make_hr_integration, sqlite_db
):
    from integrations.agents.models import CustomFieldClass

    hr = make_hr_integration(hr_sandbox, connect=False)
    CustomFieldClass.objects.create(integration=hr, field="customShirtSize", field_class="public")
    body = {
        "name": "hr-reader",
        "tools": ["query_hris", "query_database", "describe_access"],
        "calls_per_minute": 10,
        "grants": [
            {
                "integration": hr.id,
                "hris": {"classes": ["public"], "fields": ["customShirtSize"], "scope": {"departments": ["Sales"]}},
            },
            {"integration": sqlite_db, "access": "read", "database": {"tables": {"employees": ["id", "name"]}}},
        ],
    }
    response = staff.post("/api/agent-profiles", body, format="json")
    assert response.status_code == 201, response.content
    profile = AgentProfile.objects.get(name="hr-reader")
    assert sorted(profile.grants.values_list("integration_id", flat=True)) == sorted([hr.id, sqlite_db])
    listed = staff.get(f"/api/agent-profiles/{profile.pk}").json()
    assert listed["tools"] == body["tools"] and len(listed["grants"]) == 2


def test_only_staff_change_profiles_or_mint_tokens(api_client, staff):
    profile = AgentProfile.objects.create(name="p-readonly-check", max_token_ttl=600)
    user = get_user_model().objects.create_user(f"viewer-{uuid.uuid4().hex[:6]}", password="x")
    api_client.force_authenticate(user)
    assert api_client.get("/api/agent-profiles").status_code == 200
    assert api_client.post("/api/agent-profiles", {"name": "x"}, format="json").status_code == 403
    assert api_client.post(f"/api/agent-profiles/{profile.pk}/tokens", {"ttl_seconds": 60}).status_code == 403
    assert not AgentToken.objects.filter(profile=profile).exists()


def test_a_user_reads_only_profiles_whose_integrations_they_can_see(api_client, hr_sandbox, make_hr_integration):
    hr = make_hr_integration(hr_sandbox, connect=False)
    secret = AgentProfile.objects.create(name="reads-hr", rows_per_day=10)
    secret.grants.create(integration=hr, access="write", hris={"classes": ["public"]})
    plain = AgentProfile.objects.create(name="no-grants")
    paths = [f"/api/agent-profiles/{secret.pk}", f"/api/agent-profiles/{secret.pk}/quota"]

    stranger = factories.user(f"stranger-{uuid.uuid4().hex[:6]}")
    api_client.force_authenticate(stranger)
    listed = api_client.get("/api/agent-profiles")
    assert listed.status_code == 200 and hr.id not in listed.content.decode()
    assert {p["name"] for p in listed.json()} >= {"no-grants"} and "reads-hr" not in {p["name"] for p in listed.json()}
    assert [api_client.get(path).status_code for path in paths] == [404, 404]
    assert api_client.get(f"/api/agent-profiles/{plain.pk}").status_code == 200

    readers = factories.group(f"readers-{uuid.uuid4().hex[:6]}")
    services.set_sharing(hr, [readers], actor="test setup")
    api_client.force_authenticate(factories.user(f"reader-{uuid.uuid4().hex[:6]}", groups=(readers,)))
    assert [api_client.get(path).status_code for path in paths] == [200, 200]
    assert api_client.get(paths[0]).json()["grants"][0]["integration"] == hr.id
    api_client.force_authenticate(factories.staff(f"admin-{uuid.uuid4().hex[:6]}"))
    assert [api_client.get(path).status_code for path in paths] == [200, 200]


def test_minted_tokens_respect_the_profile_ttl_cap(staff, hr_sandbox, make_hr_integration):
    hr = make_hr_integration(hr_sandbox, connect=False)
    profile = AgentProfile.objects.create(name="on-behalf", max_token_ttl=900, tools=["query_hris"])
    profile.grants.create(integration=hr, access="read")

    too_long = staff.post(f"/api/agent-profiles/{profile.pk}/tokens", {"ttl_seconds": 901}, format="json")
    assert too_long.status_code == 400 and "900" in " ".join(too_long.json()["ttl_seconds"])
    assert not AgentToken.objects.filter(profile=profile).exists()

    before = timezone.now()
    minted = staff.post(
        f"/api/agent-profiles/{profile.pk}/tokens", {"ttl_seconds": 900, "on_behalf_of": "alice"}, format="json"
    )
    assert minted.status_code == 201
    raw = minted.json()["token"]
    token = AgentToken.authenticate(raw)
    assert token is not None and token.profile == profile and token.on_behalf_of == "alice"
    assert before + dt.timedelta(seconds=899) <= token.expires_at <= timezone.now() + dt.timedelta(seconds=900)
    assert list(token.integrations.values_list("id", flat=True)) == [hr.id]
    # Shown once: the stored row holds only its hash, and the profile page never lists it.
    assert raw not in str(staff.get(f"/api/agent-profiles/{profile.pk}").content)
    AgentToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert AgentToken.authenticate(raw) is None


def test_a_profile_with_tokens_is_not_deleted_from_under_them(staff):
    profile = AgentProfile.objects.create(name="in-use", max_token_ttl=60)
    AgentToken.issue(name="bot", profile=profile)
    response = staff.delete(f"/api/agent-profiles/{profile.pk}")
    assert response.status_code == 400 and "revoke" in response.json()["detail"]
    assert AgentProfile.objects.filter(pk=profile.pk).exists()


def test_the_schema_documents_the_profiles_api(staff):
    schema = staff.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert "/api/agent-profiles/{id}/tokens/" in schema["paths"]


def test_the_dashboard_lists_profiles_and_shows_one_with_its_grants_and_quota(client, hr_sandbox, make_hr_integration):
    hr = make_hr_integration(hr_sandbox, connect=False)
    profile = AgentProfile.objects.create(name="dash-profile", tools=["query_hris"], rows_per_day=300)
    profile.grants.create(
        integration=hr, access="read", hris={"classes": ["public"], "scope": {"departments": ["Sales"]}}
    )
    assert client.get("/agents").status_code == 302  # sign in first
    # A user who cannot see the integration neither finds the profile nor opens it: its grants name it.
    client.force_login(get_user_model().objects.create_user(f"stranger-{uuid.uuid4().hex[:6]}"))
    assert "dash-profile" not in client.get("/agents").content.decode()
    assert client.get(f"/agents/{profile.pk}").status_code == 404
    # One of a group the integration is shared with reads it.
    readers = factories.group(f"readers-{uuid.uuid4().hex[:6]}")
    services.set_sharing(hr, [readers], actor="test setup")
    client.force_login(factories.user(f"viewer-{uuid.uuid4().hex[:6]}", groups=(readers,)))
    listing = client.get("/agents").content.decode()
    assert "dash-profile" in listing and f"/agents/{profile.pk}" in listing
    page = client.get(f"/agents/{profile.pk}").content.decode()
    assert "query_hris" in page and hr.id in page and "sales" in page
    assert "rows_per_day" in page and "300" in page
    assert "ssn" in page  # among the provider fields withheld
    assert client.get("/agents/999999").status_code == 404
