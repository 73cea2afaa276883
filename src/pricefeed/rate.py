"""A cheap events-per-second meter over a sliding window of whole seconds."""

from __future__ import annotations

import time
from collections.abc import Callable


class RateMeter:
    __slots__ = ("_buckets", "_clock", "_current_second", "_window", "total")

    def __init__(self, window_s: int = 10, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window_s
        self._clock = clock
        self._buckets = [0] * window_s
        self._current_second = int(clock())
        self.total = 0

    def add(self, count: int = 1) -> None:
        self._advance()
        self._buckets[self._current_second % self._window] += count
        self.total += count

    def per_second(self) -> float:
        """The mean rate over the last full ``window_s`` seconds."""
        self._advance()
        current = self._buckets[self._current_second % self._window]
        return (sum(self._buckets) - current) / (self._window - 1)

    def _advance(self) -> None:
        second = int(self._clock())
        if second == self._current_second:
            return
        steps = min(second - self._current_second, self._window)
        for i in range(1, steps + 1):
            self._buckets[(self._current_second + i) % self._window] = 0
        self._current_second = second
