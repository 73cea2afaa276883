"""Example client for Pyth price data over pricefeed's client WebSocket (seed 000).

    python examples/pyth_only_subscription.py                      # BTC/USD and ETH/USD
    python examples/pyth_only_subscription.py --url ws://host:8765 0xe62df6c8...
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json

from websockets.asyncio.client import connect

BTC_USD = "e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43"
ETH_USD = "ff61491a931112ddf1bd8147cd1b641375f79f5825126d665480874634fd0ace"


async def main(url: str, feed_ids: list[str], count: int | None) -> None:
    async with connect(url) as ws:
        welcome = json.loads(await ws.recv())
        print(f"connected as {welcome['client_id']}")
        await ws.send(json.dumps({"type": "get_available_feeds"}))
        await ws.send(json.dumps({"type": "subscribe_multiple",
                                  "subscriptions": [{"feed_id": feed_id} for feed_id in feed_ids]}))
        symbols: dict[str, str] = {}
        received = 0
        async for raw in ws:
            message = json.loads(raw)
            kind = message["type"]
            if kind == "available_feeds":
                symbols = {feed["id"]: feed["symbol"] for feed in message["feeds"]}
            elif kind == "subscription_confirmed":
                print(f"subscribed to {symbols.get(message['feed_id'], message['feed_id'])}")
            elif kind == "price_update":
                data = message["data"]
                print(f"{data['publish_time']}  {symbols.get(data['id'], data['id'][:8]):>10}  "
                      f"{data['price']:>14.6f} ± {data['conf']:.6f}  ({data['status']})")
                received += 1
                if count is not None and received >= count:
                    return
            elif kind == "error":
                print(f"error: {message['message']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("feed_ids", nargs="*", default=[BTC_USD, ETH_USD], help="Pyth feed ids (hex, 0x optional)")
    parser.add_argument("--url", default="ws://localhost:8765", help="pricefeed's client WebSocket")
    parser.add_argument("--count", type=int, default=None, help="stop after this many price updates")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.url, args.feed_ids, args.count))
