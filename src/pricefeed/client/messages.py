"""What the client hands its consumer: typed, immutable messages with exact decimal prices.

Every message is a frozen dataclass, so it is hashable and equal to any other
copy of the same message: the de-duplication key of most protocols is the
decoded message itself (see each adapter in ``protocols/``). Prices are
``Decimal`` values computed from the wire's integer mantissa and exponent, so
no float rounding is ever introduced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


def scaled(mantissa: int, expo: int) -> Decimal:
    """``mantissa x 10^expo``, exactly."""
    return Decimal(mantissa).scaleb(expo)


# -- seed 000 and Hermes (/ws, SSE): one message per feed update -----------------------------------


@dataclass(frozen=True, slots=True)
class PriceUpdate:
    """One feed's price at one publish time (seed 000's ``price_update``, Hermes' ``price_feed`` or ``parsed[]``)."""

    feed_id: str
    """64 lowercase hex characters, no ``0x``."""
    price: Decimal
    conf: Decimal
    expo: int
    publish_time_us: int
    ema_price: Decimal | None = None
    ema_conf: Decimal | None = None
    status: str | None = None
    """Seed 000 only: ``trading``, ``stale``, ..."""
    slot: int | None = None
    """Hermes only, when the server says (SSE always, ``/ws`` with ``verbose``)."""
    seq: int | None = field(default=None, compare=False)
    """The feed's sequence number where a pricefeed server gives it (seed 000's ``seq``, the Hermes event stream's
    event id): consecutive per feed, the same on every server of one cluster. Not part of equality, so copies from
    servers that number differently still match."""


# -- Lazer (reference/lazer.md section 4) --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LazerFeed:
    """One ``priceFeeds[]`` entry of a ``streamUpdated``; a property is None when absent (not requested or no value).

    Prices, bid, ask, confidences and the funding rate are exact decimals when the subscription asks for
    ``exponent`` (as ``pricefeed watch`` and the Lazer source do); without it they are the raw mantissas.
    """

    price_feed_id: int
    price: Decimal | None = None
    best_bid_price: Decimal | None = None
    best_ask_price: Decimal | None = None
    publisher_count: int | None = None
    exponent: int | None = None
    confidence: Decimal | None = None
    funding_rate: int | None = None
    """The raw funding-rate mantissa (Lazer's ``Rate``), not scaled by the price exponent."""
    funding_timestamp_us: int | None = None
    funding_rate_interval_us: int | None = None
    market_session: str | None = None
    ema_price: Decimal | None = None
    ema_confidence: Decimal | None = None
    feed_update_timestamp_us: int | None = None
    seq: int | None = field(default=None, compare=False)
    """A pricefeed server's seq of this feed's update, for a subscription with ``resume``; not part of equality."""


@dataclass(frozen=True, slots=True)
class SignedPayload:
    """A signed (or unsigned binary) payload next to ``parsed``, as the server sent it; the client does not verify."""

    format: str
    """``evm``, ``solana``, ``leEcdsa`` or ``leUnsigned``."""
    encoding: str
    """``hex``, ``base64`` or ``binary`` (a binary frame)."""
    data: str | bytes


@dataclass(frozen=True, slots=True)
class StreamUpdated:
    subscription_id: int
    timestamp_us: int | None
    feeds: tuple[LazerFeed, ...]
    payloads: tuple[SignedPayload, ...] = ()


@dataclass(frozen=True, slots=True)
class Subscribed:
    subscription_id: int


@dataclass(frozen=True, slots=True)
class IgnoredInvalidFeeds:
    unknown_ids: tuple[int, ...] = ()
    unknown_symbols: tuple[str, ...] = ()
    unsupported_channels: tuple[int | str, ...] = ()
    unstable: tuple[int | str, ...] = ()
    not_entitled: tuple[int | str, ...] = ()


@dataclass(frozen=True, slots=True)
class SubscribedWithInvalidFeedIdsIgnored:
    subscription_id: int
    subscribed_feed_ids: tuple[int, ...]
    ignored: IgnoredInvalidFeeds


@dataclass(frozen=True, slots=True)
class SubscriptionError:
    subscription_id: int
    error: str


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    subscription_id: int


# -- every protocol ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerError:
    """An error the server reported (Lazer's ``error``, seed 000's ``error``, a Hermes error ``response``)."""

    error: str


@dataclass(frozen=True, slots=True)
class Confirmation:
    """A protocol's acknowledgement: seed 000's ``subscription_confirmed`` (``feed_id`` set), Hermes' success."""

    kind: str
    feed_id: str | None = None


Message = (PriceUpdate | StreamUpdated | Subscribed | SubscribedWithInvalidFeedIdsIgnored | SubscriptionError
           | Unsubscribed | ServerError | Confirmation)
