"""The de-duplication cache: keys seen in the last ``ttl_s`` seconds, at most ``capacity`` of them.

The seed's ``TtlCache`` of 100 000 keys for 10 s. Every key lives the same
time, so insertion order is expiry order: an ``OrderedDict`` drops its
oldest key when full, and a lookup ignores an expired one. O(1) per message,
no timer, no heap. (A plain dict would not do: after many deletions at its
front, finding its first key scans the holes.)
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

DEDUP_CACHE_SIZE = 100_000
DEDUP_TTL_S = 10.0


class TtlCache:
    __slots__ = ("_clock", "_expiry", "capacity", "ttl_s")

    def __init__(self, capacity: int = DEDUP_CACHE_SIZE, ttl_s: float = DEDUP_TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if capacity < 1 or ttl_s <= 0:
            raise ValueError("a de-duplication cache needs a positive capacity and time to live")
        self.capacity = capacity
        self.ttl_s = ttl_s
        self._clock = clock
        self._expiry: OrderedDict[Hashable, float] = OrderedDict()

    def seen(self, key: Hashable) -> bool:
        """True if ``key`` was added within the time to live; otherwise add it and return False."""
        now = self._clock()
        expiry = self._expiry
        found = expiry.get(key)
        if found is not None:
            if found > now:
                return True
            del expiry[key]  # re-inserted below, at the back where its new expiry belongs
        elif len(expiry) >= self.capacity:
            expiry.popitem(last=False)  # the oldest; expired keys need no sweep, a lookup ignores them
        expiry[key] = now + self.ttl_s
        return False

    def __len__(self) -> int:
        return len(self._expiry)
