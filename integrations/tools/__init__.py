"""Agent tools: a catalog of JSON-Schema-described tools over the hub's integrations (the ``tools`` app).

REST (``/api/tools/``) and MCP (``manage.py mcp_server``) offer them to agents with scoped tokens, run
in Celery workers. The seed's Python functions (``from integrations.tools import query_database``...)
live in ``integrations/tools/functions.py`` and run in the caller's process.
"""

from __future__ import annotations

from integrations.tools.functions import (
    create_hris_record,
    describe_table,
    list_tables,
    query_database,
    query_hris,
    set_time_off_request_status,
    update_hris_record,
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
