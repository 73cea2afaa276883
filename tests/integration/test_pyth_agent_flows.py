"""pyth-agent's own integration tests (``integration-tests/tests/test_integration.py``), against the real service.

The same products (BTC, SOL, PYTH, AAPL and ETH with the agent's attributes, ``min_pub`` 1), the same two
publishers (A permitted for BTC, AAPL, SOL and PYTH; ETH only B's), the same client (``jsonrpc-websocket``)
and the same calls and assertions. Where the agent sleeps five seconds for a validator to land a
transaction, these wait for the next slot of pricefeed's slot clock (Solana's 400 ms, as on the agent's
validator, so a quote stays fresh for 25 slots = 10 s): a quote shows in the aggregate one slot later, so
the second update of each flow is what would aggregate the first.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from jsonrpc_websocket import Server

from ..service import ServiceProcess, free_port

SLOT_S = 0.4
PUBLISHER_A = "5F1MvPpfXytDPJb7beKiFEzdMacbzc5DmKrHzvzEorH8"
PUBLISHER_B = "EQjeRFrUBCk9Yt6HbCUZoShUDG8QhuX8CUh9hcD3gqZm"
TIMEOUT = 10.0


def agent_products() -> list[dict[str, Any]]:
    """The agent test's ``ALL_PRODUCTS``, as a products file (today's date as New York sees it)."""
    today = datetime.now(ZoneInfo("America/New_York")).strftime("%m%d")

    def crypto(base: str, **extra: str) -> dict[str, str]:
        return {"symbol": f"Crypto.{base}/USD", "asset_type": "Crypto", "base": base, "quote_currency": "USD",
                "generic_symbol": f"{base}USD", "description": f"{base}/USD", **extra}

    def product(attrs: dict[str, str], exponent: int, publishers: list[str]) -> dict[str, Any]:
        return {"symbol": attrs["symbol"], "exponent": exponent, "min_pub": 1, "publishers": publishers,
                "attributes": attrs}

    ours = [PUBLISHER_A]
    return [
        product(crypto("BTC", schedule=f"America/New_York;O,O,O,O,O,O,O;{today}/O"), -8, ours),
        product({"asset_type": "Equity", "country": "US", "description": "APPLE INC", "quote_currency": "USD",
                 "cms_symbol": "AAPL", "cqs_symbol": "AAPL", "nasdaq_symbol": "AAPL", "symbol": "Equity.US.AAPL/USD",
                 "base": "AAPL", "weekly_schedule": "America/New_York,C,C,C,C,C,C,C"}, -5, ours),
        product(crypto("ETH"), -8, [PUBLISHER_B]),
        product(crypto("SOL", schedule=f"America/New_York;O,O,O,O,O,O,O;{today}/C"), -8, ours),
        product(crypto("PYTH", publish_interval="2"), -8, ours),
    ]


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[tuple[ServiceProcess, int]]:
    products = tmp_path / "products.json"
    products.write_text(json.dumps({"products": agent_products()}))
    rpc_port = free_port()
    svc = ServiceProcess(tmp_path / "db", "--source", "sim", "--products", str(products), "--rpc-port",
                         str(rpc_port), "--slot-interval", str(SLOT_S), "--rpc-publisher", PUBLISHER_A,
                         "--rpc-publisher", PUBLISHER_B)
    await svc.start()
    try:
        yield svc, rpc_port
    finally:
        await svc.stop()


@pytest.fixture
async def client(agent: tuple[ServiceProcess, int]) -> AsyncIterator[Server]:
    """The agent test's ``PythAgentClient``: jsonrpc-websocket, speaking as publisher A."""
    server = Server(f"ws://127.0.0.1:{agent[1]}/?publisher={PUBLISHER_A}", timeout=TIMEOUT)
    await server.ws_connect()
    try:
        yield server
    finally:
        await server.close()


async def next_slot() -> None:
    """Return once the service's slot clock (counted from the epoch) has moved on."""
    current = int(time.time() / SLOT_S)
    while int(time.time() / SLOT_S) <= current:
        await asyncio.sleep((current + 1) * SLOT_S - time.time() + 0.002)


