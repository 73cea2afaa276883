"""The local oracle's price accounts, kept across restarts in a table of the same SQLite file.

A price account is saved whole (aggregate, previous trading aggregate, EMA
numerators and denominators, every publisher's latest quote and the snapshot
the last aggregate used), so a restart continues exactly where it stopped:
the quotes keep their slots and so do not vote again until publishers quote
afresh.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import aiosqlite
import orjson

from ..aggregation import Component, Ema, PriceAccount, Quote
from ..model import Status
from .database import SqliteFile

_SCHEMA = """
CREATE TABLE IF NOT EXISTS oracle_accounts (
    price_account TEXT PRIMARY KEY,
    state TEXT NOT NULL
);
"""


def encode_account(account: PriceAccount) -> bytes:
    return orjson.dumps(asdict(account))


def decode_account(data: str | bytes) -> PriceAccount:
    """The inverse of :func:`encode_account`; ``ValueError`` (or ``KeyError``) if the row is malformed."""
    raw: dict[str, Any] = orjson.loads(data)

    def quote(q: dict[str, Any]) -> Quote:
        return Quote(int(q["price"]), int(q["conf"]), Status(q["status"]), int(q["pub_slot"]))

    def ema(e: dict[str, Any]) -> Ema:
        return Ema(int(e["val"]), int(e["numer"]), int(e["denom"]))

    components = {key: Component(key, quote(c["latest"]), quote(c["agg"])) for key, c in raw["components"].items()}
    ints = ("expo", "min_pub", "max_latency", "price", "conf", "pub_slot", "valid_slot", "timestamp_us", "num_qt",
            "prev_slot", "prev_price", "prev_conf", "prev_timestamp_us")
    return PriceAccount(**{name: int(raw[name]) for name in ints}, components=components,
                        status=Status(raw["status"]), twap=ema(raw["twap"]), twac=ema(raw["twac"]))


class OracleStateStore(SqliteFile):
    schema = _SCHEMA
    what = "oracle state store"

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("oracle state store is not open")
        return self._db

    async def load(self) -> dict[str, bytes | str]:
        """Every saved account, still encoded (the oracle decides which it can use)."""
        async with self.db.execute("SELECT price_account, state FROM oracle_accounts") as rows:
            return {r[0]: r[1] async for r in rows}

    async def save(self, accounts: Mapping[str, PriceAccount]) -> None:
        rows = [(key, encode_account(account).decode()) for key, account in accounts.items()]
        await self.db.executemany("INSERT OR REPLACE INTO oracle_accounts VALUES (?, ?)", rows)
        await self.db.commit()

