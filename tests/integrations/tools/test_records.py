"""Tokens and the audit trail as operators see them: the command, the admin, pruning."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

from integrations.tools.models import AgentToken, ToolCall, WriteIntent, hash_token
from integrations.tools.tasks import prune_tool_records

pytestmark = pytest.mark.django_db


def test_create_agent_token_prints_it_once_and_stores_its_hash(hr_sandbox, make_hr_integration):
    hr = make_hr_integration(hr_sandbox, connect=False)
    out, err = io.StringIO(), io.StringIO()
    call_command("create_agent_token", "hr-bot", "-i", hr.id, "--write", "--expires-days", "7", stdout=out, stderr=err)
    raw = out.getvalue().strip()
    assert re.fullmatch(r"hubat_[A-Za-z0-9_-]{40,}", raw)
    token = AgentToken.objects.get(name="hr-bot")
    assert token.token_hash == hash_token(raw) and raw not in str(vars(token))
    assert token.access == "write" and list(token.integrations.values_list("id", flat=True)) == [hr.id]
    assert token.expires_at > timezone.now() + dt.timedelta(days=6)
    assert AgentToken.authenticate(raw) == token
    assert "shown once" in err.getvalue()

    with pytest.raises(CommandError, match="no such integration: nope"):
        call_command("create_agent_token", "x", "-i", "nope", stdout=io.StringIO(), stderr=io.StringIO())


def test_expired_tokens_do_not_authenticate(hr_sandbox, make_hr_integration, make_token):
    token, raw = make_token(make_hr_integration(hr_sandbox, connect=False))
    AgentToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert AgentToken.authenticate(raw) is None


def test_admin_shows_a_new_token_once_and_the_call_trail(client, hr_sandbox, make_hr_integration):
    from integrations import tools

    hr = make_hr_integration(hr_sandbox)
    admin = get_user_model().objects.create_superuser("tools-admin", password="pw-tools-admin-1")
    client.force_login(admin)
    response = client.post(
        "/admin/tools/agenttoken/add/",
        {"name": "from-admin", "access": "read", "integrations": [hr.id]},
        follow=True,
    )
    assert response.status_code == 200
    shown = re.search(r"hubat_[A-Za-z0-9_-]{40,}", response.content.decode())
    assert shown, "the new token is shown once"
    token = AgentToken.objects.get(name="from-admin")
    assert token.token_hash == hash_token(shown.group(0)) and token.created_by == admin
    page = client.get(f"/admin/tools/agenttoken/{token.pk}/change/").content.decode()
    assert shown.group(0) not in page

    tools.query_hris(hr.id, "employees", limit=1)
    trail = client.get("/admin/tools/toolcall/").content.decode()
    assert "query_hris" in trail and hr.id in trail
    call = ToolCall.objects.get(integration_ref=hr.id)
    assert client.get(f"/admin/tools/toolcall/{call.pk}/change/").status_code == 200
    assert client.get("/admin/tools/writeintent/").status_code == 200

    # The pages moved with the tools' own app (label "tools"); a link to the old place still lands.
    old = client.get(f"/admin/integrations/toolcall/{call.pk}/change/?_changelist_filters=tool%3Dquery_hris")
    assert old.status_code == 301
    assert old["Location"] == f"/admin/tools/toolcall/{call.pk}/change/?_changelist_filters=tool%3Dquery_hris"
    assert client.get("/admin/integrations/integration/").status_code == 200  # the integrations' own pages stay


def test_prune_closes_lost_calls_and_forgets_old_records():
    old = timezone.now() - dt.timedelta(days=100)
    lost = ToolCall.objects.create(
        via="rest", actor="token:x", tool="query_hris", created_at=timezone.now() - dt.timedelta(hours=1)
    )
    ancient = ToolCall.objects.create(via="rest", actor="token:x", tool="query_hris", created_at=old, outcome="ok")
    recent = ToolCall.objects.create(via="rest", actor="token:x", tool="query_hris", outcome="ok")
    WriteIntent.objects.create(
        integration_ref="hr",
        key="old-key-123",
        tool="create_hris_record",
        fingerprint="f",
        state="succeeded",
        lease_until=old,
        created_at=old,
    )
    WriteIntent.objects.create(
        integration_ref="hr", key="new-key-123", tool="create_hris_record", fingerprint="f", lease_until=timezone.now()
    )
    counts = prune_tool_records()
    assert counts == {"lost_calls": 1, "intents_deleted": 1, "calls_deleted": 1}
    lost.refresh_from_db()
    assert lost.outcome == "timeout" and "worker" in lost.error_message
    assert not ToolCall.objects.filter(pk=ancient.pk).exists() and ToolCall.objects.filter(pk=recent.pk).exists()
    assert list(WriteIntent.objects.values_list("key", flat=True)) == ["new-key-123"]