async def accounts(client: Server, symbol: str) -> tuple[str, str]:
    """(product account, price account) of a symbol, found as the agent test finds them."""
    products = {product["attr_dict"]["symbol"]: product for product in await client.get_all_products()}
    product = products[symbol]
    return product["account"], product["price_accounts"][0]["account"]


async def aggregate(client: Server, product_account: str) -> tuple[int, int, str]:
    price_account = (await client.get_product(account=product_account))["price_accounts"][0]
    return price_account["price"], price_account["conf"], price_account["status"]


async def test_update_price_simple(client: Server) -> None:
    product_account, price_account = await accounts(client, "Crypto.BTC/USD")
    assert await client.update_price(account=price_account, price=42, conf=2, status="trading") == 0
    await next_slot()
    assert await client.update_price(account=price_account, price=81, conf=1, status="trading") == 0
    assert await aggregate(client, product_account) == (42, 2, "trading")


async def test_update_price_discards_unpermissioned(client: Server, agent: tuple[ServiceProcess, int]) -> None:
    svc, _ = agent
    product_account, price_account = await accounts(client, "Crypto.BTC/USD")
    product_unperm, price_unperm = await accounts(client, "Crypto.ETH/USD")
    await client.update_price(account=price_account, price=42, conf=2, status="trading")
    await next_slot()
    await client.update_price(account=price_account, price=81, conf=1, status="trading")
    assert await client.update_price(account=price_unperm, price=48, conf=2, status="trading") == 0
    await next_slot()
    assert await client.update_price(account=price_unperm, price=81, conf=1, status="trading") == 0
    assert await aggregate(client, product_account) == (42, 2, "trading")
    assert await aggregate(client, product_unperm) == (0, 0, "unknown")
    lines = [line for line in svc.log().splitlines() if "Attempted to publish a price without permission" in line]
    assert lines and all(f'"unpermissioned_price_account":"{price_unperm}"' in line for line in lines)
    warnings = [line for line in lines if " WARNING " in line]
    assert len(warnings) == 1 and PUBLISHER_A in warnings[0]  # once per publisher and account (then DEBUG)
    status = (await svc.get("/status")).json()
    assert status["pythd"]["refused_updates"] == 2
    assert next(s for s in status["sources"] if s["name"] == "publishers")["refused_quotes"] == 2


async def test_agent_respects_market_hours(client: Server) -> None:
    product_account, price_account = await accounts(client, "Equity.US.AAPL/USD")
    assert await client.update_price(account=price_account, price=42, conf=2, status="trading") == 0
    await next_slot()
    assert await client.update_price(account=price_account, price=81, conf=1, status="trading") == 0
    assert await aggregate(client, product_account) == (0, 0, "unknown")


async def test_agent_respects_holiday_hours(client: Server) -> None:
    product_account, price_account = await accounts(client, "Crypto.SOL/USD")
    assert await client.update_price(account=price_account, price=42, conf=2, status="trading") == 0
    await next_slot()
    assert await client.update_price(account=price_account, price=81, conf=1, status="trading") == 0
    assert await aggregate(client, product_account) == (0, 0, "unknown")


async def test_agent_respects_publish_interval(client: Server) -> None:
    product_account, price_account = await accounts(client, "Crypto.PYTH/USD")
    assert await client.update_price(account=price_account, price=42, conf=2, status="trading") == 0
    first = time.time()
    await next_slot()
    assert await client.update_price(account=price_account, price=81, conf=1, status="trading") == 0
    assert time.time() < first + 2  # within the product's publish_interval: withheld
    assert await aggregate(client, product_account) == (0, 0, "unknown")
    # Once the interval is over, the next quote is published and aggregates the first.
    await asyncio.sleep(first + 2.05 - time.time())
    assert await client.update_price(account=price_account, price=81, conf=1, status="trading") == 0
    assert await aggregate(client, product_account) == (42, 2, "trading")
