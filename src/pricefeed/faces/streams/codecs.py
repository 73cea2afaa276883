"""What /ws/stream sends: the seed's ``data`` message, and the ticks, candles and market data a client may
choose in its ``subscribe`` (``data_types``). One instance of each codec serves every connection, so the
hub encodes each topic once per pass.

Every one is ``{"type": "data", "symbol", "timestamp", "data": {...}}`` as the seed shows; the chosen
types add ``data_type`` (``tick``, ``candle``, ``market``) so a client can tell them apart. ``change``
counts from the previous session's close, or from the day's first price where none is known (see
:meth:`~pricefeed.analytics.market.MarketDays.change`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson

from ...alerts import GROUPS, LIST_NAMES, AlertEvent
from ...analytics import Analytics
from ...analytics.analysis import Analysis
from ...analytics.candles import Bar
from ...analytics.market import DayStats
from ...divergence import DivergenceAlert, DivergenceWatch
from ...model import DepthLevel, PriceUpdate, now_us, scaled
from ...portfolio import Valuation
from ...topics import Topic
from ..simple_ws import iso_time
from .symbols import SymbolIndex

FACE = "streams"


def _iso_date(day: int) -> str:
    return date.fromordinal(day).isoformat()


def percent_of(change: int, reference: int) -> float:
    """``change`` in percent of ``reference``, two decimals as the seed shows (never ``-0.0``)."""
    return round(change * 100 / reference, 2) + 0.0 if reference else 0.0


class _Context:
    """What the codecs read besides the item: symbols, and the trading days for ``change``."""

    def __init__(self, symbols: SymbolIndex, analytics: Analytics | None,
                 divergence: DivergenceWatch | None = None) -> None:
        self.symbols = symbols
        self.analytics = analytics
        self.divergence = divergence

    def divergences(self, feed_id: str) -> list[dict[str, Any]]:
        """The divergence flagged now on the feed's asset, as /ws/alerts lists it (empty when none)."""
        watch = self.divergence
        asset = None if watch is None else watch.asset_of(feed_id)
        active = None if watch is None or asset is None else watch.active(asset)
        return [] if active is None else [divergence_json(active, triggered=False)]

    def change(self, update: PriceUpdate) -> tuple[float | None, float | None]:
        found = None if self.analytics is None else self.analytics.days.change(update)
        if found is None:
            return None, None
        change, reference = found
        return scaled(change, update.expo), percent_of(change, reference)

    def market_status(self, feed_id: str) -> str:
        if self.analytics is None:
            return "open"
        return "open" if self.analytics.clock.schedule(feed_id).is_open(datetime.now(UTC)) else "closed"


class DataCodec:
    """The seed's ``data`` message: price, the day's volume, change and change in percent (and, for a subscription
    that resumes with ``since_seq``, the update's ``seq`` next to ``data``)."""

    face = FACE

    def __init__(self, context: _Context, with_seq: bool = False) -> None:
        self.context = context
        self.with_seq = with_seq

    def encode(self, topic: Topic, item: object) -> bytes:
        assert isinstance(item, PriceUpdate)
        change, percent = self.context.change(item)
        message: dict[str, Any] = {
            "type": "data", "symbol": self.context.symbols.symbol_of(item.feed_id),
            "timestamp": iso_time(item.publish_time_us),
            "data": {"price": scaled(item.price, item.expo), "volume": item.volume, "change": change,
                     "change_percent": percent},
        }
        if self.with_seq:
            message["seq"] = item.seq
        return orjson.dumps(message)


class TickCodec:
    """``tick``: each price as it comes, with its traded quantity and sequence number."""

    face = FACE

    def __init__(self, context: _Context) -> None:
        self.context = context

    def encode(self, topic: Topic, item: object) -> bytes:
        assert isinstance(item, PriceUpdate)
        change, percent = self.context.change(item)
        return orjson.dumps({
            "type": "data", "data_type": "tick", "symbol": self.context.symbols.symbol_of(item.feed_id),
            "timestamp": iso_time(item.publish_time_us),
            "data": {"price": scaled(item.price, item.expo), "quantity": item.quantity, "volume": item.volume,
                     "change": change, "change_percent": percent, "status": str(item.status), "seq": item.seq},
        })


def candle_fields(bar: Bar) -> dict[str, Any]:
    expo = bar.expo
    return {"interval": bar.interval.label, "start": iso_time(bar.start_us), "end": iso_time(bar.end_us),
            "open": scaled(bar.open, expo), "high": scaled(bar.high, expo), "low": scaled(bar.low, expo),
            "close": scaled(bar.close, expo), "volume": bar.volume, "ticks": bar.ticks, "final": bar.final}


