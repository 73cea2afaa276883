"""A bounded in-memory history of every feed's prices, for queries by publish time.

Hermes keeps about 10 minutes (1600 slots) per feed; so do we, by age. Queries
are by whole second and want the first update at or after it, so only the first
update of each second is kept: at most 600 per feed whatever the update rate,
which keeps memory and the garbage collector's work bounded.
"""

from __future__ import annotations

import bisect
from collections import deque

from .model import FeedId, PriceUpdate


class PriceHistory:
    def __init__(self, keep_s: float = 600.0) -> None:
        self.keep_us = int(keep_s * 1_000_000)
        self._updates: dict[FeedId, deque[PriceUpdate]] = {}

    def add(self, updates: list[PriceUpdate]) -> None:
        """Record accepted updates (a hub listener: they arrive in order per feed)."""
        for update in updates:
            kept = self._updates.get(update.feed_id)
            if kept is None:
                kept = self._updates[update.feed_id] = deque()
            elif kept[-1].publish_time >= update.publish_time:
                continue  # not the first of its second
            kept.append(update)
            horizon = update.publish_time_us - self.keep_us
            while kept[0].publish_time_us < horizon:
                kept.popleft()

    def first_at_or_after(self, feed_id: FeedId, publish_time_s: int) -> PriceUpdate | None:
        """The first update with ``publish_time >= publish_time_s``, if the history still covers that time.

        Like Hermes, a time older than what is kept is a miss, not the oldest kept update.
        """
        kept = self._updates.get(feed_id)
        if not kept or publish_time_s * 1_000_000 < kept[0].publish_time_us - 1_000_000:
            return None
        times = [u.publish_time for u in kept]
        index = bisect.bisect_left(times, publish_time_s)
        return kept[index] if index < len(kept) else None

    def since(self, feed_id: FeedId, publish_time_s: int) -> list[PriceUpdate]:
        """The kept updates (the first of each second) with ``publish_time >= publish_time_s``, oldest first."""
        kept = self._updates.get(feed_id)
        if not kept:
            return []
        index = bisect.bisect_left([u.publish_time for u in kept], publish_time_s)
        return [kept[i] for i in range(index, len(kept))]

    def size(self) -> int:
        """Updates kept, over all feeds."""
        return sum(len(kept) for kept in self._updates.values())
