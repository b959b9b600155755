"""A database tool call under a profile's table/column allow-list (``ctx.grant.database``).

Enforced by the engine where it can be: SQLite's authorizer, set on the leased connection for the
call only (``CallScope.allow``); on PostgreSQL and MariaDB the operator-named role the statement runs
as (``CallScope.role``: ``SET LOCAL ROLE`` in the call's transaction, MariaDB ``SET ROLE``), whose
privileges are read from the server at save time (``integrations.agents.validation``) and at every
health check (``check_roles``): a role that can read more than its list is flagged (an event) and its
calls are refused until a check finds it fixed. On those engines sqlglot's parse
(``connectors.datapolicy.sql_check``) is a second layer that names the table or column it refuses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from connectors.datapolicy import sql_check
from connectors.db import privileges
from connectors.db.base import CallScope, DatabaseConnector
from connectors.errors import ConnectorError
from integrations import services
from integrations.agents.access import DatabaseRules, Grant
from integrations.models import EventType, Integration
from integrations.redis_clients import redis_client
from integrations.tools.context import ToolContext
from integrations.tools.errors import ToolError

SERVER_ENGINES = ("postgresql", "mysql")  # integration kinds whose roles the server enforces
_FLAG_TTL = 7 * 24 * 3600  # a flag outlives missed health checks; a passing check clears it


def rules_of(ctx: ToolContext) -> DatabaseRules | None:
    rules = ctx.grant.database if ctx.grant is not None else None
    if rules is None or (rules.allow is None and not rules.role):
        return None
    return rules


def _flag_key(integration_id: str, role: str) -> str:
    return f"hub:agents:role-overreach:{integration_id}:{role}"


def flagged(integration_id: str, role: str) -> str | None:
    """Why ``role`` is refused on this integration (the last health check found it too wide), or None."""
    value = redis_client().get(_flag_key(integration_id, role))
    return value.decode() if isinstance(value, bytes) else value


def scope_for(ctx: ToolContext, rules: DatabaseRules) -> CallScope:
    """The call's limits; refused when the engine cannot enforce the rules or the role is flagged."""
    kind = ctx.integration.kind
    if kind == "sqlite":
        if rules.role:
            raise ToolError("permission", "this profile names a database role, which SQLite does not have")
        return CallScope(allow=rules.allow)
    if kind not in SERVER_ENGINES:
        raise ToolError("permission", f"this profile's database rules cannot be enforced on {kind} integrations")
    if not rules.role:
        raise ToolError(
            "permission",
            "this profile has a table allow-list but no database role: on PostgreSQL and MariaDB the "
            "allow-list is enforced by a role the operator names",
        )
    reason = flagged(ctx.integration.id, rules.role)
    if reason is not None:
        raise ToolError("permission", f"refused until an operator fixes role {rules.role}: {reason}")
    return CallScope(role=rules.role)


def check_sql(ctx: ToolContext, rules: DatabaseRules, sql: str) -> None:
    """The second layer on PostgreSQL and MariaDB: sqlglot names what the statement reads outside
    the list (SQLite's authorizer already names it, through views too)."""
    if rules.allow is None or ctx.integration.kind not in SERVER_ENGINES:
        return
    sql_check.check_select(sql, rules.allow, dialect=ctx.integration.kind)


def _normalised(allow: Mapping[str, Any]) -> dict[str, frozenset[str] | None]:
    out: dict[str, frozenset[str] | None] = {}
    for table, columns in allow.items():
        name = table.rsplit(".", 1)[-1].lower()
        out[name] = None if columns == "*" else frozenset(str(c).lower() for c in columns)
    return out


def visible_tables(rules: DatabaseRules, tables: Iterable[str]) -> list[str]:
    if rules.allow is None:
        return list(tables)
    allowed = _normalised(rules.allow)
    return [t for t in tables if t.lower() in allowed]


def visible_columns(rules: DatabaseRules, table: str, columns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if rules.allow is None:
        return columns
    allowed = _normalised(rules.allow)
    if table.lower() not in allowed:
        raise ToolError("permission", f"table {table} is not in this profile's allow-list")
    names = allowed[table.lower()]
    return [c for c in columns if names is None or str(c.get("name", "")).lower() in names]


def check_roles(integration: Integration, grants: Iterable[tuple[str, Grant]]) -> list[dict[str, Any]]:
    """For a health check: read from the server what each profile's role can read, flag (event,
    and calls refused) a role wider than its list, clear the flag of one found fixed.
    ``grants``: (profile name, grant) pairs on this integration. Returns one report per role."""
    if integration.kind not in SERVER_ENGINES:
        return []
    connector = services.connector_for(integration)
    if not isinstance(connector, DatabaseConnector):
        return []
    connector.ensure_connected()
    reports = []
    for profile, grant in grants:
        rules = grant.database
        if rules is None or not rules.role or rules.allow is None:
            continue
        key = _flag_key(integration.id, rules.role)
        try:
            privileges.check_role(connector, rules.allow, rules.role)
        except ConnectorError as exc:
            if redis_client().set(key, exc.message, ex=_FLAG_TTL, get=True) is None:
                services.record_event(
                    integration,
                    EventType.HEALTH_CHECK,
                    ok=False,
                    message=f"agent profile {profile}: {exc.message}; its database calls are refused until fixed",
                    detail={"profile": profile, "role": rules.role, "agent_role_overreach": True},
                )
            reports.append({"profile": profile, "role": rules.role, "ok": False, "message": exc.message})
            continue
        redis_client().delete(key)
        reports.append({"profile": profile, "role": rules.role, "ok": True})
    return reports


def role_errors(integration: Integration, allow: Mapping[str, Any] | None, role: str | None) -> list[str]:
    """For a profile form or API (save time): what ``role`` can read beyond ``allow``, asked of the
    server; [] when it is within the list (or there is nothing to check)."""
    if not role or allow is None or integration.kind not in SERVER_ENGINES:
        return []
    try:
        connector = services.connector_for(integration)
        if not isinstance(connector, DatabaseConnector):
            return []
        connector.ensure_connected()
        privileges.check_role(connector, allow, role)
    except ConnectorError as exc:
        return [f"role: {exc.message}"]
    return []
