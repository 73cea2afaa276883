"""The ``crypto-prices`` payload, without I/O: which feed each coin reads and the seed's objects, encoded once.

Each object has exactly the seed's fields (``symbol``, ``name``, ``price``,
``change24h``, ``changePercent24h``, ``volume24h``, ``marketCap``,
``lastUpdated``) plus ``stale``. Numbers are written as the exact decimals the
model holds (orjson fragments), never rounded through float.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import orjson

from ...coins import QUOTE, SYMBOL_ALIASES, Coin, decimal_text
from ...model import Feed, FeedId, PriceUpdate
from ..simple_ws import iso_time

ALL_COINS = "crypto-prices"
"""The seed's channel: every coin, one array. ``crypto-prices:BTC`` is one coin's channel."""
EVENT = "crypto-prices"


def coin_channel(symbol: str) -> str:
    return f"{ALL_COINS}:{symbol}"


class CoinFeeds:
    """Which feed serves each coin: its CoinGecko feed when there is one, else the same asset from another source
    (Pyth's ``Crypto.BTC/USD`` from Hermes or the simulated market; MATIC is POL there)."""

    def __init__(self, coins: Sequence[Coin]) -> None:
        self.coins = list(coins)
        self.channels = [ALL_COINS, *(coin_channel(c.symbol) for c in self.coins)]
        self._by_symbol: dict[str, FeedId] = {}
        self._feed_count = -1

    def resolve(self, feeds: Mapping[FeedId, Feed]) -> dict[str, FeedId]:
        """Coin symbol -> feed id, for the coins some feed serves (recomputed when the feed set grows or shrinks)."""
        if len(feeds) != self._feed_count:
            self._feed_count = len(feeds)
            self._by_symbol = self._match(feeds)
        return self._by_symbol

    def _match(self, feeds: Mapping[FeedId, Feed]) -> dict[str, FeedId]:
        by_display: dict[str, FeedId] = {}
        for feed in sorted(feeds.values(), key=lambda f: (f.simulated, f.source, f.id)):  # real before simulated
            if feed.asset_type_key == "crypto":
                by_display.setdefault(feed.display_symbol.upper(), feed.id)
        found = {}
        for coin in self.coins:
            if coin.feed_id in feeds:
                found[coin.symbol] = coin.feed_id
                continue
            for base in (coin.symbol, SYMBOL_ALIASES.get(coin.symbol)):
                if base is not None and (feed_id := by_display.get(f"{base}/{QUOTE}")) is not None:
                    found[coin.symbol] = feed_id
                    break
        return found


def coin_object(coin: Coin, feed: Feed, update: PriceUpdate, stale: bool) -> dict[str, Any]:
    """One coin as the seed sends it, plus ``stale``; figures a source lacks (Pyth has no 24 h volume) are null."""
    market = update.market
    return {
        "symbol": coin.symbol,
        "name": coin.name or feed.attributes.get("name") or coin.symbol,
        "price": orjson.Fragment(decimal_text(update.price, update.expo)),
        "change24h": _number(market.change_24h if market else None),
        "changePercent24h": _number(market.change_percent_24h if market else None),
        "volume24h": _number(market.volume_24h if market else None),
        "marketCap": _number(market.market_cap if market else None),
        "lastUpdated": iso_time(update.publish_time_us),
        "stale": stale,
    }


def _number(value: Decimal | None) -> orjson.Fragment | None:
    if value is None:
        return None
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    mantissa = int("".join(map(str, digits)) or "0")
    return orjson.Fragment(decimal_text(-mantissa if sign else mantissa, exponent))


def encode_event(objects: Iterable[dict[str, Any]]) -> str:
    """The Socket.IO EVENT packet (default namespace) carrying one ``crypto-prices`` array: ``2["crypto-prices",[…]]``.

    Built once per broadcast; every connection gets the same string.
    """
    return event_head(objects) + "]"


def event_head(objects: Iterable[dict[str, Any]]) -> str:
    """The packet without its closing bracket, where connection state recovery adds the offset argument."""
    return '2["' + EVENT + '",' + orjson.dumps(list(objects)).decode()


class Snapshot:
    """The current objects of every coin, read from the hub's view at call time."""

    def __init__(self, coins: CoinFeeds, feeds: Callable[[], Mapping[FeedId, Feed]],
                 latest: Callable[[], Mapping[FeedId, PriceUpdate]], is_stale: Callable[[FeedId], bool]) -> None:
        self.coins = coins
        self._feeds = feeds
        self._latest = latest
        self._is_stale = is_stale

    def objects(self, symbols: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The objects of ``symbols`` (default: every coin), in the configured order; coins with no price yet are left
        out."""
        feeds, latest = self._feeds(), self._latest()
        resolved = self.coins.resolve(feeds)
        wanted = None if symbols is None else set(symbols)
        out = []
        for coin in self.coins.coins:
            feed_id = resolved.get(coin.symbol)
            if feed_id is None or (wanted is not None and coin.symbol not in wanted):
                continue
            update = latest.get(feed_id)
            if update is not None:
                out.append(coin_object(coin, feeds[feed_id], update, self._is_stale(feed_id)))
        return out

    def stale_flags(self) -> tuple[tuple[str, bool], ...]:
        """Each priced coin's stale flag: a change is worth a broadcast even without a new price."""
        return tuple((o["symbol"], o["stale"]) for o in self.objects())
