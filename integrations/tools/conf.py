"""The tools' settings, read from config/settings.py (section "Agent tools"), where each has its one default."""

from __future__ import annotations

from django.conf import settings


def max_rows() -> int:
    """Row cap of query_database (a caller may ask for fewer)."""
    return int(settings.TOOLS_MAX_ROWS)


def max_items() -> int:
    """Item cap of query_hris listings."""
    return int(settings.TOOLS_MAX_ITEMS)


def max_result_bytes() -> int:
    return int(settings.TOOLS_MAX_RESULT_BYTES)


def timeout_seconds() -> float:
    """How long a call may run in a worker (hard limit: the worker process is killed after it)."""
    return float(settings.TOOLS_TIMEOUT_SECONDS)


def write_lease_seconds() -> float:
    """How long a pending write intent belongs to the attempt that recorded it when nothing else is known
    of that attempt (README, Idempotency): longer than the task's hard time limit, plus a margin for a
    request still in flight at the HR system."""
    return float(settings.TOOLS_WRITE_LEASE_SECONDS)


def idempotency_ttl_seconds() -> float:
    return float(settings.TOOLS_IDEMPOTENCY_TTL_HOURS) * 3600


def inflight_grace_seconds() -> float:
    """After a write ended in a timeout or a lost connection, or its process stopped, how long its
    request may still be processed by the HR system: a retry waits this long before looking the record up."""
    return float(settings.TOOLS_INFLIGHT_GRACE_SECONDS)


def audit_retention_days() -> int:
    """Tool calls older than this are pruned (the hourly prune task)."""
    return int(settings.TOOLS_AUDIT_RETENTION_DAYS)
