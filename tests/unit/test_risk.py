"""Risk metrics from known closes: values checked by hand and recomputed here independently (statistics, numpy),
annualised by the market's calendar, null until the window is full; measured once per closed bar however
many series watch it; every closed bar's analysis reaches a subscriber even when two close in one pass."""

from __future__ import annotations

import math
import statistics
from itertools import pairwise

import numpy as np
import orjson
import pytest

from pricefeed.analytics.analysis import AnalysisBook, analysis_topic
from pricefeed.analytics.candles import Bar, CandleBook, Interval, parse_interval
from pricefeed.analytics.days import DayClock
from pricefeed.analytics.indicators import Periods
from pricefeed.analytics.risk import Calendar, Closes, RiskBook, measure
from pricefeed.contracts import Codec
from pricefeed.faces.streams.codecs import AnalysisCodec, StreamCodecs
from pricefeed.faces.streams.symbols import SymbolIndex
from pricefeed.model import Feed, PriceUpdate
from pricefeed.pipeline import Pipeline, local_pipeline
from pricefeed.schedule import parse_schedule
from pricefeed.sources.exchange import NSE_SCHEDULE

from .test_candles import settle

D1, M1, S1 = parse_interval("1d"), parse_interval("1m"), parse_interval("1s")
CRYPTO = Calendar.of(parse_schedule("America/New_York;O,O,O,O,O,O,O;"))
T0 = 1_764_720_000_000_000  # 2025-12-03 00:00:00 UTC
S = 1_000_000


def closes_of(prices: list[float], interval: Interval = D1, keep: int = 1000) -> Closes:
    closes = Closes(keep)
    for i, price in enumerate(prices):
        cents = round(price * 100)
        closes.add(Bar("f", interval, T0 + i * interval.us, -2, cents, cents, cents, cents, None, 1, None,
                       T0 + i * interval.us, final=True))
    return closes


def test_calendars_of_crypto_and_nse() -> None:
    assert Calendar.of(parse_schedule("America/New_York;O,O,O,O,O,O,O;")) == Calendar(365, 86_400.0)
    nse = Calendar.of(parse_schedule(NSE_SCHEDULE))
    assert nse == Calendar(252, 22_500.0)  # 09:15-15:30 is 6 h 15 min
    assert (nse.bars_per_day(M1.us), nse.bars_per_year(M1.us)) == (375.0, 375.0 * 252)
    assert (CRYPTO.bars_per_day(M1.us), CRYPTO.bars_per_year(M1.us)) == (1440.0, 1440.0 * 365)
    assert nse.bars_per_day(D1.us) == CRYPTO.bars_per_day(D1.us) == 1.0  # a daily bar is the whole session


def test_a_hand_checked_series_of_daily_closes() -> None:
    prices = [100.0, 102.0, 99.0, 101.0, 98.0, 103.0]
    metrics = measure(closes_of(prices), 5, CRYPTO, D1.us, None, None)
    # Drawdown: the peak 102 falls to 98: 4/102. VaR with 5 returns: the tail is ceil(0.25) = 1 return, the
    # worst, 101 -> 98: -3/101; ES is the mean of that one.
    assert metrics.max_drawdown == pytest.approx(4 / 102, rel=1e-15)
    assert metrics.var_95 == pytest.approx(3 / 101, rel=1e-15)
    assert metrics.expected_shortfall_95 == pytest.approx(3 / 101, rel=1e-15)
    logs = [math.log(b / a) for a, b in pairwise(prices)]
    assert metrics.volatility == pytest.approx(statistics.stdev(logs) * math.sqrt(365), rel=1e-12)
    assert metrics.beta is None and metrics.benchmark is None and metrics.returns == 5


def test_forty_one_minute_returns_on_nse_scaled_to_a_day_and_a_year() -> None:
    rng = np.random.default_rng(7)
    prices = list(np.round(1420 * np.exp(np.cumsum(rng.normal(0, 0.002, 41))), 2))
    nse = Calendar.of(parse_schedule(NSE_SCHEDULE))
    metrics = measure(closes_of(prices, M1), 40, nse, M1.us, None, None)
    p = np.array(prices)
    simple = np.sort(p[1:] / p[:-1] - 1)
    # 40 returns: the 5 % tail is exactly 2 of them (not 3, as 0.05 * 40 in floating point would round up).
    assert metrics.var_95 == pytest.approx(-simple[1] * math.sqrt(375), rel=1e-12)
    assert metrics.expected_shortfall_95 == pytest.approx(-(simple[0] + simple[1]) / 2 * math.sqrt(375), rel=1e-12)
    assert metrics.volatility == pytest.approx(np.std(np.diff(np.log(p)), ddof=1) * math.sqrt(375 * 252), rel=1e-12)
    running_peak = np.maximum.accumulate(p)
    assert metrics.max_drawdown == pytest.approx(max((running_peak - p) / running_peak), rel=1e-12)


def test_every_metric_is_null_until_the_window_is_full() -> None:
    metrics = measure(closes_of([100.0, 101.0, 102.0, 101.5, 100.0]), 5, CRYPTO, D1.us, closes_of([1, 2, 3]), "B")
    assert metrics.fields() == {"window": 5, "returns": 4, "volatility": None, "max_drawdown": None, "var_95": None,
                                "expected_shortfall_95": None, "beta": None, "benchmark": "B", "confidence": 0.95}


