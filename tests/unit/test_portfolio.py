"""Positions marked to market with Decimal: known positions and prices give known values and PnL to the cent,
mixed currencies totalled per currency, each owner's valuation on its own topic, and positions survive a restart."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from pricefeed.model import Feed, PriceUpdate
from pricefeed.pipeline import Pipeline, local_pipeline
from pricefeed.portfolio import PortfolioBook, Valuation, decimal_of, portfolio_topic
from pricefeed.store.portfolio_state import PortfolioStore, PortfolioWriter

RELIANCE = "ab" * 32
BTC = "cd" * 32
T0 = 1_764_720_000_000_000
D = Decimal


class Recorder:
    def __init__(self) -> None:
        self.codec = self
        self.face = "test"
        self.got: list[Valuation] = []

    def encode(self, topic: str, item: object) -> bytes:
        assert isinstance(item, Valuation)
        self.got.append(item)
        return orjson.dumps(str(item))

    def deliver(self, frames: dict[str, bytes]) -> None:
        pass


def setup(day_change: Decimal | None = None) -> tuple[Pipeline, PortfolioBook]:
    pipeline = local_pipeline()
    pipeline.ingest.add_feeds([Feed(RELIANCE, "Equity.NSE.RELIANCE/INR", -2, "test", {}),
                               Feed(BTC, "Crypto.BTC/USD", -8, "test", {})])
    book = PortfolioBook(pipeline.hub, None if day_change is None else lambda update: day_change)
    pipeline.hub.add_listener(book.add_updates)
    return pipeline, book


async def price(pipeline: Pipeline, feed_id: str, mantissa: int, expo: int, seconds: int) -> None:
    pipeline.ingest.publish(PriceUpdate(feed_id, mantissa, 0, expo, T0 + seconds * 1_000_000, mantissa, 0))
    for _ in range(3):
        await asyncio.sleep(0)


async def test_known_positions_and_prices_give_known_pnl_to_the_cent() -> None:
    pipeline, book = setup(day_change=D("12.25"))
    recorder = Recorder()
    pipeline.hub.subscribe(portfolio_topic("alice", RELIANCE), recorder)
    pipeline.hub.subscribe(portfolio_topic("alice", BTC), recorder)
    book.set("alice", RELIANCE, D("10"), D("2400.50"), "inr")
    book.set("alice", BTC, D("0.015"), D("60000.10"), "USD")
    await price(pipeline, RELIANCE, 245075, -2, 1)
    await price(pipeline, BTC, 6543212345678, -8, 2)
    reliance, btc = recorder.got
    assert reliance.position == {
        "quantity": D("10"), "average_cost": D("2400.50"), "currency": "INR", "price": D("2450.75"),
        "current_value": D("24507.50"), "cost_basis": D("24005.00"), "unrealised_pnl": D("502.50"),
        "unrealised_pnl_percent": D("2.09"), "day_pnl": D("122.50")}
    assert (btc.position["current_value"], btc.position["cost_basis"], btc.position["unrealised_pnl"],
            btc.position["unrealised_pnl_percent"], btc.position["day_pnl"]) == (
        D("981.48"), D("900.00"), D("81.48"), D("9.05"), D("0.18"))
    assert btc.totals == {
        "INR": {"current_value": D("24507.50"), "cost_basis": D("24005.00"), "unrealised_pnl": D("502.50"),
                "unrealised_pnl_percent": D("2.09")},
        "USD": {"current_value": D("981.48"), "cost_basis": D("900.00"), "unrealised_pnl": D("81.48"),
                "unrealised_pnl_percent": D("9.05")}}


async def test_no_float_drift_and_losses_in_percent_of_cost() -> None:
    pipeline, book = setup()
    recorder = Recorder()
    pipeline.hub.subscribe(portfolio_topic("bob", RELIANCE), recorder)
    book.set("bob", RELIANCE, decimal_of(0.1, "quantity"), decimal_of(0.3, "average_cost"), "INR")
    await price(pipeline, RELIANCE, 20, -2, 1)  # 0.20: 0.1 x 0.2 - 0.1 x 0.3 = -0.01 exactly, -33.33 %
    (got,) = recorder.got
    assert (got.position["current_value"], got.position["unrealised_pnl"], got.position["unrealised_pnl_percent"],
            got.position["day_pnl"]) == (D("0.02"), D("-0.01"), D("-33.33"), None)


async def test_each_owner_gets_its_own_valuation_once_per_tick() -> None:
    pipeline, book = setup()
    alice, bob = Recorder(), Recorder()
    pipeline.hub.subscribe(portfolio_topic("alice", RELIANCE), alice)
    pipeline.hub.subscribe(portfolio_topic("bob", RELIANCE), bob)
    book.set("alice", RELIANCE, D("1"), D("100"), "INR")
    await price(pipeline, RELIANCE, 10100, -2, 1)
    await price(pipeline, RELIANCE, 10200, -2, 2)
    assert [v.position["unrealised_pnl"] for v in alice.got] == [D("1.00"), D("2.00")] and bob.got == []
    book.set("alice", RELIANCE, D("0"), D("0"), "INR")  # closed: no more valuations
    await price(pipeline, RELIANCE, 10300, -2, 3)
    assert len(alice.got) == 2 and book.of("alice") == []


@pytest.mark.parametrize("raw", [True, None, "abc", "NaN", [1]])
def test_bad_numbers_say_what_is_wrong(raw: object) -> None:
    with pytest.raises(ValueError):
        decimal_of(raw, "quantity")


async def test_positions_survive_a_restart_digit_for_digit(tmp_path: Path) -> None:
    _, book = setup()
    writer = PortfolioWriter(book, PortfolioStore(tmp_path / "db"), interval_s=60)
    await writer.start()
    book.set("alice", BTC, D("0.00012345"), D("61234.5678"), "USD")
    book.set("alice", RELIANCE, D("5"), D("1.00"), "INR")
    book.set("alice", RELIANCE, D("0"), D("1.00"), "INR")
    await writer.stop()
    _, book = setup()
    writer = PortfolioWriter(book, PortfolioStore(tmp_path / "db"), interval_s=60)
    await writer.start()
    try:
        assert [(p.feed_id, str(p.quantity), str(p.average_cost), p.currency) for p in book.of("alice")] == [
            (BTC, "0.00012345", "61234.5678", "USD")]
    finally:
        await writer.stop()
