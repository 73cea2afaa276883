"""Derived state across restarts: candles and trading days restored before sources start, saved behind.

Like the price store's write-behind, the hub never waits on the disk: what
changed is saved once per interval, and everything on a clean stop, so a
restarted service goes on with the same bars (the forming one included) and
the same day's volume and previous close.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from .candles import CandleBook
from .market import MarketDays

if TYPE_CHECKING:
    from ..store.base import AnalyticsStore

log = logging.getLogger(__name__)


class AnalyticsWriter:
    name = "analytics"

    def __init__(self, store: AnalyticsStore, days: MarketDays, candles: CandleBook, interval_s: float = 1.0,
                 clock: Any = time.time) -> None:
        self.store = store
        self.days = days
        self.candles = candles
        self.interval_s = interval_s
        self.clock = clock
        self._task: asyncio.Task[None] | None = None
        self.flushes = 0

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
        self._task = asyncio.create_task(self._run(), name="analytics-writer")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.flush()
            except Exception:
                log.exception("saving candles and market days failed; will retry")

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
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush()

    def status(self) -> dict[str, Any]:
        return {"flushes": self.flushes, **self.candles.status()}
