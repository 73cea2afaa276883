"""Risk metrics of one feed's closed candles: realised volatility, maximum drawdown, one-day historical VaR and
expected shortfall at 95 %, and beta against a benchmark feed.

Which returns: those between consecutive closed bars of the interval a
/ws/analysis subscription analyses (``1m`` by default), over the last
``window`` of them. Daily bars would need months of history before a first
value and are not kept by default; the closed bars of the analysed interval
are what the service has (warmed from the stored candles at once), and they
are the bars the indicators next to them read. A return spans from one
closed bar to the next, so a market's overnight or weekend gap is one return,
as on an exchange's chart.

- ``volatility``: the sample standard deviation (n - 1) of the log returns,
  annualised by the square root of the bars in a year of the feed's market:
  an always-open market (crypto) trades 365 days of 24 hours; a market closed
  on some days (NSE equities, 09:15-15:30 IST Monday to Friday) trades 252
  sessions a year (the usual count: exchange holidays are not in the
  schedule) of its session's length, so a 1m bar of RELIANCE is one of
  375 x 252 a year, one of BTC/USD one of 1440 x 365.
- ``max_drawdown``: the largest fall from a running peak of the window's
  closes, as a fraction of that peak (0 when it only rose).
- ``var_95`` and ``expected_shortfall_95``: historical, on the simple
  returns: of the ``n`` returns the ``k = ceil(0.05 n)`` worst are the tail;
  VaR is the loss of the k-th worst, ES the mean loss of the k worst. Scaled
  from one bar to one trading day by the square root of the bars in a day
  (the square-root-of-time rule, which assumes independent returns): a day
  of bars would need a window of 375 to 1440 bars to be measured directly.
  Both are positive fractions of the position's value (0.021: 2.1 %).
- ``beta``: ``cov(r, r_b) / var(r_b)`` (sample, n - 1) of the log returns of
  the feed and of the benchmark over the same spans: the benchmark's return
  from the close of its bar that started with the feed's previous bar to
  that of its bar that started with the feed's bar (so an NSE stock's
  overnight return meets the crypto benchmark's overnight move), when a
  benchmark is configured (``--risk-benchmark``) and it has a bar at each of
  those starts; ``None`` otherwise.

A metric is ``None`` until its window is full: never a number from too few
returns.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import time

import numpy as np

from ..model import Feed, FeedId
from ..schedule import MarketSchedule
from .candles import Bar, CandleBook, Interval

CONFIDENCE = 0.95
ALWAYS_OPEN_DAYS = 365
"""Trading days a year of a market open every day (crypto)."""
EXCHANGE_DAYS = 252
"""Trading days a year of a market open five days a week (the usual count, exchange holidays taken out)."""
_DAY_S = 86_400.0
BENCHMARK_KEEP = 4096
"""Closes of the benchmark kept per interval: enough to pair a window of a stock's bars across its nights."""


def _seconds(t: time) -> float:
    return t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6


def _open_seconds(ranges: Iterable[tuple[time, time]]) -> float:
    """A day's open seconds; a range to the end of the day (23:59:59.999999) counts to midnight."""
    total = 0.0
    for start, end in ranges:
        end_s = _DAY_S if end >= time(23, 59, 59) else _seconds(end)
        total += max(0.0, end_s - _seconds(start))
    return total


@dataclass(frozen=True, slots=True)
class Calendar:
    """A market's trading year, as the annualisation and the one-day scaling read it."""

    days_per_year: float
    session_s: float
    """Seconds of a trading day (86 400 for an always-open market)."""

    @classmethod
    def of(cls, schedule: MarketSchedule) -> Calendar:
        open_days = [s for s in (_open_seconds(day) for day in schedule.week) if s > 0]
        if not open_days:
            return cls(ALWAYS_OPEN_DAYS, _DAY_S)
        days = ALWAYS_OPEN_DAYS if len(open_days) == 7 else EXCHANGE_DAYS * len(open_days) / 5
        return cls(days, sum(open_days) / len(open_days))

    def bars_per_day(self, interval_us: int) -> float:
        """Bars of ``interval_us`` in a trading day (at least one: a daily bar covers the whole session)."""
        return max(1.0, self.session_s * 1_000_000 / interval_us)

    def bars_per_year(self, interval_us: int) -> float:
        return self.bars_per_day(interval_us) * self.days_per_year


