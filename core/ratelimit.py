"""Throttling: how often one user name, client address, conversation or chat may act.

Why: without it one client guessed passwords at full speed, created 883 conversations in 10 s
and flooded Rasa until other customers waited four times longer (issue 14).

Algorithm: GCRA, a token bucket kept as one number per key (the "theoretical arrival time").
A limit of N per W seconds allows a burst of N, refilled evenly at one every W/N seconds, and
tells a refused caller exactly how long to wait (Retry-After). One number per key keeps the
three stores small and atomic:

- MemoryStore: a dict, for one web process (tests, or `rate_limit_store: memory`);
- SqlStore: one row per key, one conditional UPSERT: across processes on SQLite or PostgreSQL
  (the embedded default, which needs no Redis);
- RedisStore: one key with an expiry per bucket, one Lua script: across instances.

The caller's clock is used (instances run NTP); a refused hit consumes nothing. A broken store
fails open (logged): throttling must never be what takes the chat down.
"""
from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Callable, Protocol

import sqlalchemy as sa
from sanic import Request
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import metadata
from core.http import ApiError
from core.settings import Settings

log = logging.getLogger(__name__)

rate_limits = sa.Table(
    "rate_limits",
    metadata,
    sa.Column("key", sa.String(80), primary_key=True),
    sa.Column("tat", sa.Float, nullable=False, index=True),  # theoretical arrival time (epoch s)
)

CLEANUP_EVERY_S = 60.0


@dataclass(frozen=True)
class Limit:
    """At most `count` hits per `window_s` seconds for one subject of kind `name`."""

    name: str
    count: int
    window_s: float

    @property
    def interval(self) -> float:
        return self.window_s / max(1, self.count)

    def key(self, subject: str) -> str:
        """Bounded, printable keys whatever the subject (user names may be anything)."""
        digest = hashlib.sha256(subject.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return f"{self.name}:{digest}"


Check = tuple[Limit, str]
Bucket = tuple[str, float, float]  # key, interval, window


class _Refused(Exception):
    """Inside a store's transaction: one bucket said no, so nothing may be consumed."""

    def __init__(self, wait: float) -> None:
        super().__init__(wait)
        self.wait = wait


class Throttled(ApiError):
    """429 with Retry-After; the text never says which of the limits was hit (no enumeration)."""

    def __init__(self, retry_after_s: float, what: str) -> None:
        self.retry_after = max(1, math.ceil(retry_after_s))
        super().__init__(429, f"too many {what}; try again in {self.retry_after} s", headers={"Retry-After": str(self.retry_after)})


class Store(Protocol):
    async def hit(self, buckets: list[Bucket], now: float) -> float:
        """One hit of every bucket, all or nothing; returns 0.0, or the seconds to wait."""

    async def refund(self, key: str, interval: float) -> None:
        """Give one hit back (e.g. a login that turned out to be right)."""

    async def close(self) -> None: ...


class MemoryStore:
    """One process only; periodically forgets full buckets so random keys cannot pile up."""

    def __init__(self) -> None:
        self._tat: dict[str, float] = {}
        self._cleaned = 0.0

    async def hit(self, buckets: list[Bucket], now: float) -> float:
        if now - self._cleaned > CLEANUP_EVERY_S:
            self._tat = {k: v for k, v in self._tat.items() if v > now}
            self._cleaned = now
        new: dict[str, float] = {}
        for key, interval, window in buckets:  # no await in here: atomic in one event loop
            tat = max(self._tat.get(key, now), now)
            cutoff = now + window - interval
            if tat > cutoff:
                return tat - cutoff
            new[key] = tat + interval
        self._tat.update(new)
        return 0.0

    async def refund(self, key: str, interval: float) -> None:
        if key in self._tat:
            self._tat[key] -= interval

    async def close(self) -> None:
        return None


class SqlStore:
    """One row per bucket; the conditional UPSERT is atomic on SQLite and PostgreSQL alike."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._cleaned = 0.0
        if engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        self._insert = insert

    async def hit(self, buckets: list[Bucket], now: float) -> float:
        """One transaction for all buckets; a refusal rolls back what the others consumed."""
        t = rate_limits.c.tat
        try:
            async with self._engine.begin() as conn:
                if now - self._cleaned > CLEANUP_EVERY_S:
                    self._cleaned = now
                    await conn.execute(rate_limits.delete().where(t < now))
                for key, interval, window in buckets:
                    cutoff = now + window - interval  # allowed iff max(tat, now) <= cutoff, i.e. tat <= cutoff
                    statement = self._insert(rate_limits).values(key=key, tat=now + interval).on_conflict_do_update(
                        index_elements=[rate_limits.c.key],
                        set_={"tat": sa.case((t > now, t + interval), else_=now + interval)},
                        where=t <= cutoff,
                    )
                    if (await conn.execute(statement)).rowcount != 1:
                        tat = (await conn.execute(sa.select(t).where(rate_limits.c.key == key))).scalar()
                        raise _Refused(max(0.001, float(tat or 0.0) - cutoff))
        except _Refused as refused:
            return refused.wait
        return 0.0

    async def refund(self, key: str, interval: float) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(rate_limits.update().where(rate_limits.c.key == key).values(tat=rate_limits.c.tat - interval))

    async def close(self) -> None:
        return None


_HIT = """
local now = tonumber(ARGV[1])
local new = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local cutoff = now + window - interval
  if tat > cutoff then return tostring(tat - cutoff) end
  new[i] = tat + interval
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, string.format('%.6f', new[i]), 'PX', math.ceil((new[i] - now) * 1000) + 1000)
end
return '0'
"""
_REFUND = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('INCRBYFLOAT', KEYS[1], -tonumber(ARGV[1])) end
return 1
"""


