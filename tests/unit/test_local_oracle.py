"""The local oracle: products file, permissions, slot clock, and what it publishes to the hub."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from pricefeed.accounts import DEFAULT_PUBLISHER, derive_key, feed_id_of
from pricefeed.faces.pythd import Directory
from pricefeed.model import Status
from pricefeed.pipeline import local_pipeline
from pricefeed.sources.publishers import (
    LocalOracle,
    NotPermitted,
    Outcome,
    ProductsFileError,
    ProductSpec,
    SlotClock,
    UnknownAccount,
    load_products,
)
from pricefeed.store.oracle_state import OracleStateStore, decode_account, encode_account

EXAMPLE = Path(__file__).parents[2] / "examples" / "products.json"


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def spec(symbol: str = "Crypto.X/USD", **extra: object) -> dict[str, object]:
    return {"symbol": symbol, "exponent": -2, "publishers": [DEFAULT_PUBLISHER], **extra}


def test_the_example_products_file_has_a_product_for_the_default_publisher() -> None:
    products = load_products(EXAMPLE)
    assert any(DEFAULT_PUBLISHER in p.publishers for p in products)


@pytest.mark.parametrize(("content", "fragment"), [
    ("{nope", "not valid JSON"),
    (json.dumps({"products": [{"symbol": "X"}]}), "products.0.exponent"),
    (json.dumps([spec(publishers=["short"])]), "invalid account key"),
    (json.dumps([spec(), spec()]), "price account used twice"),
    (json.dumps({"products": [spec(colour="red")]}), "colour"),
    (json.dumps([spec(attributes={"schedule": "Mars/Olympus;O,O,O,O,O,O,O;"})]), "unknown time zone 'Mars/Olympus'"),
    (json.dumps([spec(attributes={"weekly_schedule": "UTC,O,O"})]), "weekly_schedule 'UTC,O,O'"),
    (json.dumps([spec(attributes={"publish_interval": "often"})]), "publish_interval 'often'"),
])
def test_bad_products_files_say_what_is_wrong(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "products.json"
    path.write_text(content)
    with pytest.raises(ProductsFileError, match="products file") as error:
        load_products(path)
    assert fragment in str(error.value)


def test_missing_products_file(tmp_path: Path) -> None:
    with pytest.raises(ProductsFileError, match="No such file"):
        load_products(tmp_path / "absent.json")


async def test_products_can_be_added_while_running(tmp_path: Path) -> None:
    path = tmp_path / "products.json"
    path.write_text(json.dumps([spec("Crypto.X/USD")]))
    pipeline = local_pipeline()
    hub = pipeline.hub
    oracle = LocalOracle(pipeline.ingest, products_file=path, reload_interval_s=0.01)
    await oracle.start()
    try:
        assert [p.spec.symbol for p in oracle.products.values()] == ["Crypto.X/USD"]
        path.write_text(json.dumps([spec("Crypto.X/USD", min_pub=2), spec("Crypto.Y/USD")]))

        async def added() -> None:
            while len(oracle.products) < 2:
                await asyncio.sleep(0.005)

        await asyncio.wait_for(added(), 2.0)
        symbols = {p.spec.symbol: p for p in oracle.products.values()}
        assert symbols["Crypto.X/USD"].state.min_pub == 2
        assert feed_id_of(symbols["Crypto.Y/USD"].price_account) in hub.feeds
    finally:
        await oracle.stop()


async def test_aggregates_reach_the_hub_and_unknown_keeps_the_last_good_price() -> None:
    pipeline, clock = local_pipeline(), Clock()
    hub = pipeline.hub
    product = ProductSpec(symbol="Crypto.X/USD", exponent=-2, publishers=(DEFAULT_PUBLISHER,))
    oracle = LocalOracle(pipeline.ingest, products=[product], slot_clock=SlotClock(1.0, clock))
    feed_id = feed_id_of(product.account)
    oracle.quote(DEFAULT_PUBLISHER, product.account, 1000, 10, Status.TRADING)
    clock.t += 1
    oracle.quote(DEFAULT_PUBLISHER, product.account, 1100, 10, Status.TRADING)
    await asyncio.sleep(0)
    first = hub.latest[feed_id]
    assert (first.price, first.conf, first.expo, first.status, first.slot) == (1000, 10, -2, Status.TRADING, 101)
    clock.t += 30  # the stored quote is now 30 slots old
    oracle.quote(DEFAULT_PUBLISHER, product.account, 1200, 10, Status.TRADING)
    await asyncio.sleep(0)
    unknown = hub.latest[feed_id]
    assert (unknown.price, unknown.publish_time_us, unknown.status, unknown.slot) == (
        1000, first.publish_time_us, Status.UNKNOWN, 131)


def test_quotes_are_refused_for_unknown_accounts_and_unpermitted_publishers() -> None:
    oracle = LocalOracle(local_pipeline().ingest, products=[ProductSpec(symbol="Crypto.X/USD", exponent=-2,
                                                      publishers=(DEFAULT_PUBLISHER,))])
    with pytest.raises(UnknownAccount):
        oracle.quote(DEFAULT_PUBLISHER, derive_key("nothing"), 1, 1, Status.TRADING)
    with pytest.raises(NotPermitted, match="not permitted"):
        oracle.quote(derive_key("stranger"), next(iter(oracle.products)), 1, 1, Status.TRADING)
    assert oracle.refused == 1


def test_slot_clock_counts_from_the_epoch_and_never_goes_back() -> None:
    clock = Clock()
    slots = SlotClock(0.4, clock)
    assert slots.now() == 250
    clock.t = 50.0
    assert slots.now() == 250
    clock.t = 100.4
    assert slots.now() == 251


async def test_market_hours_and_publish_interval_decide_what_is_published() -> None:
    clock = Clock()
    clock.t = 1_736_172_000.0  # Monday 2025-01-06 14:00 UTC, 09:00 in New York
    hours = ProductSpec(symbol="Equity.US.X/USD", exponent=-2, publishers=(DEFAULT_PUBLISHER,),
                        attributes={"schedule": "America/New_York;0930-1600,0930-1600,0930-1600,0930-1600,"
                                                "0930-1600,C,C;"})
    every_2s = ProductSpec(symbol="Crypto.X/USD", exponent=-2, publishers=(DEFAULT_PUBLISHER,),
                           attributes={"publish_interval": "2"})
    oracle = LocalOracle(local_pipeline().ingest, products=[hours, every_2s], slot_clock=SlotClock(1.0, clock))
    assert oracle.quote(DEFAULT_PUBLISHER, hours.account, 100, 1, Status.TRADING) == Outcome.MARKET_CLOSED
    clock.t += 1800  # 09:30
    assert oracle.quote(DEFAULT_PUBLISHER, hours.account, 100, 1, Status.TRADING) == Outcome.PUBLISHED
    assert oracle.quote(DEFAULT_PUBLISHER, every_2s.account, 100, 1, Status.TRADING) == Outcome.PUBLISHED
    clock.t += 1.999
    assert oracle.quote(DEFAULT_PUBLISHER, every_2s.account, 101, 1, Status.TRADING) == Outcome.TOO_SOON
    clock.t += 0.001
    assert oracle.quote(DEFAULT_PUBLISHER, every_2s.account, 102, 1, Status.TRADING) == Outcome.PUBLISHED
    latest = oracle.products[every_2s.account].state.components[DEFAULT_PUBLISHER].latest
    assert latest.price == 102
    assert oracle.status()["closed_market_quotes"] == 1 and oracle.status()["too_soon_quotes"] == 1


async def test_a_product_taken_out_of_the_file_leaves_the_api(tmp_path: Path) -> None:
    path = tmp_path / "products.json"
    path.write_text(json.dumps([spec("Crypto.X/USD"), spec("Crypto.Y/USD")]))
    pipeline = local_pipeline()
    hub = pipeline.hub
    oracle = LocalOracle(pipeline.ingest, products_file=path)
    oracle.reload()
    directory = Directory(hub, oracle)
    y = load_products(path)[1].account
    assert {f.symbol for f in directory.feeds()} == {"Crypto.X/USD", "Crypto.Y/USD"}
    path.write_text(json.dumps([spec("Crypto.X/USD")]))
    assert oracle.reload()
    assert [p.spec.symbol for p in oracle.products.values()] == ["Crypto.X/USD"]
    assert {f.symbol for f in directory.feeds()} == {"Crypto.X/USD"}
    assert directory.feed_of_price_account(y) is None
    with pytest.raises(UnknownAccount):
        oracle.quote(DEFAULT_PUBLISHER, y, 1, 1, Status.TRADING)


async def test_the_accounts_survive_a_restart(tmp_path: Path) -> None:
    clock = Clock()
    product = ProductSpec(symbol="Crypto.X/USD", exponent=-2, publishers=(DEFAULT_PUBLISHER, derive_key("b")))
    path = tmp_path / "products.json"
    path.write_text(json.dumps({"products": [product.model_dump(exclude_none=True)]}))
    db = tmp_path / "pricefeed.db"

    def oracle() -> LocalOracle:
        return LocalOracle(local_pipeline().ingest, products_file=path, slot_clock=SlotClock(1.0, clock),
                           state_store=OracleStateStore(db), save_interval_s=60)

    first = oracle()
    await first.start()
    for price in (1000, 1100, 1200):
        first.quote(DEFAULT_PUBLISHER, product.account, price, 10, Status.TRADING)
        clock.t += 1
    before = first.products[product.account].state
    assert (before.status, before.price, before.twap.val) == (Status.TRADING, 1100, 1050)
    await first.stop()

    clock.t += 60  # down for a minute
    second = oracle()
    await second.start()
    try:
        after = second.products[product.account].state
        assert encode_account(after) == encode_account(before)  # aggregate, EMAs, prev_*, every quote
        assert after.components[DEFAULT_PUBLISHER].latest.price == 1200
        second.quote(DEFAULT_PUBLISHER, product.account, 1300, 10, Status.TRADING)
        # The restored quote is 61 slots old: it no longer votes; the last trading aggregate is kept as prev.
        assert (after.status, after.num_qt, after.prev_price, after.price) == (Status.UNKNOWN, 0, 1100, 1100)
        clock.t += 1
        second.quote(DEFAULT_PUBLISHER, product.account, 1400, 10, Status.TRADING)
        assert (after.status, after.price) == (Status.TRADING, 1300)
    finally:
        await second.stop()


async def test_a_saved_account_round_trips() -> None:
    oracle = LocalOracle(local_pipeline().ingest, products=[ProductSpec(symbol="Crypto.X/USD", exponent=-2,
                                                      publishers=(DEFAULT_PUBLISHER,))],
                         slot_clock=SlotClock(1.0, Clock()))
    (product,) = oracle.products.values()
    oracle.quote(DEFAULT_PUBLISHER, product.price_account, 100, 3, Status.TRADING)
    assert decode_account(encode_account(product.state)) == product.state
