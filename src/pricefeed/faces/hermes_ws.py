"""Hermes' WebSocket ``/ws`` (reference/hermes.md section 4), as used by price-service-client and pythclient.

``subscribe``/``unsubscribe`` with per-feed flags, a ``response`` to each, and
one ``price_update`` message per subscribed feed per pass. The transport pings
every 30 s, as Hermes does, within the 33 s that price-service-client waits
for one, and closes a peer that does not answer.
"""

from __future__ import annotations

import orjson

from ..contracts import Peer, Subscriber
from ..hub import Hub
from ..model import FeedId, PriceUpdate, parse_feed_id
from ..topics import Topic
from .hermes_json import hex_id_error, price_feed
from .json_types import describe

MAX_MESSAGE_BYTES = 1025 * 1024
SUCCESS = orjson.dumps({"type": "response", "status": "success"})


def error_response(message: str) -> bytes:
    return orjson.dumps({"type": "response", "status": "error", "error": message})


class PriceUpdateCodec:
    face = "hermes_ws"

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose

    def encode(self, topic: Topic, item: object) -> bytes:
        assert isinstance(item, PriceUpdate)
        return orjson.dumps({"type": "price_update", "price_feed": price_feed(item, verbose=self.verbose)})


PLAIN, VERBOSE = PriceUpdateCodec(verbose=False), PriceUpdateCodec(verbose=True)


class HermesWsSession:
    """One ``/ws`` client: its subscriptions, without the socket."""

    def __init__(self, hub: Hub, peer: Peer) -> None:
        self.hub = hub
        self.peer = peer
        self.subscriptions: dict[FeedId, Subscriber] = {}
        # Hermes keeps the verbose flag per feed: each flavour is a lane of this connection with its own codec.
        self._lanes = {False: peer.lane(PLAIN), True: peer.lane(VERBOSE)}

    def opened(self) -> None:
        """Hermes says nothing until the client does."""

    def receive_binary(self, data: bytes) -> None:
        """Hermes reads JSON from binary frames too."""
        self.receive_text(data)

    def receive_text(self, text: str | bytes) -> None:
        self.peer.send(self._handle(text))

    def closed(self) -> None:
        for feed_id in list(self.subscriptions):
            self._unsubscribe(feed_id)

    def _handle(self, data: str | bytes) -> bytes:
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            return error_response(str(exc))
        if not isinstance(message, dict):
            return error_response("invalid type: expected internally tagged enum ClientMessage at line 1 column 1")
        kind = message.get("type")
        ids = message.get("ids")
        if kind not in ("subscribe", "unsubscribe"):
            return error_response("missing field `type`" if kind is None else
                                  f"unknown variant `{describe(kind)}`, expected `subscribe` or `unsubscribe`")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return error_response("missing field `ids`" if ids is None else "invalid type: expected a sequence")
        for raw in ids:
            problem = hex_id_error(raw)
            if problem is not None:
                return error_response(problem)
        feed_ids = list(dict.fromkeys(parse_feed_id(i) for i in ids))  # well-formed, checked above
        if kind == "unsubscribe":
            for feed_id in feed_ids:
                self._unsubscribe(feed_id)
            self.peer.unclaim(feed_ids)
            return SUCCESS
        flags = {name: message.get(name, False) for name in
                 ("verbose", "binary", "allow_out_of_order", "ignore_invalid_price_ids")}
        if not all(isinstance(v, bool) for v in flags.values()):
            return error_response("invalid type: expected a boolean")
        unknown = [i for i in feed_ids if i not in self.hub.feeds]
        if unknown and not flags["ignore_invalid_price_ids"]:
            return error_response("Price feed(s) with id(s) [" + ", ".join("0x" + i for i in unknown) + "] not found")
        known = [i for i in feed_ids if i not in unknown]
        refused = self.peer.claim(i for i in known if i not in self.subscriptions)  # the API key's feeds and limit
        if refused is not None:
            return error_response(refused)
        for feed_id in known:
            self._subscribe(feed_id, self._lanes[flags["verbose"]])
        return SUCCESS

    def _subscribe(self, feed_id: FeedId, lane: Subscriber) -> None:
        """Subscribe, or re-subscribe with new flags (Hermes keeps flags per feed)."""
        self._unsubscribe(feed_id)
        self.subscriptions[feed_id] = lane
        self.hub.subscribe(feed_id, lane)

    def _unsubscribe(self, feed_id: FeedId) -> None:
        lane = self.subscriptions.pop(feed_id, None)
        if lane is not None:
            self.hub.unsubscribe(feed_id, lane)
            self.peer.discard_price(feed_id)
