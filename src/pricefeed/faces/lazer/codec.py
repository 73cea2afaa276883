"""One ``priceFeeds[]`` entry of Lazer's ``streamUpdated`` (reference/lazer.md section 4.1), encoded once per
topic and property set, whatever the number of subscribers.

Prices are strings holding the mantissa, the rest numbers; a property is
present only if asked for and available, and a zero price or confidence is
left out rather than sent (Rust's ``NonZeroI64`` refuses it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from ...model import FeedId, PriceUpdate
from ...topics import Topic

ENTRY_ORDER = ("price", "bestBidPrice", "bestAskPrice", "publisherCount", "exponent", "confidence", "fundingRate",
               "fundingTimestamp", "fundingRateInterval", "marketSession", "feedUpdateTimestamp", "emaPrice",
               "emaConfidence")
"""The order serde writes the properties in (that of the payload reference's example)."""


@dataclass(frozen=True, slots=True)
class Tick:
    """A fixed-rate channel's item: a feed's latest price at one tick of the channel's clock."""

    update: PriceUpdate
    timestamp_us: int


def _nonzero(value: int | None) -> int | None:
    return value or None


def property_values(update: PriceUpdate) -> dict[str, Any]:
    """Every property pricefeed has for ``update`` (None where it has no value)."""
    details = update.details
    price = _nonzero(update.price)
    return {
        "price": None if price is None else str(price),
        "bestBidPrice": None if details is None or not details.best_bid else str(details.best_bid),
        "bestAskPrice": None if details is None or not details.best_ask else str(details.best_ask),
        "publisherCount": None if details is None else details.publisher_count,
        "exponent": update.expo,
        "confidence": _nonzero(update.conf),
        "fundingRate": None if details is None else details.funding_rate,
        "fundingTimestamp": None if details is None else details.funding_timestamp_us,
        "fundingRateInterval": None if details is None else details.funding_rate_interval_us,
        "marketSession": None if details is None else details.market_session,
        "feedUpdateTimestamp": update.publish_time_us,
        "emaPrice": None if not update.ema_price else str(update.ema_price),
        "emaConfidence": _nonzero(update.ema_conf),
    }


class FeedEntryCodec:
    """The entries of one property set; shared by every subscription that asks for those properties."""

    face = "lazer"

    def __init__(self, properties: frozenset[str], lazer_id: Callable[[FeedId], int | None],
                 with_seq: bool = False) -> None:
        self.properties = [name for name in ENTRY_ORDER if name in properties]
        self._lazer_id = lazer_id
        self.with_seq = with_seq
        """Entries carry the update's ``seq`` (a subscription that resumes with ``sinceSeq``)."""

    def encode(self, topic: Topic, item: object) -> bytes:
        update = item.update if isinstance(item, Tick) else item
        assert isinstance(update, PriceUpdate)
        values = property_values(update)
        entry: dict[str, Any] = {"priceFeedId": self._lazer_id(update.feed_id)}
        for name in self.properties:
            value = values[name]
            if value is not None:
                entry[name] = value
        if self.with_seq:
            entry["seq"] = update.seq
        return orjson.dumps(entry)
