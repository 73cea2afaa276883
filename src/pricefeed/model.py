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


def at_expo(mantissa: int, expo: int, target: int) -> int:
    """``mantissa x 10^expo`` as a mantissa at exponent ``target`` (exact when ``target <= expo``, else rounded)."""
    if target <= expo:
        multiplier: int = 10 ** (expo - target)
        return mantissa * multiplier
    divisor: int = 10 ** (target - expo)
    return (mantissa + divisor // 2) // divisor


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


CONFIDENCE = "confidence"
"""The attribute by which a feed says its prices carry no confidence interval: ``"none"`` for an exchange's
last traded price (Kite, the simulated NSE market). Their updates have ``conf`` 0, which then means "not
given", not "exact"; ``ema_price`` is the last price and ``ema_conf`` 0 (an exchange publishes no EMA)."""


def has_confidence(feed: Feed) -> bool:
    """Whether a feed's ``conf`` is a real confidence interval (Pyth's are; an exchange's trade price has none)."""
    return feed.attributes.get(CONFIDENCE) != "none"


def asset_type_key(asset_type: str) -> str:
    """An asset type as Hermes and ``/feeds`` filter by it: ``Crypto Index`` is ``crypto_index``."""
    return asset_type.strip().lower().replace(" ", "_")


@dataclass(frozen=True, slots=True)
class DepthLevel:
    """One level of an order book: price (a mantissa at the update's exponent), quantity and orders."""

    price: int
    quantity: int
    orders: int


@dataclass(frozen=True, slots=True)
class Quote:
    """What an exchange feed sends with a trade (Kite's ``quote`` and ``full`` modes): the session's open, high
    and low, the previous session's close, and the order book's best levels. Prices are mantissas at the
    update's exponent; None where the exchange sent none."""

    open: int | None = None
    high: int | None = None
    low: int | None = None
    previous_close: int | None = None
    bids: tuple[DepthLevel, ...] = ()
    asks: tuple[DepthLevel, ...] = ()


@dataclass(frozen=True, slots=True)
class MarketDetails:
    """What a Lazer-style source adds to a price (reference/lazer.md section 4.1); None where it has no value.

    Bid and ask are mantissas with the update's exponent; funding times and intervals are in microseconds.
    """

    best_bid: int | None = None
    best_ask: int | None = None
    publisher_count: int | None = None
    funding_rate: int | None = None
    funding_timestamp_us: int | None = None
    funding_rate_interval_us: int | None = None
    market_session: str | None = None


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
    # Exchange feeds trade: the seed-004 stream reports a tick's traded quantity and the day's volume, and
    # candles sum volume from it. Pyth prices have neither, so they are optional and last (None: not given).
    volume: int | None = None
    """The session's traded volume so far, as the exchange counts it (it restarts at each session)."""
    quantity: int | None = None
    """The quantity of the last trade."""
    quote: Quote | None = None
    """The exchange's session figures and order book, where the source has them."""
    details: MarketDetails | None = None
    """Best bid/ask, publisher count, funding and market session, from sources that have them (Lazer), so the
    Lazer face can serve them again; one optional field keeps every other source's updates as small as before."""
    market: MarketStats | None = None
    """24 h change, volume and market cap, for sources that have them (the publish time is the upstream's)."""

    @property
    def publish_time(self) -> int:
        """Publish time in whole unix seconds, as Pyth reports it."""
        return self.publish_time_us // 1_000_000
