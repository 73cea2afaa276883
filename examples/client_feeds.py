"""pricefeed's resilient client on seed 000, Hermes' WebSocket or Hermes' event stream.

    python examples/client_feeds.py seed000 ws://localhost:8765 ws://other-host:8765
    python examples/client_feeds.py hermes_ws wss://hermes.pyth.network/ws ws://localhost:8080/ws
    python examples/client_feeds.py hermes_sse https://hermes.pyth.network http://localhost:8080
"""

from __future__ import annotations

import argparse
import asyncio

from pricefeed.client import ClientBuilder, FeedSubscription, PriceUpdate

BTC_USD = "e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43"
ETH_USD = "ff61491a931112ddf1bd8147cd1b641375f79f5825126d665480874634fd0ace"


async def main(protocol: str, urls: list[str], api_key: str | None, count: int | None) -> None:
    client = ClientBuilder(api_key).with_protocol(protocol).with_endpoints(urls).build()
    async with client:
        await client.subscribe(FeedSubscription(1, [BTC_USD, ETH_USD]))
        received = 0
        async for message in client:  # each update once, however many connections carried it
            if isinstance(message, PriceUpdate):
                name = {BTC_USD: "BTC/USD", ETH_USD: "ETH/USD"}[message.feed_id]
                print(f"{name} {message.price} ± {message.conf} at {message.publish_time_us} µs")
                received += 1
                if received == count:
                    break
            else:
                print(message)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("protocol", choices=("seed000", "hermes_ws", "hermes_sse"))
    parser.add_argument("urls", nargs="+")
    parser.add_argument("--api-key", help="a Hermes API key (Authorization: Bearer)")
    parser.add_argument("--count", type=int, default=None, help="stop after this many updates")
    args = parser.parse_args()
    asyncio.run(main(args.protocol, args.urls, args.api_key, args.count))
