"""Per-profile quotas in Redis, shared by every web process and worker, never over-spent.

Each check is one Lua script (atomic in Redis): it adds the cost only when the result stays within the
limit, so concurrent callers cannot push a counter past it and the remaining count never goes negative.
Windows: calls per minute (the clock minute), rows and writes per UTC day. Rows are known only after a
query returns: they are added then (capped at the limit), and the next call is refused once none remain.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from integrations.agents.access import Quotas
from integrations.redis_clients import redis_client

PREFIX = "hub:quota"

# KEYS[1] counter; ARGV: cost, limit, ttl, mode ("take": all or nothing; "add": add, capped at limit;
# "peek": nothing). Returns {allowed (1/0), used after}.
_SCRIPT = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local cost, limit, ttl, mode = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
if mode == 'peek' then return {used < limit and 1 or 0, used} end
if mode == 'take' then
  if used + cost > limit then return {0, used} end
  used = redis.call('INCRBY', KEYS[1], cost)
else
  local new = math.min(limit, used + cost)
  redis.call('SET', KEYS[1], new, 'KEEPTTL')
  used = new
end
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ttl) end
return {1, used}
"""

WINDOWS = {"calls_per_minute": 60, "rows_per_day": 86400, "writes_per_day": 86400}


@dataclass(frozen=True)
class Refusal:
    quota: str
    limit: int
    retry_after: float


def _window(quota: str, now: float) -> tuple[int, float]:
    """The window's number and the seconds until it ends."""
    size = WINDOWS[quota]
    number = int(now // size)
    return number, (number + 1) * size - now


def _key(key: str, quota: str, window: int) -> str:
    return f"{PREFIX}:{key}:{quota}:{window}"


def _run(key: str, quota: str, limit: int, cost: int, mode: str, now: float | None = None) -> tuple[bool, int, float]:
    now = time.time() if now is None else now
    window, left = _window(quota, now)
    allowed, used = redis_client().eval(_SCRIPT, 1, _key(key, quota, window), cost, limit, WINDOWS[quota] + 60, mode)
    return bool(allowed), int(used), left


def take(key: str, quotas: Quotas, *, write: bool) -> Refusal | None:
    """Before a call: one call (and one write), and refuse if the day's rows are spent."""
    checks: list[tuple[str, int | None, int, str]] = [
        ("rows_per_day", quotas.rows_per_day, 0, "peek"),
        ("calls_per_minute", quotas.calls_per_minute, 1, "take"),
    ]
    if write:
        checks.append(("writes_per_day", quotas.writes_per_day, 1, "take"))
    taken: list[str] = []
    for quota, limit, cost, mode in checks:
        if limit is None:
            continue
        allowed, _, left = _run(key, quota, limit, cost, mode)
        if not allowed:
            for done in taken:  # give back what this refused call took
                _give_back(key, done)
            return Refusal(quota, limit, round(left, 1))
        if mode == "take":
            taken.append(quota)
    return None


def _give_back(key: str, quota: str) -> None:
    window, _ = _window(quota, time.time())
    key = _key(key, quota, window)
    redis_client().eval(
        "local v = tonumber(redis.call('GET', KEYS[1]) or '0') if v > 0 then redis.call('DECR', KEYS[1]) end", 1, key
    )


def add_rows(key: str, quotas: Quotas, rows: int) -> None:
    if quotas.rows_per_day is not None and rows > 0:
        _run(key, "rows_per_day", quotas.rows_per_day, rows, "add")


def remaining(key: str | None, quotas: Quotas) -> dict[str, Any]:
    """Per quota: its limit, what is left in the current window, and when the window resets."""
    out: dict[str, Any] = {}
    now = time.time()
    for quota in WINDOWS:
        limit = getattr(quotas, quota)
        if limit is None or not key:
            out[quota] = {"limit": None, "remaining": None, "resets_in": None}
            continue
        window, left = _window(quota, now)
        raw = redis_client().get(_key(key, quota, window))
        used = int(raw) if raw is not None else 0
        out[quota] = {"limit": limit, "remaining": max(0, limit - used), "resets_in": round(left, 1)}
    return out


def note_once(key: str, quota: str) -> bool:
    """True for the first refusal of this window (to record one event per window, not per call)."""
    window, left = _window(quota, time.time())
    return bool(redis_client().set(f"{_key(key, quota, window)}:noted", 1, nx=True, ex=int(left) + 60))
