"""Token-bucket rate limits, one bucket per key, shared by the API processes.

The API keeps two limits (see `api.deps`): one keyed by the digest of the bearer token, for
every request that carries one, and one keyed by the client address, spent only by requests
that fail authentication.

Where the buckets live (`BACKFILLS_RATE_LIMIT_URL`) decides who shares them: a SQLite file
in the data directory by default (every API process of this machine), the service database
or a Redis server (every API process anywhere), or this process alone (`memory`). A store
that fails lets the request through and logs it: a limit is a protection, and refusing
every request while Redis restarts would be the outage it protects against.
"""

import logging
import math
import threading
import time
from typing import Protocol

import redis

from config import Settings
from persistence import rate_limits
from persistence.db import Database
from persistence.rate_limits import Limit

log = logging.getLogger("backfills.api")
_MANY_KEYS = 100_000
_PRUNE_EVERY = 10_000  # requests between two deletions of full buckets in a shared store


class RateLimiter(Protocol):
    def retry_after(self, key: str) -> int | None:
        """Take one request from `key`'s bucket: None if allowed, else seconds to wait."""

    def blocked_for(self, key: str) -> int | None:
        """Seconds until `key` may make a request again, or None if it may now; takes
        nothing."""

    def spend(self, key: str) -> None:
        """Take one request from `key`'s bucket if it has one left (an empty one stays
        empty)."""


def rate_limiters(settings: Settings) -> tuple[RateLimiter, RateLimiter]:
    """The per-token limiter and the per-address limiter of failed authentications."""
    per_token = Limit(
        per_second=settings.rate_limit_per_minute / 60, burst=settings.rate_limit_burst
    )
    failures = Limit(
        per_second=settings.auth_failures_per_minute / 60, burst=settings.auth_failures_burst
    )
    store = settings.rate_limit_url
    if store == "memory":
        return MemoryRateLimiter(per_token), MemoryRateLimiter(failures)
    if store.startswith(("redis://", "rediss://", "unix://")):
        client = redis.Redis.from_url(store, socket_timeout=1.0, socket_connect_timeout=1.0)
        return RedisRateLimiter(client, "token", per_token), RedisRateLimiter(
            client, "auth_failure", failures
        )
    db = _store_database(settings)
    return DatabaseRateLimiter(db, "token", per_token), DatabaseRateLimiter(
        db, "auth_failure", failures
    )


def _store_database(settings: Settings) -> Database:
    if settings.rate_limit_url == "database":
        return Database(settings.resolved_database_url)
    url = settings.rate_limit_url or f"sqlite:///{settings.data_dir.resolve()}/rate-limits.db"
    db = Database(url)
    rate_limits.create_rate_bucket_table(db.engine)
    return db


def _seconds_until_one(tokens: float, limit: Limit) -> int:
    return max(1, math.ceil((1 - tokens) / limit.per_second))


class DatabaseRateLimiter:
    """Buckets in a database shared by the API processes (persistence/rate_limits.py)."""

    def __init__(self, db: Database, scope: str, limit: Limit) -> None:
        self._db = db
        self._scope = scope
        self._limit = limit
        self._takes = 0

    def retry_after(self, key: str) -> int | None:
        now = time.time()
        try:
            taken = rate_limits.take_request(
                db=self._db, scope=self._scope, key=key, limit=self._limit, now=now
            )
            self._prune_now_and_then(now)
        except Exception as exc:
            log.warning("rate limit store failed; the request goes through: %s", exc)
            return None
        return None if taken.allowed else _seconds_until_one(taken.tokens, self._limit)

    def blocked_for(self, key: str) -> int | None:
        try:
            tokens = rate_limits.tokens_left(
                db=self._db, scope=self._scope, key=key, limit=self._limit, now=time.time()
            )
        except Exception as exc:
            log.warning("rate limit store failed; the request goes through: %s", exc)
            return None
        return None if tokens >= 1 else _seconds_until_one(tokens, self._limit)

    def spend(self, key: str) -> None:
        self.retry_after(key)

    def _prune_now_and_then(self, now: float) -> None:
        self._takes += 1
        if self._takes % _PRUNE_EVERY == 0:
            rate_limits.forget_full_buckets(
                db=self._db, scope=self._scope, limit=self._limit, now=now
            )


# KEYS[1] the bucket; ARGV: tokens per second, burst. Redis's own clock, so API machines
# whose clocks differ still share one bucket; the key expires once its bucket is full.
_TAKE = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local tokens, updated = unpack(redis.call('HMGET', KEYS[1], 'tokens', 'updated'))
tokens = tonumber(tokens) or burst
updated = tonumber(updated) or now
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'updated', math.max(now, updated))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return {allowed, tostring(tokens)}
"""
_PEEK = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local tokens, updated = unpack(redis.call('HMGET', KEYS[1], 'tokens', 'updated'))
if not tokens then return tostring(burst) end
return tostring(math.min(burst, tonumber(tokens) + math.max(0, now - tonumber(updated)) * rate))
"""


class RedisRateLimiter:
    """Buckets in Redis, each one hash taken from by one script (atomic in Redis)."""

    def __init__(self, client: "redis.Redis", scope: str, limit: Limit) -> None:
        self._take = client.register_script(_TAKE)
        self._peek = client.register_script(_PEEK)
        self._prefix = f"backfills:rate:{scope}:"
        self._limit = limit

    def retry_after(self, key: str) -> int | None:
        try:
            allowed, tokens = self._take(keys=[self._prefix + key], args=self._args)
        except redis.RedisError as exc:
            log.warning("rate limit store failed; the request goes through: %s", exc)
            return None
        return None if int(allowed) else _seconds_until_one(float(tokens), self._limit)

    def blocked_for(self, key: str) -> int | None:
        try:
            tokens = float(self._peek(keys=[self._prefix + key], args=self._args))
        except redis.RedisError as exc:
            log.warning("rate limit store failed; the request goes through: %s", exc)
            return None
        return None if tokens >= 1 else _seconds_until_one(tokens, self._limit)

    def spend(self, key: str) -> None:
        self.retry_after(key)

    @property
    def _args(self) -> list[float]:
        return [self._limit.per_second, self._limit.burst]


class MemoryRateLimiter:
    """Buckets in this process only: nothing shared between API processes or kept across
    restarts. Memory stays bounded under a spray of distinct keys: once there are many
    buckets, the full ones are forgotten, at most once per doubling of the count."""

    def __init__(self, limit: Limit) -> None:
        self._limit = limit
        self._buckets: dict[str, tuple[float, float]] = {}  # key: (tokens, updated)
        self._prune_at = _MANY_KEYS
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> int | None:
        now = time.monotonic()
        with self._lock:
            tokens = self._refilled(key, now)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return None
            self._buckets[key] = (tokens, now)
            return _seconds_until_one(tokens, self._limit)

    def blocked_for(self, key: str) -> int | None:
        now = time.monotonic()
        with self._lock:
            if key not in self._buckets:
                return None
            tokens = self._refilled(key, now)
        return None if tokens >= 1 else _seconds_until_one(tokens, self._limit)

    def spend(self, key: str) -> None:
        self.retry_after(key)

    def _refilled(self, key: str, now: float) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._prune_at:
                self._forget_full_buckets(now)
                self._prune_at = max(_MANY_KEYS, 2 * len(self._buckets))
            return self._limit.burst
        tokens, updated = bucket
        return min(self._limit.burst, tokens + (now - updated) * self._limit.per_second)

    def _forget_full_buckets(self, now: float) -> None:
        refill = self._limit.refill_seconds
        self._buckets = {k: b for k, b in self._buckets.items() if now - b[1] < refill}
