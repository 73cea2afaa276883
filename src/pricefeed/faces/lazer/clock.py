"""The fixed-rate channels: one clock per channel, ticking at wall-clock multiples of its period.

At each tick the latest price of every feed that changed since the previous
tick, and that someone watches on that channel, is published once on the
derived topic ``lazer:<channel>:<feed id>``; the hub encodes it once and every
subscription of that channel gets it in the same pass. Ticks fall on exact
multiples of the period (as Lazer's ``timestampUs`` values do), so two
pricefeed processes tick together. Each channel learns what changed by
subscribing to the watched feeds' price topics itself, which also makes them
part of the hub's demand (an upstream then streams them).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from typing import Any

from ...contracts import Codec
from ...hub import Hub
from ...model import FeedId, PriceUpdate, now_us
from ...topics import Topic, derived_topic
from .codec import Tick

PERIODS_US = {"fixed_rate@50ms": 50_000, "fixed_rate@200ms": 200_000, "fixed_rate@1000ms": 1_000_000}


def tick_topic(channel: str, feed_id: FeedId) -> Topic:
    return derived_topic("lazer", channel, feed_id)


def last_tick_us(channel: str, at_us: int) -> int:
    """The latest tick of ``channel`` at or before ``at_us``."""
    period = PERIODS_US[channel]
    return at_us - at_us % period


class _Changes:
    """Nothing to encode: a feed's price topic only tells a channel that the feed changed. It keeps each
    watched feed's last two prices, so a tick whose timer fired late can still send the price as of its instant."""

    face = "lazer_clock"

    def __init__(self) -> None:
        self.recent: dict[FeedId, tuple[PriceUpdate | None, PriceUpdate]] = {}

    def encode(self, topic: Topic, item: object) -> bytes:
        assert isinstance(item, PriceUpdate)
        before = self.recent.get(topic)
        self.recent[topic] = (None if before is None else before[1], item)
        return b""

    def as_of(self, feed_id: FeedId, at_us: int) -> PriceUpdate | None:
        """The newest price of ``feed_id`` published at or before ``at_us`` that this channel saw."""
        for update in reversed(self.recent.get(feed_id, (None,))):
            if update is not None and update.publish_time_us <= at_us:
                return update
        return None


class _ChangeTracker:
    """One channel's subscriber to the price topics it watches: collects the feeds that changed between ticks."""

    __slots__ = ("changed", "changes", "codec")

    def __init__(self) -> None:
        self.changes = _Changes()
        self.codec: Codec = self.changes
        self.changed: set[FeedId] = set()

    def deliver(self, frames: dict[Topic, bytes]) -> None:
        self.changed.update(frames)


class FixedRateClock:
    name = "lazer clock"

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._watched: dict[str, Counter[FeedId]] = {channel: Counter() for channel in PERIODS_US}
        self._trackers = {channel: _ChangeTracker() for channel in PERIODS_US}
        self._tasks: list[asyncio.Task[None]] = []
        self.ticks = 0

    def watch(self, channel: str, feed_id: FeedId) -> None:
        watched = self._watched[channel]
        watched[feed_id] += 1
        if watched[feed_id] == 1:
            self.hub.subscribe(feed_id, self._trackers[channel])

    def unwatch(self, channel: str, feed_id: FeedId) -> None:
        watched = self._watched[channel]
        watched[feed_id] -= 1
        if watched[feed_id] <= 0:
            del watched[feed_id]
            tracker = self._trackers[channel]
            self.hub.unsubscribe(feed_id, tracker)
            tracker.changed.discard(feed_id)
            tracker.changes.recent.pop(feed_id, None)

    def changed(self, channel: str, feed_id: FeedId) -> None:
        """Send ``feed_id``'s latest price at the next tick, as if it had just changed."""
        if feed_id in self._watched[channel]:
            self._trackers[channel].changed.add(feed_id)

    def tick(self, channel: str, at_us: int) -> None:
        """Publish the changed feeds' latest prices as of the tick at ``at_us``.

        A timer can fire late, after newer prices arrived: a tick sends each feed's price as of its own instant
        (never one published after it), and a feed with none yet waits for the next tick.
        """
        tracker = self._trackers[channel]
        changed, tracker.changed = tracker.changed, set()
        latest = self.hub.latest
        for feed_id in changed:
            newest = latest.get(feed_id)
            if newest is not None and newest.publish_time_us > at_us:
                tracker.changed.add(feed_id)  # a price after this tick's instant: the next tick sends it
                update = tracker.changes.as_of(feed_id, at_us)
                if update is not None and update.publish_time_us <= at_us - PERIODS_US[channel]:
                    update = None  # the previous tick already had it
            else:
                update = newest
            if update is not None:
                self.hub.publish_event(tick_topic(channel, feed_id), Tick(update, at_us))
        self.ticks += 1

    async def _run(self, channel: str, period_us: int) -> None:
        last = 0
        while True:
            now = now_us()
            at = max(now - now % period_us + period_us, last + period_us)  # a wake-up a hair early repeats no tick
            await asyncio.sleep((at - now) / 1e6)
            self.tick(channel, at)
            last = at

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(channel, period), name=f"lazer-{channel}")
                       for channel, period in PERIODS_US.items()]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    def status(self) -> dict[str, Any]:
        return {"ticks": self.ticks, "watched": {c: len(w) for c, w in self._watched.items()}}