class CandleCodec:
    """``candle_<interval>``: the forming bar as ticks change it (``final`` false), then once final."""

    face = FACE

    def __init__(self, context: _Context) -> None:
        self.context = context

    def encode(self, topic: Topic, item: object) -> bytes:
        assert isinstance(item, Bar)
        return orjson.dumps({
            "type": "data", "data_type": "candle", "symbol": self.context.symbols.symbol_of(item.feed_id),
            "timestamp": iso_time(item.last_us), "data": candle_fields(item),
        })


def _levels(levels: tuple[DepthLevel, ...], expo: int) -> list[dict[str, Any]]:
    return [{"price": scaled(level.price, expo), "quantity": level.quantity, "orders": level.orders}
            for level in levels]


class MarketCodec:
    """``market``: the trading day so far (open, high, low, last, previous close, volume), whether the market
    is open, and the best bid and ask and the depth where the source has them."""

    face = FACE

    def __init__(self, context: _Context) -> None:
        self.context = context

    def encode(self, topic: Topic, item: object) -> bytes:
        assert isinstance(item, DayStats)
        expo = item.expo
        quote = None if item.last is None else item.last.quote
        last_expo = expo if item.last is None else item.last.expo
        bids = () if quote is None else quote.bids
        asks = () if quote is None else quote.asks
        reference = item.reference()
        data: dict[str, Any] = {
            "market_status": self.context.market_status(item.feed_id),
            "session_date": _iso_date(item.day),
            "last_price": scaled(item.close, expo), "open": scaled(item.open, expo), "high": scaled(item.high, expo),
            "low": scaled(item.low, expo),
            "previous_close": None if item.previous_close is None else scaled(item.previous_close, expo),
            "volume": item.volume, "change": scaled(item.close - reference, expo),
            "change_percent": percent_of(item.close - reference, reference),
            "bid": scaled(bids[0].price, last_expo) if bids else None,
            "ask": scaled(asks[0].price, last_expo) if asks else None,
        }
        if bids or asks:
            data["depth"] = {"buy": _levels(bids, last_expo), "sell": _levels(asks, last_expo)}
        return orjson.dumps({
            "type": "data", "data_type": "market", "symbol": self.context.symbols.symbol_of(item.feed_id),
            "timestamp": iso_time(item.last_us or now_us()), "data": data,
        })


class AnalysisCodec:
    """/ws/analysis: a bar's ``technical_indicators`` (``null`` until warm) and the ``patterns`` that fired on
    the last closed bar, with the bar and the periods they were computed with; ``final`` once the bar closed;
    and the symbol's ``risk_metrics`` up to the last closed bar (each ``null`` until its window is full)."""

    face = FACE

    def __init__(self, context: _Context) -> None:
        self.context = context

    def encode(self, topic: Topic, item: object) -> bytes:
        assert isinstance(item, Analysis)
        bar = item.bar
        periods = item.periods
        return orjson.dumps({
            "type": "data", "data_type": "technical_analysis",
            "symbol": self.context.symbols.symbol_of(bar.feed_id), "timestamp": iso_time(bar.last_us),
            "data": {"interval": bar.interval.label, "final": bar.final, "bar": candle_fields(bar),
                     "technical_indicators": item.indicators, "patterns": item.patterns or [],
                     "patterns_ready": item.patterns is not None,
                     "risk_metrics": None if item.risk is None else item.risk.fields(),
                     "periods": {name: getattr(periods, name) for name in periods.__dataclass_fields__}},
        })


def alert_json(view: dict[str, Any], symbol: str) -> dict[str, Any]:
    """An alert as the book views it, with its symbol and its last trigger's time in ISO 8601."""
    when = view["triggered_at_us"]
    fields = {k: v for k, v in view.items() if k != "triggered_at_us"}
    return {**fields, "symbol": symbol, "triggered_at": None if when is None else iso_time(when)}


def alert_lists(views: tuple[dict[str, Any], ...] | list[dict[str, Any]], symbol: str) -> dict[str, Any]:
    """The seed's three lists (``price_alerts``, ``volume_alerts``, ``breakout_alerts``)."""
    lists: dict[str, Any] = {name: [] for name in LIST_NAMES}
    for view in views:
        lists[GROUPS[view["type"]]].append(alert_json(view, symbol))
    return lists


