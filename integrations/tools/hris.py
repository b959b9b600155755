"""HRIS tools: query_hris, create_hris_record, update_hris_record, set_time_off_request_status.

They speak the provider-neutral shapes of ``connectors/hris.py`` and call the connector's operations
through ``services.run_operation``. Writes are allowed only for the fields the integration's config
lists in ``writable_fields`` (an integration without the list accepts no agent writes), and run at
most once per idempotency key (``idempotency.run_write``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from integrations import services
from integrations.tools import conf, scope_cache
from integrations.tools.context import ToolContext, jsonable
from integrations.tools.errors import ToolError
from integrations.tools.hris_policy import HrisPolicy, rules_of
from integrations.tools.idempotency import derived_key, run_write

# Entries of writable_fields that allow a kind of record rather than a field.
CREATE_TIME_OFF = "timeOffRequest"
DECIDE_TIME_OFF = "timeOffStatus"

# Agent-facing filter names -> the connector's, where they differ.
_EMPLOYEE_FILTER_ALIASES = {"name": "search", "ids": "employee_ids"}
# Clock skew allowed between the hub and the HR system when looking for a record written earlier.
_SKEW = dt.timedelta(minutes=5)


def _writable(ctx: ToolContext) -> set[str]:
    fields = (ctx.integration.config or {}).get("writable_fields")
    if not fields:
        raise ToolError(
            "permission",
            f"integration {ctx.integration.id!r} allows no agent writes: an operator must list the fields "
            "agents may write in its config (writable_fields)",
        )
    return {str(f) for f in fields}


def _check_fields(ctx: ToolContext, data: Mapping[str, Any]) -> None:
    refused = sorted(set(data) - _writable(ctx))
    if refused:
        raise ToolError("permission", f"not writable through this integration: {', '.join(refused)}")


def _check_entity(ctx: ToolContext, entry: str, what: str) -> None:
    if entry not in _writable(ctx):
        raise ToolError("permission", f"{what} is not allowed on this integration (writable_fields lacks {entry!r})")


# ---------------------------------------------------------------------------------------------
# Reads
# ---------------------------------------------------------------------------------------------


def query_hris(
    ctx: ToolContext,
    connector_id: str,
    resource: str,
    filters: Mapping[str, Any] | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    filters = dict(filters or {})
    cap = min(limit or 100, conf.max_items())
    rules = rules_of(ctx)
    if rules is not None and resource in ("employees", "employee", "time_off_requests"):
        return _query_policed(HrisPolicy(ctx, rules), resource, filters, cap)
    if resource == "employees":
        wanted = {_EMPLOYEE_FILTER_ALIASES.get(k, k): v for k, v in filters.items()}
        wanted["limit"] = cap + 1  # one more than shown tells whether there were more
        records = services.run_operation(connector_id, "list_employees", wanted, unified=True)
        items = [jsonable(r) for r in records]
    elif resource == "employee":
        if filters.get("id") in (None, ""):
            raise ToolError("invalid", "filters.id (the employee id) is required for resource 'employee'")
        fields = filters.get("fields")
        record = services.run_operation(
            connector_id, "get_employee", filters["id"], fields or None, unified=True, include_raw=bool(fields)
        )
        items = [jsonable(record)]
    elif resource == "time_off_requests":
        if not filters.get("start") or not filters.get("end"):
            raise ToolError("invalid", "filters.start and filters.end (YYYY-MM-DD) are required for time_off_requests")
        records = services.run_operation(connector_id, "list_time_off_requests", filters, unified=True)
        items = [jsonable(r) for r in records]
    elif resource == "time_off_types":
        items = [jsonable(t) for t in services.run_operation(connector_id, "list_time_off_types")]
    elif resource == "custom_fields":
        items = [jsonable(f) for f in services.run_operation(connector_id, "list_custom_fields")]
    else:  # the schema's enum stops this first; kept for direct Python callers
        raise ToolError("invalid", f"unknown resource {resource!r}")
    for item in items:
        if isinstance(item, dict) and item.get("raw") is None:
            item.pop("raw", None)
    truncated = len(items) > cap
    items = items[:cap]
    return {"resource": resource, "items": items, "count": len(items), "truncated": truncated}


def _query_policed(policy: HrisPolicy, resource: str, filters: dict[str, Any], cap: int) -> dict[str, Any]:
    """query_hris under the profile's HRIS rules: what was withheld and how many records the scope
    left out are part of the answer."""
    if resource == "employees":
        wanted = {_EMPLOYEE_FILTER_ALIASES.get(k, k): v for k, v in filters.items()}
        wanted["limit"] = cap + 1
        items, withheld, out_of_scope = policy.employees(wanted)
    elif resource == "employee":
        if filters.get("id") in (None, ""):
            raise ToolError("invalid", "filters.id (the employee id) is required for resource 'employee'")
        item, withheld = policy.employee(filters["id"], filters.get("fields") or None)
        items, out_of_scope = [item], 0
    else:
        if not filters.get("start") or not filters.get("end"):
            raise ToolError("invalid", "filters.start and filters.end (YYYY-MM-DD) are required for time_off_requests")
        items, withheld, out_of_scope = policy.time_off(filters, cap)
    truncated = len(items) > cap
    items = items[:cap]
    return {
        "resource": resource,
        "items": items,
        "count": len(items),
        "truncated": truncated,
        "withheld_fields": withheld,
        "out_of_scope": out_of_scope,
    }


# ---------------------------------------------------------------------------------------------
# Writes
# ---------------------------------------------------------------------------------------------


def _same(record: Mapping[str, Any], data: Mapping[str, Any]) -> bool:
    """The record holds the values we wrote (compared as text, case-insensitively: HR systems
    normalise case and number formats). A field the caller may not see is not a mismatch."""
    for key, value in data.items():
        if key not in record or record[key] is None:
            continue
        if str(record[key]).strip().lower() != str(value).strip().lower():
            return False
    return True


def _employee_create(
    ctx: ToolContext, connector_id: str, data: dict[str, Any], key: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    _check_fields(ctx, data)
    if not data.get("firstName") or not data.get("lastName"):
        raise ToolError("invalid", "data.firstName and data.lastName are required to create an employee")
    rules = rules_of(ctx)
    if rules is not None:
        HrisPolicy(ctx, rules).check_new_employee(data)

    def snapshot() -> dict[str, Any]:
        # Just before the write: the record an interrupted attempt created is changed after this.
        return {"since": (dt.datetime.now(dt.UTC) - _SKEW).strftime("%Y-%m-%dT%H:%M:%SZ")}

    def perform(_context: dict[str, Any]) -> dict[str, Any]:
        new_id = services.run_operation(connector_id, "create_employee", data)
        scope_cache.forget(connector_id)
        return {"entity_type": "employee", "id": str(new_id), "record": None, "replayed": False, "recovered": False}

    def reconcile(context: dict[str, Any]) -> dict[str, Any] | None:
        records = services.run_operation(
            connector_id, "list_employees", {"changed_since": context["since"]}, fields=sorted(data)
        )
        matches = sorted((r for r in records if _same(r, data)), key=lambda r: int(str(r.get("id") or 0)))
        if not matches:
            return None
        return {"entity_type": "employee", "id": str(matches[0]["id"]), "record": None, "replayed": False}

    return run_write(
        integration_id=connector_id,
        tool="create_hris_record",
        key=key,
        arguments=arguments,
        snapshot=snapshot,
        perform=perform,
        reconcile=reconcile,
    )


def _time_off_create(
    ctx: ToolContext, connector_id: str, data: dict[str, Any], key: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    _check_entity(ctx, CREATE_TIME_OFF, "creating time-off requests")
    body = dict(data)
    employee_id = body.pop("employeeId", None) or body.pop("employee_id", None)
    if employee_id in (None, "") or not body.get("start") or not body.get("end"):
        raise ToolError("invalid", "data.employeeId, data.start and data.end are required for a time-off request")
    rules = rules_of(ctx)
    if rules is not None:
        employee_id = HrisPolicy(ctx, rules).check_employee_write(employee_id, {})
    window = {"employee_id": employee_id, "start": body["start"], "end": body["end"]}

    def existing() -> list[dict[str, Any]]:
        return [
            jsonable(r) for r in services.run_operation(connector_id, "list_time_off_requests", window, unified=True)
        ]

    def snapshot() -> dict[str, Any]:
        return {"existing_ids": sorted(str(r["id"]) for r in existing())}

    def perform(_context: dict[str, Any]) -> dict[str, Any]:
        record = jsonable(
            services.run_operation(connector_id, "create_time_off_request", employee_id, body, unified=True)
        )
        record.pop("raw", None)
        return {
            "entity_type": "time_off_request",
            "id": str(record["id"]),
            "record": record,
            "replayed": False,
            "recovered": False,
        }

    def reconcile(context: dict[str, Any]) -> dict[str, Any] | None:
        before = set(context.get("existing_ids") or [])
        new = [r for r in existing() if str(r["id"]) not in before]
        if not new:
            return None
        record = sorted(new, key=lambda r: int(str(r["id"])) if str(r["id"]).isdigit() else 0)[0]
        record.pop("raw", None)
        return {"entity_type": "time_off_request", "id": str(record["id"]), "record": record, "replayed": False}

    return run_write(
        integration_id=connector_id,
        tool="create_hris_record",
        key=key,
        arguments=arguments,
        snapshot=snapshot,
        perform=perform,
        reconcile=reconcile,
    )


def create_hris_record(
    ctx: ToolContext,
    connector_id: str,
    entity_type: str,
    data: Mapping[str, Any],
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    arguments = {"connector_id": connector_id, "entity_type": entity_type, "data": dict(data)}
    key = idempotency_key or derived_key(ctx.actor, "create_hris_record", arguments)
    if entity_type == "employee":
        return _employee_create(ctx, connector_id, dict(data), key, arguments)
    if entity_type == "time_off_request":
        return _time_off_create(ctx, connector_id, dict(data), key, arguments)
    raise ToolError("invalid", f"cannot create {entity_type!r}; use employee or time_off_request")


def _no_reconcile(_context: dict[str, Any]) -> None:
    """Updates and status changes set values: sending them again is harmless, so a retry after an
    interrupted attempt simply sends them again."""


def update_hris_record(
    ctx: ToolContext,
    connector_id: str,
    entity_type: str,
    entity_id: str | int,
    data: Mapping[str, Any],
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    if entity_type != "employee":
        raise ToolError("invalid", "only employee records can be updated; use set_time_off_request_status for time off")
    data = dict(data)
    _check_fields(ctx, data)
    rules = rules_of(ctx)
    if rules is not None:
        policy = HrisPolicy(ctx, rules)
        data = policy.reveal_inputs(data)
        entity_id = policy.check_employee_write(entity_id, data)

    def perform(_context: dict[str, Any]) -> dict[str, Any]:
        services.run_operation(connector_id, "update_employee", entity_id, data)
        scope_cache.forget(connector_id)
        return {
            "entity_type": "employee",
            "id": str(entity_id),
            "record": None,
            "updated_fields": sorted(data),
            "replayed": False,
        }

    if not idempotency_key:
        return perform({})
    arguments = {"connector_id": connector_id, "entity_type": entity_type, "entity_id": str(entity_id), "data": data}
    return run_write(
        integration_id=connector_id,
        tool="update_hris_record",
        key=idempotency_key,
        arguments=arguments,
        snapshot=dict,
        perform=perform,
        reconcile=_no_reconcile,
    )


_STATUS_OPERATIONS = {
    "approved": "approve_time_off_request",
    "denied": "deny_time_off_request",
    "cancelled": "cancel_time_off_request",
}


def set_time_off_request_status(
    ctx: ToolContext,
    connector_id: str,
    request_id: str | int,
    status: str,
    note: str | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    _check_entity(ctx, DECIDE_TIME_OFF, "deciding time-off requests")
    operation = _STATUS_OPERATIONS.get(status)
    if operation is None:
        raise ToolError("invalid", "status must be approved, denied or cancelled")
    rules = rules_of(ctx)
    if rules is not None:
        HrisPolicy(ctx, rules).check_time_off_request(request_id)

    def perform(_context: dict[str, Any]) -> dict[str, Any]:
        services.run_operation(connector_id, operation, request_id, note)
        return {
            "entity_type": "time_off_request",
            "id": str(request_id),
            "record": {"status": status},
            "replayed": False,
        }

    if not idempotency_key:
        return perform({})
    arguments = {"connector_id": connector_id, "request_id": str(request_id), "status": status, "note": note}
    return run_write(
        integration_id=connector_id,
        tool="set_time_off_request_status",
        key=idempotency_key,
        arguments=arguments,
        snapshot=dict,
        perform=perform,
        reconcile=_no_reconcile,
    )
