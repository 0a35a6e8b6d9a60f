"""A bounded, in-process rate limiter for the public pages.

Fixed windows per key ("client", "code+client"...), with at most `max_keys` keys held: the
least recently used key is forgotten first, so a flood from many addresses costs a fixed
amount of memory and never grows the process. Per replica: a fleet of N replicas lets N
times the limit through, which is fine for what it guards (scan counts, database writes).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable


class RateLimiter:
    def __init__(self, limit: int, window_seconds: float, *, max_keys: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self.max_keys = max_keys
        self._clock = clock
        self._hits: OrderedDict[Hashable, tuple[float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key: Hashable) -> bool:
        """Count one hit of `key`; False when it is over the limit for the current window."""
        now = self._clock()
        with self._lock:
            start, count = self._hits.pop(key, (now, 0))
            if now - start >= self.window_seconds:
                start, count = now, 0
            count += 1
            self._hits[key] = (start, count)
            while len(self._hits) > self.max_keys:
                self._hits.popitem(last=False)
            return count <= self.limit

    def __len__(self) -> int:
        return len(self._hits)
