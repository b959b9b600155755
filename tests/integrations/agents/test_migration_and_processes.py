"""Tokens made before profiles keep their scope through the migration; quotas hold across two processes;
MCP (the SDK's own client over stdio) lists only the profile's tools and refuses the others, audited."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import anyio
import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from integrations.agents import quotas
from integrations.agents.models import AgentProfile
from integrations.agents.services import quota_key
from integrations.models import Integration
from integrations.tools.invocation import Principal, invoke
from integrations.tools.models import AgentToken, ToolCall, hash_token
from tests.runtime_fixtures import REPO

BEFORE_PROFILES = [("tools", "0001_initial"), ("agents", None)]
RAW = "hubat_" + "p" * 43


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets or executor.loader.graph.leaf_nodes())
    return executor


@pytest.mark.django_db(transaction=True)
def test_a_token_made_before_profiles_keeps_its_scope(hr_sandbox, make_hr_integration):
    hr, other = make_hr_integration(hr_sandbox), make_hr_integration(hr_sandbox)
    try:
        executor = _migrate(BEFORE_PROFILES)
        old = executor.loader.project_state(BEFORE_PROFILES[:1]).apps
        OldToken = old.get_model("tools", "AgentToken")
        token = OldToken.objects.create(name="hr-bot", token_hash=hash_token(RAW), token_prefix=RAW[:12], access="read")
        token.integrations.add(hr.pk)
        writer = OldToken.objects.create(
            name="hr-bot", token_hash=hash_token(RAW + "w"), token_prefix=RAW[:12], access="write"
        )
        writer.integrations.add(hr.pk, other.pk)
    finally:
        _migrate(None)

    moved = AgentToken.authenticate(RAW)
    assert moved is not None and moved.profile is not None and moved.profile.generated
    assert moved.profile.tools is None  # every tool, as before
    assert list(moved.profile.grants.values_list("integration_id", "access")) == [(hr.pk, "read")]
    agent = Principal.for_token(moved)
    read = invoke(
        "query_hris", {"connector_id": hr.pk, "resource": "employees", "limit": 1}, agent, via="python", inline=True
    )
    assert read["ok"] is True
    write = invoke(
        "create_hris_record",
        {"connector_id": hr.pk, "entity_type": "employee", "data": {"firstName": "A", "lastName": "B"}},
        agent,
        via="python",
        inline=True,
    )
    assert write["error"]["category"] == "permission"
    elsewhere = invoke(
        "query_hris", {"connector_id": other.pk, "resource": "employees"}, agent, via="python", inline=True
    )
    assert elsewhere["error"]["category"] == "permission"

    second = AgentToken.authenticate(RAW + "w")
    assert second.profile != moved.profile  # one generated profile per token, names kept apart
    assert sorted(second.profile.grants.values_list("integration_id", "access")) == sorted(
        [(hr.pk, "write"), (other.pk, "write")]
    )


SCRIPT = """
import json, sys, django
django.setup()
from integrations.tools.invocation import Principal, invoke
from integrations.tools.models import AgentToken
token = AgentToken.authenticate(sys.argv[1])
out = []
for _ in range(int(sys.argv[3])):
    env = invoke("query_hris", {"connector_id": sys.argv[2], "resource": "time_off_types"}, Principal.for_token(token),
                 via="python", inline=True)
    out.append(env["ok"] or env["error"]["category"])
