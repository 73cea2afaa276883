"""/ws/portfolio and REST /portfolio against the real service with the `websockets` and httpx clients: a
position set over the WebSocket is marked on each tick to the cent (checked with Decimal against the price in
the same message), reaches only its owner, is listed over REST, and survives a restart."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from pricefeed.app import App

from ..service import in_process
from ..wsclient import recv_json, send

SETTINGS: dict[str, Any] = {"sim_interval": 0.05, "sim_equities": True, "sim_market_hours": False, "seed": 4}
CENT = Decimal("0.01")


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    async with in_process(tmp_path, **SETTINGS) as service:
        yield service


def url(app: App, query: str = "") -> str:
    return f"ws://127.0.0.1:{app.streams_port}/ws/portfolio{query}"


async def recv_exact(ws: ClientConnection, kind: str, timeout: float = 5.0) -> dict[str, Any]:
    """The next message of ``kind``, its numbers as the exact decimals the server wrote."""
    async def scan() -> dict[str, Any]:
        while True:
            message = json.loads(await ws.recv(), parse_float=Decimal)
            if message["type"] in (kind, "error"):
                return dict(message)

    return await asyncio.wait_for(scan(), timeout)


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


async def test_a_position_is_marked_on_each_tick_to_the_cent_for_its_owner_only(app: App) -> None:
    async with connect(url(app, "?owner=alice")) as alice, connect(url(app, "?owner=bob")) as bob:
        for ws in (alice, bob):
            assert (await recv_json(ws))["type"] == "connection"
            await send(ws, {"type": "subscribe", "symbol": "RELIANCE"})
            assert (await recv_json(ws))["status"] == "subscribed"
        await send(alice, {"type": "set_position", "symbol": "RELIANCE", "quantity": "12.5",
                           "average_cost": "1400.35"})
        reply = await recv_exact(alice, "position_set")
        assert (reply["symbol"], reply["quantity"], reply["average_cost"], reply["currency"]) == (
            "RELIANCE", Decimal("12.5"), Decimal("1400.35"), "INR")
        prices = set()
        while len(prices) < 3:
            message = await recv_exact(alice, "data")
            data, position = message["data"], message["data"]["position"]
            assert (message["data_type"], message["symbol"], data["owner"]) == ("portfolio", "RELIANCE", "alice")
            price = position["price"]
            value, cost = Decimal("12.5") * price, Decimal("12.5") * Decimal("1400.35")
            assert position["current_value"] == cents(value) and position["cost_basis"] == cents(cost)
            assert data["pnl"] == position["unrealised_pnl"] == cents(value - cost)
            assert data["pnl_percent"] == cents((value - cost) * 100 / cost)
            assert data["total"] == {"INR": {"current_value": cents(value), "cost_basis": cents(cost),
                                             "unrealised_pnl": cents(value - cost),
                                             "unrealised_pnl_percent": cents((value - cost) * 100 / cost),
                                             "realised_pnl": 0}}
            assert data["realised_pnl"] == position["realised_pnl"] == 0
            (rate,) = data["base_total"]["rates"]  # rupees to dollars at the simulated FX.USD/INR
            assert (rate["pair"], rate["source"], rate["symbol"]) == ("USD/INR", "feed", "FX.USD/INR")
            assert data["base_total"]["current_value"] == cents(value / rate["value"])
            prices.add(price)
        await send(bob, {"type": "ping"})
        assert (await recv_json(bob))["type"] == "pong"  # nothing of alice's


async def test_rest_lists_and_sets_positions_and_they_survive_a_restart(tmp_path: Path) -> None:
    async with in_process(tmp_path, **SETTINGS) as app, \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.streams_port}") as http:
        made = await http.put("/portfolio", json={"owner": "carol", "symbol": "BTC/USD", "quantity": "0.015",
                                                  "average_cost": "60000.10"})
        assert made.status_code == 200
        (btc,) = made.json()["positions"]
        assert (btc["symbol"], btc["quantity"], btc["average_cost"], btc["currency"]) == (
            "BTC/USD", 0.015, 60000.1, "USD")
        bad = await http.put("/portfolio", json={"owner": "carol", "symbol": "TCS", "quantity": "abc"})
        assert bad.status_code == 400 and bad.json()["error"] == "\"quantity\" must be a number, got 'abc'"
        docs = (await http.get("/openapi.json")).json()
        assert set(docs["paths"]["/portfolio"]) == {"get", "put"}
    async with in_process(tmp_path, **SETTINGS) as app, connect(url(app)) as ws:
        assert (await recv_json(ws))["type"] == "connection"
        await send(ws, {"type": "get_portfolio", "owner": "carol"})
        reply = await recv_exact(ws, "portfolio")
        (btc,) = reply["positions"]
        assert (btc["symbol"], btc["quantity"], btc["average_cost"], btc["currency"]) == (
            "BTC/USD", Decimal("0.015"), Decimal("60000.1"), "USD")


async def test_trades_realise_pnl_and_a_mixed_portfolio_totals_in_the_base_currency(tmp_path: Path) -> None:
    settings = {**SETTINGS, "fx_rate": ["USDINR=83.25"], "base_currency": "usd"}
    async with in_process(tmp_path, **settings) as app, connect(url(app, "?owner=dave")) as ws, \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.streams_port}") as http:
        assert (await recv_json(ws))["type"] == "connection"
        for quantity, price in (("10", "1400.10"), ("5", "1430.25"), ("-6", "1450.5")):
            await send(ws, {"type": "trade", "symbol": "RELIANCE", "quantity": quantity, "price": price})
            done = await recv_exact(ws, "trade_done")
        # Average (14001 + 7151.25) / 15 = 1410.15; six sold at 1450.50 realise 6 x 40.35 = 242.10.
        assert (done["realised_pnl"], done["position"]) == (Decimal("242.1"), {
            "quantity": Decimal("9"), "average_cost": Decimal("1410.15"), "currency": "INR",
            "realised_pnl": Decimal("242.1")})
        sold = await http.post("/portfolio/trades", json={"owner": "dave", "symbol": "BTC/USD", "quantity": "0.5",
                                                          "price": "60000"})
        assert sold.status_code == 200 and sold.json()["realised_pnl"] == 0
        sold = await http.post("/portfolio/trades", json={"owner": "dave", "symbol": "BTC/USD", "quantity": "-0.2",
                                                          "price": "61000.55"})
        assert sold.json()["realised_pnl"] == 200.11
        await send(ws, {"type": "get_portfolio"})
        reply = await recv_exact(ws, "portfolio")
        reliance, btc = sorted(reply["positions"], key=lambda p: p["symbol"] != "RELIANCE")
        total = reply["base_total"]
        (rate,) = total["rates"]
        # The simulated FX.USD/INR is fresh, so it wins over the configured rate; the message says which it used.
        assert (rate["pair"], rate["source"], rate["symbol"]) == ("USD/INR", "feed", "FX.USD/INR")
        value = Decimal("9") * reliance["price"] / rate["value"] + Decimal("0.3") * btc["price"]
        cost = Decimal("9") * Decimal("1410.15") / rate["value"] + Decimal("0.3") * Decimal("60000")
        realised = Decimal("242.10") / rate["value"] + Decimal("200.11")
        assert (total["currency"], total["current_value"], total["cost_basis"], total["realised_pnl"],
                total["reason"]) == ("USD", cents(value), cents(cost), cents(realised), None)
        docs = (await http.get("/openapi.json")).json()
        assert set(docs["paths"]["/portfolio/trades"]) == {"post"}
        await send(ws, {"type": "trade", "symbol": "TCS", "quantity": 0})
        error = await recv_exact(ws, "error")
        assert error["message"] == '"quantity" must not be zero: positive buys, negative sells'


@pytest.mark.parametrize(("message", "error"), [
    ({"type": "set_position", "symbol": "TCS", "quantity": 1}, 'set_position needs an "owner"'),
    ({"type": "set_position", "owner": "d", "symbol": "TCS", "quantity": True}, '"quantity" must be a number'),
    ({"type": "set_position", "owner": "d", "symbol": "TCS", "quantity": 1, "average_cost": -5},
     '"average_cost" must not be negative'),
    ({"type": "get_portfolio"}, 'get_portfolio needs an "owner"'),
])
async def test_bad_input_gets_an_error_and_the_connection_goes_on(app: App, message: dict[str, Any],
                                                                  error: str) -> None:
    async with connect(url(app)) as ws:
        assert (await recv_json(ws))["type"] == "connection"
        await send(ws, message)
        reply = await recv_json(ws)
        assert reply["type"] == "error" and reply["message"].startswith(error), reply
        await send(ws, {"type": "ping"})
        assert (await recv_json(ws))["type"] == "pong"
