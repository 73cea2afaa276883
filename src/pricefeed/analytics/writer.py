"""Derived state across restarts: candles and trading days restored before sources start, saved behind.

Like the price store's write-behind, the hub never waits on the disk: what
changed is saved once per interval, and everything on a clean stop, so a
restarted service goes on with the same bars (the forming one included) and
the same day's volume and previous close.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from ..components import WriteBehind
from .candles import CandleBook
from .market import MarketDays

if TYPE_CHECKING:
    from ..store.base import AnalyticsStore

log = logging.getLogger(__name__)


class AnalyticsWriter(WriteBehind):
    what = "candles and market days"
    name = "analytics"

    def __init__(self, store: AnalyticsStore, days: MarketDays, candles: CandleBook, interval_s: float = 1.0,
                 clock: Any = time.time) -> None:
        self.store = store
        self.days = days
        self.candles = candles
        super().__init__(interval_s)
        self.clock = clock

    def _now_us(self) -> int:
        return int(self.clock() * 1_000_000)

    async def start(self) -> None:
        """Restore candles and days (the store is open), then close what is due and save periodically."""
        self.days.restore(await self.store.load_days())
        bars = await self.store.load_bars(self.candles.intervals, self.candles.history, self._now_us())
        self.candles.restore(bars)
        if bars:
            log.info("restored %d candles of %d feeds", len(bars), len({b.feed_id for b in bars}))
        self.candles.start()
        self.start_timer()

    async def flush(self) -> None:
        bars, days = self.candles.take_unsaved(), self.days.take_dirty()
        try:
            if bars:
                await self.store.save_bars(bars, self.candles.intervals, self.candles.history, self._now_us())
            if days:
                await self.store.save_days(days)
        except BaseException:
            self.candles.restore_unsaved(bars)
            self.days.restore_dirty(days)
            raise
        self.flushes += 1

    async def stop(self) -> None:
        self.candles.stop()
        await self.stop_timer_and_flush()

    def status(self) -> dict[str, Any]:
        return {"flushes": self.flushes, **self.candles.status()}
