"""The in-process bus: ingest and the hub live in one process, so publishing is a call."""

from __future__ import annotations

from collections.abc import Iterable

from ..model import Feed, FeedId, PriceUpdate
from .base import Edge


class LocalBus:
    def __init__(self) -> None:
        self._edges: list[Edge] = []

    def attach(self, edge: Edge) -> None:
        self._edges.append(edge)

    def publish_feeds(self, feeds: list[Feed]) -> None:
        for edge in self._edges:
            edge.add_feeds(feeds)

    def publish_restored(self, updates: list[PriceUpdate]) -> None:
        for edge in self._edges:
            edge.restore(updates)

    def publish(self, accepted: list[PriceUpdate], seen: Iterable[FeedId]) -> None:
        for edge in self._edges:
            edge.receive(accepted, seen)

    def demand(self) -> set[FeedId]:
        wanted: set[FeedId] = set()
        for edge in self._edges:
            wanted |= edge.demand()
        return wanted
