"""The WebSocket transport of the hot faces, on picows.

It owns what is about sockets, so the faces stay protocol only: framing,
the per-connection outbox and its byte bound, write back-pressure, message
size and rate limits, and closing. A price frame is framed once per wire
format (server frames are unmasked, so the same bytes suit every client) and
each connection gets one ``write`` per hub pass with all its pending frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Protocol

from picows import (
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
    ws_create_server,
)

from .hub import Codec
from .model import Feed, FeedId, PriceUpdate
from .outbox import Outbox

log = logging.getLogger(__name__)

_TEXT = 0x1
CLOSE_TIMEOUT_S = 2.0
"""How long a closing connection waits for the peer's close frame."""


def frame(payload: bytes, opcode: int = _TEXT) -> bytes:
    """A complete, unmasked server-to-client WebSocket frame."""
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x80 | opcode, 126, n) + payload
    return struct.pack("!BBQ", 0x80 | opcode, 127, n) + payload


def _reset_on_close(transport: WSTransport) -> None:
    """Make closing the socket send a reset and drop what the kernel still holds for the peer.

    A plain close would queue a FIN behind data a peer that does not read will never take, and the
    kernel would keep the connection and its send buffer (up to megabytes) for minutes.
    """
    sock = transport.underlying_transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class FramedCodec:
    """Wraps a face's codec so the hub's one encoding per update is a ready-to-write frame."""

    __slots__ = ("inner",)

    def __init__(self, inner: Codec) -> None:
        self.inner = inner

    def encode_update(self, update: PriceUpdate, feed: Feed) -> bytes:
        return frame(self.inner.encode_update(update, feed))


class Session(Protocol):
    """A face's per-connection protocol state."""

    def opened(self) -> None: ...

    def receive_text(self, text: str | bytes) -> None: ...

    def receive_binary(self) -> None: ...

    def closed(self) -> None: ...


SessionFactory = Callable[["Connection"], Session]
HandshakeScreen = Callable[[WSUpgradeRequest], str | None]
"""Why an upgrade request is refused (answered 403 with that text), or None to accept it."""


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_message_bytes: int = 64 * 1024
    """A larger inbound message closes the connection with 1009."""
    max_messages_per_second: float = 50.0
    message_burst: int = 100
    """A flood beyond ``max_messages_per_second`` (after this burst) closes with 1008."""
    outbox_limit_bytes: int = 1024 * 1024
    """Queued bytes (outbox and socket buffer) a connection may hold; over it while blocked closes with 1008."""
    slow_client_timeout_s: float = 10.0
    """A connection that cannot be written to for this long is closed with 1008."""


