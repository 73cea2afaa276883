"""Positions marked to market with Decimal: known positions and prices give known values and PnL to the cent,
mixed currencies totalled per currency and in the base currency (with the rate used, from a feed or the
settings, or null with the reason), realised PnL by the average-cost method, each owner's valuation on its own
topic, and positions and their realised PnL survive a restart."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from pricefeed.fx import FxRates, parse_rate
from pricefeed.model import Feed, PriceUpdate
from pricefeed.pipeline import Pipeline, local_pipeline
from pricefeed.portfolio import PortfolioBook, Valuation, decimal_of, portfolio_topic
from pricefeed.store.portfolio_state import PortfolioStore, PortfolioWriter

RELIANCE = "ab" * 32
BTC = "cd" * 32
USDINR = "ef" * 32
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


def setup(day_change: Decimal | None = None, fx_rate: list[str] | None = None,
          base: str = "USD") -> tuple[Pipeline, PortfolioBook]:
    pipeline = local_pipeline()
    pipeline.ingest.add_feeds([Feed(RELIANCE, "Equity.NSE.RELIANCE/INR", -2, "test", {}),
                               Feed(BTC, "Crypto.BTC/USD", -8, "test", {}),
                               Feed(USDINR, "FX.USD/INR", -5, "test", {"asset_type": "FX", "base": "USD",
                                                                       "quote_currency": "INR"})])
    hub = pipeline.hub
    book = PortfolioBook(hub, None if day_change is None else lambda update: day_change, base,
                         FxRates(hub.feeds, hub.latest, hub.is_stale, fx_rate))
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
        "unrealised_pnl_percent": D("2.09"), "day_pnl": D("122.50"), "realised_pnl": D("0.00")}
    assert (btc.position["current_value"], btc.position["cost_basis"], btc.position["unrealised_pnl"],
            btc.position["unrealised_pnl_percent"], btc.position["day_pnl"]) == (
        D("981.48"), D("900.00"), D("81.48"), D("9.05"), D("0.18"))
    assert btc.totals == {
        "INR": {"current_value": D("24507.50"), "cost_basis": D("24005.00"), "unrealised_pnl": D("502.50"),
                "unrealised_pnl_percent": D("2.09"), "realised_pnl": D("0.00")},
        "USD": {"current_value": D("981.48"), "cost_basis": D("900.00"), "unrealised_pnl": D("81.48"),
                "unrealised_pnl_percent": D("9.05"), "realised_pnl": D("0.00")}}


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


async def test_a_mixed_portfolio_totals_in_the_base_currency_with_a_configured_rate_to_the_cent() -> None:
    pipeline, book = setup(fx_rate=["USDINR=83.25"])
    recorder = Recorder()
    pipeline.hub.subscribe(portfolio_topic("alice", BTC), recorder)
    book.set("alice", RELIANCE, D("10"), D("2400.50"), "INR")
    book.set("alice", BTC, D("0.015"), D("60000.10"), "USD")
    await price(pipeline, RELIANCE, 245075, -2, 1)
    await price(pipeline, BTC, 6543212345678, -8, 2)
    (btc,) = recorder.got
    # 24507.50 / 83.25 + 0.015 x 65432.12345678 = 294.38438... + 981.48185... = 1275.8662...
    # cost: 24005.00 / 83.25 + 900.0015 = 288.34834... + 900.0015 = 1188.3498...
    assert btc.base_total == {
        "currency": "USD", "current_value": D("1275.87"), "cost_basis": D("1188.35"), "unrealised_pnl": D("87.52"),
        "unrealised_pnl_percent": D("7.36"), "realised_pnl": D("0.00"),
        "rates": [{"pair": "USD/INR", "value": D("83.25"), "source": "configured", "symbol": None, "time": None}],
        "reason": None}
    pipeline, inr = setup(fx_rate=["USDINR=83.25"], base="INR")  # the other way round: dollars to rupees
    inr.set("bob", BTC, D("2"), D("50000.01"), "USD")
    await price(pipeline, BTC, 6000000000000, -8, 1)
    total = inr.base_total("bob")
    # cost 100000.02 x 83.25 = 8325001.665 and the PnL 1664998.335, each rounded half up from the exact amount
    assert (total["current_value"], total["cost_basis"], total["unrealised_pnl"]) == (
        D("9990000.00"), D("8325001.67"), D("1664998.34"))


async def test_a_fresh_fx_feed_wins_over_the_configured_rate_and_names_its_time() -> None:
    pipeline, book = setup(fx_rate=["USDINR=80"])
    book.set("alice", RELIANCE, D("100"), D("1000"), "INR")
    await price(pipeline, RELIANCE, 100000, -2, 1)
    await price(pipeline, USDINR, 8412345, -5, 2)
    total = book.base_total("alice")
    assert (total["current_value"], total["cost_basis"]) == (D("1188.73"), D("1188.73"))  # 100000 / 84.12345
    assert total["rates"] == [{"pair": "USD/INR", "value": D("84.12345"), "source": "feed", "symbol": "FX.USD/INR",
                               "time": "2025-12-03T00:00:02.000Z"}]


async def test_without_a_rate_the_base_total_is_null_with_the_reason() -> None:
    pipeline, book = setup()
    book.set("alice", RELIANCE, D("1"), D("1000"), "INR")
    book.set("alice", BTC, D("1"), D("1"), "USD")
    await price(pipeline, RELIANCE, 100000, -2, 1)
    assert book.base_total("alice") == {
        "currency": "USD", "current_value": None, "cost_basis": None, "unrealised_pnl": None,
        "unrealised_pnl_percent": None, "realised_pnl": None, "rates": [],
        "reason": "no rate for USD/INR: no fresh FX feed has it and none is configured (e.g. --fx-rate USDINR=...)"}


@pytest.mark.parametrize(("text", "error"), [("USDINR", "expected BASEQUOTE=VALUE"), ("USDINR=x", "not a number"),
                                             ("USDINR=0", "positive"), ("USDUSD=1", "two different")])
def test_bad_fx_rates_say_what_is_wrong(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_rate(text)


async def test_trades_realise_pnl_by_the_average_cost_method_to_the_cent() -> None:
    pipeline, book = setup(fx_rate=["USD/INR=83.25"])
    recorder = Recorder()
    pipeline.hub.subscribe(portfolio_topic("alice", RELIANCE), recorder)
    book.trade("alice", RELIANCE, D("10"), D("2400.50"), "INR")
    book.trade("alice", RELIANCE, D("5"), D("2500.25"), "INR")  # average (24005 + 12501.25) / 15 = 2433.75
    position, realised = book.trade("alice", RELIANCE, D("-4"), D("2450.10"), "INR")
    assert (position.quantity, position.average_cost, realised) == (D("11"), D("2433.75"), D("65.40"))
    await price(pipeline, RELIANCE, 246000, -2, 1)  # sold at the market: 3 x (2460 - 2433.75) = 78.75
    _, realised = book.trade("alice", RELIANCE, D("-3"), None, "INR")
    assert realised == D("78.75")
    await asyncio.sleep(0)  # the valuation after the trade goes out in the hub's next pass
    (last,) = recorder.got[-1:]
    assert (last.position["quantity"], last.position["realised_pnl"], last.position["unrealised_pnl"]) == (
        D("8"), D("144.15"), D("210.00"))
    # Through zero: the 8 long close at 2470 (8 x 36.25 = 290), the other 2 open short at 2470.
    position, realised = book.trade("alice", RELIANCE, D("-10"), D("2470"), "INR")
    assert (position.quantity, position.average_cost, realised, position.realised_pnl) == (
        D("-2"), D("2470"), D("290.00"), D("434.15"))
    _, realised = book.trade("alice", RELIANCE, D("2"), D("2480.5"), "INR")  # a short bought back higher: a loss
    assert realised == D("-21.0") and book.positions[("alice", RELIANCE)].quantity == 0
    book.trade("alice", BTC, D("0.5"), D("60000"), "USD")
    _, realised = book.trade("alice", BTC, D("-0.2"), D("61000.55"), "USD")
    assert realised == D("200.110")
    assert book.totals("alice")["INR"]["realised_pnl"] == D("413.15")
    # 413.15 / 83.25 = 4.96276... plus 200.11
    assert book.base_total("alice")["realised_pnl"] == D("205.07")
    with pytest.raises(ValueError, match="must not be zero"):
        book.trade("alice", BTC, D("0"), D("1"), "USD")
    with pytest.raises(ValueError, match="the position is in USD, not INR"):
        book.trade("alice", BTC, D("1"), D("1"), "INR")


async def test_realised_pnl_and_closed_positions_survive_a_restart(tmp_path: Path) -> None:
    _, book = setup()
    writer = PortfolioWriter(book, PortfolioStore(tmp_path / "db"), interval_s=60)
    await writer.start()
    book.trade("alice", RELIANCE, D("3"), D("100.10"), "INR")
    book.trade("alice", RELIANCE, D("-3"), D("101.15"), "INR")  # closed, 3.15 realised
    book.trade("alice", BTC, D("1"), D("10"), "USD")
    book.trade("alice", BTC, D("-0.25"), D("12.5"), "USD")
    await writer.stop()
    _, book = setup()
    writer = PortfolioWriter(book, PortfolioStore(tmp_path / "db"), interval_s=60)
    await writer.start()
    try:
        kept = sorted((p.feed_id, str(p.quantity), str(p.average_cost), str(p.realised_pnl)) for p in book.of("alice"))
        assert kept == [(RELIANCE, "0", "100.10", "3.15"), (BTC, "0.75", "10", "0.625")]
        assert book.totals("alice")["INR"]["realised_pnl"] == D("3.15")
    finally:
        await writer.stop()


async def test_a_store_from_before_realised_pnl_opens_with_it_zero(tmp_path: Path) -> None:
    import aiosqlite

    async with aiosqlite.connect(tmp_path / "db") as db:
        await db.execute("CREATE TABLE portfolio_positions (owner TEXT NOT NULL, feed_id TEXT NOT NULL, quantity TEXT "
                         "NOT NULL, average_cost TEXT NOT NULL, currency TEXT NOT NULL, PRIMARY KEY (owner, feed_id))")
        await db.execute("INSERT INTO portfolio_positions VALUES ('alice', ?, '2', '99.5', 'INR')", (RELIANCE,))
        await db.commit()
    store = PortfolioStore(tmp_path / "db")
    await store.open()
    try:
        (position,) = await store.load()
        assert (position.quantity, position.average_cost, position.realised_pnl) == (D("2"), D("99.5"), D("0"))
    finally:
        await store.close()
