"""A local stand-in for a Pyth Lazer router (reference/lazer.md sections 2 to 6), for tests without the internet.

It speaks ``/v1/stream`` byte for byte as the Rust server serializes it
(compact JSON, serde's field order, prices and ``timestampUs`` as strings),
accepts the three token forms, ticks every fixed-rate channel at wall-clock
multiples of its period, and computes each price from the feed and the tick
alone: two of these servers send identical frames for the same tick, as
Lazer's routers do. It can be killed (connections dropped without a close),
restarted on the same port, and silenced (it keeps accepting but says nothing
and answers no ping).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

CHANNEL_PERIODS_US = {"real_time": 50_000, "fixed_rate@50ms": 50_000, "fixed_rate@200ms": 200_000,
                      "fixed_rate@1000ms": 1_000_000}
CHANNEL_IDS = {"1": "real_time", "2": "fixed_rate@50ms", "3": "fixed_rate@200ms", "4": "fixed_rate@1000ms"}
PROPERTY_ORDER = ("price", "bestBidPrice", "bestAskPrice", "publisherCount", "exponent", "confidence", "fundingRate",
                  "fundingTimestamp", "fundingRateInterval", "marketSession", "feedUpdateTimestamp", "emaPrice",
                  "emaConfidence")
"""The order serde writes ``ParsedFeedPayload``'s fields in (the payload-reference example's order)."""


@dataclass(frozen=True)
class FakeFeed:
    lazer_id: int
    symbol: str
    base: int
    """Price mantissa level."""
    exponent: int = -8
    funding: bool = False


FEEDS = (FakeFeed(1, "Crypto.BTC/USD", 9_500_000_000_000), FakeFeed(2, "Crypto.ETH/USD", 330_000_000_000),
         FakeFeed(6, "Crypto.SOL/USD", 18_000_000_000),
         FakeFeed(9001, "Crypto.ETH-PERP/USD", 330_100_000_000, funding=True))
BY_ID = {feed.lazer_id: feed for feed in FEEDS}
BY_SYMBOL = {feed.symbol: feed for feed in FEEDS}


def feed_values(feed: FakeFeed, tick_us: int) -> dict[str, Any]:
    """Every property of ``feed`` at ``tick_us``: a function of the two alone."""
    step = tick_us // 50_000
    price = feed.base + (step * 7919 + feed.lazer_id * 104_729) % (feed.base // 1000)
    spread = price // 20_000 + 1
    values: dict[str, Any] = {
        "price": str(price), "bestBidPrice": str(price - spread), "bestAskPrice": str(price + spread),
        "publisherCount": 7 + feed.lazer_id % 5, "exponent": feed.exponent, "confidence": spread * 3,
        "marketSession": "regular", "feedUpdateTimestamp": tick_us,
        "emaPrice": str(price - 77), "emaConfidence": spread * 2,
    }
    if feed.funding:
        values.update(fundingRate=-1234 + step % 100, fundingTimestamp=tick_us - tick_us % 28_800_000_000,
                      fundingRateInterval=28_800_000_000)
    return values


def stream_updated(subscription_id: int, tick_us: int, feeds: list[FakeFeed], properties: list[str]) -> bytes:
    entries = []
    for feed in feeds:
        values = feed_values(feed, tick_us)
        entry: dict[str, Any] = {"priceFeedId": feed.lazer_id}
        entry.update((name, values[name]) for name in PROPERTY_ORDER if name in properties and name in values)
        entries.append(entry)
    return orjson.dumps({"type": "streamUpdated", "subscriptionId": subscription_id,
                         "parsed": {"timestampUs": str(tick_us), "priceFeeds": entries}})


@dataclass
class _Subscription:
    id: int
    feeds: list[FakeFeed]
    properties: list[str]
    period_us: int


@dataclass(eq=False)
class _Session:
    ws: ServerConnection
    subscriptions: dict[int, _Subscription] = field(default_factory=dict)


class FakeLazer:
    def __init__(self, port: int = 0, token: str | None = None) -> None:
        self.port = port
        self.token = token
        self.silent = False
        self.sessions: set[_Session] = set()
        self.connections_accepted = 0
        self.handshakes: list[dict[str, str]] = []
        self._server: Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._mute: set[ServerConnection] = set()
        self._killed = asyncio.Event()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/stream"

    async def start(self) -> FakeLazer:
        self._killed = asyncio.Event()
        self._server = await serve(self._handle, "127.0.0.1", self.port, process_request=self._check,
                                   select_subprotocol=_echo_auth, compression=None)
        self.port = self._server.sockets[0].getsockname()[1]
        self._ticker = asyncio.create_task(self._tick())
        return self

    async def kill(self) -> None:
        """Drop every connection without a close frame and stop listening, as a crashed process would."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for session in list(self.sessions):
            session.ws.transport.abort()
        self.sessions.clear()
        for connection in self._mute:
            connection.transport.abort()
        self._mute.clear()
        self._killed.set()
        if self._server is not None:
            self._server.close(close_connections=False)
            await self._server.wait_closed()
            self._server = None

    async def restart(self) -> None:
        await self.kill()
        self.silent = False
        await self.start()

    def silence(self) -> None:
        """Keep accepting, but send nothing and read nothing (so no pong) on every open connection, and never
        answer a new connection's handshake."""
        self.silent = True
        for session in self.sessions:
            session.ws.transport.pause_reading()

    # -- the protocol --------------------------------------------------------------------------------------

    async def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.silent:  # accept the connection, never answer the handshake
            self._mute.add(connection)
            await self._killed.wait()
        headers = {k.lower(): v for k, v in request.headers.raw_items()}
        self.handshakes.append(headers)
        if urlsplit(request.path).path != "/v1/stream":
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        if self.token is not None and lazer_token(request) != self.token:
            return connection.respond(HTTPStatus.UNAUTHORIZED, "Unauthorized\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections_accepted += 1
        session = _Session(ws)
        self.sessions.add(session)
        try:
            async for frame in ws:
                if not self.silent:
                    reply = self._request(session, frame)
                    if reply is not None:
                        await ws.send(reply.decode())
        except Exception:  # a killed or broken connection just ends
            pass
        finally:
            self.sessions.discard(session)

    def _request(self, session: _Session, frame: str | bytes) -> bytes | None:
        try:
            request = orjson.loads(frame)
            kind = request["type"]
            subscription_id = request["subscriptionId"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            return orjson.dumps({"type": "error", "error": f"failed to parse request: {exc}"})
        if kind == "unsubscribe":
            if session.subscriptions.pop(subscription_id, None) is None:
                return orjson.dumps({"type": "subscriptionError", "subscriptionId": subscription_id,
                                     "error": "subscription not found"})
            return orjson.dumps({"type": "unsubscribed", "subscriptionId": subscription_id})
        if subscription_id in session.subscriptions:
            return orjson.dumps({"type": "subscriptionError", "subscriptionId": subscription_id,
                                 "error": "Duplicate subscription IDs"})
        ids, symbols = request.get("priceFeedIds"), request.get("symbols")
        wanted = [BY_ID.get(i) for i in ids] if ids is not None else [BY_SYMBOL.get(s) for s in symbols or ()]
        feeds = [feed for feed in wanted if feed is not None]
        if len(feeds) < len(wanted) or not feeds:
            return orjson.dumps({"type": "subscriptionError", "subscriptionId": subscription_id,
                                 "error": "unknown price feed ids or symbols"})
        channel = CHANNEL_IDS.get(str(request.get("channel")), request.get("channel"))
        if channel not in CHANNEL_PERIODS_US:
            return orjson.dumps({"type": "subscriptionError", "subscriptionId": subscription_id,
                                 "error": f"invalid channel: {channel}"})
        session.subscriptions[subscription_id] = _Subscription(
            subscription_id, feeds, request["properties"], CHANNEL_PERIODS_US[channel])
        return orjson.dumps({"type": "subscribed", "subscriptionId": subscription_id})

    async def _tick(self) -> None:
        """Every 50 ms of wall clock, send each subscription whose period divides the tick its update; a tick
        is never skipped, only late (after a stall the missed ones go out at once, in order)."""
        now = time.time_ns() // 1000
        tick = now - now % 50_000
        while True:
            tick += 50_000
            now = time.time_ns() // 1000
            if tick > now:
                await asyncio.sleep((tick - now) / 1e6)
            if self.silent:
                continue
            for session in list(self.sessions):
                for sub in list(session.subscriptions.values()):
                    if tick % sub.period_us == 0:
                        with contextlib.suppress(Exception):
                            await session.ws.send(stream_updated(sub.id, tick, sub.feeds, sub.properties).decode())


def _echo_auth(connection: ServerConnection, offered: Any) -> Any:
    return "pyth-lazer-auth" if "pyth-lazer-auth" in offered else None


def lazer_token(request: Request) -> str | None:
    """The token from any of Lazer's three forms: Bearer header, ``ACCESS_TOKEN`` query, auth subprotocol."""
    authorization = request.headers.get("Authorization", "")
    if authorization.startswith("Bearer "):
        return authorization[7:].strip()
    query = parse_qs(urlsplit(request.path).query)
    if "ACCESS_TOKEN" in query:
        return query["ACCESS_TOKEN"][-1]
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
    if len(offered) >= 2 and offered[0] == "pyth-lazer-auth":
        return offered[1]
    return None