print(json.dumps(out))
"""


@pytest.mark.django_db(transaction=True)
def test_quotas_hold_across_two_processes(hr_sandbox, make_hr_integration, process_env):
    hr = make_hr_integration(hr_sandbox)
    profile = AgentProfile.objects.create(name="shared-quota", calls_per_minute=7)
    profile.grants.create(integration=hr, access="read")
    _token, raw = AgentToken.issue(name="twins", profile=profile)
    if time.time() % 60 > 40:  # both processes must work inside one clock minute
        time.sleep(61 - time.time() % 60)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT, raw, hr.pk, "6"],
            cwd=REPO,
            env=process_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results += json.loads(out.strip().splitlines()[-1])
    assert results.count(True) == 7 and results.count("quota_exceeded") == 5
    left = quotas.remaining(quota_key(profile), quotas.Quotas(calls_per_minute=7))["calls_per_minute"]
    assert left["remaining"] == 0
    assert ToolCall.objects.filter(token__profile=profile, outcome="ok").count() == 7


async def _mcp_session(params, hr_id: str):
    async with Client(params, read_timeout_seconds=60) as client:
        listing = await client.list_tools()
        described = await client.call_tool("describe_access", {})
        refused = await client.call_tool("list_tables", {"connector_id": hr_id})
    return listing, described, refused


@pytest.mark.django_db(transaction=True)
def test_mcp_lists_only_the_profiles_tools_and_refuses_another(hr_sandbox, make_hr_integration, process_env):
    hr = make_hr_integration(hr_sandbox)
    profile = AgentProfile.objects.create(name="mcp-narrow", tools=["query_hris", "describe_access"])
    profile.grants.create(integration=hr, access="read")
    _token, raw = AgentToken.issue(name="mcp-agent", profile=profile)
    params = StdioServerParameters(
        command=sys.executable,
        args=["manage.py", "mcp_server", "--inline"],
        cwd=str(REPO),
        env={**process_env, "HUB_AGENT_TOKEN": raw},
    )
    listing, described, refused = anyio.run(_mcp_session, params, hr.pk)
    assert sorted(t.name for t in listing.tools) == ["describe_access", "query_hris"]
    assert described.is_error is False
    assert described.structured_content["result"]["profile"] == "mcp-narrow"
    assert refused.is_error is True
    error = refused.structured_content["error"]
    assert error["category"] == "permission" and "list_tables" in error["message"]
    call = ToolCall.objects.get(tool="list_tables", token__profile=profile)
    assert (call.via, call.outcome) == ("mcp", "refused")
    assert Integration.objects.filter(pk=hr.pk).exists()


_SUCCEEDED = re.compile(r"Task \S+\[([0-9a-f-]{36})\] succeeded")


def _ran_all(workers, task_ids: set[str]) -> dict[str, set[str]] | None:
    """worker node -> the given tasks its log says it ran; None until every task is named."""
    ran = {w.node: set(_SUCCEEDED.findall(w.log_path.read_text(errors="replace"))) & task_ids for w in workers}
    return ran if set().union(*ran.values()) == task_ids else None


@pytest.mark.slow  # two Celery workers
@pytest.mark.django_db(transaction=True)
def test_rows_counted_by_two_workers_share_one_daily_quota(hr_sandbox, make_hr_integration, celery_worker_factory):
    from tests.runtime_fixtures import wait_until

    hr = make_hr_integration(hr_sandbox)
    profile = AgentProfile.objects.create(name="rows-two-workers", rows_per_day=9)
    profile.grants.create(integration=hr, access="read")
    token, _raw = AgentToken.issue(name="rows-agent", profile=profile)
    workers = [celery_worker_factory("rows-a", concurrency=1), celery_worker_factory("rows-b", concurrency=1)]
    agent = Principal.for_token(token)
    body = {"connector_id": hr.pk, "resource": "employees", "limit": 2}
    hr_sandbox.slow(0.3)  # each call outlasts the enqueueing of the six: one worker cannot drain them alone
    try:
        started = [invoke("query_hris", body, agent, via="rest", wait=False) for _ in range(6)]
        assert all(s["status"] == "running" for s in started)
        ids = [s["call_id"] for s in started]
        wait_until(
            lambda: ToolCall.objects.filter(pk__in=ids, finished_at__isnull=False).count() == 6, 60, what="six calls"
        )
    finally:
        hr_sandbox.slow(0)
    calls = ToolCall.objects.filter(pk__in=ids)
    assert {c.outcome for c in calls} == {"ok"} and sum(c.row_count for c in calls) == 12
    task_ids = {c.task_id for c in calls}
    assert len(task_ids) == 6
    # Each worker's own log names the calls it ran: every call ran exactly once, and both took some.
    ran = wait_until(lambda: _ran_all(workers, task_ids), 20, what="the workers' logs to name the six calls")
    assert all(ran[w.node] for w in workers), {node: len(found) for node, found in ran.items()}
    assert sorted(t for found in ran.values() for t in found) == sorted(task_ids)
    left = quotas.remaining(quota_key(profile), quotas.Quotas(rows_per_day=9))["rows_per_day"]
    assert left["remaining"] == 0  # 12 rows against 9: spent, never negative
    refused = invoke("query_hris", body, agent, via="rest", wait=True, timeout=30)
    assert refused["error"]["category"] == "quota_exceeded" and refused["error"]["retry_after"] > 0
