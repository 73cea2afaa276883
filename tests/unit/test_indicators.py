"""Golden test: a recorded 1-minute candle series through the streaming path gives exactly TA-Lib's batch output
for every indicator and pattern, on every bar, forming and closed."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pricefeed.analytics.candles import Bar, Interval
from pricefeed.analytics.indicators import IndicatorSeries, Periods

from ..talib_batch import DAY_US, batch, batch_patterns

M1 = Interval("1m", 60_000_000)
SERIES = Path(__file__).parent.parent / "data" / "analytics" / "candles_1m_expo-2.csv"


def recorded(volume: bool = True) -> list[Bar]:
    with SERIES.open() as file:
        return [Bar("feed", M1, int(r["start_us"]), -2, int(r["open"]), int(r["high"]), int(r["low"]), int(r["close"]),
                    int(r["volume"]) if volume else None, 1, None, int(r["start_us"]), final=True)
                for r in csv.DictReader(file)]


def forming_states(bar: Bar) -> list[Bar]:
    """The bar as it forms: its first tick (the open), half-way, and complete but not yet closed."""
    half = (bar.open + bar.close) // 2
    return [Bar("feed", M1, bar.start_us, -2, bar.open, bar.open, bar.open, bar.open, 1 if bar.volume else None, 1,
                None, bar.start_us),
            Bar("feed", M1, bar.start_us, -2, bar.open, max(bar.open, half), min(bar.open, half), half,
                None if bar.volume is None else bar.volume // 2, 2, None, bar.start_us),
            Bar("feed", M1, bar.start_us, -2, bar.open, bar.high, bar.low, bar.close, bar.volume, 3, None,
                bar.start_us)]


@pytest.mark.parametrize("periods", [Periods(), Periods(sma=5, ema=9, rsi=7, macd_fast=5, macd_slow=13,
                                                        macd_signal=4, bollinger=10, bollinger_deviations=1.5,
                                                        atr=5, stochastic_k=9, adx=7)], ids=["default", "custom"])
def test_streaming_equals_batch_on_every_bar_forming_and_closed(periods: Periods) -> None:
    bars = recorded()
    series = IndicatorSeries(periods, lambda start_us: start_us // DAY_US)
    seen: list[Bar] = []
    nulls_then_values: set[str] = set()
    for bar in bars:
        for forming in forming_states(bar):
            assert series.peek(forming) == batch([*seen, forming], periods), f"forming bar {len(seen)}"
            assert series.peek_patterns(forming) == batch_patterns([*seen, forming]), f"forming bar {len(seen)}"
        seen.append(bar)
        got = series.close(bar)
        assert got == batch(seen, periods), f"closed bar {len(seen) - 1}"
        assert series.pattern_values == batch_patterns(seen), f"closed bar {len(seen) - 1}"
        nulls_then_values |= {k for k, v in got.items() if v is not None and not isinstance(v, dict)}
    # Every indicator became warm within the series; the series crosses a session for VWAP.
    assert nulls_then_values == {"sma", "ema", "rsi", "atr", "adx", "obv", "vwap"}
    assert len({b.start_us // DAY_US for b in bars}) == 2


def test_values_are_null_until_warm_up_and_patterns_report_direction() -> None:
    bars = recorded()
    series = IndicatorSeries(Periods(), lambda start_us: start_us // DAY_US)
    firsts: dict[str, int] = {}
    fired = 0
    for index, bar in enumerate(bars):
        values = series.close(bar)
        for key, value in values.items():
            warm = value is not None and (not isinstance(value, dict) or None not in value.values())
            if warm:
                firsts.setdefault(key, index)
        for pattern in series.patterns or ():
            fired += 1
            assert pattern["signal"] == ("bullish" if pattern["strength"] > 0 else "bearish")
            assert series.pattern_values[pattern["pattern"]] == pattern["strength"]
    assert firsts == {"sma": 19, "ema": 19, "rsi": 14, "macd": 33, "bollinger_bands": 19, "atr": 14,
                      "stochastic": 17, "adx": 27, "obv": 0, "vwap": 0}
    assert fired > 0


def test_a_series_without_volume_has_no_obv_or_vwap() -> None:
    series = IndicatorSeries(Periods(), lambda start_us: start_us // DAY_US)
    values = [series.close(bar) for bar in recorded(volume=False)]
    assert all(v["obv"] is None and v["vwap"] is None for v in values)
    assert values[-1]["rsi"] is not None


def test_bad_periods_say_what_is_wrong() -> None:
    assert Periods.parse({"rsi": 7}).rsi == 7
    assert Periods.parse({"rsi": 7}).key == "rsi=7"
    with pytest.raises(ValueError, match="unknown period 'rsx'"):
        Periods.parse({"rsx": 7})
    with pytest.raises(ValueError, match="'rsi' must be an integer from 2 to 1000, got 1"):
        Periods.parse({"rsi": 1})
    with pytest.raises(ValueError, match="must be an object"):
        Periods.parse([14])
