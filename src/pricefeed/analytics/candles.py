"""OHLCV candles per feed and interval, computed once by a hub listener and published as derived topics.

A bar covers ``[start, start + interval)`` with ``start`` a multiple of the
interval since the Unix epoch (bars are aligned in UTC), by the publish time of
the ticks in it. Two topics per feed and interval:

- ``candles:<feed id>:<interval>``: the forming bar, as each tick changes it
  (conflated: a slow client gets its newest state);
- ``candles:<feed id>:<interval>:final``: each bar once, when it closes: at the
  first tick of a later bar, or ``grace`` after its end if no tick comes (a
  closed market, a dropped upstream). Faces deliver these unconflated.

An interval without a tick has no bar, as an exchange's candles. A bar's volume
is what the day's cumulative volume grew by during it, so trades between two
ticks are never lost (an exchange feed sends snapshots, not every trade); the
first tick of a day contributes the day's volume so far, the first tick ever
only its own quantity. A tick that comes after its bar closed (later than the
grace) changes no closed bar; its volume goes to the next bar.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..hub import Hub
from ..model import FeedId, PriceUpdate, at_expo
from ..topics import Topic, derived_topic

CANDLES = "candles"
FINAL = "final"
_INTERVAL = re.compile(r"([1-9]\d*)([smhd])")
_UNIT_US = {"s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000}


@dataclass(frozen=True, slots=True)
class Interval:
    label: str
    """As clients name it: ``1s``, ``1m``, ``5m``, ``1h``, ``1d``."""
    us: int


def parse_interval(text: str) -> Interval:
    """``1s``, ``30s``, ``1m``, ``5m``, ``1h``, ``1d``...; ``ValueError`` otherwise."""
    match = _INTERVAL.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"invalid candle interval {text!r}: expected a number and s, m, h or d, e.g. 1m")
    us = int(match[1]) * _UNIT_US[match[2]]
    if us > _UNIT_US["d"] or _UNIT_US["d"] % us:
        raise ValueError(f"invalid candle interval {text!r}: a day must be a whole number of them")
    return Interval(f"{match[1]}{match[2]}", us)


def forming_topic(feed_id: FeedId, interval: Interval) -> Topic:
    return derived_topic(CANDLES, feed_id, interval.label)


def final_topic(feed_id: FeedId, interval: Interval) -> Topic:
    return derived_topic(CANDLES, feed_id, interval.label, FINAL)


class Bar:
    """One candle; prices are mantissas at ``expo``. A final bar never changes again."""

    __slots__ = ("close", "day_volume", "expo", "feed_id", "final", "high", "interval", "last_us", "low", "open",
                 "start_us", "ticks", "volume")

    def __init__(self, feed_id: FeedId, interval: Interval, start_us: int, expo: int, open_: int, high: int,
                 low: int, close: int, volume: int | None, ticks: int, day_volume: int | None, last_us: int,
                 final: bool = False) -> None:
        self.feed_id = feed_id
        self.interval = interval
        self.start_us = start_us
        self.expo = expo
        self.open, self.high, self.low, self.close = open_, high, low, close
        self.volume = volume
        self.ticks = ticks
        self.day_volume = day_volume
        """The day's cumulative volume at the bar's last tick (where the next bar's volume counts from)."""
        self.last_us = last_us
        """Publish time of the bar's last tick."""
        self.final = final

    @property
    def end_us(self) -> int:
        return self.start_us + self.interval.us

    def closed(self) -> Bar:
        """A final copy (the forming object may still be queued for a client as the forming bar)."""
        return Bar(self.feed_id, self.interval, self.start_us, self.expo, self.open, self.high, self.low,
                   self.close, self.volume, self.ticks, self.day_volume, self.last_us, final=True)

    def add(self, price: int, expo: int, volume: int | None, day_volume: int | None, time_us: int) -> None:
        if expo != self.expo:
            self._rescale(min(expo, self.expo))
            price = at_expo(price, expo, self.expo)
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.close = price
        if volume is not None:
            self.volume = volume if self.volume is None else self.volume + volume
        if day_volume is not None:
            self.day_volume = day_volume
        self.ticks += 1
        self.last_us = time_us

    def _rescale(self, expo: int) -> None:
        old = self.expo
        self.open, self.high, self.low, self.close = (at_expo(v, old, expo) for v in
                                                      (self.open, self.high, self.low, self.close))
        self.expo = expo

    def __repr__(self) -> str:
        return (f"Bar({self.feed_id[:8]} {self.interval.label} @{self.start_us} o={self.open} h={self.high} "
                f"l={self.low} c={self.close} e={self.expo} v={self.volume} n={self.ticks} final={self.final})")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Bar) and all(getattr(self, n) == getattr(other, n) for n in Bar.__slots__)

    __hash__ = None  # type: ignore[assignment]


