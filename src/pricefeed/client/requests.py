"""What a consumer subscribes to: a Lazer ``SubscribeRequest``, or a list of feeds for seed 000 and Hermes.

The client keeps every subscription by its id and replays it, unchanged, on
every new connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Channel = Literal["real_time", "fixed_rate@50ms", "fixed_rate@200ms", "fixed_rate@1000ms"]
CHANNELS: tuple[Channel, ...] = ("real_time", "fixed_rate@50ms", "fixed_rate@200ms", "fixed_rate@1000ms")
PROPERTIES = ("price", "bestBidPrice", "bestAskPrice", "publisherCount", "exponent", "confidence", "fundingRate",
              "fundingTimestamp", "fundingRateInterval", "marketSession", "emaPrice", "emaConfidence",
              "feedUpdateTimestamp")
"""Lazer's property names, in the order of their binary ids (reference/lazer.md section 3.2)."""


@dataclass(frozen=True, slots=True)
class LazerSubscription:
    """Lazer's ``SubscribeRequest`` (reference/lazer.md section 3.1), serialized as the Rust client does."""

    subscription_id: int
    price_feed_ids: Sequence[int] | None = None
    symbols: Sequence[str] | None = None
    properties: Sequence[str] = ("price", "exponent", "confidence", "feedUpdateTimestamp")
    channel: Channel | str = "fixed_rate@200ms"
    formats: Sequence[str] = ()
    delivery_format: Literal["json", "binary"] = "json"
    json_binary_encoding: Literal["base64", "hex"] = "base64"
    parsed: bool = True
    ignore_invalid_feeds: bool = False
    resume: bool = False
    """A pricefeed addition, ``real_time`` only: each entry carries its ``seq`` and a reconnect asks for what it
    missed (``sinceSeq``). Pyth's own routers do not know it: leave it off against them."""

    def __post_init__(self) -> None:
        if (self.price_feed_ids is None) == (self.symbols is None):
            raise ValueError("either price feed ids or symbols must be specified, not both")

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "subscribe",
            "subscriptionId": self.subscription_id,
            "priceFeedIds": None if self.price_feed_ids is None else list(self.price_feed_ids),
            "symbols": None if self.symbols is None else list(self.symbols),
            "properties": list(self.properties),
            "formats": list(self.formats),
            "deliveryFormat": self.delivery_format,
            "jsonBinaryEncoding": self.json_binary_encoding,
            "parsed": self.parsed,
            "channel": self.channel,
            "ignoreInvalidFeeds": self.ignore_invalid_feeds,
            **({"sinceSeq": {}} if self.resume else {}),
        }


@dataclass(frozen=True, slots=True)
class FeedSubscription:
    """Feeds by id (64 hex characters, with or without ``0x``) for seed 000, Hermes ``/ws`` and Hermes SSE."""

    subscription_id: int
    feed_ids: Sequence[str] = field(default_factory=tuple)
    verbose: bool = True
    """Hermes ``/ws``: ask for metadata, so updates carry their slot (a sharper de-duplication key)."""

    def __post_init__(self) -> None:
        if not self.feed_ids:
            raise ValueError("a feed subscription needs at least one feed id")
        normalised = tuple(dict.fromkeys(normalise_id(i) for i in self.feed_ids))
        object.__setattr__(self, "feed_ids", normalised)


Subscription = LazerSubscription | FeedSubscription


def normalise_id(text: str) -> str:
    body = text[2:] if text[:2] in ("0x", "0X") else text
    body = body.lower()
    if len(body) != 64 or any(c not in "0123456789abcdef" for c in body):
        raise ValueError(f"invalid feed id {text!r}: expected 64 hex characters, optionally prefixed with 0x")
    return body
