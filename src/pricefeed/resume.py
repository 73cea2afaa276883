"""Recent updates by ``seq``, per feed: what a reconnecting client missed (lossless resume).

Every accepted update carries its feed's ``seq``, assigned once at ingest, so it
is the same on every process. A client that saw a feed up to ``seq`` N asks for
what came after; the log answers with exactly that, in order. It keeps every
update for ``keep_s`` seconds of publish time (Hermes' cache depth by default);
when N+1 is older than what it keeps, or N is newer than anything it has, it
says so (``recovered=False``, as Centrifugo does) and answers with the latest
update instead. ``add`` ignores what it already holds, so a backfill may overlap.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from .model import FeedId, PriceUpdate


@dataclass(frozen=True, slots=True)
class Recovery:
    updates: list[PriceUpdate]
    """What came after the client's ``seq``, in order; or, when not recovered, the latest update (if any)."""
    recovered: bool
    """Whether ``updates`` is exactly what the client missed."""


class RecentUpdates:
    def __init__(self, keep_s: float = 600.0) -> None:
        self.keep_us = int(keep_s * 1_000_000)
        self._updates: dict[FeedId, deque[PriceUpdate]] = {}

    def add(self, updates: list[PriceUpdate]) -> None:
        """Record accepted updates (a hub listener: each feed's arrive in ``seq`` order)."""
        for update in updates:
            kept = self._updates.get(update.feed_id)
            if kept is None:
                kept = self._updates[update.feed_id] = deque()
            elif update.seq <= kept[-1].seq:
                continue  # already kept (a backfill that overlaps what arrived live)
            elif update.seq != kept[-1].seq + 1:
                kept.clear()  # a jump (a restart that lost updates): what was kept no longer joins up
            kept.append(update)
            horizon = update.publish_time_us - self.keep_us
            while kept[0].publish_time_us < horizon:
                kept.popleft()

    def since(self, feed_id: FeedId, seq: int) -> Recovery:
        """The updates of ``feed_id`` after ``seq``, or the latest one with ``recovered=False``."""
        kept = self._updates.get(feed_id)
        if not kept:  # nothing published yet (or nothing kept): only a client that saw nothing missed nothing
            return Recovery([], recovered=seq == 0)
        first, last = kept[0].seq, kept[-1].seq
        if seq == last:
            return Recovery([], recovered=True)
        if seq > last:  # a seq this process never had (lost by a kill -9 before the store saved it)
            return Recovery([kept[-1]], recovered=False)
        if seq + 1 < first:
            return Recovery([kept[-1]], recovered=False)
        return Recovery(list(itertools.islice(kept, seq + 1 - first, None)), recovered=True)

    def latest_seq(self, feed_id: FeedId) -> int | None:
        kept = self._updates.get(feed_id)
        return kept[-1].seq if kept else None

    def kept(self, feed_id: FeedId) -> list[PriceUpdate]:
        """Every update of ``feed_id`` still kept, in ``seq`` order (what a process joining later catches up on)."""
        return list(self._updates.get(feed_id, ()))

    def updates(self, within_s: float | None = None) -> Iterator[PriceUpdate]:
        """What is kept (only the last ``within_s`` seconds of publish time of each feed, if given), each feed's in
        ``seq`` order (what a clean stop saves)."""
        for kept in self._updates.values():
            if within_s is None:
                yield from kept
                continue
            horizon = kept[-1].publish_time_us - int(within_s * 1_000_000)
            yield from (update for update in kept if update.publish_time_us >= horizon)
