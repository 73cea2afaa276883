"""The two baseline servers pricefeed is compared with, run on the same scenario in the same bench run.

Both speak the part of the seed-000 protocol the load clients use (``subscribe_multiple`` ->
``subscription_confirmed``, then ``price_update`` messages of the same shape), and run the same kind of
simulated market: ``--feeds`` feeds, every one updating once per slot of ``--interval`` seconds, with
``publish_time`` the wall clock when the slot was produced (ISO, milliseconds, truncated), exactly
like pricefeed's simulated source. Like it, a ticker that falls behind skips slots instead of bursting.

- ``ceiling``: a minimal picows server. Each update is encoded once (orjson) and sent with one
  ``transport.send`` per message per subscribed client: the cheapest way to do one send per delivery.
- ``naive``: the server seed 000 suggests: the ``websockets`` library, and for every update and every
  subscribed client ``await ws.send(json.dumps(message))``. It keeps a feed -> clients index rather
  than scanning every client, which only makes it faster than the seed.

    python -m benchmarks.baselines ceiling --port 9001 --feeds 100 --interval 0.02
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import time
import uuid
from typing import Any

import orjson
from picows import WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, ws_create_server

from .common import feed_ids, iso_time

WELCOME = "Connected to Pyth Price Feed Websocket Server"


class Market:
    """A random walk per feed, one update per feed per slot, in the seed-000 ``data`` shape."""

    def __init__(self, ids: list[str], seed: int) -> None:
        self.ids = ids
        self.rng = random.Random(seed)
        self.prices = [10.0 + i for i in range(len(ids))]
        self.emas = list(self.prices)

    def tick(self) -> list[dict[str, Any]]:
        publish_time = iso_time(time.time_ns() // 1000)
        rng = self.rng
        updates = []
        for i, feed_id in enumerate(self.ids):
            price = self.prices[i] = self.prices[i] * math.exp(rng.gauss(0.0, 1e-4))
            ema = self.emas[i] = self.emas[i] + 0.001 * (price - self.emas[i])
            conf = price * (0.0002 + 0.0003 * rng.random())
            updates.append({"id": feed_id, "price": round(price, 8), "conf": round(conf, 8), "expo": -8,
                            "status": "trading", "publish_time": publish_time, "ema_price": round(ema, 8),
                            "ema_conf": round(price * 0.0005, 8)})
        return updates


async def ticker(interval_s: float, market: Market, publish: Any) -> None:
    """Call ``publish(updates)`` once per slot; a late ticker skips slots, it never bursts."""
    loop = asyncio.get_running_loop()
    next_tick = loop.time() + interval_s
    while True:
        await asyncio.sleep(max(0.0, next_tick - loop.time()))
        next_tick = max(next_tick + interval_s, loop.time())
        await publish(market.tick())


# -- ceiling: picows, encode once, one send per message per client ------------------------------


class _CeilingConnection(WSListener):
    def __init__(self, by_feed: dict[str, set[WSTransport]]) -> None:
        self.by_feed = by_feed
        self.feeds: set[str] = set()

    def on_ws_connected(self, transport: WSTransport) -> None:
        transport.send(WSMsgType.TEXT, orjson.dumps(
            {"type": "connection_established", "client_id": str(uuid.uuid4()), "message": WELCOME}))

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if frame.msg_type != WSMsgType.TEXT:
            return
        message = orjson.loads(frame.get_payload_as_bytes())
        if message.get("type") != "subscribe_multiple":
            return
        for entry in message["subscriptions"]:
            feed_id = entry["feed_id"]
            self.feeds.add(feed_id)
            self.by_feed.setdefault(feed_id, set()).add(transport)
            transport.send(WSMsgType.TEXT, orjson.dumps({"type": "subscription_confirmed", "feed_id": feed_id}))

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        for feed_id in self.feeds:
            self.by_feed.get(feed_id, set()).discard(transport)


async def run_ceiling(args: argparse.Namespace) -> None:
    by_feed: dict[str, set[WSTransport]] = {}

    def new_connection(request: WSUpgradeRequest) -> WSListener:
        return _CeilingConnection(by_feed)

    server = await ws_create_server(new_connection, args.host, args.port, websocket_handshake_timeout=30)
    text = WSMsgType.TEXT

    async def publish(updates: list[dict[str, Any]]) -> None:
        for data in updates:
            subscribers = by_feed.get(data["id"])
            if not subscribers:
                continue
            payload = orjson.dumps({"type": "price_update", "data": data})
            for transport in subscribers:
                transport.send(text, payload)

    async with server:
        await ticker(args.interval, Market(feed_ids(args.feeds), args.seed), publish)


# -- naive: websockets, json.dumps and await send per client ----------------------------------


async def run_naive(args: argparse.Namespace) -> None:
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.exceptions import ConnectionClosed

    by_feed: dict[str, set[ServerConnection]] = {}

    async def handler(ws: ServerConnection) -> None:
        feeds: set[str] = set()
        await ws.send(json.dumps({"type": "connection_established", "client_id": str(uuid.uuid4()),
                                  "message": WELCOME}))
        try:
            async for raw in ws:
                message = json.loads(raw)
                if message.get("type") != "subscribe_multiple":
                    continue
                for entry in message["subscriptions"]:
                    feed_id = entry["feed_id"]
                    feeds.add(feed_id)
                    by_feed.setdefault(feed_id, set()).add(ws)
                    await ws.send(json.dumps({"type": "subscription_confirmed", "feed_id": feed_id}))
        except ConnectionClosed:
            pass
        finally:
            for feed_id in feeds:
                by_feed.get(feed_id, set()).discard(ws)

    async def publish(updates: list[dict[str, Any]]) -> None:
        for data in updates:
            message = {"type": "price_update", "data": data}
            for ws in list(by_feed.get(data["id"], ())):
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(json.dumps(message))

    async with serve(handler, args.host, args.port, open_timeout=30):
        await ticker(args.interval, Market(feed_ids(args.feeds), args.seed), publish)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=("ceiling", "naive"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--feeds", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.1, help="seconds per slot")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    import uvloop

    args = parse_args(argv)
    uvloop.run(run_ceiling(args) if args.kind == "ceiling" else run_naive(args))


if __name__ == "__main__":
    main()
