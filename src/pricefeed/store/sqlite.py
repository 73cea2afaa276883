"""The embedded store: one SQLite file in WAL mode, written behind the hot path."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

from ..analytics.candles import Bar, Interval
from ..analytics.market import DayStats
from ..model import Feed, PriceUpdate, Status
from .database import SqliteFile
from .records import market_from_record, market_record

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feeds (
    id TEXT PRIMARY KEY,
    symbol TEXT NOT NULL,
    expo INTEGER NOT NULL,
    source TEXT NOT NULL,
    simulated INTEGER NOT NULL,
    attributes TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS latest (
    feed_id TEXT PRIMARY KEY,
    price INTEGER NOT NULL,
    conf INTEGER NOT NULL,
    expo INTEGER NOT NULL,
    publish_time_us INTEGER NOT NULL,
    ema_price INTEGER NOT NULL,
    ema_conf INTEGER NOT NULL,
    status TEXT NOT NULL,
    prev_publish_time_us INTEGER,
    slot INTEGER,
    source TEXT NOT NULL,
    seq INTEGER NOT NULL,
    market TEXT
);
CREATE TABLE IF NOT EXISTS candles (
    feed_id TEXT NOT NULL,
    interval_us INTEGER NOT NULL,
    start_us INTEGER NOT NULL,
    expo INTEGER NOT NULL,
    open INTEGER NOT NULL,
    high INTEGER NOT NULL,
    low INTEGER NOT NULL,
    close INTEGER NOT NULL,
    volume INTEGER,
    ticks INTEGER NOT NULL,
    day_volume INTEGER,
    last_us INTEGER NOT NULL,
    final INTEGER NOT NULL,
    PRIMARY KEY (feed_id, interval_us, start_us)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS candles_by_time ON candles (interval_us, start_us);
CREATE TABLE IF NOT EXISTS market_days (
    feed_id TEXT PRIMARY KEY,
    day INTEGER NOT NULL,
    expo INTEGER NOT NULL,
    open INTEGER NOT NULL,
    high INTEGER NOT NULL,
    low INTEGER NOT NULL,
    close INTEGER NOT NULL,
    previous_close INTEGER,
    volume INTEGER,
    last_us INTEGER NOT NULL
);
"""
_LATEST_ADDED = {"volume": "INTEGER", "quantity": "INTEGER", "market": "TEXT"}
"""Columns of ``latest`` newer than the first schema; an older file gets them on open."""
_COLUMNS = ("feed_id, price, conf, expo, publish_time_us, ema_price, ema_conf, status, prev_publish_time_us, slot,"
            " source, seq, volume, quantity, market")
_UPSERT_NEWER = (f"INSERT INTO latest ({_COLUMNS}) VALUES ({', '.join('?' * 15)}) ON CONFLICT(feed_id) DO UPDATE SET "
                 + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS.replace(" ", "").split(",")[1:])
                 + " WHERE excluded.publish_time_us >= latest.publish_time_us")
"""Upsert a price unless the stored one is newer (as the Redis store does for processes sharing it)."""


class SqliteStore(SqliteFile):
    schema = _SCHEMA

    async def open(self) -> None:
        await super().open()
        async with self.db.execute("PRAGMA table_info(latest)") as rows:
            columns = {row[1] async for row in rows}
        for name, kind in _LATEST_ADDED.items():
            if name not in columns:
                await self.db.execute(f"ALTER TABLE latest ADD COLUMN {name} {kind}")
        await self.db.commit()

    async def load_feeds(self) -> list[Feed]:
        async with self.db.execute("SELECT id, symbol, expo, source, simulated, attributes FROM feeds") as rows:
            return [Feed(id=r[0], symbol=r[1], expo=r[2], source=r[3], simulated=bool(r[4]),
                         attributes=json.loads(r[5])) async for r in rows]

    async def load_latest(self) -> list[PriceUpdate]:
        async with self.db.execute(f"SELECT {_COLUMNS} FROM latest") as rows:
            return [PriceUpdate(feed_id=r[0], price=r[1], conf=r[2], expo=r[3], publish_time_us=r[4],
                                ema_price=r[5], ema_conf=r[6], status=Status(r[7]), prev_publish_time_us=r[8],
                                slot=r[9], source=r[10], seq=r[11], volume=r[12], quantity=r[13],
                                market=None if r[14] is None else market_from_record(json.loads(r[14])))
                    async for r in rows]

    async def save_feeds(self, feeds: Iterable[Feed]) -> None:
        rows = [(f.id, f.symbol, f.expo, f.source, int(f.simulated), json.dumps(dict(f.attributes)))
                for f in feeds]
        await self.db.executemany("INSERT OR REPLACE INTO feeds VALUES (?, ?, ?, ?, ?, ?)", rows)
        await self.db.commit()

    async def save_latest(self, updates: Iterable[PriceUpdate]) -> None:
        """Upsert each feed's price, never over a newer one."""
        rows = [(u.feed_id, u.price, u.conf, u.expo, u.publish_time_us, u.ema_price, u.ema_conf, str(u.status),
                 u.prev_publish_time_us, u.slot, u.source, u.seq, u.volume, u.quantity,
                 None if u.market is None else json.dumps(market_record(u.market))) for u in updates]
        await self.db.executemany(_UPSERT_NEWER, rows)
        await self.db.commit()

    # -- derived state: candles and trading days -------------------------------------------------

    async def load_bars(self, intervals: Iterable[Interval], keep: int, now_us: int) -> list[Bar]:
        bars: list[Bar] = []
        for interval in intervals:
            since = now_us - now_us % interval.us - keep * interval.us
            query = ("SELECT feed_id, start_us, expo, open, high, low, close, volume, ticks, day_volume, last_us, final"
                     " FROM candles WHERE interval_us = ? AND start_us >= ? ORDER BY feed_id, start_us")
            async with self.db.execute(query, (interval.us, since)) as rows:
                bars += [Bar(r[0], interval, r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], bool(r[11]))
                         async for r in rows]
        return bars

    async def save_bars(self, bars: Iterable[Bar], intervals: Iterable[Interval], keep: int, now_us: int) -> None:
        rows = [(b.feed_id, b.interval.us, b.start_us, b.expo, b.open, b.high, b.low, b.close, b.volume, b.ticks,
                 b.day_volume, b.last_us, int(b.final)) for b in bars]
        await self.db.executemany("INSERT OR REPLACE INTO candles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        for interval in intervals:
            since = now_us - now_us % interval.us - keep * interval.us
            await self.db.execute("DELETE FROM candles WHERE interval_us = ? AND start_us < ?", (interval.us, since))
        await self.db.commit()

    async def load_days(self) -> list[DayStats]:
        query = "SELECT feed_id, day, expo, open, high, low, close, previous_close, volume, last_us FROM market_days"
        async with self.db.execute(query) as rows:
            return [DayStats(*r) async for r in rows]

    async def save_days(self, days: Iterable[DayStats]) -> None:
        rows = [(d.feed_id, d.day, d.expo, d.open, d.high, d.low, d.close, d.previous_close, d.volume, d.last_us)
                for d in days]
        await self.db.executemany("INSERT OR REPLACE INTO market_days VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        await self.db.commit()

