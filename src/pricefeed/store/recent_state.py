"""The resume log across a clean restart, in a table of the same SQLite file.

Sources run until after the listeners have closed their clients, so a client
cut off by a stop has not seen the last updates; after the restart it asks for
them by ``seq``. Saved once, on a clean stop (after the sources stopped), and
loaded at start before the restored latest prices join it. Only the last
``SAVED_S`` seconds of each feed are saved: a restart cuts clients off for
seconds, and a stop must stay quick however many feeds are kept. A ``kill -9``
saves nothing: the log then starts afresh from the restored prices, and a
client behind them is told ``recovered: false``.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from ..model import PriceUpdate
from ..resume import RecentUpdates
from .database import SqliteFile
from .records import update_from_record, update_record

log = logging.getLogger(__name__)

SAVED_S = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS recent_updates (
    feed_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (feed_id, seq)
) WITHOUT ROWID;
"""


class RecentStore(SqliteFile):
    schema = _SCHEMA
    what = "resume log store"

    async def load(self) -> list[PriceUpdate]:
        async with self.db.execute("SELECT record FROM recent_updates ORDER BY feed_id, seq") as rows:
            return [update_from_record(orjson.loads(r[0])) async for r in rows]

    async def save(self, updates: list[PriceUpdate]) -> None:
        """Replace what was saved with ``updates``."""
        await self.db.execute("DELETE FROM recent_updates")
        await self.db.executemany("INSERT OR REPLACE INTO recent_updates VALUES (?, ?, ?)",
                                  [(u.feed_id, u.seq, orjson.dumps(update_record(u)).decode()) for u in updates])
        await self.db.commit()


class RecentLog:
    """The component: loads the saved log on start (then the restored latest prices), saves it on a clean stop."""

    name = "resume log"

    def __init__(self, recent: RecentUpdates, store: RecentStore, restored: dict[str, PriceUpdate]) -> None:
        self.recent = recent
        self.store = store
        self.restored = restored
        """The latest prices the store restored (the hub's ``latest`` at start): they end the log."""
        self.loaded = 0

    async def start(self) -> None:
        await self.store.open()
        saved = await self.store.load()
        self.loaded = len(saved)
        self.recent.add(saved)
        self.recent.add(list(self.restored.values()))  # a saved log that does not join up with them is dropped
        if saved:
            log.info("resume log: %d updates kept from before the restart", len(saved))

    async def stop(self) -> None:
        try:
            await self.store.save(list(self.recent.updates(within_s=SAVED_S)))
        finally:
            await self.store.close()

    def status(self) -> dict[str, Any]:
        return {"loaded": self.loaded}
