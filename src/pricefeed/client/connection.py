"""One resilient connection: connect, replay the subscriptions, read until it fails, back off, again.

A connection is dead when nothing (no message, no pong to our pings, no
keep-alive comment) arrived within the timeout: a WebSocket's watchdog pings
once it has been quiet for 0.4 timeout and drops it at the timeout; an event
stream's read times out; a handshake must finish within the timeout. So a
mute endpoint is given up within the timeout whether it falls mute before or
after the handshake. Messages count as much as pongs: a connection busy
delivering a backlog is alive even if its pong is queued behind the backlog,
and time spent waiting for a full channel (back-pressure) is not silence.
Failures never leave this object: they become its state, its last error and
a reconnect after the backoff.

Each connection remembers the last seq it received per feed (``seqs``) and a
reconnect asks for what came after (seed 000's ``since_seq``, the event
stream's ``Last-Event-ID``, Lazer's ``sinceSeq``), so it misses nothing that
the server's resume log still holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import httpx
from httpx_sse import aconnect_sse
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from ..resilience import Backoff
from .messages import Message, PriceUpdate, StreamUpdated
from .protocols.base import ProtocolAdapter
from .requests import Subscription
from .urls import redact_url

log = logging.getLogger(__name__)
_wire_log = logging.getLogger(__name__ + ".wire")
_wire_log.setLevel(logging.WARNING)  # websockets logs every handshake header at DEBUG: the token among them

MAX_FRAME_BYTES = 64 * 1024 * 1024
MAX_QUEUED_FRAMES = 1024
"""Frames a connection reads ahead of the consumer before it stops reading (then TCP holds the server back)."""

FrameHandler = Callable[["ResilientConnection", "str | bytes"], "Awaitable[None] | None"]
"""Takes a frame; returns what to await only when the channel is full (the common case costs no await)."""


class ConnectionState(enum.StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    BACKOFF = "backoff"
    IDLE = "idle"
    """An event stream with no feeds to ask for yet."""
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class ConnectionStats:
    index: int
    endpoint: str
    """The endpoint without credentials or query (where a token may hide)."""
    state: ConnectionState
    reconnects: int
    messages: int
    """Frames received."""
    duplicates: int
    """Frames and messages dropped because another connection delivered them first."""
    stale: int
    """Price updates dropped because a newer one of the same feed was already delivered."""
    last_error: str | None
    connected_for_s: float | None


class StreamEnded(ConnectionError):
    """The server ended the stream."""


class _Reopen(Exception):
    """The event stream's feeds changed: open it again at once, without backing off."""


def describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ResilientConnection:
    def __init__(self, index: int, endpoint: str, protocol: ProtocolAdapter, backoff: Backoff, timeout_s: float,
                 subscriptions: Callable[[], Sequence[Subscription]], on_frame: FrameHandler) -> None:
        self.index = index
        self.endpoint = endpoint
        self.protocol = protocol
        self.backoff = backoff
        self.timeout_s = timeout_s
        self._subscriptions = subscriptions
        self._on_frame = on_frame
        self.state = ConnectionState.CONNECTING
        self.reconnects = 0
        self.messages = 0
        self.duplicates = 0
        self.stale = 0
        self.last_error: str | None = None
        self._connected_at: float | None = None
        self._ws: ClientConnection | None = None
        self._heard_at = 0.0
        self._blocked = False
        self._timed_out = False
        self._reopen = asyncio.Event()
        self._safe_endpoint = redact_url(endpoint)
        self.seqs: dict[str, int] = {}
        """The last seq received per feed: where a reconnect resumes."""
        self._event_seqs: dict[str, int] = {}
        """The seqs the current event's id says (an event stream's updates carry theirs there)."""

    def stats(self) -> ConnectionStats:
        connected = None if self._connected_at is None else round(time.monotonic() - self._connected_at, 3)
        return ConnectionStats(self.index, self._safe_endpoint, self.state, self.reconnects, self.messages,
                               self.duplicates, self.stale, self.last_error, connected)

    def record_error(self, error: str) -> None:
        self.last_error = error

    def received(self, messages: list[Message]) -> list[Message]:
        """Note the seq of each price update (given it from the event id where the stream carries it there)."""
        event_seqs = self._event_seqs
        for index, message in enumerate(messages):
            if isinstance(message, PriceUpdate):
                if message.seq is None and message.feed_id in event_seqs:
                    message = messages[index] = replace(message, seq=event_seqs[message.feed_id])
                if message.seq is not None:
                    self.seqs[message.feed_id] = message.seq
            elif isinstance(message, StreamUpdated):
                for feed in message.feeds:
                    if feed.seq is not None:
                        self.seqs[str(feed.price_feed_id)] = feed.seq  # Lazer ids, as sinceSeq names them
        return messages

    # -- the loop -------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, read, and reconnect after each failure, forever (until cancelled)."""
        try:
            while True:
                try:
                    if self.protocol.transport == "sse":
                        await self._run_sse()
                    else:
                        await self._run_websocket()
                except _Reopen:
                    self._connected_at = None
                    continue
                except Exception as exc:  # every failure of one connection ends here, never in the consumer
                    self.last_error = describe(exc) if not self._timed_out else \
                        f"TimeoutError: no message, heartbeat or pong within {self.timeout_s:g} s"
                    log.warning("connection %d to %s failed: %s", self.index, self._safe_endpoint, self.last_error)
                lived = 0.0 if self._connected_at is None else time.monotonic() - self._connected_at
                self._connected_at = None
                self.backoff.connection_ended(lived)
                self.state = ConnectionState.BACKOFF
                await asyncio.sleep(self.backoff.next_delay())
                self.reconnects += 1
                self.state = ConnectionState.CONNECTING
        finally:
            self.state = ConnectionState.CLOSED
            self._ws = None

    def _connected(self) -> None:
        self._connected_at = time.monotonic()
        self.state = ConnectionState.CONNECTED
        log.info("connection %d to %s is up", self.index, self._safe_endpoint)

    async def _run_websocket(self) -> None:
        protocol = self.protocol
        subprotocols = protocol.subprotocols()
        self._timed_out = False
        async with connect(protocol.url(self.endpoint, self._subscriptions()),
                           additional_headers=protocol.headers() or None,
                           subprotocols=None if subprotocols is None else [Subprotocol(p) for p in subprotocols],
                           open_timeout=self.timeout_s, ping_interval=None, close_timeout=0.2 * self.timeout_s,
                           logger=_wire_log, max_size=MAX_FRAME_BYTES, max_queue=MAX_QUEUED_FRAMES,
                           compression=None) as ws:
            self._ws = ws
            replay = list(self._subscriptions())  # taken with no await after _ws is set: nothing sent twice
            self._connected()
            self._heard_at = time.monotonic()
            watchdog = asyncio.create_task(self._watchdog(ws))
            on_frame, clock = self._on_frame, time.monotonic
            try:
                for subscription in replay:
                    for frame in protocol.resume_frames(subscription, self.seqs):
                        await ws.send(frame)
                async for message in ws:
                    self._heard_at = clock()
                    pending = on_frame(self, message)
                    if pending is not None:
                        self._blocked = True
                        try:
                            await pending
                        finally:
                            self._blocked = False
                            self._heard_at = clock()
            finally:
                self._ws = None
                watchdog.cancel()
        raise StreamEnded(f"closed by the server ({ws.close_code} {ws.close_reason})".replace(" )", ")"))

    async def _run_sse(self) -> None:
        subscriptions = list(self._subscriptions())
        self._reopen.clear()
        if not subscriptions:
            self.state = ConnectionState.IDLE
            await self._reopen.wait()
            raise _Reopen
        url = self.protocol.url(self.endpoint, subscriptions)
        headers = {**self.protocol.headers(), **self.protocol.resume_headers(subscriptions, self.seqs)}
        async with httpx.AsyncClient(timeout=httpx.Timeout(self.timeout_s)) as http, \
                aconnect_sse(http, "GET", url, headers=headers) as source:
            response = source.response
            if response.status_code != 200:
                body = (await response.aread())[:500].decode("utf-8", "replace").strip()
                raise StreamEnded(f"HTTP {response.status_code}: {body}")
            self._connected()
            reader = asyncio.ensure_future(self._read_events(source, subscriptions))
            reopen = asyncio.ensure_future(self._reopen.wait())
            try:
                await asyncio.wait((reader, reopen), return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (reader, reopen):
                    task.cancel()
                await asyncio.gather(reader, reopen, return_exceptions=True)
            if reader.done() and not reader.cancelled() and reader.exception() is not None:
                raise cast(BaseException, reader.exception())
            if reopen.done() and not reopen.cancelled():
                raise _Reopen
        raise StreamEnded("the event stream ended")

    async def _read_events(self, source: Any, subscriptions: list[Subscription]) -> None:
        event_seqs = self.protocol.event_seqs
        async for event in source.aiter_sse():
            self._event_seqs = event_seqs(event.id, subscriptions) if event.id else {}
            if event.data:
                pending = self._on_frame(self, event.data)
                if pending is not None:
                    await pending

    async def _watchdog(self, ws: ClientConnection) -> None:
        """Ping once the connection has been quiet for 0.4 timeout; drop it once quiet for the whole timeout."""
        timeout, ping_after = self.timeout_s, 0.4 * self.timeout_s
        pinged_at = -math.inf
        while True:
            now = time.monotonic()
            if self._blocked:  # waiting for the consumer is not the server's silence
                self._heard_at = now
            quiet = now - self._heard_at
            if quiet >= timeout:
                self._timed_out = True
                ws.transport.abort()
                return
            if quiet >= ping_after and pinged_at < self._heard_at:
                pinged_at = now
                with contextlib.suppress(ConnectionClosed):
                    waiter = await ws.ping()
                    asyncio.ensure_future(waiter).add_done_callback(self._pong)
            wake = self._heard_at + (ping_after if pinged_at < self._heard_at else timeout)
            await asyncio.sleep(max(0.0, wake - time.monotonic()))

    def _pong(self, waiter: asyncio.Future[float]) -> None:
        if not waiter.cancelled() and waiter.exception() is None:
            self._heard_at = time.monotonic()

    # -- requests -------------------------------------------------------------------------------------

    async def send(self, frames: list[str]) -> None:
        """Send now if connected (else the next connection replays the subscriptions); a failure is recorded."""
        if self.protocol.transport == "sse":
            self._reopen.set()
            return
        ws = self._ws
        if ws is None:
            return
        try:
            for frame in frames:
                await ws.send(frame)
        except ConnectionClosed as exc:
            self.last_error = describe(exc)  # the connection's own loop reconnects and replays
