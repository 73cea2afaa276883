"""Hermes' WebSocket ``/ws`` (reference/hermes.md section 4), as used by price-service-client and pythclient.

``subscribe``/``unsubscribe`` with per-feed flags, a ``response`` to each, and
one ``price_update`` message per subscribed feed per pass. The server's
WebSocket pings come from uvicorn (every 20 s), within the 33 s that
price-service-client waits for one.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..hub import Codec, Hub
from ..model import Feed, FeedId, PriceUpdate, parse_feed_id
from .hermes_json import hex_id_error, price_feed

if TYPE_CHECKING:
    from ..app import App

MAX_MESSAGE_BYTES = 1025 * 1024
SUCCESS = orjson.dumps({"type": "response", "status": "success"})


def error_response(message: str) -> bytes:
    return orjson.dumps({"type": "response", "status": "error", "error": message})


class PriceUpdateCodec:
    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose

    def encode_update(self, update: PriceUpdate, feed: Feed) -> bytes:
        return orjson.dumps({"type": "price_update", "price_feed": price_feed(update, verbose=self.verbose)})


PLAIN, VERBOSE = PriceUpdateCodec(verbose=False), PriceUpdateCodec(verbose=True)


class _Lane:
    """The hub sees one subscriber per message variant; both feed the same connection."""

    def __init__(self, connection: HermesWsSession, codec: Codec) -> None:
        self.connection = connection
        self.codec = codec

    def deliver(self, frames: dict[FeedId, bytes]) -> None:
        self.connection.prices.update(frames)
        self.connection.wake.set()


class HermesWsSession:
    """One ``/ws`` client: its subscriptions and what waits to be sent, without the socket."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.prices: dict[FeedId, bytes] = {}
        self.replies: deque[bytes] = deque()
        self.wake = asyncio.Event()
        self.subscriptions: dict[FeedId, _Lane] = {}
        self._lanes = {False: _Lane(self, PLAIN), True: _Lane(self, VERBOSE)}

    def receive(self, data: str | bytes) -> None:
        self.replies.append(self._handle(data))
        self.wake.set()

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
                                  f"unknown variant `{kind}`, expected `subscribe` or `unsubscribe`")
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
            return SUCCESS
        flags = {name: message.get(name, False) for name in
                 ("verbose", "binary", "allow_out_of_order", "ignore_invalid_price_ids")}
        if not all(isinstance(v, bool) for v in flags.values()):
            return error_response("invalid type: expected a boolean")
        unknown = [i for i in feed_ids if i not in self.hub.feeds]
        if unknown and not flags["ignore_invalid_price_ids"]:
            return error_response("Price feed(s) with id(s) [" + ", ".join("0x" + i for i in unknown) + "] not found")
        for feed_id in feed_ids:
            if feed_id not in unknown:
                self._subscribe(feed_id, self._lanes[flags["verbose"]])
        return SUCCESS

    def _subscribe(self, feed_id: FeedId, lane: _Lane) -> None:
        """Subscribe, or re-subscribe with new flags (Hermes keeps flags per feed)."""
        self._unsubscribe(feed_id)
        self.subscriptions[feed_id] = lane
        self.hub.subscribe(feed_id, lane)

    def _unsubscribe(self, feed_id: FeedId) -> None:
        lane = self.subscriptions.pop(feed_id, None)
        if lane is not None:
            self.hub.unsubscribe(feed_id, lane)
            self.prices.pop(feed_id, None)

    def close(self) -> None:
        for feed_id in list(self.subscriptions):
            self._unsubscribe(feed_id)

    def outgoing(self) -> list[bytes]:
        """Replies first, then one price message per feed; everything queued is taken."""
        messages = list(self.replies) + list(self.prices.values())
        self.replies.clear()
        self.prices.clear()
        self.wake.clear()
        return messages


async def hermes_websocket(websocket: WebSocket, app: App) -> None:
    await websocket.accept()
    session = HermesWsSession(app.hub)

    async def read() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("text") if message.get("text") is not None else message.get("bytes")
            if data is None:
                continue
            if len(data) > MAX_MESSAGE_BYTES:
                await websocket.close(1009, "message too big")
                return
            session.receive(data)

    async def write() -> None:
        while True:
            await session.wake.wait()
            for payload in session.outgoing():
                await websocket.send_text(payload.decode())

    reader = asyncio.create_task(read())
    writer = asyncio.create_task(write())
    try:
        await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
    except WebSocketDisconnect:
        pass
    finally:
        reader.cancel()
        writer.cancel()
        await asyncio.gather(reader, writer, return_exceptions=True)
        session.close()
