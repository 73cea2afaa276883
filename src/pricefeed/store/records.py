"""Feeds and price updates as JSON-ready records, the form the stores keep them in.

Decimals (a :class:`~pricefeed.model.MarketStats`) are kept as strings, so a
stored value reads back exactly.
"""

from __future__ import annotations

from dataclasses import fields
from decimal import Decimal
from typing import Any

from ..model import Feed, MarketStats, PriceUpdate, Status

_MARKET_FIELDS = tuple(f.name for f in fields(MarketStats))


def market_record(market: MarketStats | None) -> dict[str, str | None] | None:
    if market is None:
        return None
    return {name: None if (value := getattr(market, name)) is None else str(value) for name in _MARKET_FIELDS}


def market_from_record(record: object) -> MarketStats | None:
    if not isinstance(record, dict):
        return None
    return MarketStats(**{name: None if record.get(name) is None else Decimal(record[name])
                          for name in _MARKET_FIELDS})


def feed_record(feed: Feed) -> dict[str, Any]:
    return {"id": feed.id, "symbol": feed.symbol, "expo": feed.expo, "source": feed.source,
            "simulated": feed.simulated, "attributes": dict(feed.attributes)}


def feed_from_record(record: dict[str, Any]) -> Feed:
    return Feed(id=record["id"], symbol=record["symbol"], expo=record["expo"], source=record["source"],
                simulated=bool(record["simulated"]), attributes=record["attributes"])


def update_record(update: PriceUpdate) -> dict[str, Any]:
    return {"feed_id": update.feed_id, "price": update.price, "conf": update.conf, "expo": update.expo,
            "publish_time_us": update.publish_time_us, "ema_price": update.ema_price, "ema_conf": update.ema_conf,
            "status": str(update.status), "prev_publish_time_us": update.prev_publish_time_us, "slot": update.slot,
            "source": update.source, "seq": update.seq, "market": market_record(update.market)}


def update_from_record(record: dict[str, Any]) -> PriceUpdate:
    return PriceUpdate(feed_id=record["feed_id"], price=record["price"], conf=record["conf"], expo=record["expo"],
                       publish_time_us=record["publish_time_us"], ema_price=record["ema_price"],
                       ema_conf=record["ema_conf"], status=Status(record["status"]),
                       prev_publish_time_us=record["prev_publish_time_us"], slot=record["slot"],
                       source=record["source"], seq=record["seq"], market=market_from_record(record.get("market")))
