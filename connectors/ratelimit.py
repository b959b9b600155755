"""Token-bucket rate limiting per integration: in memory for one process, in Redis for all of them.

Both limiters use the same arithmetic. The bucket holds up to ``burst`` tokens (default: ``requests``)
and refills at ``requests / per_seconds`` tokens a second. ``acquire`` *reserves* the next token: when
the bucket is empty the level goes below zero and the caller sleeps until its token exists. A caller
whose token would come later than ``max_wait_seconds`` reserves nothing and gets ``rate_limited`` with
``retry_after`` at once, so no worker blocks past the bound and no token is wasted on a refusal.

In Redis the whole decision is one Lua script run by the server (server clock, no read-modify-write
between processes), so every process of every machine shares one bucket and one time base.

A provider's Retry-After (``pause``) moves the refill start to the end of the pause with one token in
hand: nobody is admitted before then, then the bucket refills at its normal rate. A caller that had
reserved a token and was sleeping when the pause arrived checks again after its sleep.

Leases (Redis, fast limits only). A Redis round trip costs about what a ``SELECT 1`` costs, so for a
limit of ``LEASE_MIN_RATE`` tokens a second or more a process takes several tokens in one script run
and spends them locally for at most ``ttl`` seconds (``LEASE_SECONDS``, less for a small bucket).
A token spent up to ``ttl`` after it left the bucket could let a window see ``rate * ttl`` tokens
more than the bucket's bound, so such a bucket holds ``rate * ttl`` tokens fewer (at most
``LEASE_SHARE`` of it): every window still sees at most ``burst + rate * window`` admissions, across
all processes. The lease grows by doubling while a process uses it up, and shrinks to what was used
when it expires unspent (what is left then is dropped, never returned late). A forked child starts
with no lease. Slower limits ask Redis for every token, exactly as before.
"""

from __future__ import annotations

import math
import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import redis
from pydantic import BaseModel, ConfigDict, Field

from connectors.errors import Category, ConnectorError


