"""The tools' settings (config/settings.py, section "Agent tools"), with their defaults."""

from __future__ import annotations

from django.conf import settings


def max_rows() -> int:
    """Row cap of query_database (a caller may ask for fewer)."""
    return int(getattr(settings, "TOOLS_MAX_ROWS", 1000))


def max_items() -> int:
    """Item cap of query_hris listings."""
    return int(getattr(settings, "TOOLS_MAX_ITEMS", 1000))


def max_result_bytes() -> int:
    return int(getattr(settings, "TOOLS_MAX_RESULT_BYTES", 2_000_000))


def timeout_seconds() -> float:
    """How long a call may run in a worker (hard limit: the worker process is killed after it)."""
    return float(getattr(settings, "TOOLS_TIMEOUT_SECONDS", 30))


def write_lease_seconds() -> float:
    """How long a pending write intent belongs to the attempt that recorded it. Longer than the hard
    time limit of the task, plus a margin for a request still in flight at the HR system."""
    return float(getattr(settings, "TOOLS_WRITE_LEASE_SECONDS", timeout_seconds() + 15))


def idempotency_ttl_seconds() -> float:
    return float(getattr(settings, "TOOLS_IDEMPOTENCY_TTL_HOURS", 24)) * 3600


def inflight_grace_seconds() -> float:
    """After a write ended in a timeout or a lost connection, how long its request may still be
    processed by the HR system: a retry waits this long before looking the record up."""
    return float(getattr(settings, "TOOLS_INFLIGHT_GRACE_SECONDS", 15))
