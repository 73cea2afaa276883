"""Technical analysis as derived topics: each watched feed's indicators and patterns, computed once per candle
interval and set of periods however many clients watch them.

Fed by the candle book (an observer of the bars it closes and changes), so it
sees every bar whatever closes it (a tick of a later bar, or the timer). Two
topics per feed, interval and periods, like the candles':

- ``analysis:<feed id>:<interval>[:<periods>]``: the forming bar's indicators
  as each tick changes it (conflated);
- the same with ``:final``: each closed bar's indicators and the patterns
  that fired on it, once per bar (every one: two bars closed in one pass go
  out in two hub passes, none replaced).

Both carry the feed's risk metrics at that interval (see :mod:`.risk`),
measured once per closed bar for every set of periods watching it.

A series starts when a client first watches it, warmed up at once from the
candles kept in memory (restored from the store at start), and stops when no
one watches it any more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..hub import Hub
from ..model import FeedId
from ..topics import Topic, derived_topic
from .candles import Bar, CandleBook, Interval, Series
from .indicators import IndicatorSeries, Periods
from .risk import RiskBook, RiskMetrics

ANALYSIS = "analysis"
FINAL = "final"


@dataclass(frozen=True, slots=True)
class Analysis:
    """One bar's indicators (and, once it closed, the patterns that fired on it)."""

    bar: Bar
    periods: Periods
    indicators: dict[str, Any]
    patterns: list[dict[str, Any]] | None
    """On a closed bar: the patterns that fired (None until TA-Lib's patterns are warm); on the forming bar:
    those of the last closed bar."""
    risk: RiskMetrics | None = None
    """The feed's risk up to the last closed bar (None: the book measures no risk)."""


def analysis_topic(feed_id: FeedId, interval: Interval, periods: Periods, final: bool = False) -> Topic:
    parts = [feed_id, interval.label, *([periods.key] if periods.key else []), *([FINAL] if final else [])]
    return derived_topic(ANALYSIS, *parts)


class _Watched:
    __slots__ = ("final_topic", "forming_topic", "indicators")

    def __init__(self, feed_id: FeedId, interval: Interval, periods: Periods, day_of: Callable[[int], int]) -> None:
        self.indicators = IndicatorSeries(periods, day_of)
        self.forming_topic = analysis_topic(feed_id, interval, periods)
        self.final_topic = analysis_topic(feed_id, interval, periods, final=True)


class AnalysisBook:
    def __init__(self, hub: Hub, candles: CandleBook, risk: RiskBook | None = None) -> None:
        self.hub = hub
        self.candles = candles
        self.risk = risk
        self._watched: dict[tuple[FeedId, int], dict[Periods, _Watched]] = {}
        self.computations = 0
        """Bars analysed (closed and forming): per tick, one per watched series, not one per client."""
        candles.observers.append(self._on_bars)

    def watch(self, feed_id: FeedId, interval: Interval, periods: Periods) -> tuple[Topic, Topic]:
        """Compute this series from now on (warmed up from the kept candles); its forming and final topics,
        whose latest items are in the hub's ``latest_events`` at once."""
        by_periods = self._watched.setdefault((feed_id, interval.us), {})
        watched = by_periods.get(periods)
        if watched is None:
            day_of = self.candles.day_of
            watched = by_periods[periods] = _Watched(feed_id, interval, periods,
                                                     lambda start_us: day_of(feed_id, start_us))
            risk = None if self.risk is None else self.risk.watch(feed_id, interval)
            self._warm_up(feed_id, interval, watched, risk)
        return watched.forming_topic, watched.final_topic

    def _warm_up(self, feed_id: FeedId, interval: Interval, watched: _Watched, risk: RiskMetrics | None) -> None:
        series = next((s for s in self.candles.series.get(feed_id, ()) if s.interval.us == interval.us), None)
        if series is None:
            return
        latest = self.hub.latest_events
        for bar in series.finals:
            latest[watched.final_topic] = self._close(watched, bar, risk)
        if series.forming is not None:
            latest[watched.forming_topic] = self._peek(watched, series.forming, risk)

    def _close(self, watched: _Watched, bar: Bar, risk: RiskMetrics | None) -> Analysis:
        self.computations += 1
        indicators = watched.indicators.close(bar)
        return Analysis(bar, watched.indicators.periods, indicators, watched.indicators.patterns, risk)

    def _peek(self, watched: _Watched, bar: Bar, risk: RiskMetrics | None) -> Analysis:
        self.computations += 1
        return Analysis(bar, watched.indicators.periods, watched.indicators.peek(bar), watched.indicators.patterns,
                        risk)

    def _on_bars(self, closed: list[tuple[Series, Bar]], forming: dict[Topic, Bar]) -> None:
        """The candle book's closed and changed bars: analyse those of watched series, and stop the unwatched."""
        if not self._watched:
            return
        has_subscribers, publish, risk = self.hub.has_subscribers, self.hub.publish_event, self.risk
        if risk is not None:
            for _, bar in closed:  # the benchmark's bars of this pass first: its returns pair with the others'
                risk.benchmark_closed(bar)
        for _, bar in closed:
            watching = self._series_of(bar)
            if watching:
                metrics = None if risk is None else risk.closed(bar)
                for watched in watching:
                    publish(watched.final_topic, self._close(watched, bar, metrics), every=True)
        for bar in forming.values():
            watching = self._series_of(bar)
            metrics = None if risk is None or not watching else risk.metrics(bar.feed_id, bar.interval)
            for watched in watching:
                if has_subscribers(watched.forming_topic):
                    publish(watched.forming_topic, self._peek(watched, bar, metrics))

    def _series_of(self, bar: Bar) -> list[_Watched]:
        key = (bar.feed_id, bar.interval.us)
        by_periods = self._watched.get(key)
        if by_periods is None:
            return []
        has_subscribers = self.hub.has_subscribers
        for periods, watched in list(by_periods.items()):
            if not has_subscribers(watched.forming_topic) and not has_subscribers(watched.final_topic):
                del by_periods[periods]
                self.hub.latest_events.pop(watched.forming_topic, None)
                self.hub.latest_events.pop(watched.final_topic, None)
        if not by_periods:
            del self._watched[key]
            if self.risk is not None:
                self.risk.forget(bar.feed_id, bar.interval)
        return list(by_periods.values())

    def status(self) -> dict[str, object]:
        status: dict[str, object] = {"series": sum(map(len, self._watched.values())),
                                     "computations": self.computations}
        if self.risk is not None:
            status["risk"] = self.risk.status()
        return status
