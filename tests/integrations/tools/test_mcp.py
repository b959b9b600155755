"""The MCP server, listed and called by the official SDK's own client: over stdio (``manage.py
mcp_server`` as a child process) and over streamable HTTP (``manage.py mcp_server --http``, calls run
by a real Celery worker), with agent-token auth."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from jsonschema import Draft202012Validator
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from integrations.tools import catalog
from integrations.tools.models import ToolCall
from tests.factories import unique
from tests.runtime_fixtures import free_port, port_open

REPO = Path(__file__).resolve().parents[3]
TOOL_NAMES = {t.name for t in catalog.TOOLS}


def _check_listing(tools: list[Any]) -> None:
    by_name = {t.name: t for t in tools}
    assert set(by_name) == TOOL_NAMES
    for tool in tools:
        Draft202012Validator.check_schema(tool.input_schema)
        Draft202012Validator.check_schema(tool.output_schema)
    assert by_name["query_hris"].annotations.read_only_hint is True
    assert by_name["create_hris_record"].annotations.read_only_hint is False
    assert by_name["create_hris_record"].annotations.idempotent_hint is True
    assert by_name["update_hris_record"].annotations.destructive_hint is True


async def _session(server: Any, hr_id: str, email_suffix: str) -> dict[str, Any]:
    """List, read, and try a write the token may not make; return what came back."""
    async with Client(server, read_timeout_seconds=60) as client:
        listing = await client.list_tools()
        read = await client.call_tool("query_hris", {"connector_id": hr_id, "resource": "employees", "limit": 3})
        write = await client.call_tool(
            "create_hris_record",
            {
                "connector_id": hr_id,
                "entity_type": "employee",
                "data": {"firstName": "Via", "lastName": f"Mcp{email_suffix}"},
            },
        )
        bad = await client.call_tool("query_hris", {"connector_id": hr_id, "resource": "payroll"})
    return {"tools": listing.tools, "read": read, "write": write, "bad": bad}


def _check_calls(out: dict[str, Any], sandbox: Any, last_name: str) -> None:
    _check_listing(out["tools"])
    read = out["read"]
    assert read.is_error is False
    envelope = read.structured_content
    assert not list(catalog.validator("query_hris", "output").iter_errors(envelope))
    assert envelope["ok"] is True and envelope["result"]["count"] == 3
    write = out["write"].structured_content
    assert out["write"].is_error is True and write["error"]["category"] == "permission"
    assert not [r for r in sandbox.company.employees.values() if r["lastName"] == last_name]
    bad = out["bad"]
    assert bad.is_error is True and bad.structured_content["error"]["category"] == "invalid"


@pytest.mark.django_db(transaction=True)
def test_mcp_over_stdio(hr_sandbox, make_hr_integration, make_token, process_env):
    hr = make_hr_integration(hr_sandbox)
    _, raw = make_token(hr, access="read", name="claude-desktop")
    suffix = unique("s")
    params = StdioServerParameters(
        command=sys.executable,
        args=["manage.py", "mcp_server", "--inline"],
        cwd=str(REPO),
        env={**process_env, "HUB_AGENT_TOKEN": raw},
    )
    out = anyio.run(_session, params, hr.id, suffix)
    _check_calls(out, hr_sandbox, f"Mcp{suffix}")
    calls = ToolCall.objects.filter(integration_ref=hr.id, via="mcp").order_by("id")
    assert [c.tool for c in calls] == ["query_hris", "create_hris_record", "query_hris"]
    assert [c.outcome for c in calls] == ["ok", "refused", "refused"]
    assert all(c.actor.startswith("token:claude-desktop#") for c in calls)


@pytest.mark.django_db(transaction=True)
def test_mcp_stdio_refuses_to_start_without_a_valid_token(process_env):
    runs = {
        token: subprocess.Popen(
            [sys.executable, "manage.py", "mcp_server"],
            cwd=REPO,
            env={**process_env, "HUB_AGENT_TOKEN": token},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        for token in ("", "hubat_not-a-real-token")
    }
    for token, proc in runs.items():
        _out, err = proc.communicate(timeout=90)
        assert proc.returncode != 0 and "Traceback" not in err, err
        assert ("HUB_AGENT_TOKEN" in err) if not token else ("not a valid" in err), err


@pytest.mark.slow  # a worker and a server process; run with the SQLite hub database in CI
@pytest.mark.django_db(transaction=True)
def test_mcp_over_streamable_http_with_a_worker(
    hr_sandbox, make_hr_integration, make_token, process_factory, celery_worker_factory
):
    hr = make_hr_integration(hr_sandbox)
    other = make_hr_integration(hr_sandbox)
    _, raw = make_token(hr, access="read", name="remote-agent")
    celery_worker_factory("mcp-worker", concurrency=1)
    port = free_port()
    server = process_factory("mcp-http", [sys.executable, "manage.py", "mcp_server", "--http", "--port", str(port)])
    server.wait_ready(lambda: port_open(port), timeout=30)
    url = f"http://127.0.0.1:{port}/mcp"

    # No token, or a wrong one: the SDK's bearer middleware answers 401 before any MCP message is read.
    for headers in ({}, {"Authorization": "Bearer hubat_wrong"}):
        response = httpx.post(
            url,
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={**headers, "Accept": "application/json, text/event-stream"},
            timeout=10,
        )
        assert response.status_code == 401

    suffix = unique("h")

    async def session() -> dict[str, Any]:
        async with create_mcp_http_client(headers={"Authorization": f"Bearer {raw}"}) as http:
            out = await _session(streamable_http_client(url, http_client=http), hr.id, suffix)
            async with Client(streamable_http_client(url, http_client=http), read_timeout_seconds=60) as client:
                out["other"] = await client.call_tool("query_hris", {"connector_id": other.id, "resource": "employees"})
            return out

    out = anyio.run(session)
    _check_calls(out, hr_sandbox, f"Mcp{suffix}")
    denied = out["other"].structured_content
    assert denied["error"]["category"] == "permission" and "may not use integration" in denied["error"]["message"]
    ran = ToolCall.objects.get(integration_ref=hr.id, via="mcp", outcome="ok")
    assert ran.task_id  # run by the Celery worker, not by the MCP process
    assert ran.actor.startswith("token:remote-agent#")
    assert ran.result_size > 0 and ran.duration_ms > 0
