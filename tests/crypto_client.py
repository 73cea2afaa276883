"""A python-socketio client of ``crypto-prices`` for tests, and the arrays the recorded CoinGecko answer should give."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import socketio

from .coingecko_server import DATA

SEED = [("BTC", "bitcoin", "Bitcoin"), ("ETH", "ethereum", "Ethereum"), ("BNB", "binancecoin", "Binance Coin"),
        ("ADA", "cardano", "Cardano"), ("SOL", "solana", "Solana"), ("DOT", "polkadot", "Polkadot"),
        ("USDT", "tether", "Tether"), ("USDC", "usd-coin", "USD Coin"), ("XRP", "ripple", "Ripple"),
        ("MATIC", "polygon-ecosystem-token", "Polygon")]
"""The seed's table: symbol, CoinGecko id, name."""


def expected_prices(stale: bool = False) -> list[dict[str, Any]]:
    """The seed's objects for the recorded answer, read straight from the recording with exact decimals."""
    entries = {}
    for line in (DATA / "coins_markets.jsonl").read_text().splitlines():
        entry = json.loads(line, parse_float=Decimal)
        entries[entry["id"]] = entry
    return [{"symbol": symbol, "name": name, "price": entries[cg]["current_price"],
             "change24h": entries[cg]["price_change_24h"],
             "changePercent24h": entries[cg]["price_change_percentage_24h"],
             "volume24h": entries[cg]["total_volume"], "marketCap": entries[cg]["market_cap"],
             "lastUpdated": entries[cg]["last_updated"], "stale": stale} for symbol, cg, name in SEED]


class DecimalJson:
    """A json module for python-socketio that reads numbers as exact decimals."""

    @staticmethod
    def dumps(obj: Any, **kwargs: Any) -> str:
        return json.dumps(obj, **kwargs)

    @staticmethod
    def loads(text: str | bytes, **kwargs: Any) -> Any:
        return json.loads(text, parse_float=Decimal, **kwargs)


class PricesClient:
    """A socketio.AsyncClient whose ``crypto-prices`` arrays and ``error`` events land in queues."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.arrays: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
        self.errors: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sio.on("crypto-prices", self.arrays.put_nowait)
        self.sio.on("error", self.errors.put_nowait)

    async def connect(self, url: str, transport: str = "websocket") -> PricesClient:
        await self.sio.connect(url, transports=[transport], wait_timeout=5)
        return self

    async def call(self, event: str, *args: Any) -> Any:
        """Emit with an ack and return it: no argument, one, or several (python-socketio sends a tuple as several)."""
        return await self.sio.call(event, args[0] if len(args) == 1 else (args or None), timeout=5)

    async def next_array(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        return await asyncio.wait_for(self.arrays.get(), timeout)

    async def array_where(self, wanted: Any, timeout: float = 15.0) -> list[dict[str, Any]]:
        """The first array for which ``wanted(array)`` holds (earlier ones are skipped)."""
        async with asyncio.timeout(timeout):
            while True:
                array = await self.arrays.get()
                if wanted(array):
                    return array

    async def close(self) -> None:
        await self.sio.disconnect()

