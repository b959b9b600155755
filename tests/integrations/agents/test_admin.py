"""The admin: a token made there belongs to a profile; a profile with a bad grant is a form error."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from integrations.agents.models import AgentProfile
from integrations.tools.models import AgentToken

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(get_user_model().objects.create_superuser("agents-admin", password="pw-agents-admin-1"))
    return client


def test_a_token_made_in_the_admin_gets_a_generated_profile_that_follows_its_scope(
    admin_client, hr_sandbox, make_hr_integration
):
    hr, other = make_hr_integration(hr_sandbox, connect=False), make_hr_integration(hr_sandbox, connect=False)
    admin_client.post("/admin/tools/agenttoken/add/", {"name": "adm", "access": "read", "integrations": [hr.id]})
    token = AgentToken.objects.get(name="adm")
    assert token.profile is not None and token.profile.generated
    assert list(token.profile.grants.values_list("integration_id", "access")) == [(hr.id, "read")]
    admin_client.post(
        f"/admin/tools/agenttoken/{token.pk}/change/",
        {"name": "adm", "access": "write", "integrations": [other.id]},
    )
    token.refresh_from_db()
    assert list(token.profile.grants.values_list("integration_id", "access")) == [(other.id, "write")]


def test_the_profile_admin_names_an_unknown_tool_and_field(admin_client, hr_sandbox, make_hr_integration):
    hr = make_hr_integration(hr_sandbox, connect=False)
    form = {
        "name": "from-admin",
        "description": "",
        "tools": '["query_hris", "teleport"]',
        "max_token_ttl": "3600",
        "grants-TOTAL_FORMS": "1",
        "grants-INITIAL_FORMS": "0",
        "grants-MIN_NUM_FORMS": "0",
        "grants-MAX_NUM_FORMS": "1000",
        "grants-0-integration": hr.id,
        "grants-0-access": "read",
        "grants-0-hris": '{"classes": ["public"], "fields": ["favouriteColour"]}',
        "grants-0-database": "{}",
    }
    page = admin_client.post("/admin/agents/agentprofile/add/", form).content.decode()
    assert "teleport" in page and "favouriteColour" in page
    assert not AgentProfile.objects.filter(name="from-admin").exists()
    form["tools"] = '["query_hris"]'
    form["grants-0-hris"] = '{"classes": ["public"], "fields": ["hireDate"]}'
    response = admin_client.post("/admin/agents/agentprofile/add/", form)
    assert response.status_code == 302
    profile = AgentProfile.objects.get(name="from-admin")
    assert profile.grants.get().hris["fields"] == ["hireDate"]
    assert admin_client.get(f"/admin/agents/agentprofile/{profile.pk}/change/").status_code == 200
