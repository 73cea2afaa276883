"""What a source sees of pricefeed: the feed catalogue, the latest prices, the demand, and where to publish.

Sources depend on this narrow :class:`Sink`, never on the hub or a face, so the
same source feeds one process or, through a distributed bus, a whole cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from ..model import Feed, FeedId, PriceUpdate


class Sink(Protocol):
    """Where a source registers its feeds and publishes their prices (ingest assigns ``seq``, not the source)."""

    @property
    def feeds(self) -> Mapping[FeedId, Feed]:
        """Every known feed, whatever its source."""

    @property
    def latest(self) -> Mapping[FeedId, PriceUpdate]:
        """The newest accepted price of each feed (a restarted source may continue from it)."""

    def add_feeds(self, feeds: Iterable[Feed]) -> None:
        """Register feeds, or replace their metadata."""

    def publish(self, update: PriceUpdate) -> None:
        """Offer one update; it is accepted or dropped later, never awaited."""

    def publish_many(self, updates: Iterable[PriceUpdate]) -> None:
        """Offer several updates at once."""

    def demand(self) -> set[FeedId]:
        """The feeds some client subscribes to now (an upstream streams these besides its configured ones)."""


class Edge(Protocol):
    """What a bus feeds on each process that serves clients: the hub."""

    def add_feeds(self, feeds: Iterable[Feed]) -> None: ...

    def restore(self, updates: Iterable[PriceUpdate]) -> None:
        """Last known prices from a store: served at once, stale until fresh ones arrive."""

    def receive(self, accepted: list[PriceUpdate], seen: Iterable[FeedId]) -> None:
        """One ingest pass: the updates it accepted, in order, and every feed it heard from (even a repeat)."""

    def demand(self) -> set[FeedId]: ...

    def lost(self) -> None:
        """The bus lost its upstream (Redis is away): every price is stale until fresh ones arrive."""


class Bus(Protocol):
    """Carries what ingest accepted to every edge, and the edges' demand back to ingest."""

    def attach(self, edge: Edge) -> None: ...

    def publish_feeds(self, feeds: list[Feed]) -> None: ...

    def publish_restored(self, updates: list[PriceUpdate]) -> None: ...

    def publish(self, accepted: list[PriceUpdate], seen: Iterable[FeedId]) -> None: ...

    def demand(self) -> set[FeedId]:
        """The feeds some client of some edge subscribes to."""
