"""Ingest: where every source's updates are accepted or dropped, once for the whole service.

Sources publish without waiting. Ingest gathers whatever arrived since its
last pass and runs one pass on the next loop iteration: it drops updates of
unknown feeds and updates that are not newer than the feed's latest (so a feed
never goes back in time and nothing is delivered twice), assigns each accepted
update the next ``seq`` of its feed, and hands the pass to the bus. It is the
:class:`~pricefeed.bus.base.Sink` that sources see.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping

from .bus.base import Bus
from .metrics import Metrics
from .model import Feed, FeedId, PriceUpdate
from .rate import RateMeter

log = logging.getLogger(__name__)


def is_newer(update: PriceUpdate, previous: PriceUpdate) -> bool:
    """Whether ``update`` is a new price after ``previous``.

    Pyth publish times are whole seconds, so two slots in the same second can
    carry two different aggregates: a later slot with a changed price is new;
    a later slot repeating the same price is the same aggregate confirmed again.
    """
    if update.publish_time_us != previous.publish_time_us:
        return update.publish_time_us > previous.publish_time_us
    if update.slot is None or previous.slot is None or update.slot <= previous.slot:
        return False
    return (update.price, update.conf, update.ema_price, update.ema_conf, update.status) != (
        previous.price, previous.conf, previous.ema_price, previous.ema_conf, previous.status)


class Ingest:
    """Acceptance, order and ``seq`` for every update, then one publication per pass on the bus."""

    def __init__(self, bus: Bus, metrics: Metrics | None = None) -> None:
        self.bus = bus
        self.metrics = metrics if metrics is not None else Metrics()
        self._feeds: dict[FeedId, Feed] = {}
        self._latest: dict[FeedId, PriceUpdate] = {}
        self._pending: list[PriceUpdate] = []
        self._pass_scheduled = False
        self._unknown_warned: set[FeedId] = set()
        self._listeners: list[Callable[[list[PriceUpdate]], None]] = []
        self.accepted = RateMeter()
        self.dropped_not_newer = 0
        self.dropped_unknown_feed = 0

    # -- the Sink that sources see ------------------------------------------------

    @property
    def feeds(self) -> Mapping[FeedId, Feed]:
        return self._feeds

    @property
    def latest(self) -> Mapping[FeedId, PriceUpdate]:
        return self._latest

    def add_feeds(self, feeds: Iterable[Feed]) -> None:
        added = list(feeds)
        for feed in added:
            self._feeds[feed.id] = feed
        if added:
            self.bus.publish_feeds(added)

    def publish(self, update: PriceUpdate) -> None:
        self._pending.append(update)
        self._schedule_pass()

    def publish_many(self, updates: Iterable[PriceUpdate]) -> None:
        self._pending.extend(updates)
        self._schedule_pass()

    def demand(self) -> set[FeedId]:
        return self.bus.demand()

    def add_listener(self, listener: Callable[[list[PriceUpdate]], None]) -> None:
        """Call ``listener`` with each pass's accepted updates, after the bus has them (the store's write-behind)."""
        self._listeners.append(listener)

    def restore(self, updates: Iterable[PriceUpdate]) -> list[PriceUpdate]:
        """Take the last known prices of known feeds from a store (``seq`` goes on from them); returns them."""
        restored = [u for u in updates if u.feed_id in self._feeds]
        for update in restored:
            self._latest[update.feed_id] = update
        if restored:
            self.bus.publish_restored(restored)
        return restored

    # -- the pass -------------------------------------------------------------------

    def _schedule_pass(self) -> None:
        if not self._pass_scheduled:
            self._pass_scheduled = True
            asyncio.get_running_loop().call_soon(self.run_pass)

    def run_pass(self) -> None:
        """Accept everything pending, in arrival order, and publish the pass."""
        self._pass_scheduled = False
        batch, self._pending = self._pending, []
        if not batch:
            return
        feeds, latest = self._feeds, self._latest
        accepted: list[PriceUpdate] = []
        seen: set[FeedId] = set()
        stale_by_source: Counter[str] = Counter()
        for update in batch:
            feed_id = update.feed_id
            if feed_id not in feeds:
                self._drop_unknown(update)
                continue
            seen.add(feed_id)
            previous = latest.get(feed_id)
            if previous is not None and not is_newer(update, previous):
                stale_by_source[update.source] += 1
                continue
            update.seq = previous.seq + 1 if previous is not None else 1
            latest[feed_id] = update
            accepted.append(update)
        if stale_by_source:
            self.dropped_not_newer += stale_by_source.total()
            for source, count in stale_by_source.items():
                self.metrics.updates_dropped.labels(source, "not_newer").inc(count)
        if accepted:
            self.accepted.add(len(accepted))
            for source, count in Counter(u.source for u in accepted).items():
                self.metrics.updates_accepted.labels(source).inc(count)
        self.bus.publish(accepted, seen)
        if accepted:
            for listener in self._listeners:
                listener(accepted)

    def _drop_unknown(self, update: PriceUpdate) -> None:
        self.dropped_unknown_feed += 1
        self.metrics.updates_dropped.labels(update.source, "unknown_feed").inc()
        if update.feed_id not in self._unknown_warned:
            self._unknown_warned.add(update.feed_id)
            log.warning("dropping updates for unregistered feed %s from %s", update.feed_id, update.source)
