"""Circuit breakers per integration: after N consecutive failures, fail fast for a cool-down, then probe.

States: *closed* (calls pass; failures are counted), *open* (calls fail at once with category
``unavailable`` and ``retry_after`` = what is left of the cool-down), *half-open* (the cool-down is
over: exactly one caller, in one process, gets the probe; its success closes the circuit, its failure
opens it for another cool-down). A probe whose caller died is given up after ``probe_timeout``.

The Redis breaker keeps every transition in a server-side script, so two processes cannot both take
the probe. To keep the common case free of a Redis round trip, each process remembers for a short
``refresh`` interval that the circuit was closed with no failures; a circuit opened by another
process is therefore seen at most ``refresh`` seconds late, which the cool-down dwarfs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from connectors.errors import Category, ConnectorError
from connectors.ratelimit import store_unreachable

log = logging.getLogger(__name__)


def _open_error(key: str, wait: float, *, probing: bool = False) -> ConnectorError:
    why = "another caller is probing it" if probing else "too many consecutive failures"
    return ConnectorError(
        # Never "0.0 s more" in the last milliseconds: the message says at least the 1 s a header would.
        f"circuit open for {key} ({why}); calls fail fast for {max(wait, 1.0):.1f} s more",
        category=Category.UNAVAILABLE,
        permanent=False,
        retry_after=round(max(wait, 0.001), 3),
    )


@dataclass
class _Circuit:
    failures: int = 0
    open_until: float = 0.0  # 0: closed
    probe_until: float = 0.0  # 0: no probe in flight


class MemoryCircuitBreaker:
    """The breaker of one process (no REDIS_URL)."""

    def __init__(
        self,
        threshold: int = 5,
        cooldown: float = 30.0,
        *,
        probe_timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.probe_timeout = probe_timeout if probe_timeout is not None else max(cooldown, 1.0)
        self._clock = clock
        self._lock = threading.Lock()
        self._circuits: dict[str, _Circuit] = {}

    def before_call(self, key: str) -> None:
        with self._lock:
            circuit = self._circuits.get(key)
            if circuit is None or not circuit.open_until:
                return
            now = self._clock()
            if now < circuit.open_until:
                raise _open_error(key, circuit.open_until - now)
            if circuit.probe_until and now < circuit.probe_until:
                raise _open_error(key, circuit.probe_until - now, probing=True)
            circuit.probe_until = now + self.probe_timeout

    def record_success(self, key: str) -> None:
        with self._lock:
            self._circuits.pop(key, None)

    def record_failure(self, key: str) -> None:
        with self._lock:
            now = self._clock()
            circuit = self._circuits.setdefault(key, _Circuit())
            circuit.failures += 1
            half_open = circuit.open_until and now >= circuit.open_until
            if half_open or (not circuit.open_until and circuit.failures >= self.threshold):
                circuit.open_until, circuit.probe_until = now + self.cooldown, 0.0

    def state(self, key: str) -> str:
        with self._lock:
            circuit = self._circuits.get(key)
            if circuit is None or not circuit.open_until:
                return "closed"
            return "open" if self._clock() < circuit.open_until else "half_open"

    def retry_after(self, key: str) -> float | None:
        """Seconds the circuit stays open (None: closed, or the cool-down is over). Changes nothing."""
        with self._lock:
            circuit = self._circuits.get(key)
            wait = circuit.open_until - self._clock() if circuit is not None and circuit.open_until else 0.0
        return wait if wait > 0 else None


# KEYS[1]: the circuit hash. ARGV: probe timeout (s).
# Returns {code, seconds as a string, failures}: 0 closed, 1 open, 2 this caller got the probe,
# 3 someone else holds the probe.
_CHECK_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'failures', 'open_until', 'probe_until')
local failures = tonumber(state[1]) or 0
local open_until = tonumber(state[2]) or 0
local probe_until = tonumber(state[3]) or 0
if open_until == 0 then
  return {0, '0', failures}
end
if now < open_until then
  return {1, tostring(open_until - now), failures}
end
if probe_until > now then
  return {3, tostring(probe_until - now), failures}
end
redis.call('HSET', KEYS[1], 'probe_until', tostring(now + tonumber(ARGV[1])))
return {2, '0', failures}
"""

# KEYS[1]: the circuit hash. ARGV: threshold, cool-down (s), key lifetime (ms).
# Returns {open (0|1), seconds left open as a string, failures}.
_FAILURE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until')) or 0
local cooldown = tonumber(ARGV[2])
local result
if open_until > 0 and now >= open_until then
  -- half-open: the probe (or a late straggler) failed, so open for another cool-down
  redis.call('HSET', KEYS[1], 'open_until', tostring(now + cooldown), 'probe_until', '0')
  result = {1, tostring(cooldown), failures}
