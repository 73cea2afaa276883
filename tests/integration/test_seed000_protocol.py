"""Every message of seed 000 against the real service, with the `websockets` client."""

from __future__ import annotations

import asyncio
import re
import uuid

from websockets.asyncio.client import connect

from ..service import ServiceProcess
from ..wsclient import BTC, ETH, SOL, is_type, recv_json, recv_until, send

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def test_connection_established_carries_a_client_id(service: ServiceProcess) -> None:
    async with connect(service.ws_url) as ws:
        welcome = await recv_json(ws)
    assert welcome["type"] == "connection_established"
    uuid.UUID(welcome["client_id"])
    assert welcome["message"] == "Connected to Pyth Price Feed Websocket Server"


async def test_subscribe_confirms_then_sends_latest_price_then_updates(service: ServiceProcess) -> None:
    async with connect(service.ws_url) as ws:
        await recv_json(ws)
        await send(ws, {"type": "subscribe", "feed_id": "0x" + BTC.upper()})
        assert await recv_json(ws) == {"type": "subscription_confirmed", "feed_id": BTC}
        snapshot = await recv_json(ws)
        updates = [await recv_until(ws, is_type("price_update")) for _ in range(5)]
    assert snapshot["type"] == "price_update"
    for message in [snapshot, *updates]:
        data = message["data"]
        assert data["id"] == BTC
        assert set(data) == {"id", "price", "conf", "expo", "status", "publish_time", "ema_price", "ema_conf", "seq"}
        assert data["expo"] == -8
        assert data["status"] == "trading"
        assert ISO_MS.match(data["publish_time"]), data["publish_time"]
        for key in ("price", "conf", "ema_price", "ema_conf"):
            assert isinstance(data[key], float) and data[key] > 0
        assert 1_000 < data["price"] < 10_000_000
    times = [m["data"]["publish_time"] for m in [snapshot, *updates]]
    assert times == sorted(times) and len(set(times)) == len(times), "out of order or repeated"
    seqs = [m["data"]["seq"] for m in [snapshot, *updates]]
    assert seqs == list(range(seqs[0], seqs[0] + 6)), "the simulated market moves each feed once per pass"


async def test_unsubscribe_stops_that_feed_only(service: ServiceProcess) -> None:
    async with connect(service.ws_url) as ws:
        await recv_json(ws)
        await send(ws, {"type": "subscribe_multiple", "subscriptions": [{"feed_id": BTC}, {"feed_id": ETH}]})
        await recv_until(ws, lambda m: m.get("data", {}).get("id") == ETH)
        await send(ws, {"type": "unsubscribe", "feed_id": ETH})
        await recv_until(ws, is_type("unsubscription_confirmed"))
        after = [await recv_until(ws, is_type("price_update")) for _ in range(10)]
    assert {m["data"]["id"] for m in after} == {BTC}


async def test_unsubscription_confirmed_echoes_the_normalised_id(service: ServiceProcess) -> None:
    async with connect(service.ws_url) as ws:
        await recv_json(ws)
        await send(ws, {"type": "subscribe", "feed_id": SOL})
        await send(ws, {"type": "unsubscribe", "feed_id": "0x" + SOL})
        confirmation = await recv_until(ws, is_type("unsubscription_confirmed"))
    assert confirmation == {"type": "unsubscription_confirmed", "feed_id": SOL}


async def test_subscribe_multiple_confirms_each_feed(service: ServiceProcess) -> None:
    async with connect(service.ws_url) as ws:
        await recv_json(ws)
        await send(ws, {"type": "subscribe_multiple",
                        "subscriptions": [{"feed_id": BTC}, {"feed_id": "0x" + ETH}, {"feed_id": SOL.upper()}]})
        confirmed = [await recv_until(ws, is_type("subscription_confirmed")) for _ in range(3)]
        seen: set[str] = set()
        while seen != {BTC, ETH, SOL}:
            seen.add((await recv_until(ws, is_type("price_update")))["data"]["id"])
    assert [m["feed_id"] for m in confirmed] == [BTC, ETH, SOL]


async def test_get_available_feeds_lists_every_feed_with_price(service: ServiceProcess) -> None:
    async with connect(service.ws_url) as ws:
        await recv_json(ws)
        await send(ws, {"type": "get_available_feeds"})
        reply = await recv_until(ws, is_type("available_feeds"))
    feeds = {f["symbol"]: f for f in reply["feeds"]}
    for symbol in ("BTC/USD", "ETH/USD", "SOL/USD", "USDC/USD", "USDT/USD", "DOGE/USD", "BNB/USD", "XRP/USD",
                   "ADA/USD", "DOT/USD", "POL/USD", "EUR/USD", "AAPL/USD"):
        assert symbol in feeds, symbol
    btc = feeds["BTC/USD"]
    assert set(btc) == {"id", "symbol", "price", "conf", "expo", "status"}
    assert btc["id"] == BTC and btc["expo"] == -8 and btc["status"] == "trading"
    assert feeds["EUR/USD"]["expo"] == -5
    assert all(re.fullmatch(r"[0-9a-f]{64}", f["id"]) for f in reply["feeds"])


async def test_many_clients_each_get_their_feeds(service: ServiceProcess) -> None:
    feeds = [BTC, ETH, SOL]

    async def client(index: int) -> set[str]:
        async with connect(service.ws_url) as ws:
            await recv_json(ws)
            await send(ws, {"type": "subscribe", "feed_id": feeds[index % 3]})
            await recv_until(ws, is_type("subscription_confirmed"), timeout=15)
            return {(await recv_until(ws, is_type("price_update"), timeout=15))["data"]["id"] for _ in range(3)}

    results = await asyncio.gather(*(client(i) for i in range(100)))
    assert [r for r in results] == [{feeds[i % 3]} for i in range(100)]
