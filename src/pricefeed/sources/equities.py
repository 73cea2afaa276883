"""Simulated NSE equities for the simulated market: seed 004's ``RELIANCE`` and its peers, in rupees.

They trade in NSE's session only (09:15-15:30 IST, Monday to Friday): outside
it they send no ticks, and a feed's market data says its market is closed.
Each tick is a trade: a price on NSE's 5-paise tick, a traded quantity, and
the day's volume, which starts again at each session. Prices carry no
confidence (an exchange's trade price has none). A restart goes on from the
last stored price and, within the same session, the day's volume; a feed that
never traded gets one price at once, stamped at the last session's close, so a
client sees a price even at night.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from ..model import Feed, FeedId, PriceUpdate, Status
from ..schedule import MarketSchedule, parse_schedule
from .exchange import ALWAYS_OPEN_IST, NSE_SCHEDULE, exchange_feed, exchange_feed_id, last_close

EXPO = -2
"""Rupees with paise."""
TICK_PAISE = 5
"""NSE's tick size for these stocks: 0.05 rupees."""
SESSION_S = 6.25 * 3600
SECONDS_PER_YEAR = 365.25 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Equity:
    symbol: str
    name: str
    price: float
    """A typical price in rupees, where the walk starts."""
    daily_volume: int
    """Typical shares traded per session."""
    volatility: float = 0.25


NSE_EQUITIES: tuple[Equity, ...] = (
    Equity("RELIANCE", "Reliance Industries Ltd", 1420.0, 10_000_000),
    Equity("TCS", "Tata Consultancy Services Ltd", 3450.0, 2_500_000),
    Equity("INFY", "Infosys Ltd", 1600.0, 7_000_000),
    Equity("HDFCBANK", "HDFC Bank Ltd", 1000.0, 15_000_000),
    Equity("ICICIBANK", "ICICI Bank Ltd", 1400.0, 12_000_000),
    Equity("SBIN", "State Bank of India", 820.0, 13_000_000),
    Equity("BHARTIARTL", "Bharti Airtel Ltd", 1950.0, 6_000_000),
    Equity("ITC", "ITC Ltd", 420.0, 12_000_000),
    Equity("LT", "Larsen & Toubro Ltd", 3600.0, 2_000_000),
    Equity("HINDUNILVR", "Hindustan Unilever Ltd", 2400.0, 1_500_000),
)


@dataclass(slots=True)
class _Stock:
    feed: Feed
    equity: Equity
    price: float
    volume: int = 0
    session_day: int | None = None
    """The IST date the volume counts for."""


class SimulatedEquities:
    """The NSE part of the simulated market (its ticks go out with the market's own)."""

    def __init__(self, source: str, *, interval_s: float, market_hours: bool = True, seed: int | None = None) -> None:
        self.interval_s = interval_s
        schedule_text = NSE_SCHEDULE if market_hours else ALWAYS_OPEN_IST
        self.schedule: MarketSchedule = parse_schedule(schedule_text)
        self._rng = random.Random(None if seed is None else f"nse-{seed}")
        self._stocks = [
            _Stock(exchange_feed(exchange_feed_id("pricefeed-sim", "NSE", e.symbol), exchange="NSE",
                                 trading_symbol=e.symbol, name=e.name, expo=EXPO, source=source,
                                 schedule=schedule_text, simulated=True), e, e.price)
            for e in NSE_EQUITIES]
        self.source = source

    @property
    def feeds(self) -> list[Feed]:
        return [s.feed for s in self._stocks]

    def is_open(self, now: datetime) -> bool:
        return self.schedule.is_open(now)

    def resume(self, latest: Mapping[FeedId, PriceUpdate], now: datetime) -> list[PriceUpdate]:
        """Go on from the last known prices (and the session's volume); a stock never priced gets its first
        price now, or at the last close if the market is closed. Returns those first prices."""
        first: list[PriceUpdate] = []
        today = self._session_day(now)
        for stock in self._stocks:
            last = latest.get(stock.feed.id)
            if last is not None and last.expo == EXPO and last.price > 0:
                stock.price = last.price / 100
                last_day = self._session_day(datetime.fromtimestamp(last.publish_time_us / 1e6, UTC))
                stock.session_day = last_day
                stock.volume = (last.volume or 0) if last_day == today else 0
            elif not self.is_open(now):
                at = last_close(self.schedule, now)
                first.append(self._update(stock, int(at.timestamp() * 1_000_000), None, None))
        return first

    def tick(self, now: datetime, publish_time_us: int) -> list[PriceUpdate]:
        """One trade per stock while the market is open; nothing while it is closed."""
        if not self.is_open(now):
            return []
        day = self._session_day(now)
        rng = self._rng
        dt_years = self.interval_s / SECONDS_PER_YEAR
        updates = []
        for stock in self._stocks:
            equity = stock.equity
            stock.price *= math.exp(rng.gauss(0.0, equity.volatility * math.sqrt(dt_years)))
            if stock.session_day != day:
                stock.session_day, stock.volume = day, 0
            mean = max(1.0, equity.daily_volume * self.interval_s / SESSION_S)
            quantity = max(1, round(rng.lognormvariate(math.log(mean) - 0.5, 1.0)))
            stock.volume += quantity
            updates.append(self._update(stock, publish_time_us, quantity, stock.volume))
        return updates

    def _update(self, stock: _Stock, publish_time_us: int, quantity: int | None, volume: int | None) -> PriceUpdate:
        paise = max(TICK_PAISE, round(stock.price * 100 / TICK_PAISE) * TICK_PAISE)
        return PriceUpdate(feed_id=stock.feed.id, price=paise, conf=0, expo=EXPO, publish_time_us=publish_time_us,
                           ema_price=paise, ema_conf=0, status=Status.TRADING, source=self.source,
                           volume=volume, quantity=quantity)

    def _session_day(self, when: datetime) -> int:
        return when.astimezone(self.schedule.timezone).toordinal()
