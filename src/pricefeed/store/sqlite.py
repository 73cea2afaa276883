"""The embedded store: one SQLite file in WAL mode, written behind the hot path."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path

import aiosqlite

from ..model import Feed, PriceUpdate, Status
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
"""
_COLUMNS = ("feed_id, price, conf, expo, publish_time_us, ema_price, ema_conf, status, prev_publish_time_us, slot,"
            " source, seq, market")
_UPSERT_NEWER = (f"INSERT INTO latest ({_COLUMNS}) VALUES ({', '.join('?' * 13)}) ON CONFLICT(feed_id) DO UPDATE SET "
                 + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS.replace(" ", "").split(",")[1:])
                 + " WHERE excluded.publish_time_us >= latest.publish_time_us")
"""Upsert a price unless the stored one is newer (as the Redis store does for processes sharing it)."""


class SqliteStore:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._db: aiosqlite.Connection | None = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    async def open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path)
        # WAL + synchronous=NORMAL: a crash (even kill -9) keeps every committed batch.
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=NORMAL")
        await self._db.executescript(_SCHEMA)
        async with self._db.execute("PRAGMA table_info(latest)") as rows:
            columns = {row[1] async for row in rows}
        if "market" not in columns:  # a database from before market figures were kept
            await self._db.execute("ALTER TABLE latest ADD COLUMN market TEXT")
        await self._db.commit()

    async def load_feeds(self) -> list[Feed]:
        async with self.db.execute("SELECT id, symbol, expo, source, simulated, attributes FROM feeds") as rows:
            return [Feed(id=r[0], symbol=r[1], expo=r[2], source=r[3], simulated=bool(r[4]),
                         attributes=json.loads(r[5])) async for r in rows]

    async def load_latest(self) -> list[PriceUpdate]:
        async with self.db.execute(f"SELECT {_COLUMNS} FROM latest") as rows:
            return [PriceUpdate(feed_id=r[0], price=r[1], conf=r[2], expo=r[3], publish_time_us=r[4],
                                ema_price=r[5], ema_conf=r[6], status=Status(r[7]), prev_publish_time_us=r[8],
                                slot=r[9], source=r[10], seq=r[11],
                                market=None if r[12] is None else market_from_record(json.loads(r[12])))
                    async for r in rows]

    async def save_feeds(self, feeds: Iterable[Feed]) -> None:
        rows = [(f.id, f.symbol, f.expo, f.source, int(f.simulated), json.dumps(dict(f.attributes)))
                for f in feeds]
        await self.db.executemany("INSERT OR REPLACE INTO feeds VALUES (?, ?, ?, ?, ?, ?)", rows)
        await self.db.commit()

    async def save_latest(self, updates: Iterable[PriceUpdate]) -> None:
        """Upsert each feed's price, never over a newer one."""
        rows = [(u.feed_id, u.price, u.conf, u.expo, u.publish_time_us, u.ema_price, u.ema_conf, str(u.status),
                 u.prev_publish_time_us, u.slot, u.source, u.seq,
                 None if u.market is None else json.dumps(market_record(u.market))) for u in updates]
        await self.db.executemany(_UPSERT_NEWER, rows)
        await self.db.commit()

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None
