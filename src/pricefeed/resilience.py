"""Reconnection and de-duplication for redundant upstream connections (the seed-003 / Pyth Lazer pattern).

A source holds several connections that carry the same data. Each connection
reconnects on its own with :class:`Backoff` (exponential, jittered, capped,
reset after a stable connection), and a shared :class:`FreshnessFilter` lets
exactly one copy of each update through, in order.
"""

from __future__ import annotations

import enum
import random
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class Backoff:
    """Delays between reconnection attempts: ``initial x factor^n``, jittered, never above ``cap``.

    The defaults are those of the Pyth Lazer Rust client (the ``backoff`` crate):
    0.5 s, x1.5, +-50 % jitter, 60 s cap, retry forever. Jitter spreads the
    reconnections of many clients (and of our own redundant connections) after
    an upstream restart.
    """

    def __init__(self, initial_s: float = 0.5, factor: float = 1.5, cap_s: float = 60.0, jitter: float = 0.5,
                 stable_after_s: float = 10.0, rng: random.Random | None = None) -> None:
        if initial_s < 0 or factor < 1 or cap_s < initial_s or not 0 <= jitter < 1:
            raise ValueError("backoff needs 0 <= initial <= cap, factor >= 1 and 0 <= jitter < 1")
        self.initial_s = initial_s
        self.factor = factor
        self.cap_s = cap_s
        self.jitter = jitter
        self.stable_after_s = stable_after_s
        self._rng = rng or random.Random()
        self.attempts = 0
        """Delays handed out since the last reset."""
        self.last_delay_s: float | None = None

    @property
    def nominal_s(self) -> float:
        """The un-jittered delay the next attempt would get."""
        return min(self.cap_s, self.initial_s * self.factor**self.attempts)

    def bounds(self) -> tuple[float, float]:
        """The smallest and largest delay :meth:`next_delay` can return now."""
        nominal = self.nominal_s
        return nominal * (1 - self.jitter), min(self.cap_s, nominal * (1 + self.jitter))

    def next_delay(self) -> float:
        """The delay before the next attempt; each call grows the nominal delay by ``factor``."""
        low, high = self.bounds()
        delay = self._rng.uniform(low, high)
        self.attempts += 1
        self.last_delay_s = delay
        return delay

    def reset(self) -> None:
        self.attempts = 0

    def connection_ended(self, lived_s: float) -> None:
        """Start again from ``initial`` if the connection that just ended had been stable."""
        if lived_s >= self.stable_after_s:
            self.reset()


class Freshness(enum.Enum):
    FRESH = "fresh"
    DUPLICATE = "duplicate"
    """The same update as the newest one already let through (another connection's copy)."""
    STALE = "stale"
    """Older than the newest one already let through: delivering it would go back in time."""


class FreshnessFilter(Generic[K]):
    """Lets through, per key (a feed), only updates newer than the newest so far.

    Redundant connections deliver every update several times and, when one lags,
    late. Keeping the newest stamp per key drops both in O(1), with memory bounded
    by the number of feeds (unlike a TTL cache of message hashes). The last
    ``memory`` stamps let through are remembered too, so a lagging connection's
    copy of an update already delivered counts as a duplicate, not as out of order.
    """

    def __init__(self, memory: int = 32) -> None:
        self._recent: dict[K, deque[tuple[int, ...]]] = {}
        self._memory = memory

    def check(self, key: K, stamp: tuple[int, ...]) -> Freshness:
        """Classify an update by its ordering ``stamp``; a FRESH one becomes the newest."""
        recent = self._recent.get(key)
        if recent is None:
            self._recent[key] = deque((stamp,), maxlen=self._memory)
            return Freshness.FRESH
        newest = recent[-1]
        if stamp > newest:
            recent.append(stamp)  # stamps stay in ascending order
            return Freshness.FRESH
        if stamp == newest or stamp in recent:
            return Freshness.DUPLICATE
        return Freshness.STALE

    def newest(self, key: K) -> tuple[int, ...] | None:
        recent = self._recent.get(key)
        return None if recent is None else recent[-1]
