"""Symbols as seed-004 clients write them: ``RELIANCE``, ``NSE:RELIANCE``, ``BTC/USD``, ``BTC``,
``Crypto.BTC/USD`` or a feed id, in any case.

Each feed has one canonical symbol, which every message about it carries: an
exchange's trading symbol (``RELIANCE``) where it has one, else the short
symbol (``BTC/USD``). Where two feeds claim a name, a real feed wins over a
simulated one, then the first registered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from ...model import Feed, FeedId

TRADING_SYMBOL = "trading_symbol"
"""The attribute an exchange feed's trading symbol is in (``RELIANCE``); with ``exchange`` (``NSE``)."""
REBUILD_AT_MOST_EVERY_S = 1.0


def canonical_symbol(feed: Feed) -> str:
    return feed.attributes.get(TRADING_SYMBOL) or feed.display_symbol


def names_of(feed: Feed) -> tuple[list[str], list[str]]:
    """A feed's names, strong ones first (id, symbols), then weak ones (a base asset, ``BTC``)."""
    strong = [feed.id, feed.symbol, feed.display_symbol, canonical_symbol(feed)]
    trading, exchange = feed.attributes.get(TRADING_SYMBOL), feed.attributes.get("exchange")
    if trading and exchange:
        strong.append(f"{exchange}:{trading}")
    base = feed.attributes.get("base")
    return strong, [base] if base else []


class SymbolIndex:
    """Resolves a client's symbol to a feed; rebuilt when the feed catalogue grows or a name is not found."""

    def __init__(self, feeds: Mapping[FeedId, Feed], clock: Callable[[], float] = time.monotonic) -> None:
        self._feeds = feeds
        self._clock = clock
        self._by_name: dict[str, FeedId] = {}
        self._symbols: dict[FeedId, str] = {}
        self._built_for = -1
        self._built_at = -REBUILD_AT_MOST_EVERY_S

    def resolve(self, text: str) -> FeedId | None:
        key = text.strip().lower()
        if len(key) == 66 and key.startswith("0x"):  # a feed id as Hermes writes it
            key = key[2:]
        if len(self._feeds) != self._built_for:
            self._rebuild()
        found = self._by_name.get(key)
        if found is None and self._clock() - self._built_at >= REBUILD_AT_MOST_EVERY_S:
            self._rebuild()  # a feed's metadata may have changed
            found = self._by_name.get(key)
        return found

    def symbol_of(self, feed_id: FeedId) -> str:
        symbol = self._symbols.get(feed_id)
        if symbol is None:
            feed = self._feeds.get(feed_id)
            symbol = feed_id if feed is None else canonical_symbol(feed)
            if feed is not None:
                self._symbols[feed_id] = symbol
        return symbol

    def known(self) -> list[str]:
        """Every feed's canonical symbol, sorted."""
        if len(self._feeds) != self._built_for:
            self._rebuild()
        return sorted(set(self._symbols.values()), key=str.lower)

    def _rebuild(self) -> None:
        feeds = list(self._feeds.values())
        by_name: dict[str, FeedId] = {}
        rank: dict[str, tuple[int, int]] = {}  # lower is better: (weak name, simulated)
        for strength in (0, 1):
            for feed in feeds:
                for name in names_of(feed)[strength]:
                    key = name.lower()
                    candidate = (strength, int(feed.simulated))
                    if key not in rank or candidate < rank[key]:
                        by_name[key], rank[key] = feed.id, candidate
        self._by_name = by_name
        self._symbols = {feed.id: canonical_symbol(feed) for feed in feeds}
        self._built_for = len(feeds)
        self._built_at = self._clock()
