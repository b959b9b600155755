"""Serve the agent tools over MCP: stdio (default) or streamable HTTP (--http)."""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "Serve the agent tools as an MCP server. stdio (default): runs as the agent token in "
        "HUB_AGENT_TOKEN (or --token). --http: streamable HTTP at http://HOST:PORT/mcp, each request "
        "authenticated by 'Authorization: Bearer <agent token>'. Calls run in Celery workers unless "
        "--inline."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--http", action="store_true", help="Serve streamable HTTP instead of stdio.")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument(
            "--allowed-host",
            action="append",
            dest="allowed_hosts",
            default=None,
            metavar="HOST:PORT",
            help="--http: a Host header to accept besides loopback (DNS-rebinding protection), e.g. "
            "hub.example.com:443; repeat for several.",
        )
        parser.add_argument("--token", default=None, help="stdio: the agent token (default: $HUB_AGENT_TOKEN).")
        parser.add_argument(
            "--inline",
            action="store_true",
            help="Run tool calls in this process instead of a Celery worker (single-user, no worker needed).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        import anyio

        from integrations.tools import mcp

        if options["http"]:
            import uvicorn

            if not 0 < options["port"] < 65536:
                raise CommandError("--port must be between 1 and 65535")
            allowed = options["allowed_hosts"]
            if allowed:
                allowed = [*allowed, f"{options['host']}:*", "127.0.0.1:*", "localhost:*", "[::1]:*"]
            app = mcp.http_app(
                host=options["host"], port=options["port"], inline=options["inline"], allowed_hosts=allowed
            )
            self.stderr.write(f"MCP over streamable HTTP at http://{options['host']}:{options['port']}/mcp")
            uvicorn.run(app, host=options["host"], port=options["port"], log_level="warning")
            return

        from integrations.tools.models import AgentToken

        raw = options["token"] or os.environ.get("HUB_AGENT_TOKEN", "")
        if not raw:
            raise CommandError("set HUB_AGENT_TOKEN (or --token) to an agent token: manage.py create_agent_token")
        token = AgentToken.authenticate(raw)
        if token is None:
            raise CommandError("HUB_AGENT_TOKEN is not a valid, active agent token")
        # stdout carries the protocol: nothing else may be printed there.
        anyio.run(lambda: mcp.serve_stdio(token, inline=options["inline"]))
