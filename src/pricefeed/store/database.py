"""Opening a SQLite file the way every store of ours wants it."""

from __future__ import annotations

from pathlib import Path

import aiosqlite


async def open_database(path: str, schema: str) -> aiosqlite.Connection:
    """A SQLite file (created with its folder if need be) in WAL mode with ``schema`` applied.

    WAL + synchronous=NORMAL: a crash (even kill -9) keeps every committed batch.
    """
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = await aiosqlite.connect(path)
    await db.execute("PRAGMA journal_mode=WAL")
    await db.execute("PRAGMA synchronous=NORMAL")
    await db.executescript(schema)
    return db
