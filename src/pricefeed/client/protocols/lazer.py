"""Pyth Lazer's ``/v1/stream`` (reference/lazer.md sections 2 to 4), for the client.

De-duplication key: the whole decoded message, as the Rust client hashes its
decoded ``AnyResponse``. Lazer routers keep identical feed state and align
fixed-rate ticks to wall-clock multiples, so every endpoint sends the same
message for the same tick; hashing the decoded message (not the bytes) also
matches copies that differ only in key order or spacing, while any differing
field (another tick, another subscription) keeps two messages apart.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

from ..messages import (
    IgnoredInvalidFeeds,
    LazerFeed,
    Message,
    ServerError,
    SignedPayload,
    StreamUpdated,
    Subscribed,
    SubscribedWithInvalidFeedIdsIgnored,
    SubscriptionError,
    Unsubscribed,
)
from ..requests import LazerSubscription, Subscription
from .base import ProtocolAdapter, ProtocolError

AuthForm = Literal["header", "query", "subprotocol"]
AUTH_SUBPROTOCOL = "pyth-lazer-auth"
ACCESS_TOKEN_QUERY = "ACCESS_TOKEN"
DEFAULT_ENDPOINTS = (
    "wss://pyth-lazer-0.dourolabs.app/v1/stream",
    "wss://pyth-lazer-1.dourolabs.app/v1/stream",
    "wss://pyth-lazer-2.dourolabs.app/v1/stream",
)

BINARY_UPDATE_MAGIC = 461928307
FORMAT_MAGICS = {2593727018: "evm", 2182742457: "solana", 1296547300: "leEcdsa", 1499680012: "leUnsigned"}
JSON_MAGIC = 3302625434
SIGNED_FORMATS = ("evm", "solana", "leEcdsa", "leUnsigned")


class LazerProtocol(ProtocolAdapter):
    name = "lazer"

    def __init__(self, token: str | None = None, auth: AuthForm = "header") -> None:
        super().__init__(token)
        if auth not in ("header", "query", "subprotocol"):
            raise ValueError(f"unknown Lazer authentication form {auth!r}: header, query or subprotocol")
        self.auth = auth

    def url(self, endpoint: str, subscriptions: Sequence[Subscription]) -> str:
        if not self.token or self.auth != "query":
            return endpoint
        parts = urlsplit(endpoint)
        query = [*((k, v) for k, v in parse_qsl(parts.query) if k != ACCESS_TOKEN_QUERY), (ACCESS_TOKEN_QUERY,
                                                                                           self.token)]
        return urlunsplit(parts._replace(query=urlencode(query)))

    def headers(self) -> dict[str, str]:
        return super().headers() if self.auth == "header" else {}

    def subprotocols(self) -> list[str] | None:
        return [AUTH_SUBPROTOCOL, self.token] if self.token and self.auth == "subprotocol" else None

    def subscribe_frames(self, subscription: Subscription) -> list[str]:
        if not isinstance(subscription, LazerSubscription):
            raise TypeError("the Lazer protocol subscribes with a LazerSubscription")
        return [orjson.dumps(subscription.to_json()).decode()]

    def resume_frames(self, subscription: Subscription, seqs: Mapping[str, int]) -> list[str]:
        """A ``resume`` subscription asks for what came after each feed's last seq (keys are Lazer ids; the
        server takes those of its feeds)."""
        if not isinstance(subscription, LazerSubscription) or not subscription.resume:
            return self.subscribe_frames(subscription)
        request = subscription.to_json()
        request["sinceSeq"] = {key: seq for key, seq in seqs.items() if key.isdigit()}
        return [orjson.dumps(request).decode()]

    def unsubscribe_frames(self, subscription: Subscription, remaining: Sequence[Subscription]) -> list[str]:
        return [orjson.dumps({"type": "unsubscribe", "subscriptionId": subscription.subscription_id}).decode()]

    def decode(self, frame: str | bytes) -> list[Message]:
        if isinstance(frame, bytes):
            return [decode_binary(frame)]
        try:
            data = orjson.loads(frame)
            return [decode_response(data)]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"not a Lazer message: {exc}") from None


def decode_response(data: dict[str, Any]) -> Message:
    """One ``WsResponse`` (the six types of reference/lazer.md section 4)."""
    kind = data["type"]
    if kind == "streamUpdated":
        return stream_updated(data["subscriptionId"], data)
    if kind == "subscribed":
        return Subscribed(data["subscriptionId"])
    if kind == "subscriptionError":
        return SubscriptionError(data["subscriptionId"], str(data["error"]))
    if kind == "unsubscribed":
        return Unsubscribed(data["subscriptionId"])
    if kind == "error":
        return ServerError(str(data["error"]))
    if kind == "subscribedWithInvalidFeedIdsIgnored":
        ignored = data.get("ignoredInvalidFeedIds") or {}
        return SubscribedWithInvalidFeedIdsIgnored(
            data["subscriptionId"], tuple(data.get("subscribedFeedIds") or ()), IgnoredInvalidFeeds(
                tuple(ignored.get("unknownIds") or ()), tuple(ignored.get("unknownSymbols") or ()),
                tuple(ignored.get("unsupportedChannels") or ()), tuple(ignored.get("unstable") or ()),
                tuple(ignored.get("notEntitled") or ())))
    raise ValueError(f"unknown response type {kind!r}")


def stream_updated(subscription_id: int, data: dict[str, Any]) -> StreamUpdated:
    parsed = data.get("parsed")
    feeds: tuple[LazerFeed, ...] = ()
    timestamp: int | None = None
    if parsed is not None:
        timestamp = int(parsed["timestampUs"])
        feeds = tuple(map(parse_feed, parsed["priceFeeds"]))
    payloads = tuple(SignedPayload(name, str(data[name]["encoding"]), data[name]["data"])
                     for name in SIGNED_FORMATS if name in data)
    return StreamUpdated(subscription_id, timestamp, feeds, payloads)


def _price(raw: Any, expo: int) -> Decimal | None:
    """A mantissa (string or number) times ``10^expo``, exactly: one ``Decimal`` parse of ``<mantissa>E<expo>``."""
    return None if raw is None else Decimal(f"{raw}E{expo}")


def parse_feed(entry: dict[str, Any]) -> LazerFeed:
    """One ``priceFeeds[]`` entry: string mantissas for prices, numbers for the rest (section 4.1)."""
    get = entry.get
    exponent = get("exponent")
    expo = 0 if exponent is None else exponent
    return LazerFeed(
        price_feed_id=entry["priceFeedId"], price=_price(get("price"), expo),
        best_bid_price=_price(get("bestBidPrice"), expo), best_ask_price=_price(get("bestAskPrice"), expo),
        publisher_count=get("publisherCount"), exponent=exponent, confidence=_price(get("confidence"), expo),
        funding_rate=get("fundingRate"), funding_timestamp_us=get("fundingTimestamp"),
        funding_rate_interval_us=get("fundingRateInterval"), market_session=get("marketSession"),
        ema_price=_price(get("emaPrice"), expo), ema_confidence=_price(get("emaConfidence"), expo),
        feed_update_timestamp_us=get("feedUpdateTimestamp"), seq=seq if type(seq := get("seq")) is int else None)


def decode_binary(frame: bytes) -> StreamUpdated:
    """A binary ``streamUpdated`` (section 4.2): magic, subscription id, then length-prefixed payloads."""
    try:
        magic, = struct.unpack_from("<I", frame, 0)
        if magic != BINARY_UPDATE_MAGIC:
            raise ProtocolError(f"binary update format magic mismatch: {magic}")
        subscription_id, = struct.unpack_from(">Q", frame, 4)
        position = 12
        parsed: dict[str, Any] | None = None
        payloads: list[SignedPayload] = []
        while position < len(frame):
            length, = struct.unpack_from(">H", frame, position)
            body = frame[position + 2:position + 2 + length]
            position += 2 + length
            format_magic, = struct.unpack_from("<I", body, 0)
            if format_magic == JSON_MAGIC:
                parsed = orjson.loads(body[4:])
            elif format_magic in FORMAT_MAGICS:
                payloads.append(SignedPayload(FORMAT_MAGICS[format_magic], "binary", bytes(body)))
            else:
                raise ProtocolError(f"unknown payload magic {format_magic}")
    except (struct.error, orjson.JSONDecodeError) as exc:
        raise ProtocolError(f"malformed binary update: {exc}") from None
    update = stream_updated(subscription_id, {} if parsed is None else {"parsed": parsed})
    return StreamUpdated(update.subscription_id, update.timestamp_us, update.feeds, tuple(payloads))
