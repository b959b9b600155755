"""Database tools: query_database, list_tables, describe_table (run where the connector lives)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from connectors import registry
from integrations import services
from integrations.tools import conf, database_policy, sql_guard
from integrations.tools.context import ToolContext, jsonable
from integrations.tools.errors import ToolError


def _read_only(ctx: ToolContext) -> bool:
    typed = registry.validate_config(ctx.integration.kind, ctx.integration.config)
    # Database connectors are read-only unless their config says otherwise; so are kinds without the key.
    return bool(getattr(typed, "read_only", True))


def _rows(rows: Sequence[Any], columns: list[str]) -> list[list[Any]]:
    out = []
    for row in rows:
        values = [row.get(c) for c in columns] if isinstance(row, Mapping) else list(row)
        out.append([jsonable(v) for v in values])
    return out


def _cap_bytes(rows: list[list[Any]], limit: int) -> tuple[list[list[Any]], bool]:
    """Keep whole rows while the JSON stays under ``limit`` bytes (a few wide rows can be huge)."""
    size = 0
    for index, row in enumerate(rows):
        size += len(json.dumps(row, separators=(",", ":"), ensure_ascii=False).encode()) + 1
        if size > limit:
            return rows[:index], True
    return rows, False


def query_database(
    ctx: ToolContext,
    connector_id: str,
    query: str,
    params: Mapping[str, Any] | None = None,
    max_rows: int | None = None,
) -> dict[str, Any]:
    read_only = _read_only(ctx)
    allow_writes = not read_only and ctx.may_write
    try:
        checked = sql_guard.check(query, allow_writes=allow_writes)
    except sql_guard.SQLRefused as exc:
        if not read_only and not ctx.may_write and sql_guard.kind_of(query) == "write":
            raise ToolError("permission", "this token may only read: write statements need a write token") from None
        raise ToolError("invalid", str(exc)) from None

    # Under a profile's table allow-list (a write too): the engine enforces it for this call.
    rules = database_policy.rules_of(ctx)
    scope = database_policy.scope_for(ctx, rules) if rules is not None else None
    extra = {"scope": scope} if scope is not None else {}
    if rules is not None and not checked.writes:
        database_policy.check_sql(ctx, rules, checked.sql)

    if checked.writes:
        affected = services.run_operation(connector_id, "execute", checked.sql, dict(params or {}), **extra)
        return {
            "columns": [],
            "rows": [],
            "row_count": int(affected or 0),
            "truncated": False,
            "statement": checked.verb,
        }

    cap = min(max_rows or conf.max_rows(), conf.max_rows())
    result = services.run_operation(connector_id, "fetch", checked.sql, dict(params or {}), max_rows=cap, **extra)
    columns = [str(c) for c in result.columns]
    rows = _rows(result.rows, columns)
    rows, cut = _cap_bytes(rows, conf.max_result_bytes())
    return {
        "columns": columns,
        "rows": rows,
        "row_count": len(rows),
        "truncated": bool(result.truncated) or cut,
        "statement": checked.verb,
    }


def list_tables(ctx: ToolContext, connector_id: str) -> dict[str, Any]:
    tables = [str(t) for t in services.run_operation(connector_id, "list_tables")]
    rules = database_policy.rules_of(ctx)
    if rules is not None:
        tables = database_policy.visible_tables(rules, tables)  # only the profile's tables
    return {"tables": tables}


def describe_table(ctx: ToolContext, connector_id: str, table: str) -> dict[str, Any]:
    rules = database_policy.rules_of(ctx)
    if rules is not None:
        database_policy.visible_columns(rules, table, [])  # a table outside the list: refused before asking
    columns = services.run_operation(connector_id, "describe_table", table)
    out = []
    for column in columns:
        item = dict(column) if isinstance(column, Mapping) else dict(vars(column))
        item = {k: jsonable(v) for k, v in item.items()}
        if item.get("default") is not None:
            item["default"] = str(item["default"])
        out.append(item)
    if rules is not None:
        out = database_policy.visible_columns(rules, table, out)  # only the profile's columns
    return {"table": table, "columns": out}
