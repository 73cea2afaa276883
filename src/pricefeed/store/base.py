"""The store interface: feed metadata and the latest price of every feed, kept across restarts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from ..model import Feed, PriceUpdate


class Store(Protocol):
    async def open(self) -> None: ...

    async def load_feeds(self) -> list[Feed]: ...

    async def load_latest(self) -> list[PriceUpdate]: ...

    async def save_feeds(self, feeds: Iterable[Feed]) -> None: ...

    async def save_latest(self, updates: Iterable[PriceUpdate]) -> None:
        """Upsert the latest price of each feed in ``updates`` (one transaction); a stored price with a later
        ``publish_time_us`` stays (another process sharing the store may have saved it)."""

    async def close(self) -> None: ...
