"""A client that never reads neither delays the others nor grows the server's memory past its bound."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from benchmarks.common import tcp_established
from websockets.asyncio.client import connect

from pricefeed.app import App
from pricefeed.config import load_settings
from pricefeed.model import PriceUpdate
from pricefeed.sources import SimulatedMarket
from pricefeed.websocket import Connection

from ..wsclient import is_type, recv_json, recv_until, send

OUTBOX_LIMIT = 256 * 1024


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    settings = load_settings({
        "source": ["sim"], "host": "127.0.0.1", "port": 0, "api_host": "127.0.0.1", "api_port": 0,
        "db": str(tmp_path / "db"), "sim_interval": 3600, "rpc": False, "crypto": False, "slow_client_timeout": 1.0,
        "outbox_limit_bytes": OUTBOX_LIMIT})
    service = App(settings)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


def masked_text_frame(text: str) -> bytes:
    payload = text.encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    header = bytes((0x81, 0x80 | 126)) + struct.pack("!H", len(payload)) if len(payload) >= 126 \
        else bytes((0x81, 0x80 | len(payload)))
    return header + mask + masked


async def open_client_that_never_reads(port: int, subscribe: dict[str, object]) -> asyncio.StreamWriter:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    assert b" 101 " in await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    writer.write(masked_text_frame(json.dumps(subscribe)))
    await writer.drain()
    writer.transport.pause_reading()  # from here on, it never reads
    return writer


async def test_a_client_that_never_reads_is_bounded_then_closed_and_others_get_every_update(app: App) -> None:
    feed_ids = list(app.hub.feeds)
    sim = app.sources[0]
    assert isinstance(sim, SimulatedMarket)
    app.hub.publish_many(sim.tick())  # one real tick, so every feed has a latest price
    app.hub.run_pass()
    subscribe_all = {"type": "subscribe_multiple", "subscriptions": [{"feed_id": f} for f in feed_ids]}
    stuck = await open_client_that_never_reads(app.ws_port, subscribe_all)

    async with connect(f"ws://127.0.0.1:{app.ws_port}", max_queue=None) as fast:
        await recv_json(fast)
        await send(fast, subscribe_all)
        replies = [(await recv_json(fast))["type"] for _ in range(2 * len(feed_ids))]
        assert replies == ["subscription_confirmed", "price_update"] * len(feed_ids)

        async def both_subscribed() -> None:
            while app.hub.subscription_count() < 2 * len(feed_ids):
                await asyncio.sleep(0.01)

        await asyncio.wait_for(both_subscribed(), 5)
        slow = next(c for c in app.connections() if c.session.subscriptions and c is not _conn_of(app, fast))
        last = {f: app.hub.latest[f] for f in feed_ids}
        received: dict[str, list[str]] = {f: [] for f in feed_ids}
        published: dict[str, list[str]] = {f: [] for f in feed_ids}
        peak_queued = 0
        passes = 0
        # Publish pass after pass until the server gives up on the stuck client (bounded: 60 000 passes).
        while slow in app.connections() and passes < 60_000:
            passes += 1
            batch = [_next(last[f], passes) for f in feed_ids]
            for update in batch:
                last[update.feed_id] = update
            app.hub.publish_many(batch)
            for update in batch:
                published[update.feed_id].append(_iso_key(update))
            # The fast client must get this whole pass before the next one is published.
            for _ in feed_ids:
                data = (await recv_until(fast, is_type("price_update")))["data"]
                received[data["id"]].append(data["publish_time"])
            peak_queued = max(peak_queued, slow.queued_bytes)

        assert slow not in app.connections(), f"stuck client still connected after {passes} passes"
        assert peak_queued <= OUTBOX_LIMIT, peak_queued
        assert slow.outbox.pending_bytes == 0
        # The server reset the connection rather than leave the kernel holding it behind unread data.
        await asyncio.wait_for(_until_not_established(stuck), 5)
        # Every update reached the fast client, in order, once.
        for feed_id in feed_ids:
            assert received[feed_id] == published[feed_id][: len(received[feed_id])]
            assert len(received[feed_id]) == passes
    stuck.close()


async def _until_not_established(writer: asyncio.StreamWriter) -> None:
    """Until the kernel no longer counts the client's socket as open (its reading is paused, so ask the kernel)."""
    sock = writer.get_extra_info("socket")
    while tcp_established(sock):
        await asyncio.sleep(0.01)


def _conn_of(app: App, ws: object) -> Connection | None:
    """The server side of a `websockets` client: the one whose peer port is the client's local port."""
    local_port = ws.transport.get_extra_info("sockname")[1]  # type: ignore[attr-defined]
    for conn in app.connections():
        assert conn.transport is not None
        if conn.transport.underlying_transport.get_extra_info("peername")[1] == local_port:
            return conn
    return None


def _next(update: PriceUpdate, step: int) -> PriceUpdate:
    return PriceUpdate(feed_id=update.feed_id, price=update.price + step, conf=update.conf, expo=update.expo,
                       publish_time_us=update.publish_time_us + 1000, ema_price=update.ema_price,
                       ema_conf=update.ema_conf, source="test")


def _iso_key(update: PriceUpdate) -> str:
    from pricefeed.faces.simple_ws import iso_time

    return iso_time(update.publish_time_us)
