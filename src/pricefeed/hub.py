"""The hub: the fan-out of topics to the subscribers of one process.

The bus hands it each ingest pass (see ``ingest.py``); listeners (history,
the store's write-behind, derived-topic computations) see the accepted
updates and may publish derived topics back. Each topic's newest item of a
pass is encoded once per wire format, and every subscriber gets the frames of
its topics in one call, so a connection gets one write per pass however many
updates the pass carried. Nothing here awaits a client.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, cast

from .contracts import Codec, Subscriber
from .metrics import Metrics
from .model import Feed, FeedId, PriceUpdate
from .rate import RateMeter
from .topics import PRICE, Topic, topic_kind

log = logging.getLogger(__name__)

BatchListener = Callable[[list[PriceUpdate]], None]


class Hub:
    def __init__(self, metrics: Metrics | None = None, stale_after_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.metrics = metrics if metrics is not None else Metrics()
        self.stale_after_s = stale_after_s
        self._clock = clock
        self.feeds: dict[FeedId, Feed] = {}
        self.latest: dict[FeedId, PriceUpdate] = {}
        self.latest_events: dict[Topic, object] = {}
        """The newest item of each derived topic, for a subscriber's first snapshot."""
        self._last_seen: dict[FeedId, float] = {}
        self._subscribers: dict[Topic, dict[Codec, set[Subscriber]]] = {}
        """Per topic, its subscribers grouped by wire format, so each item is encoded once per format."""
        self._listeners: list[BatchListener] = []
        self._events: dict[Topic, object] = {}
        self._queued: dict[Topic, deque[object]] = {}
        """Items of topics published with ``every``, beyond the one each pass carries, in order."""
        self._pass_scheduled = False
        self.deliveries = RateMeter()
        self._face_deliveries: dict[str, int] = {}
        self._delivery_counters: dict[str, Any] = {}

    # -- what the bus hands over ---------------------------------------------------

    def add_feeds(self, feeds: Iterable[Feed]) -> None:
        for feed in feeds:
            self.feeds[feed.id] = feed

    def restore(self, updates: Iterable[PriceUpdate]) -> None:
        """Load last known prices (from a store); they count as stale until a fresh update."""
        for update in updates:
            if update.feed_id in self.feeds:
                self.latest[update.feed_id] = update

    def lost(self) -> None:
        """The bus lost its upstream: keep serving the last prices, flagged stale until fresh ones arrive."""
        self._last_seen.clear()

    def receive(self, accepted: list[PriceUpdate], seen: Iterable[FeedId]) -> None:
        """One ingest pass: fan out the newest update of each feed, then tell the listeners."""
        now = self._clock()
        last_seen = self._last_seen
        for feed_id in seen:
            last_seen[feed_id] = now
        if not accepted:
            return
        latest = self.latest
        newest: dict[Topic, object] = {}  # within a pass only the newest price of a feed goes out
        for update in accepted:
            latest[update.feed_id] = newest[update.feed_id] = update
        self._fan_out(newest, prices=True)
        for listener in self._listeners:
            try:
                listener(accepted)
            except Exception:  # a failing listener must not cost the others their updates
                log.exception("hub listener %r failed", listener)
        self._publish_events()

    # -- derived topics --------------------------------------------------------------

    def publish_event(self, topic: Topic, item: object, every: bool = False) -> None:
        """Publish a derived topic's newest item (a candle, an alert, ...); it goes out in the next pass.

        A pass carries one item per topic, the newest. With ``every`` no item is replaced: one that finds its
        topic taken waits for the following pass, in order (each closed bar's analysis reaches its clients), and
        becomes the topic's ``latest_events`` snapshot only then, so a subscriber's snapshot is never ahead of
        what the passes still deliver.
        """
        queued = self._queued.get(topic)
        if queued is not None:
            queued.append(item)
        elif every and topic in self._events:
            self._queued[topic] = deque((item,))
        else:
            self._events[topic] = self.latest_events[topic] = item
        self._schedule_pass()

    def _schedule_pass(self) -> None:
        if not self._pass_scheduled:
            self._pass_scheduled = True
            asyncio.get_running_loop().call_soon(self._publish_events)

    def _publish_events(self) -> None:
        self._pass_scheduled = False
        if self._events:
            events, self._events = self._events, {}
            self._fan_out(events, prices=False)
        if self._queued:
            for topic in list(self._queued):
                queued = self._queued[topic]
                self._events[topic] = self.latest_events[topic] = queued.popleft()
                if not queued:
                    del self._queued[topic]
            self._schedule_pass()

    # -- feeds -----------------------------------------------------------------------

    def is_stale(self, feed_id: FeedId) -> bool:
        """True if nothing (not even a repeat of the same price) came for ``stale_after_s``."""
        return self._clock() - self._last_seen.get(feed_id, -math.inf) > self.stale_after_s

    def stale_count(self) -> int:
        """Feeds whose price went stale (a feed with no price yet is ``unknown``, not stale)."""
        return sum(1 for feed_id in self.latest if self.is_stale(feed_id))

    def status_of(self, feed_id: FeedId) -> str:
        """What a face reports as a feed's status: ``unknown`` (no price yet), ``stale`` or Pyth's status."""
        latest = self.latest.get(feed_id)
        if latest is None:
            return "unknown"
        return "stale" if self.is_stale(feed_id) else str(latest.status)

    def last_seen_age(self, feed_id: FeedId) -> float | None:
        seen = self._last_seen.get(feed_id)
        return None if seen is None else self._clock() - seen

    # -- subscriptions -------------------------------------------------------------------

    def subscribe(self, topic: Topic, subscriber: Subscriber) -> bool:
        """Add a subscription; False if it already existed."""
        subs = self._subscribers.setdefault(topic, {}).setdefault(subscriber.codec, set())
        if subscriber in subs:
            return False
        subs.add(subscriber)
        return True

    def unsubscribe(self, topic: Topic, subscriber: Subscriber) -> None:
        by_codec = self._subscribers.get(topic)
        subs = None if by_codec is None else by_codec.get(subscriber.codec)
        if by_codec is None or subs is None:
            return
        subs.discard(subscriber)
        if not subs:
            del by_codec[subscriber.codec]
            if not by_codec:
                del self._subscribers[topic]

    def has_subscribers(self, topic: Topic) -> bool:
        """Whether anyone subscribes to ``topic`` (a listener need not publish what nobody reads)."""
        return topic in self._subscribers

    def subscription_count(self) -> int:
        return sum(len(subs) for by_codec in self._subscribers.values() for subs in by_codec.values())

    def subscribed_topics(self) -> set[Topic]:
        return set(self._subscribers)

    def demand(self) -> set[FeedId]:
        """The feeds some client subscribes to, which upstreams then stream: price topics, and the feeds of
        derived topics computed from one feed's prices (``candles:<feed id>:1m``, ``market:<feed id>``)."""
        feeds = self.feeds
        wanted: set[FeedId] = set()
        for topic in self._subscribers:
            if topic_kind(topic) == PRICE:
                wanted.add(topic)
            else:
                part = topic.split(":", 2)[1]
                if part in feeds:
                    wanted.add(part)
        return wanted

    def add_listener(self, listener: BatchListener) -> None:
        """Call ``listener`` with the updates each pass accepted (e.g. the store's write-behind)."""
        self._listeners.append(listener)

    # -- the hot path ------------------------------------------------------------------------

    def _fan_out(self, items: dict[Topic, object], prices: bool) -> None:
        # The innermost loop runs once per delivery: two dict operations, no call.
        subscribers = self._subscribers
        per_subscriber: dict[Subscriber, dict[Topic, bytes]] = {}
        by_face = self._face_deliveries
        deliveries = 0
        wall = time.time()
        latencies: list[tuple[str, float]] = []
        for topic, item in items.items():
            by_codec = subscribers.get(topic)
            if not by_codec:
                continue
            for codec, subs in by_codec.items():
                frame = codec.encode(topic, item)
                for sub in subs:
                    frames = per_subscriber.get(sub)
                    if frames is None:
                        per_subscriber[sub] = {topic: frame}
                    else:
                        frames[topic] = frame
                count = len(subs)
                deliveries += count
                by_face[codec.face] = by_face.get(codec.face, 0) + count
                if prices:
                    latencies.append((codec.face, wall - cast(PriceUpdate, item).publish_time_us / 1e6))
        for sub, frames in per_subscriber.items():
            try:
                sub.deliver(frames)
            except Exception:  # one broken connection must not stop the pass
                log.exception("delivery failed for %r", sub)
        if deliveries:
            self.deliveries.add(deliveries)
            self._count(latencies)

    def _count(self, latencies: list[tuple[str, float]]) -> None:
        """Move this pass's counts into the metrics: a few calls per pass, none per delivery."""
        counters, observe = self._delivery_counters, self.metrics.latency.observe
        for face, count in self._face_deliveries.items():
            counter = counters.get(face)
            if counter is None:
                counter = counters[face] = self.metrics.deliveries.labels(face)
            counter.inc(count)
        self._face_deliveries.clear()
        for face, seconds in latencies:
            observe(face, seconds)
