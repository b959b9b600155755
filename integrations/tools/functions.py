"""The seed's Python functions, with the seed's signatures (re-exported by ``integrations.tools``).

Each runs in this process (no worker), is audited as a ToolCall, and returns the envelope ``{"ok": true,
"result": {...}}`` or ``{"ok": false, "error": {"category", "message", "retry_after", "permanent"}}`` —
it never raises for a refused or failed call.
"""

from __future__ import annotations

from typing import Any


def _call(name: str, **arguments: Any) -> dict[str, Any]:
    # Imported when called, not with this module: scripts import these functions before django.setup(),
    # and Django imports this package (integrations.tools, the app) before any model may be imported.
    from integrations.tools.invocation import call_local

    return call_local(name, **arguments)


def query_database(
    connector_id: str, query: str, params: dict[str, Any] | None = None, *, max_rows: int | None = None
) -> dict[str, Any]:
    """One read-only SQL statement (named parameters ``:name``); rows capped, ``truncated`` flagged."""
    return _call("query_database", connector_id=connector_id, query=query, params=params, max_rows=max_rows)


def list_tables(connector_id: str) -> dict[str, Any]:
    return _call("list_tables", connector_id=connector_id)


def describe_table(connector_id: str, table: str) -> dict[str, Any]:
    return _call("describe_table", connector_id=connector_id, table=table)


def query_hris(
    connector_id: str, resource: str, filters: dict[str, Any] | None = None, *, limit: int | None = None
) -> dict[str, Any]:
    """resource: employees, employee, time_off_requests, custom_fields."""
    return _call("query_hris", connector_id=connector_id, resource=resource, filters=filters, limit=limit)


def create_hris_record(
    connector_id: str, entity_type: str, data: dict[str, Any], *, idempotency_key: str | None = None
) -> dict[str, Any]:
    """entity_type: employee or time_off_request. The same key (or, without one, the same call) never
    creates a second record."""
    return _call(
        "create_hris_record",
        connector_id=connector_id,
        entity_type=entity_type,
        data=data,
        idempotency_key=idempotency_key,
    )


def update_hris_record(
    connector_id: str,
    entity_type: str,
    entity_id: str | int,
    data: dict[str, Any],
    *,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    return _call(
        "update_hris_record",
        connector_id=connector_id,
        entity_type=entity_type,
        entity_id=entity_id,
        data=data,
        idempotency_key=idempotency_key,
    )


def set_time_off_request_status(
    connector_id: str,
    request_id: str | int,
    status: str,
    note: str | None = None,
    *,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """status: approved, denied or cancelled."""
    return _call(
        "set_time_off_request_status",
        connector_id=connector_id,
        request_id=request_id,
        status=status,
        note=note,
        idempotency_key=idempotency_key,
    )


__all__ = [
    "create_hris_record",
    "describe_table",
    "list_tables",
    "query_database",
    "query_hris",
    "set_time_off_request_status",
    "update_hris_record",
]