class Connection(WSListener):
    """One client connection: a hub subscriber and a face session's peer."""

    def __init__(self, server: WebSocketServer) -> None:
        self.server = server
        self.codec: Codec = server.codec
        self.limits = server.limits
        self.client_id = str(uuid.uuid4())
        self.remote = "-"
        self.outbox = Outbox()
        self.transport: WSTransport | None = None
        self.session = server.session_factory(self)
        self._paused_since: float | None = None
        self._closing = False
        self._fragments: list[bytes] = []
        self._fragments_size = 0
        self._fragment_is_text = True
        self._tokens = float(self.limits.message_burst)
        self._tokens_at = time.monotonic()

    # -- picows callbacks ---------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        peer = transport.underlying_transport.get_extra_info("peername")
        self.remote = f"{peer[0]}:{peer[1]}" if peer else "-"
        self.server.connections.add(self)
        log.debug("client %s connected from %s", self.client_id, self.remote)
        self.session.opened()
        self.flush()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.server.connections.discard(self)
        self.session.closed()
        handshake = transport.close_handshake
        code = None if handshake is None else (handshake.recv or handshake.sent)
        log.debug("client %s disconnected (%s)", self.client_id, getattr(code, "code", "no close frame"))

    def on_ws_frame(self, transport: WSTransport, ws_frame: WSFrame) -> None:
        msg_type = ws_frame.msg_type
        if msg_type == WSMsgType.CLOSE:
            transport.send_close(ws_frame.get_close_code(), ws_frame.get_close_message())
            transport.disconnect()
            return
        if msg_type in (WSMsgType.PING, WSMsgType.PONG) or self._closing:
            return
        message = self._assemble(ws_frame)
        if message is None:
            return
        if not self._take_token():
            self.close(WSCloseCode.POLICY_VIOLATION,
                       f"message rate limit exceeded: at most {self.limits.max_messages_per_second:g} per second")
            return
        payload, is_text = message
        if is_text:
            self.session.receive_text(payload)
        else:
            self.session.receive_binary()
        self.flush()

    def pause_writing(self) -> None:
        self._paused_since = time.monotonic()

    def resume_writing(self) -> None:
        self._paused_since = None
        self.flush()

    # -- the peer interface (faces and hub) ----------------------------------

    def deliver(self, frames: dict[FeedId, bytes]) -> None:
        if self._paused_since is None and not self.outbox and self.transport is not None and not self._closing:
            # The common case, kept to one write: nothing is queued and the socket takes data.
            self.transport.underlying_transport.write(b"".join(frames.values()))
            return
        for feed_id, frame_bytes in frames.items():
            self.outbox.put(feed_id, frame_bytes)
        self.flush()

    def send(self, payload: bytes) -> None:
        self.outbox.put_control(frame(payload))

    def send_price(self, feed_id: FeedId, payload: bytes) -> None:
        self.outbox.put(feed_id, frame(payload))

    def discard_price(self, feed_id: FeedId) -> None:
        self.outbox.discard(feed_id)

    def flush(self) -> None:
        """Write everything pending in one write, unless the socket is backed up."""
        transport = self.transport
        if transport is None or self._closing or not self.outbox:
            return
        if self._paused_since is not None:
            queued = self.outbox.pending_bytes + transport.underlying_transport.get_write_buffer_size()
            blocked_for = time.monotonic() - self._paused_since
            if queued > self.limits.outbox_limit_bytes or blocked_for > self.limits.slow_client_timeout_s:
                self.close(WSCloseCode.POLICY_VIOLATION, "slow consumer: not reading fast enough", abort=True)
            return
        transport.underlying_transport.write(self.outbox.take())

    @property
    def queued_bytes(self) -> int:
        """What this connection holds in memory: its outbox plus the socket's write buffer."""
        buffered = 0 if self.transport is None else self.transport.underlying_transport.get_write_buffer_size()
        return self.outbox.pending_bytes + buffered

    def close(self, code: WSCloseCode, reason: str, *, abort: bool = False) -> None:
        if self._closing or self.transport is None:
            return
        self._closing = True
        log.debug("closing client %s: %s %s", self.client_id, code.value, reason)
        self.outbox.take()
        self.transport.send_close(code, reason.encode()[:123])
        if abort:
            _reset_on_close(self.transport)
            self.transport.disconnect(graceful=False)
        else:
            # Wait for the peer's close frame (on_ws_frame disconnects then): closing the socket with
            # unread input would reset it, and the peer would never see our close code.
            asyncio.get_running_loop().call_later(CLOSE_TIMEOUT_S, self.transport.disconnect)

    # -- inbound limits -------------------------------------------------------

    def _assemble(self, ws_frame: WSFrame) -> tuple[bytes, bool] | None:
        """A complete message from one or several frames; None while incomplete or refused."""
        msg_type = ws_frame.msg_type
        if msg_type != WSMsgType.CONTINUATION:
            self._fragments.clear()
            self._fragments_size = 0
            self._fragment_is_text = msg_type == WSMsgType.TEXT
        self._fragments_size += ws_frame.payload_size
        if self._fragments_size > self.limits.max_message_bytes:
            self.close(WSCloseCode.MESSAGE_TOO_BIG,
                       f"message too big: at most {self.limits.max_message_bytes} bytes")
            return None
        if ws_frame.fin and not self._fragments:
            return ws_frame.get_payload_as_bytes(), msg_type == WSMsgType.TEXT
        self._fragments.append(ws_frame.get_payload_as_bytes())
        if not ws_frame.fin:
            return None
        message = b"".join(self._fragments)
        self._fragments.clear()
        self._fragments_size = 0
        return message, self._fragment_is_text

    def _take_token(self) -> bool:
        return self.charge(1.0)

    def charge(self, cost: float) -> bool:
        """Spend ``cost`` messages of the rate budget, as far as it goes (a batch's further requests and their
        work); False if less than one message was left."""
        now = time.monotonic()
        limits = self.limits
        self._tokens = min(float(limits.message_burst),
                           self._tokens + (now - self._tokens_at) * limits.max_messages_per_second)
        self._tokens_at = now
        if self._tokens < 1.0:
            return False
        self._tokens = max(0.0, self._tokens - cost)
        return True


class WebSocketServer:
    """A listening socket whose connections speak one face."""

    def __init__(self, name: str, codec: Codec, session_factory: SessionFactory,
                 limits: ConnectionLimits = ConnectionLimits(), screen: HandshakeScreen | None = None) -> None:
        self.name = name
        self.codec = FramedCodec(codec)
        self.session_factory = session_factory
        self.limits = limits
        self.screen = screen
        self.connections: set[Connection] = set()
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> None:
        def new_connection(request: WSUpgradeRequest) -> Connection | WSUpgradeResponseWithListener:
            refusal = None if self.screen is None else self.screen(request)
            if refusal is not None:
                return WSUpgradeResponseWithListener(
                    WSUpgradeResponse.create_error_response(HTTPStatus.FORBIDDEN, refusal.encode()), None)
            return Connection(self)

        self._server = await ws_create_server(
            new_connection, host, port,
            max_frame_size=self.limits.max_message_bytes,
            enable_auto_ping=True, auto_ping_idle_timeout=20, auto_ping_reply_timeout=20,
            websocket_handshake_timeout=5,
            # Client messages are small; picows grows the buffer when one is not (default 16 KiB per connection).
            read_buffer_init_size=2048)
        log.info("%s listening on ws://%s:%d", self.name, host, self.port)

    @property
    def port(self) -> int:
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self, timeout_s: float = 3.0) -> None:
        """Stop accepting, close every connection with 1001, wait for them to go."""
        if self._server is None:
            return
        self._server.close()
        connections = list(self.connections)
        for conn in connections:
            conn.close(WSCloseCode.GOING_AWAY, "server shutting down")
        waits = [conn.transport.wait_disconnected() for conn in connections if conn.transport is not None]
        if waits:
            await asyncio.wait([asyncio.ensure_future(w) for w in waits], timeout=timeout_s)
        for conn in connections:
            if conn.transport is not None:
                conn.transport.disconnect(graceful=False)
        await self._server.wait_closed()
        self._server = None

