"""Hermes' WebSocket ``/ws`` and Server-Sent Events stream (reference/hermes.md), for the client.

Both work against Pyth's own Hermes and against any pricefeed. De-duplication
key: the feed id with both price objects (price, confidence, exponent,
publish time; the same for the EMA) and the slot where the server gives one
(the event stream always, ``/ws`` with ``verbose``). A Hermes price update
carries no sequence number and its publish time has whole-second resolution:
two aggregates in the same second share it, so publish time alone would drop
the second one. The receive-time metadata (``price_service_receive_time``,
``proof_available_time``) differs between servers for the same update and is
left out of the key.

On a pricefeed server the event stream resumes: each event's id is the seq of
each requested feed (in the URL's order, joined by ``.``), which a reconnect
sends back as ``Last-Event-ID`` (an empty part for a feed never received).
Pyth's Hermes sends no id, so nothing is resumed there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import orjson

from ..messages import Confirmation, Message, PriceUpdate, ServerError, scaled
from ..requests import FeedSubscription, Subscription
from .base import ProtocolAdapter, ProtocolError, Transport

STREAM_PATH = "/v2/updates/price/stream"


def hermes_price(feed: dict[str, Any]) -> PriceUpdate:
    """A ``price_feed`` (``/ws``) or a ``parsed[]`` item (SSE): the same fields, different metadata."""
    price, ema = feed["price"], feed.get("ema_price")
    expo = price["expo"]
    metadata = feed.get("metadata") or {}
    return PriceUpdate(
        feed_id=feed["id"].removeprefix("0x").lower(), price=scaled(int(price["price"]), expo),
        conf=scaled(int(price["conf"]), expo), expo=expo, publish_time_us=int(price["publish_time"]) * 1_000_000,
        ema_price=None if ema is None else scaled(int(ema["price"]), ema["expo"]),
        ema_conf=None if ema is None else scaled(int(ema["conf"]), ema["expo"]), slot=metadata.get("slot"))


def _feed_ids(subscriptions: Sequence[Subscription]) -> list[str]:
    ids: dict[str, None] = {}
    for subscription in subscriptions:
        if not isinstance(subscription, FeedSubscription):
            raise TypeError("the Hermes protocols subscribe with a FeedSubscription")
        ids.update(dict.fromkeys(subscription.feed_ids))
    return list(ids)


class HermesWsProtocol(ProtocolAdapter):
    name = "hermes_ws"

    def subscribe_frames(self, subscription: Subscription) -> list[str]:
        ids = _feed_ids([subscription])
        verbose = isinstance(subscription, FeedSubscription) and subscription.verbose
        return [orjson.dumps({"type": "subscribe", "ids": ids, "verbose": verbose, "binary": False}).decode()]

    def unsubscribe_frames(self, subscription: Subscription, remaining: Sequence[Subscription]) -> list[str]:
        kept = set(_feed_ids(remaining))
        ids = [i for i in _feed_ids([subscription]) if i not in kept]
        return [orjson.dumps({"type": "unsubscribe", "ids": ids}).decode()] if ids else []

    def decode(self, frame: str | bytes) -> list[Message]:
        try:
            data = orjson.loads(frame)
            kind = data["type"]
            if kind == "price_update":
                return [hermes_price(data["price_feed"])]
            if kind == "response":
                if data.get("status") == "success":
                    return [Confirmation("response")]
                return [ServerError(str(data.get("error")))]
            return []
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProtocolError(f"not a Hermes /ws message: {exc}") from None


class HermesSseProtocol(ProtocolAdapter):
    """``GET /v2/updates/price/stream?ids[]=...``: the feeds are in the URL, so a new subscription reopens it."""

    name = "hermes_sse"
    transport: Transport = "sse"

    def url(self, endpoint: str, subscriptions: Sequence[Subscription]) -> str:
        parts = urlsplit(endpoint)
        path = parts.path if parts.path.endswith(STREAM_PATH) else parts.path.rstrip("/") + STREAM_PATH
        query = urlencode([("ids[]", feed_id) for feed_id in _feed_ids(subscriptions)] + [("parsed", "true")])
        return urlunsplit(parts._replace(path=path, query="&".join(filter(None, (parts.query, query)))))

    def subscribe_frames(self, subscription: Subscription) -> list[str]:
        _feed_ids([subscription])
        return []

    def resume_headers(self, subscriptions: Sequence[Subscription], seqs: Mapping[str, int]) -> dict[str, str]:
        ids = _feed_ids(subscriptions)
        if not any(feed_id in seqs for feed_id in ids):
            return {}
        return {"Last-Event-ID": ".".join(str(seqs[i]) if i in seqs else "" for i in ids)}

    def event_seqs(self, event_id: str, subscriptions: Sequence[Subscription]) -> dict[str, int]:
        parts = event_id.split(".")
        ids = _feed_ids(subscriptions)
        if len(parts) != len(ids):
            return {}  # not a pricefeed server's id
        return {feed_id: int(part) for feed_id, part in zip(ids, parts, strict=True) if part.isdigit()}

    def unsubscribe_frames(self, subscription: Subscription, remaining: Sequence[Subscription]) -> list[str]:
        return []

    def decode(self, frame: str | bytes) -> list[Message]:
        try:
            data = orjson.loads(frame)
            return [hermes_price(item) for item in data.get("parsed") or ()]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProtocolError(f"not a Hermes price update event: {exc}") from None
