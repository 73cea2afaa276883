"""Feeds of exchange-traded instruments (NSE and BSE equities and indices), as Kite and the simulated
market make them: a trading symbol, rupees, the exchange's session, and no confidence interval."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from ..model import CONFIDENCE, Feed
from ..schedule import MarketSchedule

NSE_SCHEDULE = "Asia/Kolkata;0915-1530,0915-1530,0915-1530,0915-1530,0915-1530,C,C;"
"""NSE's (and BSE's) normal market, Monday to Friday 09:15-15:30 IST, in Pyth's ``schedule`` format
(exchange holidays are not listed)."""
ALWAYS_OPEN_IST = "Asia/Kolkata;O,O,O,O,O,O,O;"


def exchange_feed_id(namespace: str, exchange: str, trading_symbol: str) -> str:
    """A stable 64-hex feed id for an instrument (Kite's instrument tokens change when contracts roll)."""
    return hashlib.sha256(f"{namespace}:{exchange.upper()}:{trading_symbol.upper()}".encode()).hexdigest()


def exchange_feed(feed_id: str, *, exchange: str, trading_symbol: str, name: str, expo: int, source: str,
                  asset_type: str = "Equity", currency: str = "INR", schedule: str = NSE_SCHEDULE,
                  simulated: bool = False, extra: dict[str, str] | None = None) -> Feed:
    """A feed of ``EXCHANGE:TRADING_SYMBOL``; its symbol is ``<asset type>.<exchange>.<symbol>/<currency>``."""
    description = f"{name.upper()} / INDIAN RUPEE" if currency == "INR" else f"{name.upper()} / {currency}"
    attributes = {
        "asset_type": asset_type, "base": trading_symbol, "confidence": "none", "country": "IN",
        "description": ("SIMULATED " if simulated else "") + description,
        "display_symbol": f"{trading_symbol}/{currency}", "exchange": exchange,
        "generic_symbol": f"{trading_symbol}{currency}".replace(" ", ""), "quote_currency": currency,
        "schedule": schedule, "symbol": f"{asset_type.replace(' ', '')}.{exchange}.{trading_symbol}/{currency}",
        "trading_symbol": trading_symbol, **(extra or {}),
    }
    assert attributes[CONFIDENCE] == "none"
    if simulated:
        attributes["simulated"] = "true"
    return Feed(feed_id, attributes["symbol"], expo, source, dict(sorted(attributes.items())), simulated=simulated)


def last_close(schedule: MarketSchedule, now: datetime) -> datetime:
    """The end of the latest session that ended before ``now`` (``now`` itself if the market is open)."""
    if schedule.is_open(now):
        return now
    local = now.astimezone(schedule.timezone)
    for days_back in range(15):
        day = (local - timedelta(days=days_back)).date()
        ranges = schedule.holidays.get((day.month, day.day), schedule.week[day.weekday()])
        for _start, end in reversed(ranges):
            close = datetime.combine(day, end, schedule.timezone)
            if close <= local:
                return close
    return now
