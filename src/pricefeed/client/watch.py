"""``pricefeed watch URL...``: a live terminal table of the prices the resilient client receives.

Point it at any Lazer ``/v1/stream``, seed-000 WebSocket, Hermes ``/ws`` or
Hermes event stream (Pyth's own or any pricefeed): one row per feed, and one
per connection with its health (state, reconnects, messages, duplicates
dropped, last error).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from ..catalog import KNOWN_FEEDS
from ..lazer_ids import KNOWN_LAZER_IDS
from .builder import ClientBuilder
from .client import Client
from .messages import Message, PriceUpdate, ServerError, StreamUpdated, SubscriptionError
from .protocols import PROTOCOLS, guess_protocol
from .requests import CHANNELS, PROPERTIES, FeedSubscription, LazerSubscription, Subscription

DEFAULT_FEEDS = ("Crypto.BTC/USD", "Crypto.ETH/USD", "Crypto.SOL/USD")


@dataclass
class Row:
    name: str
    price: Decimal | None = None
    conf: Decimal | None = None
    ema: Decimal | None = None
    bid: Decimal | None = None
    ask: Decimal | None = None
    publishers: int | None = None
    publish_time_us: int | None = None
    updates: int = 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("urls", nargs="+", metavar="URL", help="endpoints of one protocol (connections go "
                        "round-robin over them)")
    parser.add_argument("--protocol", choices=PROTOCOLS, help="default: guessed from the first URL (http(s): "
                        "hermes_sse, .../v1/stream: lazer, .../ws: hermes_ws, other ws(s): seed000)")
    parser.add_argument("--feed", action="append", metavar="FEED",
                        help="a feed: Lazer id or symbol for Lazer, 64-hex id or symbol otherwise (repeatable; "
                             "default: BTC, ETH and SOL)")
    parser.add_argument("--token", help="access token (Lazer, or a Hermes API key)")
    parser.add_argument("--auth", choices=("header", "query", "subprotocol"), default="header",
                        help="how Lazer gets the token (default: header)")
    parser.add_argument("--channel", choices=CHANNELS, default="fixed_rate@200ms", help="Lazer channel")
    parser.add_argument("--connections", type=int, default=4, help="redundant connections (default: 4)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds of silence that replace a connection")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds (default: never)")


def _hex_ids(feeds: Sequence[str]) -> dict[str, str]:
    """Feed id -> name, from ids or (full or short) symbols of pricefeed's catalogue."""
    by_name = {k.symbol.lower(): k for k in KNOWN_FEEDS} | {k.display_symbol.lower(): k for k in KNOWN_FEEDS}
    chosen: dict[str, str] = {}
    for item in feeds:
        known = by_name.get(item.lower())
        if known is not None:
            chosen[known.id] = known.display_symbol
        else:
            feed_id = item.removeprefix("0x").lower()
            name = next((k.display_symbol for k in KNOWN_FEEDS if k.id == feed_id), feed_id[:10] + "…")
            chosen[feed_id] = name
    return chosen


def subscription_for(protocol: str, feeds: Sequence[str], channel: str) -> tuple[Subscription, dict[str, str]]:
    """The request for ``feeds``, and the name to show for each key a message carries (feed id or Lazer id)."""
    if protocol != "lazer":
        names = _hex_ids(feeds)
        return FeedSubscription(1, list(names)), names
    ids = [int(f) for f in feeds if f.isdigit()]
    symbols = [f for f in feeds if not f.isdigit()]
    names = {str(i): next((s.rsplit(".", 1)[-1] for s, n in KNOWN_LAZER_IDS.items() if n == i), f"#{i}") for i in ids}
    ids += [KNOWN_LAZER_IDS[s] for s in symbols if s in KNOWN_LAZER_IDS]
    names.update({str(KNOWN_LAZER_IDS[s]): s.rsplit(".", 1)[-1] for s in symbols if s in KNOWN_LAZER_IDS})
    unknown = [s for s in symbols if s not in KNOWN_LAZER_IDS]
    if unknown:
        raise SystemExit(f"pricefeed watch: give these Lazer feeds by id: {', '.join(unknown)}")
    return LazerSubscription(1, price_feed_ids=list(dict.fromkeys(ids)), properties=PROPERTIES, channel=channel,
                             ignore_invalid_feeds=True), names


class Watch:
    def __init__(self, client: Client, names: dict[str, str]) -> None:
        self.client = client
        self.rows = {key: Row(name) for key, name in names.items()}
        self.received = 0
        self.errors: list[str] = []
        self.started = time.monotonic()

    def take(self, message: Message) -> None:
        self.received += 1
        if isinstance(message, PriceUpdate):
            row = self.rows.setdefault(message.feed_id, Row(message.feed_id[:10] + "…"))
            row.price, row.conf, row.ema = message.price, message.conf, message.ema_price
            row.publish_time_us = message.publish_time_us
            row.updates += 1
        elif isinstance(message, StreamUpdated):
            for feed in message.feeds:
                row = self.rows.setdefault(str(feed.price_feed_id), Row(f"#{feed.price_feed_id}"))
                row.price, row.conf, row.ema = feed.price, feed.confidence, feed.ema_price
                row.bid, row.ask, row.publishers = feed.best_bid_price, feed.best_ask_price, feed.publisher_count
                row.publish_time_us = feed.feed_update_timestamp_us or message.timestamp_us
                row.updates += 1
        elif isinstance(message, SubscriptionError | ServerError):
            self.errors = [*self.errors[-2:], message.error]

    def render(self) -> Group:
        now_us = time.time_ns() // 1000
        prices = Table(title=f"pricefeed watch · {self.client.protocol.name} · {self.received} messages in "
                             f"{time.monotonic() - self.started:.0f} s (de-duplicated)", expand=False)
        for column in ("feed", "price", "conf", "ema", "bid", "ask", "pubs", "age", "updates"):
            prices.add_column(column, justify="left" if column == "feed" else "right")
        for row in self.rows.values():
            age = "-" if row.publish_time_us is None else f"{(now_us - row.publish_time_us) / 1e6:.1f}s"
            prices.add_row(row.name, *(_show(v) for v in (row.price, row.conf, row.ema, row.bid, row.ask,
                                                          row.publishers)), age, str(row.updates))
        health = Table(title="connections")
        for column in ("#", "endpoint", "state", "reconnects", "messages", "duplicates", "last error"):
            health.add_column(column)
        for stats in self.client.stats():
            health.add_row(str(stats.index), stats.endpoint, str(stats.state), str(stats.reconnects),
                           str(stats.messages), str(stats.duplicates), stats.last_error or "")
        parts: list[Table | str] = [prices, health]
        parts += [f"[red]server: {error}[/red]" for error in self.errors]
        return Group(*parts)


def _show(value: Decimal | int | None) -> str:
    return "-" if value is None else str(value)


async def watch(args: argparse.Namespace, console: Console | None = None) -> int:
    protocol = args.protocol or guess_protocol(args.urls[0])
    request, names = subscription_for(protocol, args.feed or list(DEFAULT_FEEDS), args.channel)
    client = (ClientBuilder(args.token).with_protocol(protocol).with_auth(args.auth).with_endpoints(args.urls)
              .with_num_connections(args.connections).with_timeout(args.timeout).build())
    view = Watch(client, names)
    async with client:
        await client.subscribe(request)
        with Live(console=console or Console(), refresh_per_second=4, get_renderable=view.render):
            async def consume() -> None:
                async for message in client:
                    view.take(message)

            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(consume(), args.duration)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pricefeed watch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return asyncio.run(watch(args))
    except KeyboardInterrupt:
        return 130
