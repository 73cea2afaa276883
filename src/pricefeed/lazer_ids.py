"""Lazer's numeric feed ids for pricefeed's feeds, and pricefeed feed ids for Lazer's feeds.

A feed Lazer also publishes keeps Lazer's id (Lazer ``Crypto.BTC/USD`` is id 1
and Hermes' BTC/USD feed), so a Lazer client asks pricefeed for the ids it
already uses. Any other feed gets a stable id of its own, derived from its
feed id in a range far above Lazer's (which are below a few thousand), and a
Lazer feed with no Hermes equivalent gets a feed id derived from its Lazer id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from .model import Feed, FeedId

KNOWN_LAZER_IDS: Mapping[str, int] = {
    "Crypto.BTC/USD": 1,
    "Crypto.ETH/USD": 2,
    "Crypto.SOL/USD": 6,
    "FX.EUR/USD": 327,
    "Equity.US.AAPL/USD": 922,
}
"""Pyth's full symbol -> Lazer id, for the ids Pyth documents (reference/lazer.md section 1)."""

LAZER_ID_ATTRIBUTE = "pyth_lazer_id"
"""A feed's attribute that names its Lazer id (the Lazer source sets it)."""

ASSIGNED_BASE = 1 << 30
"""Ids pricefeed assigns are in [2^30, 2^31): u32 like Lazer's, exact in JavaScript, clear of Lazer's own."""


def feed_id_for_lazer(lazer_id: int) -> FeedId:
    """The feed id of a Lazer feed that has no Hermes equivalent: stable, 64 hex characters like every feed id."""
    return hashlib.sha256(f"pyth-lazer:{lazer_id}".encode()).hexdigest()


def _candidates(feed_id: FeedId) -> Iterable[int]:
    """The ids a feed may get, best first: eight windows of its (already uniformly random) hex id."""
    for start in range(0, 64, 8):
        yield ASSIGNED_BASE + int(feed_id[start:start + 8], 16) % ASSIGNED_BASE


class LazerIds:
    """The two-way map between feeds and Lazer ids, kept in step with a growing feed catalogue."""

    def __init__(self, feeds: Mapping[FeedId, Feed]) -> None:
        self._feeds = feeds
        self._known = 0
        self._by_id: dict[int, FeedId] = {}
        self._by_feed: dict[FeedId, int] = {}
        self._by_symbol: dict[str, FeedId] = {}

    def _refresh(self) -> None:
        if len(self._feeds) == self._known:
            return
        self._known = len(self._feeds)
        # Own ids first (attribute or Pyth's table), then assigned ones in feed-id order, so every process
        # that knows the same feeds gives them the same ids.
        for feed in self._feeds.values():
            own = feed.attributes.get(LAZER_ID_ATTRIBUTE)
            lazer_id = int(own) if own is not None and own.isdigit() else KNOWN_LAZER_IDS.get(feed.symbol)
            if lazer_id is not None and feed.id not in self._by_feed and lazer_id not in self._by_id:
                self._add(feed, lazer_id)
        for feed_id in sorted(set(self._feeds) - set(self._by_feed)):
            lazer_id = next((c for c in _candidates(feed_id) if c not in self._by_id), None)
            if lazer_id is not None:
                self._add(self._feeds[feed_id], lazer_id)

    def _add(self, feed: Feed, lazer_id: int) -> None:
        self._by_id[lazer_id] = feed.id
        self._by_feed[feed.id] = lazer_id
        self._by_symbol.setdefault(feed.symbol, feed.id)

    def lazer_id(self, feed_id: FeedId) -> int | None:
        self._refresh()
        return self._by_feed.get(feed_id)

    def feed_of(self, lazer_id: int) -> FeedId | None:
        self._refresh()
        return self._by_id.get(lazer_id)

    def feed_of_symbol(self, symbol: str) -> FeedId | None:
        self._refresh()
        return self._by_symbol.get(symbol)