elseif open_until > now then
  result = {1, tostring(open_until - now), failures}
elseif failures >= tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'open_until', tostring(now + cooldown), 'probe_until', '0')
  result = {1, tostring(cooldown), failures}
else
  result = {0, '0', failures}
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return result
"""


@dataclass
class _Seen:
    at: float  # monotonic time of the observation
    closed_clean: bool  # closed with no failures counted
    probing: bool = False  # this process holds the probe


class RedisCircuitBreaker:
    """The breaker shared by every process through Redis."""

    def __init__(
        self,
        client: redis.Redis,
        threshold: int = 5,
        cooldown: float = 30.0,
        prefix: str = "hub",
        *,
        probe_timeout: float | None = None,
        refresh: float | None = None,
    ) -> None:
        self.client = client
        self.threshold = threshold
        self.cooldown = cooldown
        self.prefix = prefix
        self.probe_timeout = probe_timeout if probe_timeout is not None else max(cooldown, 1.0)
        self.refresh = refresh if refresh is not None else min(0.5, cooldown / 4)
        self._check = client.register_script(_CHECK_LUA)
        self._failure = client.register_script(_FAILURE_LUA)
        self._lock = threading.Lock()
        self._seen: dict[str, _Seen] = {}

    def circuit_key(self, key: str) -> str:
        return f"{self.prefix}:circuit:{key}"

    def _lifetime_ms(self) -> int:
        # Long enough to outlive an open period and its probe; failures older than that are forgotten.
        return int((self.cooldown + self.probe_timeout + 300) * 1000)

    def before_call(self, key: str) -> None:
        seen = self._seen.get(key)
        if seen is not None and seen.closed_clean and time.monotonic() - seen.at < self.refresh:
            return
        try:
            code, seconds, failures = self._check(keys=[self.circuit_key(key)], args=[repr(self.probe_timeout)])
        except redis.RedisError as exc:
            raise store_unreachable("circuit-breaker", exc) from None
        code, wait = int(code), float(seconds)
        with self._lock:
            self._seen[key] = _Seen(
                at=time.monotonic(), closed_clean=code == 0 and int(failures) == 0, probing=code == 2
            )
        if code == 1:
            raise _open_error(key, wait)
        if code == 3:
            raise _open_error(key, wait, probing=True)

    def record_success(self, key: str) -> None:
        seen = self._seen.get(key)
        if seen is not None and seen.closed_clean:
            return  # nothing to reset, as far as this process saw a moment ago
        try:
            self.client.delete(self.circuit_key(key))
        except redis.RedisError as exc:
            # The call itself succeeded: losing the bookkeeping must not turn it into an error.
            log.warning("circuit state for %s not reset: Redis %s", key, type(exc).__name__)
            return
        with self._lock:
            self._seen[key] = _Seen(at=time.monotonic(), closed_clean=True)

    def record_failure(self, key: str) -> None:
        try:
            self._failure(
                keys=[self.circuit_key(key)],
                args=[str(self.threshold), repr(self.cooldown), str(self._lifetime_ms())],
            )
        except redis.RedisError as exc:
            # Raising here would hide the caller's real error behind a bookkeeping one.
            log.warning("circuit failure for %s not counted: Redis %s", key, type(exc).__name__)
        with self._lock:
            self._seen[key] = _Seen(at=time.monotonic(), closed_clean=False)

    def state(self, key: str) -> str:
        """closed | open | half_open, as Redis has it now (for dashboards and tests)."""
        values = self.client.hmget(self.circuit_key(key), ["open_until"])
        open_until = float(values[0] or 0)
        if not open_until:
            return "closed"
        now_s, now_us = self.client.time()
        return "open" if now_s + now_us / 1e6 < open_until else "half_open"

    def retry_after(self, key: str) -> float | None:
        """Seconds the circuit stays open, as Redis has it now (None: closed, or the cool-down is over).

        Read-only (no probe is taken): for a caller that refuses early, before a worker is bothered.
        Raises ``redis.RedisError`` when Redis is unreachable.
        """
        open_until = float(self.client.hget(self.circuit_key(key), "open_until") or 0)
        if not open_until:
            return None
        now_s, now_us = self.client.time()
        wait = open_until - (now_s + now_us / 1e6)
        return wait if wait > 0 else None

    def reset(self, key: str) -> None:
        self.client.delete(self.circuit_key(key))
        with self._lock:
            self._seen.pop(key, None)
