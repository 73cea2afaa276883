"""The client WebSocket protocol of seed 000, without I/O.

Inbound text becomes commands on the hub; outbound messages are JSON
payloads handed to the connection (``Peer``), which frames and writes them.
Message names and shapes are the seed's: ``connection_established``,
``subscription_confirmed``, ``unsubscription_confirmed``, ``price_update``,
``available_feeds`` and ``error``.

Lossless resume (an addition to the seed): ``price_update``'s ``data`` carries
the feed's ``seq``; ``subscribe`` (and each ``subscribe_multiple`` entry) takes
an optional ``since_seq``, the last seq the client saw, and gets what it missed
(see ``_replay``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from ..contracts import Peer
from ..hub import Hub
from ..model import FeedId, PriceUpdate, parse_feed_id, scaled
from ..resume import RecentUpdates
from ..topics import Topic
from .json_types import describe, json_type

WELCOME = "Connected to Pyth Price Feed Websocket Server"
MESSAGE_TYPES = ("subscribe", "unsubscribe", "subscribe_multiple", "get_available_feeds")


@functools.lru_cache(maxsize=64)
def _iso_second(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def iso_time(publish_time_us: int) -> str:
    """ISO 8601 UTC with milliseconds and ``Z``, e.g. ``2023-01-01T12:00:00.000Z``."""
    seconds, micros = divmod(publish_time_us, 1_000_000)
    return f"{_iso_second(seconds)}.{micros // 1000:03d}Z"  # a pass's updates share their second

def price_fields(update: PriceUpdate, status: str) -> dict[str, Any]:
    return {
        "id": update.feed_id,
        "price": scaled(update.price, update.expo),
        "conf": scaled(update.conf, update.expo),
        "expo": update.expo,
        "status": status,
        "publish_time": iso_time(update.publish_time_us),
        "ema_price": scaled(update.ema_price, update.expo),
        "ema_conf": scaled(update.ema_conf, update.expo),
    }


class SimpleWsCodec:
    """Renders hub updates as seed-000 ``price_update`` payloads (shared by all its connections)."""

    face = "seed000"

    def encode(self, topic: Topic, item: object) -> bytes:
        assert isinstance(item, PriceUpdate)
        return encode_price_update(item, str(item.status))  # just arrived, so never stale


def encode_price_update(update: PriceUpdate, status: str) -> bytes:
    return orjson.dumps({"type": "price_update", "data": {**price_fields(update, status), "seq": update.seq}})


def error(message: str) -> bytes:
    return orjson.dumps({"type": "error", "message": message})


@dataclass(frozen=True, slots=True)
class Limits:
    max_subscriptions: int = 1000


class SimpleWsSession:
    """The protocol state of one client connection."""

    def __init__(self, hub: Hub, peer: Peer, client_id: str, limits: Limits = Limits(),
                 recent: RecentUpdates | None = None) -> None:
        self.hub = hub
        self.recent = recent if recent is not None else RecentUpdates(keep_s=0)
        self.peer = peer
        self.client_id = client_id
        self.limits = limits
        self.subscriptions: set[FeedId] = set()
        self._handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "subscribe_multiple": self._subscribe_multiple,
            "get_available_feeds": self._get_available_feeds,
        }

    def opened(self) -> None:
        self.peer.send(orjson.dumps(
            {"type": "connection_established", "client_id": self.client_id, "message": WELCOME}))

    def closed(self) -> None:
        for feed_id in self.subscriptions:
            self.hub.unsubscribe(feed_id, self.peer)
        self.subscriptions.clear()

    def receive_binary(self, data: bytes) -> None:
        self.peer.send(error("binary frames are not supported: send JSON messages as text frames"))

    def receive_text(self, text: str | bytes) -> None:
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            self.peer.send(error(f"invalid JSON: {exc}"))
            return
        if not isinstance(message, dict):
            self.peer.send(error(f"message must be a JSON object with a \"type\" field, got {json_type(message)}"))
            return
        kind = message.get("type")
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            expected = ", ".join(MESSAGE_TYPES)
            if kind is None:
                self.peer.send(error(f"missing \"type\": expected one of {expected}"))
            else:
                self.peer.send(error(f"unknown message type {describe(kind)}: expected one of {expected}"))
            return
        handler(message)

    # -- commands ----------------------------------------------------------

    def _subscribe(self, message: dict[str, Any]) -> None:
        self._subscribe_one(message.get("feed_id"), "subscribe", message.get("since_seq"))

    def _subscribe_multiple(self, message: dict[str, Any]) -> None:
        entries = message.get("subscriptions")
        if not isinstance(entries, list) or not entries:
            self.peer.send(error("subscribe_multiple needs \"subscriptions\": a non-empty list of {\"feed_id\": ...}"))
            return
        for entry in entries:
            raw = entry.get("feed_id") if isinstance(entry, dict) else entry
            since = entry.get("since_seq") if isinstance(entry, dict) else None
            self._subscribe_one(raw, "subscribe_multiple", since)

    def _subscribe_one(self, raw: object, command: str, since_seq: object = None) -> None:
        feed_id = self._known_feed(raw, command)
        if feed_id is None:
            return
        if since_seq is not None and (type(since_seq) is not int or since_seq < 0):
            self.peer.send(error(f"since_seq must be a non-negative integer (the last seq received), got "
                                 f"{describe(since_seq)}; feed_id {feed_id} was not subscribed"))
            return
        if feed_id not in self.subscriptions and len(self.subscriptions) >= self.limits.max_subscriptions:
            self.peer.send(error(f"subscription limit reached: at most {self.limits.max_subscriptions} feeds "
                                 f"per connection; feed_id {feed_id} was not subscribed"))
            return
        new = feed_id not in self.subscriptions
        refused = self.peer.claim((feed_id,)) if new else None  # the API key's feeds and subscription limit
        if refused is not None:
            self.peer.send(error(refused))
            return
        self.subscriptions.add(feed_id)
        self.hub.subscribe(feed_id, self.peer)
        if since_seq is not None:
            self._replay(feed_id, since_seq)
            return
        self.peer.send(orjson.dumps({"type": "subscription_confirmed", "feed_id": feed_id}))
        latest = self.hub.latest.get(feed_id)
        if new and latest is not None:
            self.peer.send_price(feed_id, encode_price_update(latest, self.hub.status_of(feed_id)))

    def _replay(self, feed_id: FeedId, since_seq: int) -> None:
        """The confirmation with ``recovered``, then every update after ``since_seq`` in order (or, not recovered,
        the latest), queued ahead of any live frame of the feed.

        Nothing runs between here and the hub's next pass, and the recent log holds every update the hub has
        fanned out, so the replay ends exactly where the next live frame begins: no gap, no duplicate. A live
        frame of the feed still queued (a slow client) is dropped: the replay carries it, and later ones queue
        behind the replay's frames.
        """
        recovery = self.recent.since(feed_id, since_seq)
        self.peer.discard_price(feed_id)
        self.peer.send(orjson.dumps({"type": "subscription_confirmed", "feed_id": feed_id,
                                     "recovered": recovery.recovered}))
        latest = self.hub.latest.get(feed_id)
        for update in recovery.updates:
            status = self.hub.status_of(feed_id) if update is latest else str(update.status)
            self.peer.send(encode_price_update(update, status))

    def _unsubscribe(self, message: dict[str, Any]) -> None:
        feed_id = self._known_feed(message.get("feed_id"), "unsubscribe")
        if feed_id is None:
            return
        self.subscriptions.discard(feed_id)
        self.hub.unsubscribe(feed_id, self.peer)
        self.peer.unclaim((feed_id,))
        self.peer.discard_price(feed_id)
        self.peer.send(orjson.dumps({"type": "unsubscription_confirmed", "feed_id": feed_id}))

    def _get_available_feeds(self, message: dict[str, Any]) -> None:
        feeds = []
        for feed in self.hub.feeds.values():
            latest = self.hub.latest.get(feed.id)
            feeds.append({
                "id": feed.id,
                "symbol": feed.display_symbol,
                "price": None if latest is None else scaled(latest.price, latest.expo),
                "conf": None if latest is None else scaled(latest.conf, latest.expo),
                "expo": feed.expo if latest is None else latest.expo,
                "status": self.hub.status_of(feed.id),
            })
        self.peer.send(orjson.dumps({"type": "available_feeds", "feeds": feeds}))

    def _known_feed(self, raw: object, command: str) -> FeedId | None:
        """The normalised id of a feed the hub knows, or None after sending the error."""
        if raw is None:
            self.peer.send(error(f"{command} needs a \"feed_id\""))
            return None
        try:
            feed_id = parse_feed_id(raw)
        except ValueError as exc:
            self.peer.send(error(str(exc)))
            return None
        if feed_id not in self.hub.feeds:
            self.peer.send(error(f"unknown feed_id {feed_id}: send get_available_feeds for the list"))
            return None
        return feed_id
