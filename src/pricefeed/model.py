"""The one model every source produces and every face renders: feeds and price updates.

Prices are integer mantissas with a decimal exponent, as Pyth publishes them, so
no float is involved until a face's wire format asks for one.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

FeedId = str
"""A feed id: 64 lowercase hex characters, no ``0x`` (Hermes' output form)."""

_HEX = frozenset("0123456789abcdef")


class Status(enum.StrEnum):
    """Pyth's price status values."""

    UNKNOWN = "unknown"
    TRADING = "trading"
    HALTED = "halted"
    AUCTION = "auction"
    IGNORED = "ignored"


def parse_feed_id(text: object) -> FeedId:
    """Normalise a feed id given with or without ``0x``, in any case; ``ValueError`` if malformed."""
    if not isinstance(text, str):
        raise ValueError(f"feed_id must be a string, got {type(text).__name__}")
    body = text[2:] if text[:2] in ("0x", "0X") else text
    body = body.lower()
    if len(body) != 64 or not _HEX.issuperset(body):
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise ValueError(f"invalid feed_id {shown!r}: expected 64 hex characters, optionally prefixed with 0x")
    return body


def scaled(mantissa: int, expo: int) -> float:
    """The decimal value ``mantissa x 10^expo`` as the nearest float (exact int division, no drift)."""
    if expo < 0:
        divisor: int = 10**-expo
        return mantissa / divisor
    return float(mantissa * 10**expo)


def now_us() -> int:
    """Wall-clock time in microseconds, the unit of every timestamp in the model."""
    return time.time_ns() // 1000


@dataclass(frozen=True, slots=True)
class Feed:
    """What a feed is: its id, symbol, exponent and Hermes-style attributes."""

    id: FeedId
    symbol: str
    """Pyth's full symbol, e.g. ``Crypto.BTC/USD``."""
    expo: int
    source: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    simulated: bool = False

    @property
    def display_symbol(self) -> str:
        """The short symbol people read, e.g. ``BTC/USD``."""
        return self.attributes.get("display_symbol") or self.symbol.rsplit(".", 1)[-1]

    @property
    def asset_type(self) -> str:
        return self.attributes.get("asset_type", self.symbol.split(".", 1)[0])

    @property
    def asset_type_key(self) -> str:
        """The asset type as filters name it: lower case, ``_`` for spaces (``Crypto Index`` is ``crypto_index``)."""
        return asset_type_key(self.asset_type)


def asset_type_key(asset_type: str) -> str:
    """An asset type as Hermes and ``/feeds`` filter by it: ``Crypto Index`` is ``crypto_index``."""
    return asset_type.strip().lower().replace(" ", "_")


@dataclass(frozen=True, slots=True)
class MarketStats:
    """The 24-hour market figures a market-data source (CoinGecko) publishes with a price.

    Exact decimals as the upstream wrote them; None where it gave none (``null``).
    """

    change_24h: Decimal | None = None
    """Absolute price change over 24 h, in the quote currency."""
    change_percent_24h: Decimal | None = None
    volume_24h: Decimal | None = None
    market_cap: Decimal | None = None


@dataclass(slots=True)
class PriceUpdate:
    """One price of one feed at one publish time.

    ``seq`` is assigned by the hub when it accepts the update: it grows by one
    per accepted update of a feed, so a client can see a gap.
    """

    feed_id: FeedId
    price: int
    conf: int
    expo: int
    publish_time_us: int
    ema_price: int
    ema_conf: int
    status: Status = Status.TRADING
    prev_publish_time_us: int | None = None
    slot: int | None = None
    source: str = ""
    seq: int = 0
    market: MarketStats | None = None
    """24 h change, volume and market cap, for sources that have them (the publish time is the upstream's)."""

    @property
    def publish_time(self) -> int:
        """Publish time in whole unix seconds, as Pyth reports it."""
        return self.publish_time_us // 1_000_000
