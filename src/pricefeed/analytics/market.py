"""Market data per feed and trading day: open, high, low, last, the previous session's close and volume.

A hub listener keeps one :class:`DayStats` per feed and publishes it on the
derived topic ``market:<feed id>``. An exchange feed that sends its own session
figures (Kite's quote and full modes) overrides what ticks alone would give:
it knows the open and the previous close even when we started mid-session.
Without an exchange close, the previous close is the last price of the
previous day we saw; without that either, ``change`` counts from the day's
first price.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..hub import Hub
from ..model import FeedId, PriceUpdate, at_expo
from ..topics import Topic, derived_topic
from .days import Day, DayClock

MARKET = "market"


def market_topic(feed_id: FeedId) -> Topic:
    return derived_topic(MARKET, feed_id)


@dataclass(slots=True)
class DayStats:
    """One feed's trading day so far; prices are mantissas at ``expo``."""

    feed_id: FeedId
    day: Day
    expo: int
    open: int
    high: int
    low: int
    close: int
    """The last price."""
    previous_close: int | None
    volume: int | None
    last_us: int
    """Publish time of the last price."""
    last: PriceUpdate | None = None
    """The last update (its quote: bid, ask and depth); not kept across restarts."""

    def reference(self) -> int:
        """What ``change`` is counted from: the previous close where known, else the day's open."""
        return self.open if self.previous_close is None else self.previous_close


class MarketDays:
    """The hub listener that keeps each feed's :class:`DayStats` and publishes them."""

    def __init__(self, hub: Hub, clock: DayClock) -> None:
        self.hub = hub
        self.clock = clock
        self.stats: dict[FeedId, DayStats] = {}
        self._dirty: dict[FeedId, DayStats] = {}

    def add(self, updates: list[PriceUpdate]) -> None:
        """A hub pass: advance each feed's day and publish it if anyone listens."""
        has_subscribers, publish = self.hub.has_subscribers, self.hub.publish_event
        for update in updates:
            stats = self._advance(update)
            self._dirty[update.feed_id] = stats
            topic = market_topic(update.feed_id)
            if has_subscribers(topic):
                publish(topic, stats)

    def _advance(self, update: PriceUpdate) -> DayStats:
        feed_id, price = update.feed_id, update.price
        day = self.clock.day_of(feed_id, update.publish_time_us)
        stats = self.stats.get(feed_id)
        if stats is None or day > stats.day:
            previous = None if stats is None else at_expo(stats.close, stats.expo, update.expo)
            stats = self.stats[feed_id] = DayStats(feed_id, day, update.expo, price, price, price, price, previous,
                                                   update.volume, update.publish_time_us)
        else:
            if update.expo != stats.expo:
                _rescale(stats, update.expo)
            price = at_expo(price, update.expo, stats.expo)
            stats.high = max(stats.high, price)
            stats.low = min(stats.low, price)
            stats.close = price
            stats.last_us = update.publish_time_us
            if update.volume is not None:
                stats.volume = update.volume
        quote = update.quote
        if quote is not None:  # the exchange's own session figures win over what we saw
            for name in ("open", "high", "low", "previous_close"):
                value = getattr(quote, name)
                if value:
                    setattr(stats, name, at_expo(value, update.expo, stats.expo))
        stats.last = update
        return stats

    def change(self, update: PriceUpdate) -> tuple[int, int] | None:
        """``(change, reference)`` of a price, as mantissas at its exponent: since the exchange's previous close,
        else the previous day's last price, else the day's first price (a feed's first price has change 0).
        None for a price older than the day kept."""
        quote = update.quote
        if quote is not None and quote.previous_close:
            return update.price - quote.previous_close, quote.previous_close
        stats = self.stats.get(update.feed_id)
        if stats is None:
            return 0, update.price
        day = self.clock.day_of(update.feed_id, update.publish_time_us)
        if day > stats.day:  # the day's first price, before this listener has seen it
            reference = stats.close
        elif day == stats.day:
            reference = stats.reference()
        else:
            return None
        reference = at_expo(reference, stats.expo, update.expo)
        return update.price - reference, reference

    # -- the store ---------------------------------------------------------------------

    def restore(self, records: Iterable[DayStats]) -> None:
        for stats in records:
            current = self.stats.get(stats.feed_id)
            if current is None or current.last_us < stats.last_us:
                self.stats[stats.feed_id] = stats

    def take_dirty(self) -> list[DayStats]:
        """The days that changed since the last call (for the store's write-behind)."""
        dirty, self._dirty = self._dirty, {}
        return list(dirty.values())


    def restore_dirty(self, days: Iterable[DayStats]) -> None:
        """Put back days a failed save did not keep, unless they changed meanwhile."""
        for stats in days:
            self._dirty.setdefault(stats.feed_id, stats)


def _rescale(stats: DayStats, expo: int) -> None:
    """Move a day's prices to another exponent (a source changed its precision)."""
    old = stats.expo
    stats.open, stats.high, stats.low, stats.close = (at_expo(v, old, expo) for v in
                                                      (stats.open, stats.high, stats.low, stats.close))
    if stats.previous_close is not None:
        stats.previous_close = at_expo(stats.previous_close, old, expo)
    stats.expo = expo
