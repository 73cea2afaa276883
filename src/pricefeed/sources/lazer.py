"""Prices from Pyth Lazer, over pricefeed's own resilient client (``pricefeed.client``).

The client holds ``--lazer-connections`` connections round-robin over the
``--lazer-url`` endpoints and de-duplicates them; this source subscribes once
to every property on ``--lazer-channel`` and turns each ``streamUpdated``
feed into a :class:`~pricefeed.model.PriceUpdate`. A Lazer feed Hermes also
publishes becomes that Hermes feed (Lazer ``Crypto.BTC/USD`` is Hermes'
BTC/USD); any other one gets a feed of its own, ``pyth_lazer_id`` in its
attributes. The token is never logged: endpoints appear without their query.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from ..bus.base import Sink
from ..catalog import KNOWN_FEEDS
from ..client import (
    PROPERTIES,
    Client,
    ClientBuilder,
    ConnectionState,
    LazerFeed,
    LazerSubscription,
    ServerError,
    StreamUpdated,
    SubscriptionError,
)
from ..lazer_ids import KNOWN_LAZER_IDS, LAZER_ID_ATTRIBUTE, feed_id_for_lazer
from ..model import Feed, FeedId, MarketDetails, PriceUpdate, Status, parse_feed_id
from .base import Source, SourceState
from .http import redact_url

if TYPE_CHECKING:
    from ..config import Settings

log = logging.getLogger(__name__)

STATE_CHECK_INTERVAL_S = 1.0


def _mantissa(value: Decimal | None, expo: int) -> int | None:
    return None if value is None else int(value.scaleb(-expo))


class LazerSource(Source):
    name = "lazer"

    def __init__(self, sink: Sink, urls: Sequence[str], token: SecretStr | str | None = None,
                 channel: str = "fixed_rate@200ms", connections: int = 4, feeds: Sequence[str] = ()) -> None:
        super().__init__(sink)
        self.urls = list(urls)
        secret = token.get_secret_value() if isinstance(token, SecretStr) else token
        self.channel = channel
        self.client: Client = (ClientBuilder(secret).with_endpoints(self.urls).with_num_connections(connections)
                               .build())
        self.lazer_ids, self.symbols = resolve_feeds(feeds)
        self._feed_of: dict[int, FeedId] = {}
        """Lazer id -> pricefeed feed, for every feed registered so far."""
        self._symbol_of_subscription: dict[int, str] = {}
        self._last_publish: dict[FeedId, int] = {}

    @classmethod
    def from_settings(cls, sink: Sink, settings: Settings) -> LazerSource:
        return cls(sink, settings.lazer_url, settings.lazer_token, settings.lazer_channel,
                   settings.lazer_connections, settings.feeds)

    async def start(self) -> None:
        by_symbol = {known.symbol: known for known in KNOWN_FEEDS}
        feeds = []
        for symbol, lazer_id in KNOWN_LAZER_IDS.items():
            known = by_symbol.get(symbol)
            if lazer_id in self.lazer_ids and known is not None:
                attributes = {**known.attributes(), LAZER_ID_ATTRIBUTE: str(lazer_id)}
                feeds.append(Feed(known.id, known.symbol, known.expo, self.name, dict(sorted(attributes.items()))))
                self._feed_of[lazer_id] = known.id
        self.sink.add_feeds(feeds)
        receiver = await self.client.start()
        if self.lazer_ids:
            await self.client.subscribe(self._subscription(1, price_feed_ids=self.lazer_ids))
        for number, symbol in enumerate(self.symbols, start=2):  # one per symbol: its answers name only the id
            self._symbol_of_subscription[number] = symbol
            await self.client.subscribe(self._subscription(number, symbols=[symbol]))
        self.spawn(self._consume(receiver), "lazer-source")
        self.spawn(self._watch_connections(), "lazer-source-state")
        log.info("lazer source: %d feeds on %s over %d connections to %s", len(self.lazer_ids) + len(self.symbols),
                 self.channel, self.client.num_connections, ", ".join(redact_url(u) for u in self.urls))

    async def stop(self) -> None:
        await self.client.close()
        await super().stop()

    def _subscription(self, number: int, **feeds: Any) -> LazerSubscription:
        return LazerSubscription(number, properties=PROPERTIES, channel=self.channel, ignore_invalid_feeds=True,
                                 **feeds)

    async def _consume(self, receiver: Any) -> None:
        async for message in receiver:
            if isinstance(message, StreamUpdated):
                self.set_state(SourceState.CONNECTED)
                updates = [u for u in (self._update(message, feed) for feed in message.feeds) if u is not None]
                self.mark_message(len(updates))
                if updates:
                    self.mark_published(max(u.publish_time_us for u in updates))
                    self.sink.publish_many(updates)
                    # One ingest pass per Lazer message: a pass keeps only each feed's newest price, so a backlog
                    # of ticks (after a stall) read in one go would otherwise reach clients as its last tick only.
                    await asyncio.sleep(0)
            elif isinstance(message, SubscriptionError | ServerError):
                self.last_error = f"lazer: {message.error}"
                log.warning("lazer source: %s", message.error)

    async def _watch_connections(self) -> None:
        """The source is connected while any of its connections is."""
        while True:
            stats = self.client.stats()
            if any(s.state == ConnectionState.CONNECTED for s in stats):
                self.set_state(SourceState.CONNECTED)
            elif any(s.reconnects for s in stats):
                errors = [s.last_error for s in stats if s.last_error]
                self.set_state(SourceState.RECONNECTING, errors[0] if errors else None)
            self.reconnects = sum(s.reconnects for s in stats)
            await asyncio.sleep(STATE_CHECK_INTERVAL_S)

    def _feed_for(self, subscription_id: int, feed: LazerFeed) -> FeedId:
        """The pricefeed feed of a Lazer feed, registering a new one the first time it is seen."""
        feed_id = self._feed_of.get(feed.price_feed_id)
        if feed_id is not None:
            return feed_id
        lazer_id = feed.price_feed_id
        symbol = self._symbol_of_subscription.get(subscription_id) or f"Lazer.{lazer_id}"
        known = next((k for k in KNOWN_FEEDS if k.symbol == symbol), None)
        feed_id = known.id if known is not None else feed_id_for_lazer(lazer_id)
        attributes = known.attributes() if known is not None else {"symbol": symbol}
        attributes[LAZER_ID_ATTRIBUTE] = str(lazer_id)
        expo = feed.exponent if feed.exponent is not None else -8
        self.sink.add_feeds([Feed(feed_id, symbol, expo, self.name, dict(sorted(attributes.items())))])
        self._feed_of[lazer_id] = feed_id
        return feed_id

    def _update(self, message: StreamUpdated, feed: LazerFeed) -> PriceUpdate | None:
        """A Lazer feed entry as a price; None without a price (off hours, a new feed)."""
        expo = feed.exponent
        price = None if expo is None else _mantissa(feed.price, expo)
        if price is None or expo is None:
            return None
        feed_id = self._feed_for(message.subscription_id, feed)
        publish_time = feed.feed_update_timestamp_us or message.timestamp_us
        if publish_time is None:
            return None
        conf = _mantissa(feed.confidence, expo) or 0
        previous = self._last_publish.get(feed_id)
        self._last_publish[feed_id] = publish_time
        return PriceUpdate(
            feed_id=feed_id, price=price, conf=conf, expo=expo, publish_time_us=publish_time,
            ema_price=_mantissa(feed.ema_price, expo) or price, ema_conf=_mantissa(feed.ema_confidence, expo) or conf,
            status=Status.HALTED if feed.market_session == "closed" else Status.TRADING,
            prev_publish_time_us=previous, source=self.name,
            details=MarketDetails(
                best_bid=_mantissa(feed.best_bid_price, expo), best_ask=_mantissa(feed.best_ask_price, expo),
                publisher_count=feed.publisher_count, funding_rate=feed.funding_rate,
                funding_timestamp_us=feed.funding_timestamp_us, funding_rate_interval_us=feed.funding_rate_interval_us,
                market_session=feed.market_session))

    def status(self) -> dict[str, Any]:
        status = super().status()
        status.update(channel=self.channel, feeds=len(self._feed_of), connections=[
            {"endpoint": s.endpoint, "state": str(s.state), "reconnects": s.reconnects, "messages": s.messages,
             "duplicates": s.duplicates, "last_error": s.last_error} for s in self.client.stats()])
        return status


def resolve_feeds(wanted: Sequence[str]) -> tuple[list[int], list[str]]:
    """``--feeds`` as Lazer ids and symbols: a number is a Lazer id, a known symbol or Hermes id becomes its Lazer
    id, any other symbol is asked for by symbol; by default every feed with a known Lazer id."""
    if not wanted:
        return list(KNOWN_LAZER_IDS.values()), []
    by_feed_id = {known.id: known.symbol for known in KNOWN_FEEDS}
    by_name = {known.display_symbol.lower(): known.symbol for known in KNOWN_FEEDS}
    by_name.update((known.symbol.lower(), known.symbol) for known in KNOWN_FEEDS)
    ids: list[int] = []
    symbols: list[str] = []
    for item in wanted:
        item = item.strip()
        if item.isdigit():
            ids.append(int(item))
            continue
        symbol = by_name.get(item.lower(), item)
        with contextlib.suppress(ValueError):  # not a feed id
            symbol = by_feed_id.get(parse_feed_id(item), symbol)
        lazer_id = KNOWN_LAZER_IDS.get(symbol)
        if lazer_id is not None:
            ids.append(lazer_id)
        else:
            symbols.append(symbol)
    return list(dict.fromkeys(ids)), list(dict.fromkeys(symbols))