class RedisStore:
    """Shared by every instance; one script call per hit, keys expire when their bucket is full."""

    def __init__(self, url: str, prefix: str = "tandem:ratelimit:") -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(url)
        self._prefix = prefix
        self._hit = self._redis.register_script(_HIT)
        self._refund = self._redis.register_script(_REFUND)

    async def hit(self, buckets: list[Bucket], now: float) -> float:
        args = [repr(now)]
        for _, interval, window in buckets:
            args += [repr(interval), repr(window)]
        wait = await self._hit(keys=[self._prefix + key for key, _, _ in buckets], args=args)
        return max(0.0, float(wait))

    async def refund(self, key: str, interval: float) -> None:
        await self._refund(keys=[self._prefix + key], args=[repr(interval)])

    async def close(self) -> None:
        await self._redis.close()


def make_store(settings: Settings, engine: AsyncEngine) -> Store:
    kind = settings.rate_limit_store
    if kind == "auto":
        kind = "redis" if settings.redis_url else "sql"
    if kind == "memory":
        return MemoryStore()
    if kind == "sql":
        return SqlStore(engine)
    if kind == "redis":
        if not settings.redis_url:
            raise ValueError("rate_limit_store=redis needs redis_url")
        return RedisStore(settings.redis_url)
    raise ValueError(f"rate_limit_store must be auto, memory, sql or redis, not {kind!r}")


class RateLimiter:
    """The limits from the settings, and hit/refund/enforce over any store."""

    def __init__(self, settings: Settings, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.enabled = settings.rate_limits
        self.store = store
        self.clock = clock
        s = settings
        self.login_account = Limit("login-account", s.rate_login_per_account, s.rate_login_window_s)
        self.login_address = Limit("login-address", s.rate_login_per_address, s.rate_login_window_s)
        self.new_conversation = Limit("conversation-address", s.rate_conversations_per_address, s.rate_conversations_window_s)
        self.message_conversation = Limit("message-conversation", s.rate_messages_per_conversation, s.rate_messages_window_s)
        self.message_address = Limit("message-address", s.rate_messages_per_address, s.rate_messages_window_s)

    async def hit(self, *checks: Check) -> float:
        """Consume one hit of every check, all or nothing; 0.0 if allowed, else the wait in seconds."""
        if not self.enabled or not checks:
            return 0.0
        buckets = [(limit.key(subject), limit.interval, limit.window_s) for limit, subject in checks]
        try:
            return await self.store.hit(buckets, self.clock())
        except Exception:  # noqa: BLE001 - fail open, see the module docstring
            log.exception("rate limit store failed; letting the request through")
            return 0.0

    async def refund(self, *checks: Check) -> None:
        if not self.enabled:
            return
        try:
            for limit, subject in checks:
                await self.store.refund(limit.key(subject), limit.interval)
        except Exception:  # noqa: BLE001
            log.exception("rate limit refund failed")

    async def enforce(self, what: str, *checks: Check) -> None:
        """Raise Throttled (429 + Retry-After) unless every check allows one more."""
        wait = await self.hit(*checks)
        if wait > 0:
            raise Throttled(wait, what)

    # -- the checks each route uses ------------------------------------------------------
    def login(self, username: str, address: str) -> tuple[Check, ...]:
        return ((self.login_account, username.strip().casefold()), (self.login_address, address))

    def conversation(self, address: str) -> tuple[Check, ...]:
        return ((self.new_conversation, address),)

    def message(self, conversation: str, address: str | None) -> tuple[Check, ...]:
        checks: tuple[Check, ...] = ((self.message_conversation, conversation),)
        return checks if address is None else checks + ((self.message_address, address),)

    async def close(self) -> None:
        await self.store.close()


def client_address(request: Request) -> str:
    """The customer's address: from X-Forwarded-For when proxies_count says to trust it."""
    return str(request.remote_addr or request.ip or "unknown")


def limiter(request: Request) -> RateLimiter:
    return request.app.ctx.limiter

