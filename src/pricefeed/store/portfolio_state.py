"""Positions kept across restarts in a table of the same SQLite file, written behind like the alerts.

Quantities, costs and realised PnL are stored as decimal text, so what was set is what comes back, digit for
digit. A file from before realised PnL was kept gets its column (zero) when opened.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from ..components import WriteBehind
from ..portfolio import PortfolioBook, Position
from .database import SqliteFile

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS portfolio_positions (
    owner TEXT NOT NULL,
    feed_id TEXT NOT NULL,
    quantity TEXT NOT NULL,
    average_cost TEXT NOT NULL,
    currency TEXT NOT NULL,
    realised_pnl TEXT NOT NULL DEFAULT '0',
    PRIMARY KEY (owner, feed_id)
);
"""


class PortfolioStore(SqliteFile):
    schema = _SCHEMA
    what = "portfolio store"

    async def open(self) -> None:
        await super().open()
        async with self.db.execute("PRAGMA table_info(portfolio_positions)") as rows:
            columns = {row[1] async for row in rows}
        if "realised_pnl" not in columns:
            await self.db.execute("ALTER TABLE portfolio_positions ADD COLUMN realised_pnl TEXT NOT NULL DEFAULT '0'")
            await self.db.commit()

    async def load(self) -> list[Position]:
        query = ("SELECT owner, feed_id, quantity, average_cost, currency, realised_pnl FROM portfolio_positions "
                 "ORDER BY rowid")
        async with self.db.execute(query) as rows:
            return [Position(r[0], r[1], Decimal(r[2]), Decimal(r[3]), r[4], Decimal(r[5])) async for r in rows]

    async def save(self, positions: list[Position], closed: list[tuple[str, str]]) -> None:
        rows = [(p.owner, p.feed_id, str(p.quantity), str(p.average_cost), p.currency, str(p.realised_pnl))
                for p in positions]
        await self.db.executemany("INSERT OR REPLACE INTO portfolio_positions (owner, feed_id, quantity, "
                                  "average_cost, currency, realised_pnl) VALUES (?, ?, ?, ?, ?, ?)", rows)
        await self.db.executemany("DELETE FROM portfolio_positions WHERE owner = ? AND feed_id = ?", closed)
        await self.db.commit()



class PortfolioWriter(WriteBehind):
    """The component: restores the positions on start, saves what changed every ``interval_s`` and on stop."""

    what = "positions"
    name = "portfolio"

    def __init__(self, book: PortfolioBook, store: PortfolioStore, interval_s: float = 1.0) -> None:
        self.book = book
        self.store = store
        super().__init__(interval_s)

    async def start(self) -> None:
        await self.store.open()
        self.book.restore(await self.store.load())
        if self.book.positions:
            log.info("restored %d positions", len(self.book.positions))
        self.start_timer()

    async def flush(self) -> None:
        positions, closed = self.book.take_dirty()
        if not positions and not closed:
            return
        try:
            await self.store.save(positions, closed)
        except BaseException:
            self.book.dirty |= {(p.owner, p.feed_id) for p in positions} | set(closed)
            raise
        self.flushes += 1

    async def stop(self) -> None:
        try:
            await self.stop_timer_and_flush()
        finally:
            await self.store.close()

    def status(self) -> dict[str, Any]:
        return {"flushes": self.flushes, **self.book.status()}