@dataclass(frozen=True, slots=True)
class RiskMetrics:
    """One feed's risk over the last ``window`` returns of its closed bars at one interval (None: not enough)."""

    window: int
    returns: int
    """Returns available (up to ``window``)."""
    volatility: float | None
    max_drawdown: float | None
    var_95: float | None
    expected_shortfall_95: float | None
    beta: float | None
    benchmark: str | None
    """The benchmark's symbol, when one is configured."""

    def fields(self) -> dict[str, object]:
        return {"window": self.window, "returns": self.returns, "volatility": self.volatility,
                "max_drawdown": self.max_drawdown, "var_95": self.var_95,
                "expected_shortfall_95": self.expected_shortfall_95, "beta": self.beta,
                "benchmark": self.benchmark, "confidence": CONFIDENCE}


def log_returns(closes: np.ndarray) -> np.ndarray:
    return np.diff(np.log(closes))


def volatility(closes: np.ndarray, bars_per_year: float) -> float:
    return float(np.std(log_returns(closes), ddof=1) * math.sqrt(bars_per_year))


def max_drawdown(closes: np.ndarray) -> float:
    peaks = np.maximum.accumulate(closes)
    return float(np.max((peaks - closes) / peaks))


def var_and_es(closes: np.ndarray, bars_per_day: float) -> tuple[float, float]:
    """Historical VaR and expected shortfall at 95 % of the simple returns, scaled to one day."""
    returns = np.sort(closes[1:] / closes[:-1] - 1.0)
    tail = math.ceil((1 - CONFIDENCE) * len(returns) - 1e-9)
    scale = math.sqrt(bars_per_day)
    return float(-returns[tail - 1] * scale), float(-np.mean(returns[:tail]) * scale)


def beta(returns: np.ndarray, benchmark: np.ndarray) -> float | None:
    variance = float(np.var(benchmark, ddof=1))
    if variance == 0:
        return None
    return float(np.cov(returns, benchmark, ddof=1)[0, 1] / variance)


class Closes:
    """The last closes of a feed at one interval, by the start of their bar."""

    __slots__ = ("by_start", "starts")

    def __init__(self, keep: int) -> None:
        self.starts: deque[int] = deque(maxlen=keep)
        self.by_start: dict[int, float] = {}

    def add(self, bar: Bar) -> bool:
        """Keep a closed bar's close; False for one already kept (the warm-up and a live close of one bar)."""
        starts = self.starts
        if starts and bar.start_us <= starts[-1]:
            return False
        if len(starts) == starts.maxlen:
            del self.by_start[starts[0]]
        starts.append(bar.start_us)
        self.by_start[bar.start_us] = bar.close * 10.0 ** bar.expo
        return True

    def last(self, count: int) -> tuple[list[int], np.ndarray]:
        starts = list(self.starts)[-count:]
        return starts, np.array([self.by_start[s] for s in starts], dtype=np.float64)


def paired_returns(starts: list[int], benchmark: Closes) -> np.ndarray | None:
    """The benchmark's log returns over the same spans as the feed's (None unless it has every one)."""
    closes = [benchmark.by_start.get(s) for s in starts]
    if any(c is None or c <= 0 for c in closes):
        return None
    return log_returns(np.array(closes, dtype=np.float64))


def measure(closes: Closes, window: int, calendar: Calendar, interval_us: int, benchmark: Closes | None,
            benchmark_symbol: str | None) -> RiskMetrics:
    """The metrics of the last ``window`` returns of a feed's kept closes (and its benchmark's, if any)."""
    starts, prices = closes.last(window + 1)
    count = max(0, len(prices) - 1)
    if count < window or np.any(prices <= 0):
        return RiskMetrics(window, count, None, None, None, None, None, benchmark_symbol)
    var, es = var_and_es(prices, calendar.bars_per_day(interval_us))
    found_beta = None
    if benchmark is not None:
        theirs = paired_returns(starts, benchmark)
        if theirs is not None:
            found_beta = beta(log_returns(prices), theirs)
    return RiskMetrics(window, count, volatility(prices, calendar.bars_per_year(interval_us)),
                       max_drawdown(prices), var, es, found_beta, benchmark_symbol)


def find_feed(feeds: Mapping[FeedId, Feed], name: str) -> Feed | None:
    """The feed a configured name means: its id, Pyth symbol (``Crypto.BTC/USD``), display symbol (``BTC/USD``)
    or exchange trading symbol (``RELIANCE``), in any case."""
    wanted = name.strip().upper()
    for feed in feeds.values():
        names = (feed.id.upper(), feed.symbol.upper(), feed.attributes.get("display_symbol", "").upper(),
                 feed.attributes.get("trading_symbol", "").upper())
        if wanted in names:
            return feed
    return None