def test_beta_against_a_benchmark() -> None:
    benchmark = [100.0, 101.0, 99.5, 102.0, 101.0, 104.0, 103.0]
    twice = [b * b / 100 for b in benchmark]  # log returns exactly twice the benchmark's: beta 2
    assert measure(closes_of(twice), 6, CRYPTO, D1.us, closes_of(benchmark), "B").beta == pytest.approx(2.0, rel=1e-3)
    other = [50.0, 50.5, 50.2, 51.0, 50.1, 50.9, 51.3]
    got = measure(closes_of(other), 6, CRYPTO, D1.us, closes_of(benchmark), "B").beta
    a, b = np.diff(np.log(other)), np.diff(np.log(benchmark))
    assert got == pytest.approx(np.cov(a, b)[0, 1] / np.var(b, ddof=1), rel=1e-12)
    # A benchmark without a bar at one of the feed's bar starts: no beta rather than one from fewer returns.
    assert measure(closes_of(other), 6, CRYPTO, D1.us, closes_of(benchmark[:-1]), "B").beta is None


FEED, BENCH = "ab" * 32, "cd" * 32


def setup(window: int, benchmark: str | None = None) -> tuple[Pipeline, AnalysisBook, RiskBook]:
    pipeline = local_pipeline()
    always = {"schedule": "America/New_York;O,O,O,O,O,O,O;"}
    pipeline.ingest.add_feeds([Feed(FEED, "Crypto.AAA/USD", -2, "test", {**always, "display_symbol": "AAA/USD"}),
                               Feed(BENCH, "Crypto.BBB/USD", -2, "test", {**always, "display_symbol": "BBB/USD"})])
    clock = DayClock(pipeline.hub.feeds)
    candles = CandleBook(pipeline.hub, (S1,), history=100, grace_s=2.0, day_of=clock.day_of, clock=lambda: T0 / S)
    pipeline.hub.add_listener(candles.add)
    risk = RiskBook(candles, clock.schedule, pipeline.hub.feeds, window, benchmark)
    return pipeline, AnalysisBook(pipeline.hub, candles, risk), risk


class Recorder:
    """A subscriber of the analysis topics that keeps every frame, as /ws/analysis encodes it."""

    def __init__(self, codec: AnalysisCodec) -> None:
        self.codec: Codec = codec
        self.got: list[dict[str, object]] = []

    def deliver(self, frames: dict[str, bytes]) -> None:
        self.got += [orjson.loads(frame)["data"] for frame in frames.values()]


def tick(feed_id: str, second: int, price: int) -> PriceUpdate:
    return PriceUpdate(feed_id, price, 0, -2, T0 + second * S, price, 0)


async def test_two_bars_closed_in_one_pass_each_reach_the_subscriber_with_the_risk_up_to_it() -> None:
    pipeline, analysis, risk = setup(window=2, benchmark="bbb/usd")
    codec = StreamCodecs(SymbolIndex(pipeline.hub.feeds), None).analysis
    final = analysis.watch(FEED, S1, Periods())[1]
    recorder = Recorder(codec)
    pipeline.hub.subscribe(final, recorder)
    # One pass: four seconds of both feeds, so three bars of each close at once.
    prices = [10000, 10100, 9900, 10200]
    pipeline.ingest.publish_many([u for s, p in enumerate(prices)
                                  for u in (tick(FEED, s, p), tick(BENCH, s, 5000 + s * 10))])
    for _ in range(4):
        await settle()
    assert [d["bar"]["close"] for d in recorder.got] == [100.0, 101.0, 99.0]  # type: ignore[index]
    windows = [d["risk_metrics"] for d in recorder.got]
    assert [w["returns"] for w in windows] == [0, 1, 2]  # type: ignore[index]
    assert [w["volatility"] is None for w in windows] == [True, True, False]  # type: ignore[index]
    p, b = np.array([100.0, 101.0, 99.0]), np.array([50.0, 50.1, 50.2])
    assert windows[2]["max_drawdown"] == pytest.approx(2 / 101, rel=1e-12)  # type: ignore[index]
    assert windows[2]["benchmark"] == "BBB/USD"  # type: ignore[index]
    beta = np.cov(np.diff(np.log(p)), np.diff(np.log(b)))[0, 1] / np.var(np.diff(np.log(b)), ddof=1)
    assert windows[2]["beta"] == pytest.approx(beta, rel=1e-9)  # type: ignore[index]
    assert risk.computations == 1 + 3  # the warm-up (nothing yet), then once per closed bar
    assert pipeline.hub.latest_events[final] is not None


async def test_risk_is_measured_once_per_closed_bar_however_many_series_watch_the_feed() -> None:
    pipeline, analysis, risk = setup(window=3)
    codec = StreamCodecs(SymbolIndex(pipeline.hub.feeds), None).analysis
    recorders = []
    for periods in (Periods(), Periods(rsi=5), Periods(sma=3)):
        recorder = Recorder(codec)
        pipeline.hub.subscribe(analysis.watch(FEED, S1, periods)[1], recorder)
        recorders.append(recorder)
    for second in range(6):
        pipeline.ingest.publish(tick(FEED, second, 10000 + second * (-1) ** second * 7))
        await settle()
    assert risk.computations == 1 + 5  # five bars closed; three series of indicators
    assert analysis.status()["computations"] == 3 * 5  # each series' five closes (nobody watches forming bars)
    assert [len(r.got) for r in recorders] == [5, 5, 5]
    assert recorders[0].got[-1]["risk_metrics"] == recorders[1].got[-1]["risk_metrics"]
    assert recorders[0].got[-1]["risk_metrics"]["volatility"] is not None  # type: ignore[index]
    assert analysis_topic(FEED, S1, Periods(), final=True) in pipeline.hub.subscribed_topics()
