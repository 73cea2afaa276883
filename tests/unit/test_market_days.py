"""Market days: the day's open, high, low and volume, and what ``change`` counts from."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from zoneinfo import ZoneInfo

from pricefeed.analytics.days import DayClock
from pricefeed.analytics.market import MarketDays
from pricefeed.model import Feed, PriceUpdate, Quote
from pricefeed.pipeline import local_pipeline

FEED = "cd" * 32
IST = ZoneInfo("Asia/Kolkata")


def at(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=IST).timestamp() * 1_000_000)


def update(when: str, price: int, volume: int | None = None, quote: Quote | None = None) -> PriceUpdate:
    return PriceUpdate(FEED, price, 0, -2, at(when), price, 0, volume=volume, quote=quote)


def days() -> MarketDays:
    hub = local_pipeline().hub
    hub.add_feeds([Feed(FEED, "Equity.NSE.X/INR", -2, "test", {"schedule": "Asia/Kolkata;O,O,O,O,O,O,O;"})])
    return MarketDays(hub, DayClock(hub.feeds))


async def test_change_counts_from_the_first_price_then_from_the_previous_days_last() -> None:
    market = days()
    first = update("2026-12-07 09:15", 10000, volume=10)
    assert market.change(first) == (0, 10000)  # a feed's first price: no change yet
    market.add([first])
    later = update("2026-12-07 15:00", 10300, volume=900)
    assert market.change(later) == (300, 10000)  # since the day's first price: no close known yet
    market.add([later, update("2026-12-07 15:29", 10250, volume=1000)])
    stats = market.stats[FEED]
    assert (stats.open, stats.high, stats.low, stats.close, stats.volume) == (10000, 10300, 10000, 10250, 1000)
    next_day = update("2026-12-08 09:15", 10400, volume=5)
    assert market.change(next_day) == (150, 10250)  # before the listener has seen it
    market.add([next_day])
    assert market.change(next_day) == (150, 10250)  # and after
    stats = market.stats[FEED]
    assert (stats.open, stats.previous_close, stats.volume) == (10400, 10250, 5)
    assert stats.day == date(2026, 12, 8).toordinal()  # the IST date
    await asyncio.sleep(0)


async def test_an_exchanges_own_figures_win() -> None:
    market = days()
    quote = Quote(open=9900, high=10500, low=9800, previous_close=9950)
    tick = update("2026-12-07 11:00", 10100, volume=50_000, quote=quote)
    assert market.change(tick) == (150, 9950)
    market.add([tick])
    stats = market.stats[FEED]
    assert (stats.open, stats.high, stats.low, stats.previous_close, stats.close) == (9900, 10500, 9800, 9950, 10100)
    await asyncio.sleep(0)
