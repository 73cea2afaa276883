"""A local Kite ticker for tests: Kite's WebSocket protocol, byte for byte (reference/integrations.md section 3).

It authenticates the handshake by ``api_key`` and ``access_token`` (403 otherwise), keeps each connection's
subscriptions and modes from the JSON requests (a subscribe without a mode streams ``quote``, as Kite
does), sends ticks as binary frames of one or more packets in each instrument's mode, a 1-byte heartbeat
every ``heartbeat_s``, and text messages; it can drop a connection without a close frame or go silent.
Packets are built here from the published layouts, not by pricefeed's parser.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response


@dataclass
class KiteTick:
    """What the fake streams for one instrument; every mode is rendered from it."""

    token: int
    price: int
    quantity: int = 0
    average: int = 0
    volume: int = 0
    buy: int = 0
    sell: int = 0
    open: int = 0
    high: int = 0
    low: int = 0
    close: int = 0
    last_trade_time: int = 0
    exchange_timestamp: int = 0
    bids: list[tuple[int, int, int]] = field(default_factory=list)
    """(quantity, price, orders) per level, best first."""
    asks: list[tuple[int, int, int]] = field(default_factory=list)

    @property
    def index(self) -> bool:
        return self.token & 0xFF == 9

    def packet(self, mode: str) -> bytes:
        if mode == "ltp":
            return struct.pack(">Ii", self.token, self.price)
        if self.index:
            body = struct.pack(">Iiiiiii", self.token, self.price, self.high, self.low, self.open, self.close,
                               self.price - self.close)
            return body + struct.pack(">I", self.exchange_timestamp) if mode == "full" else body
        quote = struct.pack(">IiIiIIIiiii", self.token, self.price, self.quantity, self.average, self.volume,
                            self.buy, self.sell, self.open, self.high, self.low, self.close)
        if mode == "quote":
            return quote
        head = struct.pack(">IIIII", self.last_trade_time, 0, 0, 0, self.exchange_timestamp)
        depth = b"".join(struct.pack(">IiH2x", *level) for level in _levels(self.bids) + _levels(self.asks))
        return quote + head + depth


def _levels(levels: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    return (levels + [(0, 0, 0)] * 5)[:5]


def frame(packets: list[bytes]) -> bytes:
    """``int16`` count, then ``int16`` length + packet for each (big-endian)."""
    return struct.pack(">H", len(packets)) + b"".join(struct.pack(">H", len(p)) + p for p in packets)


class FakeKiteTicker:
    def __init__(self, api_key: str = "kite-key", access_token: str = "kite-token", heartbeat_s: float = 0.5) -> None:
        self.api_key = api_key
        self.access_token = access_token
        self.heartbeat_s = heartbeat_s
        self.silent = False
        """When set, nothing is sent (no ticks, no heartbeats): a dead upstream that keeps the socket open."""
        self.connections: list[ServerConnection] = []
        self.modes: dict[ServerConnection, dict[int, str]] = {}
        self.requests: list[dict[str, Any]] = []
        """Every JSON request, in order, over all connections."""
        self.handshakes: list[Request] = []
        self.refused = 0
        self._changed = asyncio.Condition()
        self._server: Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"ws://{host}:{port}/"

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[FakeKiteTicker]:
        async with serve(self._handle, "127.0.0.1", 0, process_request=self._authenticate, ping_interval=None) as srv:
            self._server = srv
            yield self

    def _authenticate(self, connection: ServerConnection, request: Request) -> Response | None:
        query = {k: v[-1] for k, v in parse_qs(urlsplit(request.path).query).items()}
        self.handshakes.append(request)
        if query.get("api_key") != self.api_key or query.get("access_token") != self.access_token:
            self.refused += 1
            return connection.respond(HTTPStatus.FORBIDDEN, "Invalid `api_key` or `access_token`.\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections.append(ws)
        self.modes[ws] = {}
        await self._notify()
        beat = asyncio.create_task(self._heartbeats(ws))
        try:
            async for message in ws:
                request = json.loads(message)
                self.requests.append(request)
                action, value = request["a"], request["v"]
                modes = self.modes[ws]
                if action == "subscribe":
                    for token in value:
                        modes.setdefault(token, "quote")
                elif action == "unsubscribe":
                    for token in value:
                        modes.pop(token, None)
                elif action == "mode":
                    mode, tokens = value
                    for token in tokens:
                        if token in modes:
                            modes[token] = mode
                await self._notify()
        except Exception:
            pass
        finally:
            beat.cancel()
            self.modes.pop(ws, None)
            await self._notify()

    async def _heartbeats(self, ws: ServerConnection) -> None:
        with contextlib.suppress(Exception):
            while True:
                await asyncio.sleep(self.heartbeat_s)
                if not self.silent:
                    await ws.send(b"\x00")

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    @property
    def live(self) -> list[ServerConnection]:
        return [ws for ws in self.connections if ws in self.modes]

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        async def check() -> None:
            async with self._changed:
                await self._changed.wait_for(predicate)

        await asyncio.wait_for(check(), timeout)

    async def wait_streaming(self, tokens: set[int], mode: str, connections: int | None = None,
                             timeout: float = 10.0) -> ServerConnection:
        """The live connection that streams every token in ``mode`` (after the ``connections``-th has opened)."""
        def ready() -> bool:
            if connections is not None and len(self.connections) < connections:
                return False
            return any(all(self.modes[ws].get(t) == mode for t in tokens) for ws in self.live)

        await self.wait_for(ready, timeout)
        return next(ws for ws in self.live if all(self.modes[ws].get(t) == mode for t in tokens))

    async def send_ticks(self, ticks: list[KiteTick]) -> int:
        """One frame per live connection with a packet for each subscribed instrument, in its mode."""
        sent = 0
        for ws in self.live:
            modes = self.modes[ws]
            packets = [t.packet(modes[t.token]) for t in ticks if t.token in modes]
            if packets and not self.silent:
                with contextlib.suppress(Exception):
                    await ws.send(frame(packets))
                    sent += 1
        return sent

    async def send_raw(self, data: bytes | str) -> None:
        for ws in self.live:
            await ws.send(data)

    def drop(self) -> None:
        """Cut every connection without a close frame (a network failure)."""
        for ws in self.live:
            ws.transport.abort()
