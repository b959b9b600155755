"""The tool catalog as an MCP server (official Python SDK, low-level ``Server``), over stdio and
over streamable HTTP.

Both transports serve the same catalog (``tools/list``: JSON Schemas for input and output, and the
read-only / destructive / idempotent hints) and run calls through ``invocation.invoke`` — the same
scope checks, audit trail and worker dispatch as the REST API.

Who is calling:
  - stdio (``manage.py mcp_server``): the agent token in ``HUB_AGENT_TOKEN`` (or ``--token``); the
    process runs as that token for its whole life.
  - HTTP (``manage.py mcp_server --http``): ``Authorization: Bearer <agent token>`` on every request,
    checked by the SDK's bearer-auth middleware through ``AgentTokenVerifier``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio
import mcp_types as types
from asgiref.sync import sync_to_async
from mcp.server import Server, ServerRequestContext
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import AnyHttpUrl
from starlette.applications import Starlette

from accounts.throttle import FailureThrottleMiddleware
from integrations import hub_outage
from integrations.tools import catalog
from integrations.tools.invocation import Principal, hub_unavailable, invoke
from integrations.tools.models import AgentToken, Via

SERVER_NAME = "integration-hub"
INSTRUCTIONS = (
    "Tools over the integrations of this Integration Hub: SQL databases (query_database, list_tables, "
    "describe_table) and HR systems (query_hris, create_hris_record, update_hris_record, "
    "set_time_off_request_status); describe_access tells what your profile allows. Every result is {ok, result} or {ok: false, error: {category, message, "
    "retry_after}}; on 'unavailable' or 'rate_limited' wait retry_after seconds. Send the same "
    "idempotency_key when retrying a write."
)


def mcp_tools(principal: Principal | None = None) -> list[types.Tool]:
    """The catalog as MCP tools; for an agent, only its profile's tools."""
    access = principal.access() if principal is not None else None
    out = []
    for tool in catalog.TOOLS:
        if access is not None and not access.may_use_tool(tool.name):
            continue
        hints = tool.annotations()
        out.append(
            types.Tool(
                name=tool.name,
                title=tool.title,
                description=tool.description,
                input_schema=tool.input_schema,
                output_schema=tool.output_schema,
                annotations=types.ToolAnnotations(
                    title=hints["title"],
                    read_only_hint=hints["readOnlyHint"],
                    destructive_hint=hints["destructiveHint"],
                    idempotent_hint=hints["idempotentHint"],
                    open_world_hint=hints["openWorldHint"],
                ),
            )
        )
    return out


def _result(envelope: dict[str, Any]) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(text=json.dumps(envelope, ensure_ascii=False, default=str))],
        structured_content=envelope,
        is_error=not envelope.get("ok"),
    )


def build_server(
    principal_for: Callable[[ServerRequestContext[Any]], Principal | None], *, inline: bool = False
) -> Server[Any]:
    """An MCP server; ``principal_for`` says who makes each call (None: refuse)."""

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        principal = await sync_to_async(principal_for, thread_sensitive=False)(ctx)
        if principal is None:
            return types.ListToolsResult(tools=[])
        tools = await sync_to_async(mcp_tools, thread_sensitive=False)(principal)
        return types.ListToolsResult(tools=tools)

    async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
        try:
            principal = await sync_to_async(principal_for, thread_sensitive=False)(ctx)
        except hub_outage.DATABASE_DOWN as exc:  # the token cannot be looked up: a category, not a stack trace
            return _result(hub_unavailable(exc).envelope())
        if principal is None:
            return _result(
                {
                    "ok": False,
                    "call_id": None,
                    "error": {
                        "category": "permission",
                        "message": "no valid agent token",
                        "retry_after": None,
                        "permanent": True,
                    },
                }
            )
        arguments = dict(params.arguments or {})
        # The ORM and the wait for a worker are blocking: run them off the event loop.
        envelope = await anyio.to_thread.run_sync(
            lambda: invoke(params.name, arguments, principal, via=Via.MCP, inline=inline)
        )
        return _result(envelope)

    return Server(
        SERVER_NAME, version="1.0.0", instructions=INSTRUCTIONS, on_list_tools=list_tools, on_call_tool=call_tool
    )


# ---------------------------------------------------------------------------------------------
# stdio
# ---------------------------------------------------------------------------------------------


async def serve_stdio(token: AgentToken, *, inline: bool = False) -> None:
    from mcp.server.stdio import stdio_server

    token_id = token.pk

    def principal_for(_ctx: ServerRequestContext[Any]) -> Principal | None:
        # Looked up per call: a token revoked while the server runs stops working at once.
        current = AgentToken.objects.active().filter(pk=token_id).first()
        return Principal.for_token(current) if current is not None else None

    server = build_server(principal_for, inline=inline)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


# ---------------------------------------------------------------------------------------------
# Streamable HTTP
# ---------------------------------------------------------------------------------------------


class AgentTokenVerifier:
    """The SDK's TokenVerifier protocol over AgentToken (only a hash of each token is stored)."""

    async def verify_token(self, token: str) -> AccessToken | None:
        agent = await sync_to_async(AgentToken.authenticate, thread_sensitive=False)(token)
        if agent is None:
            return None
        return AccessToken(
            token=token,
            client_id=f"agent-token-{agent.pk}",
            scopes=[agent.access],
            expires_at=int(agent.expires_at.timestamp()) if agent.expires_at else None,
        )


def _token_of(ctx: ServerRequestContext[Any]) -> str | None:
    access = get_access_token()
    if access is None:
        user = getattr(getattr(ctx, "request", None), "user", None)
        access = getattr(user, "access_token", None)
    return access.token if access is not None else None


def _http_principal(ctx: ServerRequestContext[Any]) -> Principal | None:
    raw = _token_of(ctx)
    agent = AgentToken.authenticate(raw) if raw else None
    return Principal.for_token(agent) if agent is not None else None


def http_app(
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    path: str = "/mcp",
    inline: bool = False,
    allowed_hosts: list[str] | None = None,
) -> Starlette:
    """The ASGI app of the MCP endpoint (Bearer agent tokens; DNS-rebinding protection on; an address
    with too many failed tokens gets 429, as on the REST API)."""
    server = build_server(_http_principal, inline=inline)
    base = f"http://{host}:{port}"
    hosts = allowed_hosts or [f"{host}:*", "127.0.0.1:*", "localhost:*", "[::1]:*"]
    app = server.streamable_http_app(
        streamable_http_path=path,
        host=host,
        token_verifier=AgentTokenVerifier(),
        auth=AuthSettings(
            issuer_url=AnyHttpUrl(base),  # tokens are issued by this hub (manage.py create_agent_token)
            resource_server_url=AnyHttpUrl(f"{base}{path}"),
            validate_token_resource=False,  # our tokens carry no audience: the verifier is the check
        ),
        transport_security=TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=hosts,
            allowed_origins=[f"http://{h}" for h in hosts],
        ),
    )
    app.add_middleware(FailureThrottleMiddleware)
    return app
