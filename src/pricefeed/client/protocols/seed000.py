"""The seed-000 client WebSocket (pricefeed's ``:8765``), for the client.

De-duplication key: the whole ``price_update`` data object (feed, price,
confidence, exponent, status, publish time, EMA). The seed's protocol carries
no sequence number and no slot (pricefeed adds ``seq``, which a reconnect
sends back as ``since_seq`` to get what it missed, but another server may
number differently, so the key leaves it out), and its publish time has millisecond
resolution, so the time alone cannot tell two updates apart; every field
together can, and two copies of one update agree on all of them. Prices are
JSON numbers here: they are read as decimals from their text, never through a
float.
"""

from __future__ import annotations

import calendar
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from ..messages import Confirmation, Message, PriceUpdate, ServerError
from ..requests import FeedSubscription, Subscription
from .base import ProtocolAdapter, ProtocolError

_decode = json.JSONDecoder(parse_float=Decimal).decode


def iso_to_us(text: str) -> int:
    """``2023-01-01T12:00:00.123Z`` as unix microseconds."""
    whole, _, fraction = text.rstrip("Z").partition(".")
    seconds = calendar.timegm((int(whole[0:4]), int(whole[5:7]), int(whole[8:10]), int(whole[11:13]),
                               int(whole[14:16]), int(whole[17:19]), 0, 0, 0))
    return seconds * 1_000_000 + (int(fraction.ljust(6, "0")[:6]) if fraction else 0)


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(value)


class Seed000Protocol(ProtocolAdapter):
    name = "seed000"

    def headers(self) -> dict[str, str]:
        return {}  # the protocol has no authentication

    def subscribe_frames(self, subscription: Subscription) -> list[str]:
        if not isinstance(subscription, FeedSubscription):
            raise TypeError("the seed-000 protocol subscribes with a FeedSubscription")
        entries = [{"feed_id": feed_id} for feed_id in subscription.feed_ids]
        return [json.dumps({"type": "subscribe_multiple", "subscriptions": entries})]

    def resume_frames(self, subscription: Subscription, seqs: Mapping[str, int]) -> list[str]:
        if not isinstance(subscription, FeedSubscription):
            raise TypeError("the seed-000 protocol subscribes with a FeedSubscription")
        entries = [{"feed_id": feed_id, **({"since_seq": seqs[feed_id]} if feed_id in seqs else {})}
                   for feed_id in subscription.feed_ids]
        return [json.dumps({"type": "subscribe_multiple", "subscriptions": entries})]

    def unsubscribe_frames(self, subscription: Subscription, remaining: Sequence[Subscription]) -> list[str]:
        kept = {feed_id for other in remaining if isinstance(other, FeedSubscription) for feed_id in other.feed_ids}
        return [json.dumps({"type": "unsubscribe", "feed_id": feed_id})
                for feed_id in getattr(subscription, "feed_ids", ()) if feed_id not in kept]

    def decode(self, frame: str | bytes) -> list[Message]:
        try:
            data = _decode(frame if isinstance(frame, str) else frame.decode())
            kind = data["type"]
            if kind == "price_update":
                return [price_update(data["data"])]
            if kind in ("subscription_confirmed", "unsubscription_confirmed"):
                return [Confirmation(kind, data.get("feed_id"))]
            if kind == "error":
                return [ServerError(str(data["message"]))]
            return []  # connection_established, available_feeds: about the connection, not the stream
        except (ValueError, KeyError, TypeError) as exc:
            raise ProtocolError(f"not a seed-000 message: {exc}") from None


def price_update(data: dict[str, Any]) -> PriceUpdate:
    ema_price, ema_conf = data.get("ema_price"), data.get("ema_conf")
    return PriceUpdate(
        feed_id=data["id"], price=_decimal(data["price"]), conf=_decimal(data["conf"]), expo=data["expo"],
        publish_time_us=iso_to_us(data["publish_time"]),
        ema_price=None if ema_price is None else _decimal(ema_price),
        ema_conf=None if ema_conf is None else _decimal(ema_conf), status=data.get("status"),
        seq=seq if type(seq := data.get("seq")) is int else None)
