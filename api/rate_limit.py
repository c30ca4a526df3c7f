"""Per-token rate limiting: a token bucket per API token, in this API process.

Each API replica limits on its own, so N replicas admit up to N times the rate; put a shared
limiter in front of them if that matters.
"""

import math
import threading
import time
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, *, per_minute: int, burst: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> int | None:
        """Take one request from `key`'s bucket: None if allowed, else seconds to wait."""
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get(key) or _Bucket(tokens=self.burst, updated=now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            self._buckets[key] = bucket
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return None
            if len(self._buckets) > 100_000:
                self._forget_full_buckets(now)
            return max(1, math.ceil((1 - bucket.tokens) / self.rate))

    def _forget_full_buckets(self, now: float) -> None:
        refill = self.burst / self.rate
        self._buckets = {k: b for k, b in self._buckets.items() if now - b.updated < refill}