class Series:
    """The bars of one feed at one interval: the last finals and the forming one."""

    __slots__ = ("carry", "final_topic", "finals", "forming", "forming_topic", "interval", "queued")

    def __init__(self, feed_id: FeedId, interval: Interval, history: int) -> None:
        self.interval = interval
        self.finals: deque[Bar] = deque(maxlen=history)
        self.forming: Bar | None = None
        self.forming_topic = forming_topic(feed_id, interval)
        self.final_topic = final_topic(feed_id, interval)
        self.carry: int | None = None
        """Volume of late ticks, for the next bar."""
        self.queued: deque[Bar] = deque()
        """Finals waiting for the next hub round (a topic carries one item per round)."""

    def last_start(self) -> int | None:
        if self.forming is not None:
            return self.forming.start_us
        return self.finals[-1].start_us if self.finals else None


class CandleBook:
    """The hub listener that builds every feed's bars at every interval, and closes them on time."""

    def __init__(self, hub: Hub, intervals: Iterable[Interval], history: int = 100, grace_s: float = 2.0,
                 day_of: Callable[[FeedId, int], int] = lambda feed_id, time_us: time_us // 86_400_000_000,
                 clock: Callable[[], float] = time.time) -> None:
        self.hub = hub
        self.intervals = tuple(sorted(set(intervals), key=lambda i: i.us))
        self.history = history
        self.grace_us = int(grace_s * 1_000_000)
        self.day_of = day_of
        self.clock = clock
        self.series: dict[FeedId, tuple[Series, ...]] = {}
        self._last_volume: dict[FeedId, tuple[int, int]] = {}
        """Per feed: the day's cumulative volume at its last tick, and that tick's time."""
        self._unsaved: dict[tuple[FeedId, int, int], Bar] = {}
        """Bars changed since the last save, by (feed, interval, start): a final replaces its forming row."""
        self._sent_this_round: set[Topic] = set()
        self._round_scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self.late_ticks = 0
        self.observers: list[Callable[[list[tuple[Series, Bar]], dict[Topic, Bar]], None]] = []
        """Called with each pass's closed bars and changed forming bars (derived analytics built on candles)."""

    # -- ticks in ---------------------------------------------------------------------

    def add(self, updates: list[PriceUpdate]) -> None:
        """A hub pass: extend, close and open bars, then publish the closed ones and the forming ones."""
        closed: list[tuple[Series, Bar]] = []
        forming: dict[Topic, Bar] = {}
        for update in updates:
            feed_id = update.feed_id
            series_of_feed = self.series.get(feed_id)
            if series_of_feed is None:
                series_of_feed = self.series[feed_id] = tuple(Series(feed_id, i, self.history)
                                                              for i in self.intervals)
            volume = self._volume_of(update)
            for series in series_of_feed:
                bar = self._tick(series, update, volume, closed)
                if bar is not None:
                    forming[series.forming_topic] = bar
        self._publish(closed, forming)

    def _volume_of(self, update: PriceUpdate) -> int | None:
        """What the day's volume grew by since the feed's previous tick."""
        cumulative = update.volume
        if cumulative is None:
            return None
        feed_id, time_us = update.feed_id, update.publish_time_us
        previous = self._last_volume.get(feed_id)
        self._last_volume[feed_id] = (cumulative, time_us)
        if previous is None:
            return update.quantity or 0
        if self.day_of(feed_id, previous[1]) != self.day_of(feed_id, time_us):
            return cumulative
        return max(0, cumulative - previous[0])

    def _tick(self, series: Series, update: PriceUpdate, volume: int | None,
              closed: list[tuple[Series, Bar]]) -> Bar | None:
        """Put one tick in its bar; returns the forming bar it changed (None for a late tick)."""
        time_us = update.publish_time_us
        start = time_us - time_us % series.interval.us
        bar = series.forming
        last_start = series.last_start()
        if (last_start is not None and start < last_start) or (bar is None and start == last_start):
            self.late_ticks += 1
            if volume:
                series.carry = (series.carry or 0) + volume
            return None
        if bar is not None and start == bar.start_us:
            bar.add(update.price, update.expo, volume, update.volume, time_us)
        else:
            if bar is not None:
                closed.append((series, self._close(series, bar)))
            if series.carry is not None:
                volume = (volume or 0) + series.carry
                series.carry = None
            price = update.price
            bar = series.forming = Bar(update.feed_id, series.interval, start, update.expo, price, price, price,
                                       price, volume, 1, update.volume, time_us)
        self._unsaved[(bar.feed_id, series.interval.us, bar.start_us)] = bar
        return bar

    def _close(self, series: Series, bar: Bar) -> Bar:
        final = bar.closed()
        series.forming = None
        series.finals.append(final)
        self._unsaved[(final.feed_id, series.interval.us, final.start_us)] = final
        return final

    # -- closing on time ---------------------------------------------------------------------

    def close_due(self, now_us: int | None = None) -> int:
        """Close every forming bar whose end is more than the grace ago; how many were closed."""
        now = int(self.clock() * 1_000_000) if now_us is None else now_us
        closed: list[tuple[Series, Bar]] = []
        for series_of_feed in self.series.values():
            for series in series_of_feed:
                bar = series.forming
                if bar is not None and bar.end_us + self.grace_us <= now:
                    closed.append((series, self._close(series, bar)))
        self._publish(closed, {})
        return len(closed)

    def start(self) -> None:
        """Close due bars at each boundary of the shortest interval (plus the grace)."""
        self._arm()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        if not self.intervals:
            return
        step = self.intervals[0].us
        now = int(self.clock() * 1_000_000)
        due = now - now % step + step + self.grace_us
        while due - self.grace_us > now + step:  # the grace may exceed the step
            due -= step
        self._timer = asyncio.get_running_loop().call_later((due - now) / 1_000_000, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        try:
            self.close_due()
        finally:
            self._arm()

    # -- publishing ---------------------------------------------------------------------------

    def _publish(self, closed: list[tuple[Series, Bar]], forming: dict[Topic, Bar]) -> None:
        """Finals first, each in a hub round of its own per topic (a second one waits for the next round)."""
        for observer in self.observers:
            observer(closed, forming)
        for series, final in closed:
            if series.final_topic in self._sent_this_round or series.queued:
                series.queued.append(final)
                self._schedule_round()
            else:
                self._send_final(series, final)
        has_subscribers, publish = self.hub.has_subscribers, self.hub.publish_event
        for topic, bar in forming.items():
            if has_subscribers(topic):
                publish(topic, bar)

    def _send_final(self, series: Series, final: Bar) -> None:
        if self.hub.has_subscribers(series.final_topic):
            self.hub.publish_event(series.final_topic, final)
            self._sent_this_round.add(series.final_topic)
            self._schedule_round()

    def _schedule_round(self) -> None:
        # Scheduled after the hub's own round (publish_event schedules it first), so this runs once the
        # round's items have gone out.
        if not self._round_scheduled:
            self._round_scheduled = True
            asyncio.get_running_loop().call_soon(self._next_round)

    def _next_round(self) -> None:
        self._round_scheduled = False
        self._sent_this_round.clear()
        for series_of_feed in self.series.values():
            for series in series_of_feed:
                if series.queued:
                    self._send_final(series, series.queued.popleft())
                    if series.queued:
                        self._schedule_round()

    # -- what faces and the store read ------------------------------------------------------------

    def recent(self, feed_id: FeedId, interval: Interval) -> tuple[list[Bar], Bar | None]:
        """The kept final bars that have gone out to subscribers (oldest first) and the forming bar."""
        for series in self.series.get(feed_id, ()):
            if series.interval == interval:
                finals = list(series.finals)
                if series.queued:
                    finals = finals[:len(finals) - len(series.queued)]
                return finals, series.forming
        return [], None

    def restore(self, bars: Iterable[Bar]) -> None:
        """Bars from the store, oldest first: the last forming one of a series goes on forming."""
        wanted = {i.us: i for i in self.intervals}
        for bar in sorted(bars, key=lambda b: (b.feed_id, b.interval.us, b.start_us)):
            interval = wanted.get(bar.interval.us)
            if interval is None:
                continue
            bar.interval = interval
            series_of_feed = self.series.get(bar.feed_id)
            if series_of_feed is None:
                series_of_feed = self.series[bar.feed_id] = tuple(Series(bar.feed_id, i, self.history)
                                                                  for i in self.intervals)
            series = next(s for s in series_of_feed if s.interval.us == interval.us)
            if series.forming is not None:  # an older forming bar that never closed: it is final now
                self._close(series, series.forming)
            if bar.final:
                series.finals.append(bar)
            else:
                series.forming = bar
            if bar.day_volume is not None:
                last = self._last_volume.get(bar.feed_id)
                if last is None or last[1] < bar.last_us:
                    self._last_volume[bar.feed_id] = (bar.day_volume, bar.last_us)

    def take_unsaved(self) -> list[Bar]:
        """The bars that changed since the last call (for the store's write-behind)."""
        unsaved, self._unsaved = self._unsaved, {}
        return list(unsaved.values())

    def restore_unsaved(self, bars: Iterable[Bar]) -> None:
        """Put back bars a failed save did not keep, unless they changed meanwhile."""
        for bar in bars:
            self._unsaved.setdefault((bar.feed_id, bar.interval.us, bar.start_us), bar)

    def status(self) -> dict[str, object]:
        return {"intervals": [i.label for i in self.intervals], "series": sum(map(len, self.series.values())),
                "late_ticks": self.late_ticks}
