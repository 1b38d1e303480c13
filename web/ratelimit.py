"""A token bucket per client address, for creating sessions.

Each address may take ``burst`` at once, then one more every ``refill_seconds``. The
table is bounded (``MAX_ADDRESSES``): when full, the addresses idle longest are
forgotten, so a flood of spoofed or IPv6-rotated addresses cannot grow it.
"""
from __future__ import annotations

import threading
import time

MAX_ADDRESSES = 10_000


class RateLimiter:
    def __init__(self, burst: int, refill_seconds: float, clock=time.monotonic):
        self.burst = burst
        self.refill_seconds = refill_seconds
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, when)
        self._lock = threading.Lock()

    def take(self, address: str) -> float:
        """0 when the address may go on; else how many seconds until it may."""
        now = self.clock()
        with self._lock:
            tokens, since = self._buckets.pop(address, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - since) / self.refill_seconds)
            if tokens >= 1:
                self._buckets[address] = (tokens - 1, now)
                wait = 0.0
            else:
                self._buckets[address] = (tokens, now)
                wait = (1 - tokens) * self.refill_seconds
            if len(self._buckets) > MAX_ADDRESSES:
                # dicts keep insertion order and each take re-inserts: the first are idlest
                for stale in list(self._buckets)[:len(self._buckets) - MAX_ADDRESSES]:
                    del self._buckets[stale]
            return wait
