"""Trading days: which day a price belongs to, in its market's time zone (an NSE day is an IST date, a
crypto day a UTC date), found from the feed's ``schedule`` attribute.

Day boundaries are cached per feed, so the hot path compares two integers
instead of converting a time zone per tick.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from ..model import Feed, FeedId
from ..schedule import ALWAYS_OPEN, MarketSchedule, schedule_of

Day = int
"""A local date as its proleptic ordinal (``date.toordinal()``)."""


def market_schedule(feed: Feed | None) -> MarketSchedule:
    """A feed's market hours; a feed without (or with a malformed) schedule trades around the clock, in UTC."""
    if feed is None:
        return ALWAYS_OPEN
    try:
        return schedule_of(feed.attributes)
    except ValueError:
        return ALWAYS_OPEN


def day_window(time_us: int, zone: ZoneInfo) -> tuple[Day, int, int]:
    """The local day of ``time_us`` and its bounds ``[start_us, end_us)``."""
    local = datetime.fromtimestamp(time_us / 1_000_000, UTC).astimezone(zone)
    start = datetime(local.year, local.month, local.day, tzinfo=zone)
    end = start + timedelta(days=1)
    return local.toordinal(), int(start.timestamp()) * 1_000_000, int(end.timestamp()) * 1_000_000


class DayClock:
    """Tells the trading day of a feed's price; feeds are looked up lazily (sources add them as they go)."""

    def __init__(self, feeds: Mapping[FeedId, Feed]) -> None:
        self._feeds = feeds
        self._zones: dict[FeedId, ZoneInfo] = {}
        self._windows: dict[FeedId, tuple[Day, int, int]] = {}

    def schedule(self, feed_id: FeedId) -> MarketSchedule:
        return market_schedule(self._feeds.get(feed_id))

    def zone(self, feed_id: FeedId) -> ZoneInfo:
        zone = self._zones.get(feed_id)
        if zone is None:
            zone = self._zones[feed_id] = self.schedule(feed_id).timezone
        return zone

    def day_of(self, feed_id: FeedId, time_us: int) -> Day:
        window = self._windows.get(feed_id)
        if window is not None and window[1] <= time_us < window[2]:
            return window[0]
        window = self._windows[feed_id] = day_window(time_us, self.zone(feed_id))
        return window[0]

    def forget(self, feed_id: FeedId) -> None:
        """Drop what is cached of a feed (its metadata changed)."""
        self._zones.pop(feed_id, None)
        self._windows.pop(feed_id, None)
