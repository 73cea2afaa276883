"""Seed 002 end to end: pricefeed polls a local CoinGecko and serves Socket.IO ``crypto-prices`` on its own port,
to python-socketio and socket.io-client v4, through upstream outages, restarts and Redis outages."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import engineio
import httpx
import pytest
import socketio

from ..coingecko_server import CoinGeckoServer
from ..crypto_client import DecimalJson, PricesClient, expected_prices
from ..redis_server import RedisServer, require_redis
from ..service import ServiceProcess

JS = Path(__file__).resolve().parents[1] / "js"
CHANNELS = "crypto-prices, " + ", ".join(f"crypto-prices:{s}" for s in
                                         ("BTC", "ETH", "BNB", "ADA", "SOL", "DOT", "USDT", "USDC", "XRP", "MATIC"))


@pytest.fixture
async def coingecko() -> AsyncIterator[CoinGeckoServer]:
    server = await CoinGeckoServer().start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def exact_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    """python-socketio clients in this test read numbers as decimals (restored afterwards)."""
    monkeypatch.setattr(socketio.packet.Packet, "json", DecimalJson)
    monkeypatch.setattr(engineio.packet.Packet, "json", DecimalJson)


def crypto_service(db: Path, coingecko: CoinGeckoServer, *extra: str) -> ServiceProcess:
    return ServiceProcess(db, "--source", "coingecko", "--coingecko-url", coingecko.url, "--coingecko-interval", "0.25",
                          "--stale-after", "1.5", "--store-flush-interval", "0.1", *extra)


async def health(service: ServiceProcess) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        response = await client.get(service.crypto_url + "/health", timeout=5)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def all_priced(stale: bool) -> Any:
    return lambda array: len(array) == 10 and all(coin["stale"] is stale for coin in array)


@pytest.mark.usefixtures("exact_numbers")
async def test_python_socketio_client_gets_the_exact_prices(tmp_path: Path, coingecko: CoinGeckoServer) -> None:
    service = await crypto_service(tmp_path / "db", coingecko, "--coingecko-calls-per-minute", "4").start()
    clients: list[PricesClient] = []
    try:
        for transport in ("websocket", "polling"):
            client = await PricesClient().connect(service.crypto_url, transport)
            clients.append(client)
            assert await client.call("subscribe", {"channel": "crypto-prices"}) == {"ok": True,
                                                                                   "channel": "crypto-prices"}
            assert await client.array_where(all_priced(False)) == expected_prices()
        ws = clients[0]
        assert await ws.call("subscribe", {"channel": "crypto-prices:BTC"}) == {"ok": True,
                                                                               "channel": "crypto-prices:BTC"}
        assert await ws.next_array() == [expected_prices()[0]]
        assert ws.arrays.empty()
        await coingecko.wait_answered(4)
        assert len(coingecko.markets_requests()) == 4  # --coingecko-calls-per-minute 4, every 0.25 s wanted
        body = await health(service)
        assert body["status"] == "ok" and body["sources"] == {"coingecko": "connected"}
        assert body["cache"]["coins"] == body["cache"]["priced"] == 10 and body["cache"]["stale"] == 0
        assert body["cache"]["last_updated"] == "2024-04-07T16:49:31.736Z"
    finally:
        for client in clients:
            await client.close()
        await service.stop()


async def test_bad_input_gets_an_error_event_and_the_connection_goes_on(service: ServiceProcess) -> None:
    client = await PricesClient().connect(service.crypto_url)
    try:
        cases = [
            (("subscribe", {"channel": "crypto-price"}), f"unknown channel 'crypto-price': channels are {CHANNELS}"),
            (("subscribe",), 'subscribe expects one object such as {"channel": "crypto-prices"}, got nothing'),
            (("subscribe", "crypto-prices"),
             'subscribe expects one object such as {"channel": "crypto-prices"}, got a string'),
            (("subscribe", {"room": "crypto-prices"}),
             'subscribe expects one object such as {"channel": "crypto-prices"}: \'channel\' is missing'),
            (("unsubscribe", {"channel": 7}),
             'unsubscribe expects one object such as {"channel": "crypto-prices"}: \'channel\' is a number'),
            (("prices", {"channel": "crypto-prices"}),
             'unknown event \'prices\': emit subscribe or unsubscribe with {"channel": "crypto-prices"}'),
        ]
        for args, message in cases:
            assert await client.call(*args) == {"ok": False, "error": message}
            assert await asyncio.wait_for(client.errors.get(), 5) == {"message": message}
        # The simulated market's BTC/USD, ETH/USD, ... serve the same channel when CoinGecko does not run.
        assert await client.call("subscribe", {"channel": "crypto-prices"}) == {"ok": True, "channel": "crypto-prices"}
        array = await client.next_array()
        assert [c["symbol"] for c in array] == ["BTC", "ETH", "BNB", "ADA", "SOL", "DOT", "USDT", "USDC", "XRP",
                                                "MATIC"]
        assert [c["name"] for c in array][-1] == "Polygon" and array[0]["change24h"] is None
        assert await client.call("unsubscribe", {"channel": "crypto-prices"}) == {"ok": True,
                                                                                 "channel": "crypto-prices"}
        assert client.errors.empty()
    finally:
        await client.close()


@pytest.mark.parametrize("store", ["sqlite", "redis"])
@pytest.mark.usefixtures("exact_numbers")
async def test_cached_prices_are_served_stale_through_an_outage_and_a_restart(
        tmp_path: Path, coingecko: CoinGeckoServer, store: str, request: pytest.FixtureRequest) -> None:
    redis_args: tuple[str, ...] = ()
    if store == "redis":
        redis: RedisServer = request.getfixturevalue("redis_server")
        redis_args = ("--redis-url", redis.url)
    service = await crypto_service(tmp_path / "first.db", coingecko, *redis_args).start()
    client = await PricesClient().connect(service.crypto_url)
    try:
        await client.call("subscribe", {"channel": "crypto-prices"})
        assert await client.array_where(all_priced(False)) == expected_prices()
        await coingecko.stop()  # CoinGecko unreachable from now on
        assert await client.array_where(all_priced(True)) == expected_prices(stale=True)
        body = await health(service)
        assert body["status"] == "degraded" and body["sources"] == {"coingecko": "reconnecting"}
        assert body["cache"]["stale"] == 10 and body["cache"]["age_s"] >= 1.5
    finally:
        await client.close()
        await service.stop()
    # A restart with CoinGecko still down serves the cache at once (from Redis, a new SQLite file proves it).
    db = tmp_path / ("second.db" if store == "redis" else "first.db")
    again = await crypto_service(db, coingecko, *redis_args).start()
    client = await PricesClient().connect(again.crypto_url)
    try:
        await client.call("subscribe", {"channel": "crypto-prices"})
        assert await client.next_array() == expected_prices(stale=True)
        await coingecko.start(coingecko.port)  # back: fresh again
        assert await client.array_where(all_priced(False)) == expected_prices()
    finally:
        await client.close()
        await again.stop()


async def test_redis_down_is_reported_serving_goes_on_and_it_catches_up(tmp_path: Path,
                                                                       coingecko: CoinGeckoServer) -> None:
    require_redis()
    redis = RedisServer(tmp_path / "redis")  # not started: down from the beginning
    service = await crypto_service(tmp_path / "db", coingecko, "--redis-url", redis.url).start()
    client = await PricesClient().connect(service.crypto_url)
    try:
        await client.call("subscribe", {"channel": "crypto-prices"})
        assert len(await client.array_where(all_priced(False))) == 10
        body = await health(service)
        while not body["reasons"]:  # the first flush fails within --store-flush-interval
            body = await health(service)
        assert body["status"] == "degraded"
        assert [r.split(":")[0] for r in body["reasons"]] == ["store unavailable, serving from memory"]
        redis.start()
        while (await health(service))["reasons"]:  # the writer's next flush succeeds
            await asyncio.sleep(0.05)
        from redis.asyncio import Redis

        async with Redis.from_url(redis.url) as check:
            assert await check.hlen("pricefeed:latest") == 10  # type: ignore[misc]
            assert await check.hlen("pricefeed:feeds") == 10  # type: ignore[misc]
    finally:
        await client.close()
        await service.stop()
        redis.stop()


@pytest.mark.skipif(shutil.which("node") is None or not (JS / "node_modules" / "socket.io-client").is_dir(),
                    reason="needs Node.js and `npm ci --prefix tests/js` (scripts/test does both when npm is present)")
@pytest.mark.parametrize("transports", ["polling,websocket", "websocket"])
async def test_socket_io_client_v4_gets_the_exact_prices(tmp_path: Path, coingecko: CoinGeckoServer,
                                                         transports: str) -> None:
    service = await crypto_service(tmp_path / "db", coingecko).start()
    try:
        proc = await asyncio.create_subprocess_exec(
            "node", str(JS / "crypto_prices.mjs"), service.crypto_url, transports,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        result = json.loads(out)
    finally:
        await service.stop()
    assert result["ack"] == {"ok": True, "channel": "crypto-prices"}
    assert result["error"] == {"message": f"unknown channel 'nope': channels are {CHANNELS}"}
    assert result["transport"] == "websocket"
    # JavaScript reads each number as the nearest double: exactly what it reads from CoinGecko's own JSON.
    assert result["prices"] == [{k: _as_javascript_shows(v) for k, v in coin.items()} for coin in expected_prices()]


def _as_javascript_shows(value: Any) -> Any:
    """String(Number(x)) in JavaScript: the shortest text of the nearest double (no ``.0`` on whole numbers)."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        return value
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


async def test_crypto_false_turns_the_listener_off(tmp_path: Path) -> None:
    service = await ServiceProcess(tmp_path / "db", "--source", "sim", "--crypto", "false").start()
    try:
        assert "crypto" not in (await service.get("/status")).json()
        async with httpx.AsyncClient() as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(service.crypto_url + "/health", timeout=5)
    finally:
        await service.stop()
