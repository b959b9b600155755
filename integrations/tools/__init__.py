"""Agent tools: a catalog of JSON-Schema-described tools over the hub's integrations (the ``tools`` app).

REST (``/api/tools/``) and MCP (``manage.py mcp_server``) offer them to agents with scoped tokens, run
in Celery workers. The seed's Python functions (``from integrations.tools import query_database``...)
live in ``integrations/tools/functions.py`` and run in the caller's process. They are loaded on first
use: Django imports this package while it loads the apps, before any model may be imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    if name in __all__:
        from integrations.tools import functions

        return getattr(functions, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
