"""Token-bucket rate limiting, in this API process: one bucket per key.

The API keeps two limiters (see `api.deps`): one keyed by the digest of the bearer token, for
every request that carries one, and one keyed by the client address, spent only by requests
that fail authentication.

Each API replica limits on its own, so N replicas admit up to N times the rate; put a shared
limiter in front of them if that matters.
"""

import math
import threading
import time
from dataclasses import dataclass

_MANY_KEYS = 100_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Buckets of `burst` requests refilling at `per_minute`, per key, in this process only.

    Nothing is shared between API processes or kept across restarts. Memory stays bounded
    under a spray of distinct keys: once there are many buckets, the full ones (which say
    nothing a missing bucket would not) are forgotten, at most once per doubling of the count.
    """

    def __init__(self, *, per_minute: int, burst: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._buckets: dict[str, _Bucket] = {}
        self._prune_at = _MANY_KEYS
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> int | None:
        """Take one request from `key`'s bucket: None if allowed, else seconds to wait."""
        now = time.monotonic()
        with self._lock:
            bucket = self._refilled(key, now)
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return None
            return self._wait(bucket)

    def blocked_for(self, key: str) -> int | None:
        """Seconds until `key` may make a request again, or None if it may now; takes nothing."""
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                return None
            tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            if tokens >= 1:
                return None
            return self._wait(_Bucket(tokens=tokens, updated=now))

    def spend(self, key: str) -> None:
        """Take one request from `key`'s bucket if it has one left (an empty one stays empty)."""
        self.retry_after(key)

    def _refilled(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._prune_at:
                self._forget_full_buckets(now)
                self._prune_at = max(_MANY_KEYS, 2 * len(self._buckets))
            bucket = _Bucket(tokens=self.burst, updated=now)
            self._buckets[key] = bucket
            return bucket
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        return bucket

    def _wait(self, bucket: _Bucket) -> int:
        return max(1, math.ceil((1 - bucket.tokens) / self.rate))

    def _forget_full_buckets(self, now: float) -> None:
        refill = self.burst / self.rate
        self._buckets = {k: b for k, b in self._buckets.items() if now - b.updated < refill}
