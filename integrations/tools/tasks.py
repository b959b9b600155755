"""The Celery task that runs agent tool calls (found by config/celery.py's autodiscovery)."""

from __future__ import annotations

from typing import Any

from celery import shared_task


# Acknowledged on receipt, unlike the hub's other tasks: a tool call is interactive, its caller
# retries it (HRIS writes with the same idempotency key, which makes that safe), and a query that
# killed its worker must not be handed to the next one.
@shared_task(name="integrations.tools.run", acks_late=False, reject_on_worker_lost=False, max_retries=0)
def run_tool(call_id: int, name: str, arguments: dict[str, Any], may_write: bool) -> dict[str, Any]:
    from integrations.tools.invocation import execute

    return execute(call_id, name, arguments, may_write)
