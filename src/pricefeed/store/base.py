"""The store interface: feed metadata and the latest price of every feed, kept across restarts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from ..analytics.candles import Bar, Interval
from ..analytics.market import DayStats
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


@runtime_checkable
class AnalyticsStore(Protocol):
    """Where derived state lives across restarts: candles and each feed's trading day."""

    async def load_bars(self, intervals: Iterable[Interval], keep: int, now_us: int) -> list[Bar]:
        """The bars of the last ``keep`` intervals before ``now_us``, for each interval."""

    async def save_bars(self, bars: Iterable[Bar], intervals: Iterable[Interval], keep: int, now_us: int) -> None:
        """Upsert bars (a forming bar's row becomes its final row) and drop those older than ``keep`` intervals."""

    async def load_days(self) -> list[DayStats]: ...

    async def save_days(self, days: Iterable[DayStats]) -> None: ...
