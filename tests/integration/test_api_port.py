"""The API port's WebSocket and SSE faces on the shared transport: bounds, floods, idle sockets, counts, CORS."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from benchmarks.common import tcp_established
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from pricefeed.app import App
from pricefeed.model import PriceUpdate
from pricefeed.sources import SimulatedMarket

from ..service import in_process
from ..wsclient import BTC, is_type, recv_json, recv_until, send
from .test_slow_client import masked_text_frame

OUTBOX_LIMIT = 256 * 1024


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    async with in_process(tmp_path, sim_interval=3600, slow_client_timeout=1.0, outbox_limit_bytes=OUTBOX_LIMIT,
                          handshake_timeout=1.0) as service:
        sim = service.sources[0]
        assert isinstance(sim, SimulatedMarket)
        service.ingest.publish_many(sim.tick())  # every feed has a latest price
        service.ingest.run_pass()
        yield service


def _next(update: PriceUpdate, step: int) -> PriceUpdate:
    return PriceUpdate(feed_id=update.feed_id, price=update.price + step, conf=update.conf, expo=update.expo,
                       publish_time_us=update.publish_time_us + 1000 * step, ema_price=update.ema_price,
                       ema_conf=update.ema_conf, source="sim")


async def _raw_client(port: int, request: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(request)
    await writer.drain()
    return reader, writer


async def _stuck_ws(port: int) -> asyncio.StreamWriter:
    key = base64.b64encode(os.urandom(16)).decode()
    reader, writer = await _raw_client(port, (
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    assert b" 101 " in await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    return writer


async def _stuck_sse(port: int, ids: list[str]) -> asyncio.StreamWriter:
    query = "&".join(f"ids[]={i}" for i in ids)
    reader, writer = await _raw_client(port, (
        f"GET /v2/updates/price/stream?{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").encode())
    assert b" 200 " in await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    return writer


async def _flood_until_closed(app: App, face: str) -> int:
    """Publish pass after pass until the face has no connection left; the peak of its queued bytes."""
    feed_ids = list(app.hub.feeds)
    last = {f: app.hub.latest[f] for f in feed_ids}
    peak = 0
    for step in range(1, 60_000):
        listener = next(x for x in app.listeners.listeners if x.face == face)
        if not listener.connections:
            return peak
        peak = max(peak, listener.queued_bytes())
        batch = [_next(last[f], 1) for f in feed_ids]
        for update in batch:
            last[update.feed_id] = update
        app.ingest.publish_many(batch)
        await asyncio.sleep(0)
        if step % 200 == 0:
            await asyncio.sleep(0.01)
    raise AssertionError(f"the {face} client that never reads was never closed")


async def _until_not_established(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    while tcp_established(sock):
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("face", ["hermes_ws", "hermes_sse"])
async def test_a_client_that_never_reads_is_bounded_then_reset(app: App, face: str) -> None:
    if face == "hermes_ws":
        writer = await _stuck_ws(app.api_port)
        writer.write(masked_text_frame(json.dumps({"type": "subscribe", "ids": list(app.hub.feeds),
                                                   "verbose": True})))
        await writer.drain()
    else:
        writer = await _stuck_sse(app.api_port, list(app.hub.feeds))
    writer.transport.pause_reading()
    while app.hub.subscription_count() < len(app.hub.feeds):
        await asyncio.sleep(0.01)
    peak = await asyncio.wait_for(_flood_until_closed(app, face), 60)
    assert peak <= OUTBOX_LIMIT
    assert app.hub.subscription_count() == 0
    assert app.metrics.total("pricefeed_slow_client_closes_total", face=face) == 1
    await asyncio.wait_for(_until_not_established(writer), 5)
    writer.close()


async def test_a_hermes_ws_flood_is_closed_with_1008_and_others_go_on(app: App) -> None:
    async with connect(f"ws://127.0.0.1:{app.api_port}/ws") as calm, \
            connect(f"ws://127.0.0.1:{app.api_port}/ws", max_queue=None) as flooder:
        await send(calm, {"type": "subscribe", "ids": [BTC]})
        assert await recv_json(calm) == {"type": "response", "status": "success"}
        for _ in range(300):
            await flooder.send(json.dumps({"type": "nope"}))
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(flooder.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        assert "rate limit" in closed.value.rcvd.reason
        await send(calm, {"type": "unsubscribe", "ids": [BTC]})
        assert await recv_until(calm, is_type("response")) == {"type": "response", "status": "success"}


async def test_deep_json_gets_an_ordinary_error_on_every_json_face(app: App) -> None:
    nested = "[" * 1000 + "]" * 1000
    async with connect(f"ws://127.0.0.1:{app.api_port}/ws") as hermes:
        await hermes.send('{"type":' + nested + '}')
        reply = await recv_json(hermes)
        assert reply["type"] == "response" and reply["status"] == "error"
        await send(hermes, {"type": "subscribe", "ids": [BTC]})
        assert await recv_json(hermes) == {"type": "response", "status": "success"}
    async with connect(f"ws://127.0.0.1:{app.ws_port}") as seed000:
        await recv_json(seed000)
        await seed000.send('{"type":' + nested + '}')
        reply = await recv_json(seed000)
        assert reply["type"] == "error" and reply["message"].startswith("unknown message type an array [[")
        await send(seed000, {"type": "subscribe", "feed_id": BTC})
        assert (await recv_json(seed000))["type"] == "subscription_confirmed"


async def test_idle_and_half_sent_connections_on_the_api_port_are_dropped(app: App) -> None:
    clients = [await _raw_client(app.api_port, b"") for _ in range(10)]
    clients += [await _raw_client(app.api_port, b"GET /v2/price_feeds HT") for _ in range(10)]

    async def closed(reader: asyncio.StreamReader) -> bytes:
        return await reader.read()  # b"" once the server closed

    results = await asyncio.wait_for(asyncio.gather(*(closed(r) for r, _ in clients)), 5)
    assert results == [b""] * 20
    for _, writer in clients:
        writer.close()


async def test_status_counts_every_face_and_metrics_parse(app: App) -> None:
    streams = [await _stuck_sse(app.api_port, [BTC]) for _ in range(3)]
    async with connect(f"ws://127.0.0.1:{app.api_port}/ws") as a, \
            connect(f"ws://127.0.0.1:{app.api_port}/ws") as b, connect(f"ws://127.0.0.1:{app.ws_port}") as c:
        for ws in (a, b):
            await send(ws, {"type": "subscribe", "ids": [BTC]})
            await recv_json(ws)
        await recv_json(c)
        await send(c, {"type": "subscribe", "feed_id": BTC})
        await recv_until(c, is_type("price_update"))
        app.ingest.publish(_next(app.hub.latest[BTC], 1))
        for ws in (a, b):
            assert (await recv_json(ws))["type"] == "price_update"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.api_port}") as http:
            status = (await http.get("/status")).json()
            metrics = (await http.get("/metrics")).text
    assert status["connections"] == 6
    assert status["connections_by_face"] == {"seed000": 1, "hermes_ws": 2, "hermes_sse": 3, "streams_stream": 0,
                                             "streams_analysis": 0, "streams_alerts": 0, "streams_portfolio": 0,
                                             "lazer": 0}
    families = {f.name: f for f in text_string_to_metric_families(metrics)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert samples[("pricefeed_connections", (("face", "hermes_sse"),))] == 3
    assert samples[("pricefeed_deliveries_total", (("face", "hermes_ws"),))] == 2
    assert samples[("pricefeed_deliveries_total", (("face", "hermes_sse"),))] == 3
    assert samples[("pricefeed_deliveries_total", (("face", "seed000"),))] == 1
    assert samples[("pricefeed_updates_accepted_total", (("source", "sim"),))] == len(app.hub.feeds) + 1
    assert samples[("pricefeed_publish_to_send_latency_seconds_count", (("face", "hermes_ws"),))] == 1
    assert ("pricefeed_source_reconnects_total", (("source", "sim"),)) in samples
    assert ("pricefeed_queued_bytes", (("face", "seed000"),)) in samples
    assert ("pricefeed_slow_client_closes_total", (("face", "hermes_sse"),)) in samples
    assert ("pricefeed_updates_dropped_total", (("reason", "not_newer"), ("source", "sim"))) not in samples
    for writer in streams:
        writer.close()


async def test_hermes_rest_allows_every_origin(app: App) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.api_port}") as http:
        preflight = await http.options("/v2/updates/price/latest", headers={
            "Origin": "https://app.example", "Access-Control-Request-Method": "GET"})
        simple = await http.get(f"/v2/updates/price/latest?ids[]={BTC}", headers={"Origin": "https://app.example"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert simple.status_code == 200 and simple.headers["access-control-allow-origin"] == "*"
