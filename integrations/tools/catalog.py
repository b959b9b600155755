"""The tool catalog: names, descriptions, JSON Schemas (inputs and outputs) and annotations.

One table serves the REST catalog (``GET /api/tools/``), the MCP server (``tools/list``) and the
argument validation of every call. Schemas are JSON Schema 2020-12; a tool's output schema describes
the envelope every call returns: ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": ...}``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

from jsonschema import Draft202012Validator

DRAFT = "https://json-schema.org/draft/2020-12/schema"

Family = Literal["database", "hris", "agent"]  # "agent": about the caller itself, no integration
AccessLevel = Literal["read", "write"]

SCALAR = {"type": ["string", "number", "integer", "boolean", "null"]}
CONNECTOR_ID = {
    "type": "string",
    "pattern": "^[a-z][a-z0-9_]{1,62}$",
    "description": "The integration's id (e.g. 'hr_db', 'bamboo_hr').",
}
IDEMPOTENCY_KEY = {
    "type": "string",
    "minLength": 8,
    "maxLength": 200,
    "pattern": "^[A-Za-z0-9._:-]+$",
    "description": (
        "Send the same key when retrying the same write: the write happens at most once and the retry "
        "gets the first outcome. For creates, a key derived from the caller and the arguments is used "
        "when none is given."
    ),
}
# Values an agent may write into an HRIS record: flat, scalar (the allow-list names the keys).
RECORD_DATA = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 100,
    "additionalProperties": {"type": ["string", "number", "integer", "boolean", "null"], "maxLength": 2000},
    "propertyNames": {"pattern": "^[A-Za-z][A-Za-z0-9_.]{0,99}$"},
}

ERROR = {
    "type": "object",
    "required": ["category", "message"],
    "properties": {
        "category": {
            "type": "string",
            "enum": [
                "invalid",
                "permission",
                "not_found",
                "conflict",
                "unavailable",
                "timeout",
                "rate_limited",
                "quota_exceeded",
                "auth",
                "network",
                "config",
                "unknown",
            ],
            "description": "unavailable/rate_limited/quota_exceeded/timeout/network: retry after retry_after "
            "seconds; "
            "invalid/permission/not_found/conflict: change the call.",
        },
        "message": {"type": "string"},
        "retry_after": {"type": ["number", "null"], "description": "Seconds to wait before retrying, when known."},
        "permanent": {"type": "boolean"},
    },
}

DB_VALUE = {"description": "Dates as ISO-8601 strings, decimals as strings, bytes as base64."}


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


@dataclass(frozen=True)
class Tool:
    name: str
    title: str
    description: str
    family: Family
    access: AccessLevel  # the scope a token needs (query_database: "read", writes checked per statement)
    input_schema: dict[str, Any]
    result_schema: dict[str, Any]
    read_only: bool
    destructive: bool
    idempotent: bool
    # The implementation, resolved lazily so that importing the catalog imports no Django models.
    function_path: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def output_schema(self) -> dict[str, Any]:
        return envelope_schema(self.result_schema)

    def annotations(self) -> dict[str, Any]:
        """MCP-style hints (camelCase, as the MCP specification spells them)."""
        return {
            "title": self.title,
            "readOnlyHint": self.read_only,
            "destructiveHint": self.destructive,
            "idempotentHint": self.idempotent,
            "openWorldHint": self.family != "agent",  # it reaches an outside system (describe_access: no)
        }

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "family": self.family,
            "access": self.access,
            "annotations": self.annotations(),
            "input_schema": self.input_schema,
            "output_schema": self.output_schema,
        }

    def function(self) -> Callable[..., Any]:
        from importlib import import_module

        module, _, name = self.function_path.rpartition(".")
        return getattr(import_module(module), name)  # type: ignore[no-any-return]


def envelope_schema(result: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "$schema": DRAFT,
        "type": "object",
        "required": ["ok"],
        "properties": {
            "ok": {"type": "boolean"},
            "result": dict(result),
            "error": ERROR,
            "call_id": {"type": ["integer", "null"], "description": "The audit record of this call."},
            "status": {"type": "string", "description": "'running' when the call was not waited for."},
        },
        "oneOf": [
            {"properties": {"ok": {"const": True}}, "required": ["result"]},
            {"properties": {"ok": {"const": False}}, "required": ["error"]},
        ],
    }


def _input(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"$schema": DRAFT, **_object(properties, required)}


COLUMN = _object(
    {
        "name": {"type": "string"},
        "type": {"type": "string"},
        "nullable": {"type": "boolean"},
        "default": {"type": ["string", "null"]},
        "primary_key": {"type": "boolean"},
    },
    ["name", "type"],
)
COLUMN["additionalProperties"] = True

EMPLOYEE = {
    "type": "object",
    "description": "The provider-neutral Employee (see connectors/hris.py).",
    "required": ["id"],
    "properties": {
        "id": {"type": "string"},
        "first_name": {"type": ["string", "null"]},
        "last_name": {"type": ["string", "null"]},
        "email": {"type": ["string", "null"]},
        "department": {"type": ["string", "null"]},
        "job_title": {"type": ["string", "null"]},
        "status": {"type": ["string", "null"]},
        "hire_date": {"type": ["string", "null"]},
        "manager_id": {"type": ["string", "null"]},
    },
}
TIME_OFF_REQUEST = {
    "type": "object",
    "description": "The provider-neutral TimeOffRequest (see connectors/hris.py).",
    "required": ["id"],
    "properties": {
        "id": {"type": "string"},
        "employee_id": {"type": ["string", "null"]},
        "type": {"type": ["string", "null"]},
        "start": {"type": ["string", "null"]},
        "end": {"type": ["string", "null"]},
        "amount": {"type": ["number", "null"]},
        "unit": {"type": ["string", "null"]},
        "status": {"type": ["string", "null"]},
    },
}
WRITE_RESULT = {
    "type": "object",
    "required": ["entity_type", "id"],
    "properties": {
        "entity_type": {"type": "string"},
        "id": {"type": "string"},
        "record": {"type": ["object", "null"]},
        "replayed": {"type": "boolean", "description": "True when this is the stored outcome of an earlier call."},
        "recovered": {
            "type": "boolean",
            "description": "True when an interrupted earlier attempt had written the record and it was found.",
        },
    },
}

HRIS_RESOURCES = ["employees", "employee", "time_off_requests", "time_off_types", "custom_fields"]

TOOLS: tuple[Tool, ...] = (
    Tool(
        name="query_database",
        title="Query a database",
        description=(
            "Run ONE SQL statement on a database integration and get columns and rows. Read-only: a SELECT, "
            "WITH, VALUES, SHOW, DESCRIBE or EXPLAIN, run in a read-only transaction with a statement timeout. "
            "Only when the integration's config sets read_only to false may a token with write access run one "
            "INSERT, UPDATE or DELETE. Pass values as named parameters (:name in the query, params "
            "{\"name\": value}). At most max_rows rows come back; 'truncated' says when there were more."
        ),
        family="database",
        access="read",
        input_schema=_input(
            {
                "connector_id": CONNECTOR_ID,
                "query": {"type": "string", "minLength": 1, "maxLength": 100_000},
                "params": {
                    "type": "object",
                    "additionalProperties": SCALAR,
                    "maxProperties": 200,
                    "description": "Named parameters, :name in the query.",
                },
                "max_rows": {"type": "integer", "minimum": 1, "maximum": 10_000},
            },
            ["connector_id", "query"],
        ),
        result_schema=_object(
            {
                "columns": {"type": "array", "items": {"type": "string"}},
                "rows": {"type": "array", "items": {"type": "array", "items": DB_VALUE}},
                "row_count": {"type": "integer", "minimum": 0},
                "truncated": {"type": "boolean"},
                "statement": {"type": "string", "description": "The statement's verb (SELECT, ...)."},
            },
            ["columns", "rows", "row_count", "truncated"],
        ),
        # Hints describe the worst case: on an integration that allows writes this tool can write.
        read_only=False,
        destructive=True,
        idempotent=False,
        function_path="integrations.tools.database.query_database",
    ),
    Tool(
        name="list_tables",
        title="List database tables",
        description="List the tables (and views) a database integration can see.",
        family="database",
        access="read",
        input_schema=_input({"connector_id": CONNECTOR_ID}, ["connector_id"]),
        result_schema=_object({"tables": {"type": "array", "items": {"type": "string"}}}, ["tables"]),
        read_only=True,
        destructive=False,
        idempotent=True,
        function_path="integrations.tools.database.list_tables",
    ),
    Tool(
        name="describe_table",
        title="Describe a database table",
        description="The columns of one table: name, type, nullable, default, primary key.",
        family="database",
        access="read",
        input_schema=_input(
            {"connector_id": CONNECTOR_ID, "table": {"type": "string", "minLength": 1, "maxLength": 255}},
            ["connector_id", "table"],
        ),
        result_schema=_object(
            {"table": {"type": "string"}, "columns": {"type": "array", "items": COLUMN}}, ["table", "columns"]
        ),
        read_only=True,
        destructive=False,
        idempotent=True,
        function_path="integrations.tools.database.describe_table",
    ),
    Tool(
        name="query_hris",
        title="Query the HR system",
        description=(
            "Read from an HRIS integration. resource: 'employees' (filters: status, department, job_title, "
            "name, email, ids), 'employee' (filters: id, optional fields = provider field names to add), "
            "'time_off_requests' (filters: start, end as YYYY-MM-DD, status, employee_id, type), "
            "'time_off_types' (the ids a time-off request needs), 'custom_fields'. Records come in the provider-neutral shapes; at most 'limit' items "
            "(default 100), 'truncated' says when there were more. Under an agent profile 'withheld_fields' "
            "lists the fields it may not read and 'out_of_scope' counts records outside its record scope."
        ),
        family="hris",
        access="read",
        input_schema=_input(
            {
                "connector_id": CONNECTOR_ID,
                "resource": {"type": "string", "enum": HRIS_RESOURCES},
                "filters": {
                    "type": "object",
                    "maxProperties": 20,
                    "additionalProperties": {"anyOf": [SCALAR, {"type": "array", "items": SCALAR, "maxItems": 400}]},
                },
                "limit": {"type": "integer", "minimum": 1, "maximum": 10_000},
            },
            ["connector_id", "resource"],
        ),
        result_schema=_object(
            {
                "resource": {"type": "string"},
                "items": {"type": "array", "items": {"type": "object"}},
                "count": {"type": "integer", "minimum": 0},
                "total": {"type": "integer", "minimum": 0},
                "truncated": {"type": "boolean"},
                # Under an agent profile's HRIS policy: the wanted fields it kept back (never requested
                # from the HR system) and how many records its record scope left out.
                "withheld_fields": {"type": "array", "items": {"type": "string"}},
                "out_of_scope": {"type": "integer", "minimum": 0},
            },
            ["resource", "items", "count", "truncated"],
        ),
        read_only=True,
        destructive=False,
        idempotent=True,
        function_path="integrations.tools.hris.query_hris",
    ),
    Tool(
        name="create_hris_record",
        title="Create an HR record",
        description=(
            "Create an employee (data: provider field names such as firstName, lastName, workEmail, "
            "department, jobTitle, hireDate; only the integration's writable_fields are accepted) or a "
            "time-off request (data: employeeId, start, end, timeOffTypeId, amount, notes). Retrying with "
            "the same idempotency_key never creates a second record."
        ),
        family="hris",
        access="write",
        input_schema=_input(
            {
                "connector_id": CONNECTOR_ID,
                "entity_type": {"type": "string", "enum": ["employee", "time_off_request"]},
                "data": RECORD_DATA,
                "idempotency_key": IDEMPOTENCY_KEY,
            },
            ["connector_id", "entity_type", "data"],
        ),
        result_schema=WRITE_RESULT,
        read_only=False,
        destructive=False,  # additive
        idempotent=True,  # with the idempotency key
        function_path="integrations.tools.hris.create_hris_record",
    ),
    Tool(
        name="update_hris_record",
        title="Update an HR record",
        description=(
            "Change fields of an employee (only the integration's writable_fields). Sends only the given "
            "fields. The same idempotency_key on a retry returns the first outcome without sending again."
        ),
        family="hris",
        access="write",
        input_schema=_input(
            {
                "connector_id": CONNECTOR_ID,
                "entity_type": {"type": "string", "enum": ["employee"]},
                "entity_id": {"type": ["string", "integer"], "pattern": "^[0-9A-Za-z_-]{1,64}$"},
                "data": RECORD_DATA,
                "idempotency_key": IDEMPOTENCY_KEY,
            },
            ["connector_id", "entity_type", "entity_id", "data"],
        ),
        result_schema=WRITE_RESULT,
        read_only=False,
        destructive=True,  # overwrites values
        idempotent=True,
        function_path="integrations.tools.hris.update_hris_record",
    ),
    Tool(
        name="set_time_off_request_status",
        title="Approve, deny or cancel a time-off request",
        description=(
            "Decide a time-off request: status 'approved', 'denied' or 'cancelled', with an optional note. "
            "Allowed only when the integration's writable_fields include 'timeOffStatus'."
        ),
        family="hris",
        access="write",
        input_schema=_input(
            {
                "connector_id": CONNECTOR_ID,
                "request_id": {"type": ["string", "integer"], "pattern": "^[0-9A-Za-z_-]{1,64}$"},
                "status": {"type": "string", "enum": ["approved", "denied", "cancelled"]},
                "note": {"type": "string", "maxLength": 2000},
                "idempotency_key": IDEMPOTENCY_KEY,
            },
            ["connector_id", "request_id", "status"],
        ),
        result_schema=WRITE_RESULT,
        read_only=False,
        destructive=True,
        idempotent=True,
        function_path="integrations.tools.hris.set_time_off_request_status",
    ),
    Tool(
        name="describe_access",
        title="What this agent may do",
        description=(
            "Your agent profile: the tools you may call, the integrations you may use (read or write), per "
            "HR integration the fields you may read and those withheld and your record scope, per database "
            "the tables and columns you may query, and your remaining quota. Call it to plan instead of failing."
        ),
        family="agent",
        access="read",
        input_schema=_input({}, []),
        result_schema={
            "type": "object",
            "required": ["profile", "tools", "integrations", "quotas"],
            "properties": {
                "profile": {"type": ["string", "null"]},
                "tools": {"type": "array", "items": {"type": "string"}},
                "integrations": {"type": "array", "items": {"type": "object"}},
                "quotas": {"type": "object"},
            },
        },
        read_only=True,
        destructive=False,
        idempotent=True,
        function_path="integrations.agents.describe.describe_access",
    ),
)

_BY_NAME = {tool.name: tool for tool in TOOLS}


def get(name: str) -> Tool | None:
    return _BY_NAME.get(name)


def names() -> list[str]:
    return list(_BY_NAME)


@cache
def validator(name: str, which: Literal["input", "output"] = "input") -> Draft202012Validator:
    tool = _BY_NAME[name]
    schema = tool.input_schema if which == "input" else tool.output_schema
    return Draft202012Validator(schema)


def input_errors(tool: Tool, arguments: Any) -> list[str]:
    """Every schema violation, as 'path: message' lines an agent can act on."""
    if not isinstance(arguments, Mapping):
        return ["arguments must be a JSON object"]
    errors = sorted(validator(tool.name).iter_errors(dict(arguments)), key=lambda e: list(e.absolute_path))
    out = []
    for err in errors[:10]:
        where = "/".join(str(p) for p in err.absolute_path) or "(arguments)"
        out.append(f"{where}: {err.message}")
    return out


def describe_all() -> list[dict[str, Any]]:
    return [tool.describe() for tool in TOOLS]
