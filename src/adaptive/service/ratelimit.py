"""Rate limits on starting and answering, per client address and per launch code or session.

Each limit is "at most N requests per W seconds" in a fixed window per key; over it the service
answers 429 with ``Retry-After`` (seconds until the window ends). The counters live in each server
process (with N processes behind a load balancer a client may get up to N times the limit; put a
limit in the load balancer too when that matters). Keys are forgotten oldest first beyond
``max_keys`` so a flood of addresses cannot exhaust memory.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from ..exceptions import AdaptiveError
from .versions import TooManyRequests

__all__ = ["RateLimits", "RateLimiter", "parse_rate"]


def parse_rate(text: str) -> tuple[int, float]:
    """``"30/60"`` → (30 requests, 60 seconds)."""
    try:
        n, _, w = str(text).partition("/")
        count, window = int(n), float(w)
    except ValueError:
        count, window = -1, -1.0
    if not (1 <= count <= 10**9 and math.isfinite(window) and 0 < window <= 86400):
        raise AdaptiveError(f"rate {text!r} is not N/SECONDS with N from 1 to 1e9 and SECONDS from 1 to 86400 "
                            "(e.g. 30/60: 30 requests a minute)")
    return count, window


@dataclass(frozen=True)
class RateLimits:
    """The service's limits as (requests, seconds); None switches one off."""

    start_per_client: tuple[int, float] | None = (30, 60.0)
    start_per_code: tuple[int, float] | None = (10, 60.0)
    answer_per_client: tuple[int, float] | None = (1200, 60.0)
    answer_per_session: tuple[int, float] | None = (120, 60.0)

    @classmethod
    def off(cls) -> RateLimits:
        return cls(None, None, None, None)


class RateLimiter:
    """Fixed-window counters for one limit."""

    def __init__(self, limit: tuple[int, float] | None, what: str, *, clock=time.monotonic, max_keys: int = 100_000):
        self.limit, self.what, self.clock, self.max_keys = limit, what, clock, max_keys
        self._windows: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, key: str) -> None:
        """Count a request of ``key``; :class:`TooManyRequests` when it is over the limit."""
        if self.limit is None:
            return
        count, window = self.limit
        now = self.clock()
        with self._lock:
            start, n = self._windows.pop(key, (now, 0))
            if now - start >= window:
                start, n = now, 0
            n += 1
            self._windows[key] = (start, n)
            while len(self._windows) > self.max_keys:
                self._windows.popitem(last=False)
        if n > count:
            wait = max(1, math.ceil(start + window - now))
            raise TooManyRequests(f"too many {self.what}: at most {count} per {window:g} s; try again in {wait} s",
                                  retry_after=wait)
