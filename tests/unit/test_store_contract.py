"""One contract, two stores: SQLite (the default) and Redis (shared by several processes) keep feeds and the
latest prices exactly, never roll a price back, and survive being reopened."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path

import pytest

from pricefeed.model import Feed, MarketStats, PriceUpdate, Status
from pricefeed.store import SqliteStore, Store
from pricefeed.store.redis import RedisStore

from ..redis_server import RedisServer, require_redis

A = "a" * 64
B = "b" * 64
FEED_A = Feed(A, "Crypto.AAA/USD", -8, "sim", {"asset_type": "Crypto", "base": "AAA"}, simulated=True)
FEED_B = Feed(B, "CoinGecko.BTC/USD", -8, "coingecko", {"asset_type": "Crypto", "name": "Bitcoin"})
MARKET = MarketStats(change_24h=Decimal("2126.88"), change_percent_24h=Decimal("3.12502"),
                     volume_24h=Decimal("20154184933"), market_cap=Decimal("1381651251183.123456789012345"))


def update(feed_id: str, price: int, publish_time_us: int, **extra: object) -> PriceUpdate:
    return PriceUpdate(feed_id, price, 7, -8, publish_time_us, price - 1, 8, seq=3, source="sim", **extra)  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", "redis"])
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Callable[[], Store]]:
    """A factory of stores that all see the same data (the same file, or the same Redis and prefix)."""
    opened: list[Store] = []
    if request.param == "sqlite":
        def factory() -> Store:
            opened.append(SqliteStore(tmp_path / "store.db"))
            return opened[-1]
    else:
        redis: RedisServer = request.getfixturevalue("redis_server")

        def factory() -> Store:
            opened.append(RedisStore.connect(url=redis.url, prefix="test:"))
            return opened[-1]
    yield factory
    for store in opened:
        await store.close()


async def test_feeds_and_prices_read_back_exactly_after_reopening(make_store: Callable[[], Store]) -> None:
    store = make_store()
    await store.open()
    assert await store.load_feeds() == [] and await store.load_latest() == []
    await store.save_feeds([FEED_A, FEED_B])
    saved = [update(A, 6163260000000, 1_714_748_300_000_000, slot=138886134,
                    prev_publish_time_us=1_714_748_299_000_000),
             update(B, 7018700000000, 1_712_508_571_736_000, market=MARKET, status=Status.HALTED)]
    await store.save_latest(saved)
    await store.close()
    again = make_store()
    await again.open()
    assert sorted(await again.load_feeds(), key=lambda f: f.id) == [FEED_A, FEED_B]
    assert sorted(await again.load_latest(), key=lambda u: u.feed_id) == saved


async def test_a_newer_price_replaces_and_an_older_one_never_does(make_store: Callable[[], Store]) -> None:
    first, second = make_store(), make_store()  # two processes sharing one store
    await first.open()
    await second.open()
    await first.save_latest([update(A, 100, 2_000_000)])
    await second.save_latest([update(A, 90, 1_000_000), update(B, 5, 1_000_000)])  # A: a lagging process
    assert sorted((u.feed_id, u.price) for u in await first.load_latest()) == [(A, 100), (B, 5)]
    await second.save_latest([update(A, 110, 3_000_000, market=MARKET)])
    latest = {u.feed_id: u for u in await first.load_latest()}
    assert (latest[A].price, latest[A].publish_time_us, latest[A].market) == (110, 3_000_000, MARKET)


async def test_feed_metadata_is_replaced(make_store: Callable[[], Store]) -> None:
    store = make_store()
    await store.open()
    await store.save_feeds([FEED_B])
    renamed = Feed(B, FEED_B.symbol, -8, "coingecko", {"asset_type": "Crypto", "name": "Bitcoin (renamed)"})
    await store.save_feeds([renamed])
    assert await store.load_feeds() == [renamed]


async def test_redis_down_keeps_prices_pending_and_saves_them_when_it_is_back(tmp_path: Path) -> None:
    from redis.exceptions import RedisError

    from pricefeed.pipeline import local_pipeline
    from pricefeed.store import StoreWriter

    require_redis()
    server = RedisServer(tmp_path / "redis")  # not started yet: nothing listens on its port
    store = RedisStore.connect(url=server.url, prefix="test:", timeout_s=0.5)
    try:
        await store.open()  # says so in the log, does not stop start-up
        assert await store.load_feeds() == [] and await store.load_latest() == []
        ingest = local_pipeline().ingest
        ingest.add_feeds([FEED_A])
        writer = StoreWriter(ingest, store)
        ingest.publish(update(A, 100, 1_000_000))
        ingest.run_pass()
        with pytest.raises(RedisError):
            await writer.flush()
        assert writer.status()["pending"] == 1
        ingest.publish(update(A, 101, 2_000_000))
        ingest.run_pass()
        server.start()
        await writer.flush()
        assert writer.status()["pending"] == 0
        assert await store.load_feeds() == [FEED_A]
        assert [(u.feed_id, u.price) for u in await store.load_latest()] == [(A, 101)]
    finally:
        await store.close()
        server.stop()


async def test_a_sqlite_file_from_before_market_figures_is_upgraded_in_place(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # the schema before the market column
        db.execute("CREATE TABLE latest (feed_id TEXT PRIMARY KEY, price INTEGER NOT NULL, conf INTEGER NOT NULL,"
                   " expo INTEGER NOT NULL, publish_time_us INTEGER NOT NULL, ema_price INTEGER NOT NULL,"
                   " ema_conf INTEGER NOT NULL, status TEXT NOT NULL, prev_publish_time_us INTEGER, slot INTEGER,"
                   " source TEXT NOT NULL, seq INTEGER NOT NULL)")
        db.execute("INSERT INTO latest VALUES (?, 100, 7, -8, 1000000, 99, 8, 'trading', NULL, NULL, 'sim', 3)", (A,))
    store = SqliteStore(path)
    await store.open()
    try:
        assert await store.load_latest() == [update(A, 100, 1_000_000)]
        await store.save_latest([update(A, 101, 2_000_000, market=MARKET)])
        assert [u.market for u in await store.load_latest()] == [MARKET]
    finally:
        await store.close()
