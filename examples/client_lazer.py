"""pricefeed's resilient client on Pyth Lazer's protocol: redundant connections, one de-duplicated stream.

    python examples/client_lazer.py --token "$PYTH_PRO_TOKEN"                  # Pyth Lazer's public endpoints
    python examples/client_lazer.py --url ws://localhost:8080/v1/stream        # any pricefeed
"""

from __future__ import annotations

import argparse
import asyncio

from pricefeed.client import ClientBuilder, LazerSubscription, StreamUpdated
from pricefeed.client.protocols.lazer import DEFAULT_ENDPOINTS


async def main(urls: list[str], token: str | None, count: int | None) -> None:
    client = ClientBuilder(token).with_endpoints(urls).with_num_connections(4).build()
    async with client:
        await client.subscribe(LazerSubscription(1, price_feed_ids=[1, 2], channel="fixed_rate@200ms",
                                                 properties=["price", "exponent", "feedUpdateTimestamp"]))
        received = 0
        async for message in client:  # each message once, however many connections carried it
            if not isinstance(message, StreamUpdated):
                print(message)
                continue
            prices = ", ".join(f"#{feed.price_feed_id} {feed.price}" for feed in message.feeds)
            print(f"{message.timestamp_us}: {prices}")
            received += 1
            if received == count:
                break
        for stats in client.stats():
            print(f"connection {stats.index} {stats.endpoint}: {stats.state}, {stats.messages} messages, "
                  f"{stats.duplicates} duplicates dropped")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", action="append", help="a Lazer endpoint (repeatable; default: Pyth's)")
    parser.add_argument("--token", help="the access token (Authorization: Bearer)")
    parser.add_argument("--count", type=int, default=None, help="stop after this many updates")
    args = parser.parse_args()
    asyncio.run(main(args.url or list(DEFAULT_ENDPOINTS), args.token, args.count))
