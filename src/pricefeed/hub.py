"""The hub: the latest update of every feed, who subscribes to what, and the fan-out.

Sources hand updates to :meth:`Hub.publish` without waiting. The hub gathers
whatever arrived since its last pass and runs one pass on the next loop
iteration: it drops updates that are not newer than the feed's latest (so a
feed never goes back in time and nothing is delivered twice), keeps the newest
of each feed, encodes it once per wire format, and hands every subscriber the
frames of its feeds in one call, so a connection gets one write per pass
however many updates the pass carried. Nothing here awaits a client.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from .model import Feed, FeedId, PriceUpdate
from .rate import RateMeter

log = logging.getLogger(__name__)


class Codec(Protocol):
    """A wire format for price updates; one instance is shared by all connections that speak it."""

    def encode_update(self, update: PriceUpdate, feed: Feed) -> bytes: ...


class Subscriber(Protocol):
    """A connection, as the hub sees it."""

    codec: Codec

    def deliver(self, frames: dict[FeedId, bytes]) -> None:
        """One pass's new frames for this subscriber, one per feed, in order; write them (or queue them,
        conflating per feed, while the connection cannot take them)."""


BatchListener = Callable[[list[PriceUpdate]], None]


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


class Hub:
    def __init__(self, stale_after_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.stale_after_s = stale_after_s
        self._clock = clock
        self.feeds: dict[FeedId, Feed] = {}
        self.latest: dict[FeedId, PriceUpdate] = {}
        self._last_seen: dict[FeedId, float] = {}
        self._subscribers: dict[FeedId, dict[Codec, set[Subscriber]]] = {}
        """Per feed, its subscribers grouped by wire format, so each update is encoded once per format."""
        self._pending: list[PriceUpdate] = []
        self._pass_scheduled = False
        self._listeners: list[BatchListener] = []
        self._unknown_warned: set[FeedId] = set()
        self.accepted = RateMeter()
        self.deliveries = RateMeter()
        self.dropped_not_newer = 0
        self.dropped_unknown_feed = 0

    # -- feeds -------------------------------------------------------------

    def add_feeds(self, feeds: Iterable[Feed]) -> None:
        for feed in feeds:
            self.feeds[feed.id] = feed

    def restore(self, updates: Iterable[PriceUpdate]) -> None:
        """Load last known prices (from a store); they count as stale until a fresh update."""
        for update in updates:
            if update.feed_id in self.feeds:
                self.latest[update.feed_id] = update

    def is_stale(self, feed_id: FeedId) -> bool:
        """True if nothing (not even a repeat of the same price) came for ``stale_after_s``."""
        return self._clock() - self._last_seen.get(feed_id, -math.inf) > self.stale_after_s

    def stale_count(self) -> int:
        return sum(1 for feed_id in self.feeds if self.is_stale(feed_id))

    def status_of(self, feed_id: FeedId) -> str:
        """What a face reports as a feed's status: ``unknown`` (no price yet), ``stale`` or Pyth's status."""
        latest = self.latest.get(feed_id)
        if latest is None:
            return "unknown"
        return "stale" if self.is_stale(feed_id) else str(latest.status)

    def last_seen_age(self, feed_id: FeedId) -> float | None:
        seen = self._last_seen.get(feed_id)
        return None if seen is None else self._clock() - seen

    # -- subscriptions -----------------------------------------------------

    def subscribe(self, feed_id: FeedId, subscriber: Subscriber) -> bool:
        """Add a subscription; False if it already existed."""
        subs = self._subscribers.setdefault(feed_id, {}).setdefault(subscriber.codec, set())
        if subscriber in subs:
            return False
        subs.add(subscriber)
        return True

    def unsubscribe(self, feed_id: FeedId, subscriber: Subscriber) -> None:
        by_codec = self._subscribers.get(feed_id)
        subs = None if by_codec is None else by_codec.get(subscriber.codec)
        if by_codec is None or subs is None:
            return
        subs.discard(subscriber)
        if not subs:
            del by_codec[subscriber.codec]
            if not by_codec:
                del self._subscribers[feed_id]

    def subscription_count(self) -> int:
        return sum(len(subs) for by_codec in self._subscribers.values() for subs in by_codec.values())

    def subscribed_feeds(self) -> set[FeedId]:
        return set(self._subscribers)

    def demand(self) -> set[FeedId]:
        """The feeds some client subscribes to (the :class:`~pricefeed.bus.base.Sink` view)."""
        return self.subscribed_feeds()

    def add_listener(self, listener: BatchListener) -> None:
        """Call ``listener`` with the updates each pass accepted (e.g. the store's write-behind)."""
        self._listeners.append(listener)

    # -- the hot path ------------------------------------------------------

    def publish(self, update: PriceUpdate) -> None:
        self._pending.append(update)
        self._schedule_pass()

    def publish_many(self, updates: Iterable[PriceUpdate]) -> None:
        self._pending.extend(updates)
        self._schedule_pass()

    def _schedule_pass(self) -> None:
        if not self._pass_scheduled:
            self._pass_scheduled = True
            asyncio.get_running_loop().call_soon(self.run_pass)

    def run_pass(self) -> None:
        """Accept, encode and fan out everything pending; one ``deliver`` per touched subscriber."""
        self._pass_scheduled = False
        batch, self._pending = self._pending, []
        if not batch:
            return
        now = self._clock()
        feeds, latest, last_seen = self.feeds, self.latest, self._last_seen
        accepted: list[PriceUpdate] = []
        newest: dict[FeedId, PriceUpdate] = {}  # within a pass only the newest price of a feed goes out
        for update in batch:
            feed_id = update.feed_id
            if feed_id not in feeds:
                self._drop_unknown(update)
                continue
            last_seen[feed_id] = now
            previous = latest.get(feed_id)
            if previous is not None and not is_newer(update, previous):
                self.dropped_not_newer += 1
                continue
            update.seq = previous.seq + 1 if previous is not None else 1
            latest[feed_id] = newest[feed_id] = update
            accepted.append(update)
        self._fan_out(newest)
        self.accepted.add(len(accepted))
        if accepted:
            for listener in self._listeners:
                listener(accepted)

    def _fan_out(self, newest: dict[FeedId, PriceUpdate]) -> None:
        # The innermost loop runs once per delivery: two dict operations, no call.
        feeds, subscribers = self.feeds, self._subscribers
        per_subscriber: dict[Subscriber, dict[FeedId, bytes]] = {}
        deliveries = 0
        for feed_id, update in newest.items():
            by_codec = subscribers.get(feed_id)
            if not by_codec:
                continue
            for codec, subs in by_codec.items():
                frame = codec.encode_update(update, feeds[feed_id])
                for sub in subs:
                    frames = per_subscriber.get(sub)
                    if frames is None:
                        per_subscriber[sub] = {feed_id: frame}
                    else:
                        frames[feed_id] = frame
                deliveries += len(subs)
        for sub, frames in per_subscriber.items():
            try:
                sub.deliver(frames)
            except Exception:  # one broken connection must not stop the pass
                log.exception("delivery failed for %r", sub)
        self.deliveries.add(deliveries)

    def _drop_unknown(self, update: PriceUpdate) -> None:
        self.dropped_unknown_feed += 1
        if update.feed_id not in self._unknown_warned:
            self._unknown_warned.add(update.feed_id)
            log.warning("dropping updates for unregistered feed %s from %s", update.feed_id, update.source)
