"""Derived data computed once per topic by hub listeners: trading days (market data), candles, and
technical analysis on the candles."""

from __future__ import annotations

from dataclasses import dataclass

from .analysis import AnalysisBook
from .candles import CandleBook
from .days import DayClock
from .market import MarketDays


@dataclass(frozen=True, slots=True)
class Analytics:
    """What faces read of the derived data: the day clock, each feed's trading day, the candles, and
    the indicators and patterns of the watched series."""

    clock: DayClock
    days: MarketDays
    candles: CandleBook
    analysis: AnalysisBook
