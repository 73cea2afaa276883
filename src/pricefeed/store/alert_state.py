"""Alert rules and their last trigger, kept across restarts in a table of the same SQLite file.

Written behind like the candles: what changed (created, fired, re-armed,
deleted) is saved once per interval and everything on a clean stop; restored
before sources start, so a restarted service neither loses a rule nor fires
again for a crossing it already reported.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson

from ..alerts import Alert, AlertBook
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



class AlertWriter:
    """The component: restores the alerts on start, saves what changed every ``interval_s`` and on stop."""

    name = "alerts"

    def __init__(self, book: AlertBook, store: AlertStore, interval_s: float = 1.0) -> None:
        self.book = book
        self.store = store
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self.flushes = 0

    async def start(self) -> None:
        await self.store.open()
        for alert in await self.store.load():
            self.book.add(alert)
        self.book.take_dirty()
        if self.book.alerts:
            log.info("restored %d alerts of %d owners", len(self.book.alerts),
                     len({a.owner for a in self.book.alerts.values()}))
        self._task = asyncio.create_task(self._run(), name="alert-writer")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.flush()
            except Exception:
                log.exception("saving alerts failed; will retry")

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
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        try:
            await self.flush()
        finally:
            await self.store.close()

    def status(self) -> dict[str, Any]:
        return {"flushes": self.flushes, **self.book.status()}