class RateLimitConfig(BaseModel):
    """A token bucket per integration, shared by every worker (seed default: 100 requests per 60 s)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests: int = Field(100, ge=1, description="Tokens added per period.")
    per_seconds: float = Field(60.0, gt=0, description="Length of the period in seconds.")
    burst: int | None = Field(None, ge=1, description="Bucket size; defaults to `requests`.")
    max_wait_seconds: float = Field(10.0, ge=0, description="How long a call may wait for a token.")


def _refill_rate(rate: RateLimitConfig) -> float:
    return rate.requests / rate.per_seconds


def _capacity(rate: RateLimitConfig) -> float:
    return float(rate.burst or rate.requests)


LEASE_MIN_RATE = 1000.0  # tokens per second: below this every call asks Redis
LEASE_SECONDS = 0.05  # the longest a process keeps tokens it took ahead
LEASE_SHARE = 0.05  # the most of the bucket that leases may hold back
LEASE_MAX_TOKENS = 4096


def lease_plan(rate: RateLimitConfig) -> tuple[float, float]:
    """(lease lifetime in seconds, the bucket's capacity in Redis); a lifetime of 0: no leases."""
    refill, capacity = _refill_rate(rate), _capacity(rate)
    if refill < LEASE_MIN_RATE:
        return 0.0, capacity
    ttl = min(LEASE_SECONDS, LEASE_SHARE * capacity / refill)
    if ttl < 0.001:  # a small bucket for its rate: not worth holding any of it back
        return 0.0, capacity
    return ttl, capacity - refill * ttl


class RateLimitExceeded(ConnectorError):
    """Our own limiter refused: the call already waited as long as it may, so the retry layer must
    not wait again; the caller (a task) reschedules itself after ``retry_after``."""


def _refused(key_label: str, wait: float) -> ConnectorError:
    return RateLimitExceeded(
        f"rate limit reached for {key_label}; next request allowed in {wait:.2f} s",
        category=Category.RATE_LIMITED,
        retry_after=round(wait, 3),
    )


@dataclass
class _Bucket:
    tokens: float
    stamp: float  # the time ``tokens`` was measured at; in the future while paused
    paused_until: float = 0.0


class MemoryBucketStore:
    """Bucket state of one process, keyed by integration; shareable by several limiters."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.buckets: dict[str, _Bucket] = {}


def _wait_for_token(
    key: str,
    reserve: Callable[[str], tuple[bool, float]],
    paused_for: Callable[[str], float],
    rate: RateLimitConfig,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> None:
    """Take a token (``reserve`` books it, maybe in the future), sleep until it is due, and respect a
    Retry-After pause that arrived meanwhile; past ``max_wait_seconds`` the call is refused."""
    deadline = clock() + rate.max_wait_seconds
    while True:
        granted, wait = reserve(key)
        if not granted:
            raise _refused(key, wait)
        if wait <= 0:
            return
        sleep(wait)
        paused = paused_for(key)
        if paused <= 0:
            return
        if clock() + paused > deadline:
            raise _refused(key, paused)


class MemoryRateLimiter:
    """The token bucket for one process (no REDIS_URL): thread-safe, same semantics as Redis."""

    def __init__(
        self,
        rate: RateLimitConfig,
        *,
        store: MemoryBucketStore | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self.store = store or MemoryBucketStore()
        self._clock = clock
        self._sleep = sleep

    def _reserve(self, key: str) -> tuple[bool, float]:
        refill, capacity = _refill_rate(self.rate), _capacity(self.rate)
        with self.store.lock:
            now = self._clock()
            bucket = self.store.buckets.get(key)
            if bucket is None:
                bucket = self.store.buckets[key] = _Bucket(tokens=capacity, stamp=now)
            level = min(capacity, bucket.tokens + (now - bucket.stamp) * refill)
            wait = 0.0 if level >= 1 else (1 - level) / refill
            if wait > self.rate.max_wait_seconds:
                return False, wait
            bucket.tokens, bucket.stamp = level - 1, now
            return True, wait

    def _paused_for(self, key: str) -> float:
        with self.store.lock:
            bucket = self.store.buckets.get(key)
            return max(0.0, bucket.paused_until - self._clock()) if bucket else 0.0

    def acquire(self, key: str) -> None:
        _wait_for_token(key, self._reserve, self._paused_for, self.rate, clock=self._clock, sleep=self._sleep)

    def pause(self, key: str, seconds: float) -> None:
        if seconds <= 0:
            return
        with self.store.lock:
            now = self._clock()
            until = now + seconds
            bucket = self.store.buckets.get(key)
            if bucket is not None and bucket.paused_until >= until:
                return
            self.store.buckets[key] = _Bucket(tokens=1.0, stamp=until, paused_until=until)


# KEYS[1]: the bucket hash. ARGV: refill rate (tokens/s), capacity, max wait (s), tokens wanted.
# Returns {granted (0|1), wait seconds as a string, tokens taken} (Lua numbers would be truncated to
# integers). Several tokens are only taken from a bucket that holds them now; one that must wait
# reserves one token.
_ACQUIRE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local want = tonumber(ARGV[4]) or 1
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp', 'paused_until')
local tokens = tonumber(state[1])
local stamp = tonumber(state[2])
local paused_until = tonumber(state[3]) or 0
if tokens == nil or stamp == nil then
  tokens = capacity
  stamp = now
end
local level = math.min(capacity, tokens + (now - stamp) * rate)
local wait = 0
local taken = 1
if level < 1 then
  wait = (1 - level) / rate
else
  taken = math.max(1, math.min(want, math.floor(level)))
end
if wait > max_wait then
  return {0, tostring(wait), 0}
end
redis.call('HSET', KEYS[1], 'tokens', tostring(level - taken), 'stamp', tostring(now))
-- Once idle long enough to be full again, the key may go: a missing bucket reads as full.
local idle = math.max(0, paused_until - now) + (capacity + 1 - (level - taken)) / rate
redis.call('PEXPIRE', KEYS[1], math.ceil(idle * 1000) + 1000)
return {1, tostring(wait), taken}
"""

# KEYS[1]: the bucket hash. ARGV: pause seconds, refill rate, capacity.
_PAUSE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local until_ = now + tonumber(ARGV[1])
local current = tonumber(redis.call('HGET', KEYS[1], 'paused_until')) or 0
if current >= until_ then
  return 0
end
redis.call('HSET', KEYS[1], 'tokens', '1', 'stamp', tostring(until_), 'paused_until', tostring(until_))
local idle = (until_ - now) + (tonumber(ARGV[3]) + 1) / tonumber(ARGV[2])
redis.call('PEXPIRE', KEYS[1], math.ceil(idle * 1000) + 1000)
return 1
"""

# KEYS[1]: the bucket hash. Returns the seconds left in a pause, as a string.
_PAUSED_FOR_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local until_ = tonumber(redis.call('HGET', KEYS[1], 'paused_until')) or 0
return tostring(math.max(0, until_ - now))
"""


def store_unreachable(what: str, exc: BaseException) -> ConnectorError:
    """Redis failed: say so without its URL (which may carry a password)."""
    return ConnectorError(
        f"{what} store (Redis) is unreachable: {type(exc).__name__}",
        category=Category.UNAVAILABLE,
        permanent=False,
        retry_after=5.0,
    )


@dataclass
class _Lease:
    tokens: int  # left to spend in this process
    expires: float  # monotonic time after which they are dropped
    size: int  # how many were asked for


_live_limiters: weakref.WeakSet[RedisRateLimiter] = weakref.WeakSet()


class RedisRateLimiter:
    """The token bucket shared by every process through Redis: one atomic script per acquire (per
    lease, for fast limits)."""

    def __init__(
        self,
        client: redis.Redis,
        rate: RateLimitConfig,
        prefix: str = "hub",
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.rate = rate
        self.prefix = prefix
        self._sleep = sleep
        self._acquire = client.register_script(_ACQUIRE_LUA)
        self._pause = client.register_script(_PAUSE_LUA)
        self._paused_for_script = client.register_script(_PAUSED_FOR_LUA)
        self.lease_ttl, capacity = lease_plan(rate)
        self._max_lease = max(1, min(LEASE_MAX_TOKENS, int(_refill_rate(rate) * self.lease_ttl)))
        self._args = [repr(_refill_rate(rate)), repr(capacity), repr(rate.max_wait_seconds)]
        self._forget_leases()
        _live_limiters.add(self)

    def _forget_leases(self) -> None:
        # A forked child must not spend tokens its parent holds: it starts with none (and a new lock).
        self._lock = threading.Lock()
        self._leases: dict[str, _Lease] = {}

    def bucket_key(self, key: str) -> str:
        return f"{self.prefix}:ratelimit:{key}"

    def _paused_for(self, key: str) -> float:
        return float(self._paused_for_script(keys=[self.bucket_key(key)]))

    def acquire(self, key: str) -> None:
        want = 1
        if self.lease_ttl:
            now = time.monotonic()
            with self._lock:
                lease = self._leases.get(key)
                if lease is not None:
                    if lease.tokens > 0 and now < lease.expires:
                        lease.tokens -= 1
                        return
                    if now < lease.expires:  # used up in time: ask for more next time
                        want = min(self._max_lease, lease.size * 2)
                    else:  # expired: ask for what was used
                        want = max(1, lease.size - lease.tokens)

        def reserve(key: str) -> tuple[bool, float]:
            asked_at = time.monotonic()
            granted, wait_text, taken = self._acquire(keys=[self.bucket_key(key)], args=[*self._args, str(want)])
            if self.lease_ttl and int(granted):
                with self._lock:  # the expiry counts from before the server granted them
                    self._leases[key] = _Lease(tokens=int(taken) - 1, expires=asked_at + self.lease_ttl, size=want)
            return bool(int(granted)), float(wait_text)

        try:
            _wait_for_token(key, reserve, self._paused_for, self.rate, clock=time.monotonic, sleep=self._sleep)
        except redis.RedisError as exc:
            raise store_unreachable("rate-limit", exc) from None

    def pause(self, key: str, seconds: float) -> None:
        if seconds <= 0 or not math.isfinite(seconds):
            return
        with self._lock:
            self._leases.pop(key, None)
        try:
            self._pause(
                keys=[self.bucket_key(key)],
                args=[repr(float(seconds)), repr(_refill_rate(self.rate)), repr(_capacity(self.rate))],
            )
        except redis.RedisError as exc:
            raise store_unreachable("rate-limit", exc) from None

    def reset(self, key: str) -> None:
        """Forget the bucket (a full one is assumed next time); used when an integration is deleted."""
        with self._lock:
            self._leases.pop(key, None)
        self.client.delete(self.bucket_key(key))


def _forget_leases_in_child() -> None:
    for limiter in list(_live_limiters):
        limiter._forget_leases()


os.register_at_fork(after_in_child=_forget_leases_in_child)