class _Watched:
    __slots__ = ("closes", "metrics")

    def __init__(self, keep: int) -> None:
        self.closes = Closes(keep)
        self.metrics: RiskMetrics | None = None


class RiskBook:
    """The risk of each watched feed and interval, measured once per closed bar however many clients watch it.

    Driven by the analysis book (``watch``, ``closed``, ``forget``), so its metrics travel in the same
    /ws/analysis messages as the indicators.
    """

    def __init__(self, candles: CandleBook, schedule_of: Callable[[FeedId], MarketSchedule],
                 feeds: Mapping[FeedId, Feed], window: int = 60, benchmark: str | None = None) -> None:
        self.candles = candles
        self.schedule_of = schedule_of
        self.feeds = feeds
        self.window = window
        self.benchmark_name = benchmark
        self._benchmark: Feed | None = None
        self._watched: dict[tuple[FeedId, int], _Watched] = {}
        self._benchmark_closes: dict[int, Closes] = {}
        """Per interval watched: the benchmark's closes (longer than a window: a stock's window spans nights)."""
        self._calendars: dict[FeedId, Calendar] = {}
        self.computations = 0
        """Metrics measured: one per watched feed and interval per closed bar, not one per client."""

    @property
    def benchmark(self) -> Feed | None:
        if self._benchmark is None and self.benchmark_name is not None:
            self._benchmark = find_feed(self.feeds, self.benchmark_name)
        return self._benchmark

    def watch(self, feed_id: FeedId, interval: Interval) -> RiskMetrics:
        """Measure this feed at this interval from now on, warmed up from the kept candles; its metrics now."""
        key = (feed_id, interval.us)
        watched = self._watched.get(key)
        if watched is None:
            watched = self._watched[key] = _Watched(self.window + 1)
            for bar in self._kept(feed_id, interval):
                watched.closes.add(bar)
            watched.metrics = self._measure(feed_id, interval, watched)
        assert watched.metrics is not None
        return watched.metrics

    def _kept(self, feed_id: FeedId, interval: Interval) -> list[Bar]:
        finals, _ = self.candles.recent(feed_id, interval)
        return finals

    def forget(self, feed_id: FeedId, interval: Interval) -> None:
        """Nobody watches this feed at this interval any more."""
        self._watched.pop((feed_id, interval.us), None)
        if not any(us == interval.us for _, us in self._watched):
            self._benchmark_closes.pop(interval.us, None)

    def benchmark_closed(self, bar: Bar) -> None:
        """A closed bar of any feed: kept when it is the benchmark's (call before ``closed`` of the same pass)."""
        benchmark = self.benchmark
        if benchmark is not None and bar.feed_id == benchmark.id:
            closes = self._benchmark_closes.get(bar.interval.us)
            if closes is not None:
                closes.add(bar)

    def closed(self, bar: Bar) -> RiskMetrics | None:
        """A watched series' closed bar: the metrics up to it (None if nobody watches the series)."""
        watched = self._watched.get((bar.feed_id, bar.interval.us))
        if watched is None:
            return None
        if watched.closes.add(bar):
            watched.metrics = self._measure(bar.feed_id, bar.interval, watched)
        return watched.metrics

    def metrics(self, feed_id: FeedId, interval: Interval) -> RiskMetrics | None:
        watched = self._watched.get((feed_id, interval.us))
        return None if watched is None else watched.metrics

    def _benchmark_series(self, interval: Interval) -> Closes | None:
        """The benchmark's closes at this interval, warmed from the kept candles when first needed."""
        benchmark = self.benchmark
        if benchmark is None:
            return None
        closes = self._benchmark_closes.get(interval.us)
        if closes is None:
            closes = self._benchmark_closes[interval.us] = Closes(BENCHMARK_KEEP)
            for bar in self._kept(benchmark.id, interval):
                closes.add(bar)
        return closes

    def _measure(self, feed_id: FeedId, interval: Interval, watched: _Watched) -> RiskMetrics:
        self.computations += 1
        calendar = self._calendars.get(feed_id)
        if calendar is None:
            calendar = self._calendars[feed_id] = Calendar.of(self.schedule_of(feed_id))
        benchmark = self._benchmark_series(interval)
        name = self.benchmark_name if self.benchmark is None else self.benchmark.attributes.get(
            "display_symbol", self.benchmark.symbol)
        return measure(watched.closes, self.window, calendar, interval.us, benchmark, name)

    def status(self) -> dict[str, object]:
        return {"series": len(self._watched), "computations": self.computations, "window": self.window,
                "benchmark": None if self.benchmark is None else self.benchmark.symbol}
