"""Derived data computed once per topic by hub listeners: trading days (market data) and candles."""

from __future__ import annotations

from dataclasses import dataclass

from .candles import CandleBook
from .days import DayClock
from .market import MarketDays


@dataclass(frozen=True, slots=True)
class Analytics:
    """What faces read of the derived data: the day clock, each feed's trading day, and the candles."""

    clock: DayClock
    days: MarketDays
    candles: CandleBook
