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


class SqliteFile:
    """A store kept in one SQLite file with one schema: opened, used through :attr:`db`, closed."""

    schema = ""
    what = "store"
    """Named in the error when it is used before it is opened."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._db: aiosqlite.Connection | None = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError(f"{self.what} is not open")
        return self._db

    async def open(self) -> None:
        self._db = await open_database(self.path, self.schema)
        await self._db.commit()

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None