class AlertsCodec:
    """/ws/alerts: every alert of the connection's owner on the symbol, in the seed's three lists; ``triggered``
    is true for those that fired on this tick (with the triggering ``value`` and ``triggered_at``)."""

    face = FACE

    def __init__(self, context: _Context) -> None:
        self.context = context

    def encode(self, topic: Topic, item: object) -> bytes:
        assert isinstance(item, AlertEvent)
        symbol = self.context.symbols.symbol_of(item.feed_id)
        return orjson.dumps({
            "type": "data", "data_type": "alerts", "symbol": symbol, "timestamp": iso_time(item.time_us),
            "data": {"owner": item.owner or None, **alert_lists(item.alerts, symbol),
                     "divergence_alerts": self.context.divergences(item.feed_id)},
        })


def divergence_json(alert: DivergenceAlert, triggered: bool) -> dict[str, Any]:
    """A divergence as /ws/alerts lists it: ``state`` raised or cleared, ``triggered`` on the raise or clear
    itself, the spread, since when, and every source's price, age and status."""
    view = alert.view()
    return {"type": "divergence", "triggered": triggered, "state": view["state"], "asset": view["asset"],
            "spread_bps": view["spread_bps"], "threshold_bps": view["threshold_bps"], "since": view["since"],
            "triggered_at": view["at"], "sources": view["sources"]}


class DivergenceCodec:
    """/ws/alerts: a divergence raised or cleared on the subscribed symbol's asset, in the seed's ``data`` message
    (its three lists empty: no owner's alert fired) with ``divergence_alerts`` holding it. Its ``symbol`` is the
    one clients use for the asset's feeds (``RELIANCE`` for ``NSE.RELIANCE/INR``)."""

    face = FACE

    def __init__(self, context: _Context) -> None:
        self.context = context

    def encode(self, topic: Topic, item: object) -> bytes:
        assert isinstance(item, DivergenceAlert)
        first = next(iter(item.sources.values()), None)
        symbol = item.asset if first is None else self.context.symbols.symbol_of(first.feed_id)
        return orjson.dumps({
            "type": "data", "data_type": "alerts", "symbol": symbol, "timestamp": iso_time(item.time_us),
            "data": {"owner": None, **{name: [] for name in LIST_NAMES},
                     "divergence_alerts": [divergence_json(item, triggered=True)]},
        })


def decimal_number(value: object) -> object:
    """orjson's ``default``: a Decimal (money, quantities) as the JSON number of the same digits."""
    if isinstance(value, Decimal):
        return float(value)  # the nearest float prints as the shortest repr: 24507.50 -> 24507.5
    raise TypeError(f"cannot encode {type(value).__name__}")


class PortfolioCodec:
    """/ws/portfolio: the owner's position in the symbol marked at this price (``position`` with
    ``current_value``), its unrealised ``pnl`` and ``pnl_percent``, the day's PnL, the PnL its trades realised,
    the owner's ``total`` per currency and ``base_total`` in the base currency (with the rates it used)."""

    face = FACE

    def __init__(self, context: _Context) -> None:
        self.context = context

    def encode(self, topic: Topic, item: object) -> bytes:
        assert isinstance(item, Valuation)
        symbol = self.context.symbols.symbol_of(item.feed_id)
        position = {"symbol": symbol, **item.position}
        return orjson.dumps({
            "type": "data", "data_type": "portfolio", "symbol": symbol, "timestamp": iso_time(item.time_us),
            "data": {"owner": item.owner, "position": position, "pnl": position["unrealised_pnl"],
                     "pnl_percent": position["unrealised_pnl_percent"], "day_pnl": position["day_pnl"],
                     "realised_pnl": position["realised_pnl"], "total": item.totals, "base_total": item.base_total},
        }, default=decimal_number)


class StreamCodecs:
    """The codecs of the stream service, sharing one context."""

    def __init__(self, symbols: SymbolIndex, analytics: Analytics | None,
                 divergence: DivergenceWatch | None = None) -> None:
        context = _Context(symbols, analytics, divergence)
        self.data = DataCodec(context)
        self.data_with_seq = DataCodec(context, with_seq=True)
        self.tick = TickCodec(context)
        self.candle = CandleCodec(context)
        self.market = MarketCodec(context)
        self.analysis = AnalysisCodec(context)
        self.alerts = AlertsCodec(context)
        self.portfolio = PortfolioCodec(context)
        self.divergence = DivergenceCodec(context)
