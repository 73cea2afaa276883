"""Alert rules and their last trigger, kept across restarts in a table of the same SQLite file.

Written behind like the candles: what changed (created, fired, re-armed,
deleted) is saved once per interval and everything on a clean stop; restored
before sources start, so a restarted service neither loses a rule nor fires
again for a crossing it already reported.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from ..alerts import Alert, AlertBook
from ..components import WriteBehind
from .database import SqliteFile

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    feed_id TEXT NOT NULL,
    rule TEXT NOT NULL,
    state TEXT NOT NULL
);
"""


class AlertStore(SqliteFile):
    schema = _SCHEMA
    what = "alert store"

    async def load(self) -> list[Alert]:
        alerts = []
        async with self.db.execute("SELECT id, owner, feed_id, rule, state FROM alerts ORDER BY rowid") as rows:
            async for r in rows:
                state: dict[str, Any] = orjson.loads(r[4])
                alert = Alert(r[0], r[1], r[2], orjson.loads(r[3]), int(state.get("created_us", 0)))
                alert.restore(state)
                alerts.append(alert)
        return alerts

    async def save(self, alerts: list[Alert], deleted: set[str]) -> None:
        rows = [(a.id, a.owner, a.feed_id, orjson.dumps(a.rule).decode(), orjson.dumps(a.state()).decode())
                for a in alerts]
        await self.db.executemany("INSERT OR REPLACE INTO alerts VALUES (?, ?, ?, ?, ?)", rows)
        await self.db.executemany("DELETE FROM alerts WHERE id = ?", [(i,) for i in deleted])
        await self.db.commit()



class AlertWriter(WriteBehind):
    """The component: restores the alerts on start, saves what changed every ``interval_s`` and on stop."""

    what = "alerts"
    name = "alerts"

    def __init__(self, book: AlertBook, store: AlertStore, interval_s: float = 1.0) -> None:
        self.book = book
        self.store = store
        super().__init__(interval_s)

    async def start(self) -> None:
        await self.store.open()
        for alert in await self.store.load():
            self.book.add(alert)
        self.book.take_dirty()
        if self.book.alerts:
            log.info("restored %d alerts of %d owners", len(self.book.alerts),
                     len({a.owner for a in self.book.alerts.values()}))
        self.start_timer()

    async def flush(self) -> None:
        alerts, deleted = self.book.take_dirty()
        if not alerts and not deleted:
            return
        try:
            await self.store.save(alerts, deleted)
        except BaseException:
            self.book.dirty |= {a.id for a in alerts}
            self.book.deleted |= deleted
            raise
        self.flushes += 1

    async def stop(self) -> None:
        try:
            await self.stop_timer_and_flush()
        finally:
            await self.store.close()

    def status(self) -> dict[str, Any]:
        return {"flushes": self.flushes, **self.book.status()}
