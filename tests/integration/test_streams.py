"""The stream service of seed 004 with the `websockets` client: the seed's messages field by field, the data
additions, bad input, the four endpoints at once, many clients, idle connections, and the HTTP endpoints."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from pricefeed.app import App

from ..service import in_process
from ..wsclient import BTC, is_type, recv_json, recv_until, send

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ENDPOINTS = ("stream", "analysis", "alerts", "portfolio")


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    async with in_process(tmp_path, sim_interval=0.05, sim_equities=True, sim_market_hours=False,
                          candle_intervals=["1s", "1m"], seed=4) as service:
        yield service


def url(app: App, endpoint: str = "stream") -> str:
    return f"ws://127.0.0.1:{app.streams_port}/ws/{endpoint}"


def assert_recent(timestamp: str, within_s: float = 5.0) -> None:
    assert ISO.match(timestamp), timestamp
    when = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
    assert abs(when - time.time()) < within_s


async def welcomed(ws: ClientConnection) -> dict[str, Any]:
    welcome = await recv_json(ws)
    assert set(welcome) == {"type", "status", "timestamp", "message"}
    assert (welcome["type"], welcome["status"], welcome["message"]) == (
        "connection", "connected", "WebSocket connection established successfully")
    assert_recent(welcome["timestamp"])
    return welcome


async def subscribe(ws: ClientConnection, symbol: str, **extra: Any) -> dict[str, Any]:
    await send(ws, {"type": "subscribe", "symbol": symbol, **extra})
    return await recv_until(ws, lambda m: m["type"] in ("subscription", "error"))


async def test_the_seeds_messages_field_by_field(app: App) -> None:
    async with connect(url(app)) as ws:
        await welcomed(ws)
        reply = await subscribe(ws, "RELIANCE")
        assert set(reply) == {"type", "status", "symbol", "timestamp"}
        assert (reply["type"], reply["status"], reply["symbol"]) == ("subscription", "subscribed", "RELIANCE")
        assert_recent(reply["timestamp"])
        volumes = []
        for _ in range(3):
            data = await recv_json(ws)
            assert set(data) == {"type", "symbol", "timestamp", "data"}
            assert (data["type"], data["symbol"]) == ("data", "RELIANCE")
            assert_recent(data["timestamp"])
            assert set(data["data"]) == {"price", "volume", "change", "change_percent"}
            price, change = data["data"]["price"], data["data"]["change"]
            assert round(price * 100) % 5 == 0 and 100 < price < 100_000  # rupees on NSE's 5-paise tick
            reference = round(price - change, 2)
            assert data["data"]["change_percent"] == round(change * 100 / reference, 2)
            volumes.append(data["data"]["volume"])
        assert volumes == sorted(volumes) and all(isinstance(v, int) and v > 0 for v in volumes)

        await send(ws, {"type": "heartbeat", "timestamp": 1706352600.123})
        ack = await recv_until(ws, lambda m: m["type"] != "data")
        assert set(ack) == {"type", "status", "timestamp"} and (ack["type"], ack["status"]) == ("heartbeat", "ack")
        await send(ws, {"type": "ping", "timestamp": 1706352600.123})
        pong = await recv_until(ws, lambda m: m["type"] != "data")
        assert set(pong) == {"type", "timestamp"} and pong["type"] == "pong"
        assert_recent(pong["timestamp"])

        await send(ws, {"type": "unsubscribe", "symbol": "RELIANCE"})
        reply = await recv_until(ws, lambda m: m["type"] != "data")
        assert set(reply) == {"type", "status", "symbol", "timestamp"}
        assert (reply["type"], reply["status"], reply["symbol"]) == ("subscription", "unsubscribed", "RELIANCE")
        await send(ws, {"type": "ping"})
        assert (await recv_json(ws))["type"] == "pong"  # nothing of RELIANCE after the unsubscription


@pytest.mark.parametrize(("message", "error"), [
    ("{not json", "Invalid JSON format"),
    ('[1, 2]', 'message must be a JSON object with a "type", got an array'),
    ('{"symbol": "RELIANCE"}', 'missing "type": expected one of subscribe, unsubscribe, heartbeat, ping'),
    ('{"type": "subscribe_all"}', "unknown message type 'subscribe_all': expected one of subscribe, unsubscribe, "
                                  "heartbeat, ping"),
    ('{"type": "subscribe"}', 'subscribe needs a "symbol", e.g. {"type": "subscribe", "symbol": "RELIANCE"}'),
    ('{"type": "unsubscribe", "symbol": 42}', '"symbol" must be a non-empty string, got 42'),
    ('{"type": "subscribe", "symbol": "RELIANCE", "data_types": ["ticks", "candle_7m"]}',
     "unknown data type 'candle_7m': known types are tick, candle_1s, candle_1m, market"),
])
async def test_bad_input_gets_an_error_and_the_connection_goes_on(app: App, message: str, error: str) -> None:
    async with connect(url(app)) as ws:
        await welcomed(ws)
        await ws.send(message)
        reply = await recv_json(ws)
        assert set(reply) == {"type", "message", "timestamp"}
        assert (reply["type"], reply["message"]) == ("error", error)
        assert_recent(reply["timestamp"])
        await send(ws, {"type": "ping"})
        assert (await recv_json(ws))["type"] == "pong"


async def test_an_unknown_symbol_names_the_symbols_that_exist_and_binary_frames_are_refused(app: App) -> None:
    async with connect(url(app)) as ws:
        await welcomed(ws)
        reply = await subscribe(ws, "NOSUCH")
        assert reply["type"] == "error" and reply["message"].startswith("unknown symbol 'NOSUCH': known symbols are ")
        for symbol in ("RELIANCE", "TCS", "INFY", "HDFCBANK", "BTC/USD", "EUR/USD"):
            assert symbol in reply["message"]
        await ws.send(b'{"type": "ping"}')
        reply = await recv_json(ws)
        assert reply["message"] == "binary frames are not supported: send JSON messages as text frames"


@pytest.mark.parametrize(("asked", "canonical"), [
    ("RELIANCE", "RELIANCE"), ("reliance", "RELIANCE"), ("NSE:RELIANCE", "RELIANCE"),
    ("Equity.NSE.RELIANCE/INR", "RELIANCE"), ("BTC/USD", "BTC/USD"), ("btc", "BTC/USD"),
    ("Crypto.BTC/USD", "BTC/USD"), (BTC, "BTC/USD"), ("0x" + BTC.upper(), "BTC/USD"),
])
async def test_symbols_in_any_form(app: App, asked: str, canonical: str) -> None:
    async with connect(url(app)) as ws:
        await welcomed(ws)
        assert (await subscribe(ws, asked))["symbol"] == canonical
        assert (await recv_until(ws, lambda m: m["type"] == "data"))["symbol"] == canonical


async def test_data_types_ticks_candles_and_market_data(app: App) -> None:
    async with connect(url(app)) as ws:
        await welcomed(ws)
        reply = await subscribe(ws, "TCS", data_types=["tick", "candle_1s", "market_data"])
        assert reply["data_types"] == ["tick", "candle_1s", "market"]
        seen: dict[str, dict[str, Any]] = {}
        finals: list[dict[str, Any]] = []
        while len(finals) < 2 or len(seen) < 3:
            message = await recv_json(ws)
            assert message["type"] == "data" and message["symbol"] == "TCS" and "data_type" in message
            seen[message["data_type"]] = message
            if message["data_type"] == "candle" and message["data"]["final"]:
                finals.append(message["data"])
        tick = seen["tick"]["data"]
        assert set(tick) == {"price", "quantity", "volume", "change", "change_percent", "status", "seq"}
        assert tick["quantity"] > 0 and tick["volume"] >= tick["quantity"] and tick["status"] == "trading"
        candle = seen["candle"]["data"]
        assert set(candle) == {"interval", "start", "end", "open", "high", "low", "close", "volume", "ticks", "final"}
        for bar in finals:
            assert bar["interval"] == "1s" and bar["start"].endswith(".000Z") and bar["low"] <= bar["open"]
            assert bar["low"] <= bar["close"] <= bar["high"] and bar["ticks"] >= 1
        assert [b["start"] for b in finals] == sorted({b["start"] for b in finals})  # each bar once, in order
        market = seen["market"]["data"]
        assert market["market_status"] == "open" and market["low"] <= market["last_price"] <= market["high"]
        assert market["volume"] > 0 and market["bid"] is None and market["ask"] is None

    async with connect(url(app)) as ws:  # a later client gets the recent bars at once
        await welcomed(ws)
        await subscribe(ws, "TCS", data_types=["candle_1s"])
        first = await recv_json(ws)
        assert first["data_type"] == "candle" and first["data"]["final"] is True


async def test_the_four_endpoints_at_once_from_one_client(app: App) -> None:
    sockets = [await connect(url(app, name)) for name in ENDPOINTS]
    try:
        for ws in sockets:
            await welcomed(ws)
            reply = await subscribe(ws, "INFY")
            assert (reply["type"], reply["status"], reply["symbol"]) == ("subscription", "subscribed", "INFY")
        stream, analysis, *others = sockets
        assert (await recv_json(stream))["type"] == "data"
        assert (await recv_json(analysis))["data_type"] == "technical_analysis"
        for ws in [analysis, *others]:  # /ws/alerts and /ws/portfolio only confirm subscriptions so far
            await send(ws, {"type": "ping"})
            assert (await recv_until(ws, is_type("pong")))["type"] == "pong"
            await send(ws, {"type": "heartbeat"})
            assert (await recv_until(ws, is_type("heartbeat")))["status"] == "ack"
        async with httpx.AsyncClient() as http:
            listing = (await http.get(f"http://127.0.0.1:{app.streams_port}/connections")).json()
        assert listing["total"] == 4 and listing["by_endpoint"] == {f"/ws/{n}": 1 for n in ENDPOINTS}
        for row in listing["connections"]:
            assert set(row) == {"endpoint", "client_id", "client", "connected_at", "subscriptions", "messages_sent"}
            assert row["subscriptions"] == ["INFY"] and row["client"].startswith("127.0.0.1:")
            assert_recent(row["connected_at"], 30) and row["messages_sent"] >= 2
    finally:
        for ws in sockets:
            await ws.close()


async def test_many_clients_each_get_their_symbols(app: App) -> None:
    symbols = ["RELIANCE", "TCS", "BTC/USD", "ETH/USD", "SBIN"]
    clients = [await connect(url(app)) for _ in range(40)]
    try:
        for i, ws in enumerate(clients):
            await welcomed(ws)
            await subscribe(ws, symbols[i % len(symbols)])
        for i, ws in enumerate(clients):
            for _ in range(2):
                data = await recv_json(ws)
                assert (data["type"], data["symbol"]) == ("data", symbols[i % len(symbols)])
        async with httpx.AsyncClient() as http:
            health = (await http.get(f"http://127.0.0.1:{app.streams_port}/health")).json()
        assert health["status"] == "ok" and health["connections"] == 40
        assert health["endpoints"] == {"/ws/stream": 40, "/ws/analysis": 0, "/ws/alerts": 0, "/ws/portfolio": 0}
        assert_recent(health["timestamp"])
    finally:
        for ws in clients:
            await ws.close()


async def test_the_http_endpoints(app: App) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.streams_port}") as http:
        page = await http.get("/test")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "/ws/${name}" in page.text
        missing = await http.get("/nope")
        assert missing.status_code == 404 and missing.json()["error"] == "no such endpoint: /nope"
        listing = (await http.get("/connections")).json()
        assert listing["total"] == 0 and listing["connections"] == []


async def test_a_connection_that_sends_nothing_and_answers_no_ping_is_closed(tmp_path: Path) -> None:
    async with in_process(tmp_path, sim_interval=3600, streams_idle_timeout=2.0) as app:
        port = app.streams_port
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET /ws/alerts HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        assert b" 101 " in await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        async with connect(f"ws://127.0.0.1:{port}/ws/alerts") as alive:  # answers pings (the client does)
            await welcomed(alive)
            started = time.monotonic()
            with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
                while await asyncio.wait_for(reader.read(65536), 5):  # the welcome, pings, then the end
                    pass
                raise asyncio.IncompleteReadError(b"", None)
            assert time.monotonic() - started < 2.0 + 1.5  # the timeout plus one sweep
            await send(alive, {"type": "ping"})
            assert (await recv_json(alive))["type"] == "pong"  # the one that answers stays
        writer.close()


async def test_streams_can_be_turned_off(tmp_path: Path) -> None:
    async with in_process(tmp_path, sim_interval=3600, streams=False) as app:
        assert "streams" not in app.listeners.ports


async def test_origins_allowed_and_refused_from_the_environment(tmp_path: Path) -> None:
    from ..service import ServiceProcess

    svc = ServiceProcess(tmp_path / "db", "--source", "sim", "--sim-interval", "0.1",
                         env={"CORS_ORIGINS": "http://localhost:3000,https://app.example.com"})
    await svc.start()
    try:
        base = svc.streams_url + "/ws/stream"
        for origin in ("http://localhost:3000", "https://app.example.com", None):
            async with connect(base, origin=origin) as ws:  # type: ignore[arg-type]
                await welcomed(ws)
        with pytest.raises(Exception, match="HTTP 403") as refused:
            await connect(base, origin="http://evil.example")  # type: ignore[arg-type]
        assert refused.value.response.status_code == 403  # type: ignore[attr-defined]
        async with httpx.AsyncClient(base_url=svc.streams_url.replace("ws://", "http://")) as http:
            ok = await http.get("/health", headers={"Origin": "http://localhost:3000"})
            assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "http://localhost:3000"
            no = await http.get("/connections", headers={"Origin": "http://evil.example"})
            assert no.status_code == 403 and "origin 'http://evil.example' is not allowed" in no.text
            assert (await http.get("/health")).status_code == 200  # not a browser: no Origin, no refusal
    finally:
        await svc.stop()


async def test_every_origin_is_accepted_when_none_is_set(app: App) -> None:
    async with connect(url(app), origin="http://anywhere.example") as ws:  # type: ignore[arg-type]
        await welcomed(ws)
    async with httpx.AsyncClient() as http:
        reply = await http.get(f"http://127.0.0.1:{app.streams_port}/health",
                               headers={"Origin": "http://anywhere.example"})
        assert reply.status_code == 200 and reply.headers["access-control-allow-origin"] == "*"


def test_cors_origins_from_the_seeds_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from pricefeed.config import load_settings

    monkeypatch.setenv("CORS_ORIGINS", "http://localhost:3000, http://localhost:5173")
    assert load_settings({}).cors_origins == ["http://localhost:3000", "http://localhost:5173"]
    assert load_settings({"cors_origins": ["http://a.example"]}).cors_origins == ["http://a.example"]
    monkeypatch.setenv("CORS_ORIGINS", "not an origin")
    from pricefeed.config import ConfigError

    with pytest.raises(ConfigError, match="invalid origin 'not an origin'"):
        load_settings({})
