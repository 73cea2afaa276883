"""WebSocket listeners on picows, for the ports that carry only WebSockets (seed-000, pythd JSON-RPC).

picows frames and parses in C; this adapter adds what RFC 6455 asks of a
server that picows leaves to the application (no extension is negotiated, so
RSV bits must be clear; a data frame may not interrupt a fragmented message;
only version 13 is spoken) and plugs the socket into :class:`Connection`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import struct

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

from ..contracts import CloseCode, Codec, Handshake
from ..metrics import Metrics
from ..policy import ANY_ORIGIN, Admission, OriginPolicy, Refusal
from .connection import Connection, SessionFactory
from .limits import ConnectionLimits
from .listener import Listener
from .wsframe import FramedCodec, frame, unsupported_version

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 2.0
"""How long a closing connection waits for the peer's close frame."""

# picows logs two INFO lines per connection; they are ours to log (at DEBUG) instead.
logging.getLogger("picows").setLevel(logging.WARNING)


def reset_on_close(sock: socket.socket | None) -> None:
    """Make closing the socket send a reset and drop what the kernel still holds for the peer.

    A plain close would queue a FIN behind data a peer that does not read will never take, and the
    kernel would keep the connection and its send buffer (up to megabytes) for minutes.
    """
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class PicowsConnection(Connection, WSListener):
    """A picows listener that is a :class:`Connection`."""

    def __init__(self, listener: Listener, handshake: Handshake, admission: Admission) -> None:
        self.transport: WSTransport | None = None
        self._fragments: list[bytes] = []
        self._fragments_size = 0
        self._fragment_is_text = True
        self._listener = listener
        Connection.__init__(self, listener, handshake, admission=admission)

    # -- picows callbacks ---------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        peer = transport.underlying_transport.get_extra_info("peername")
        refusal = self._listener.admit_ip(self, peer[0] if peer else "-")
        if refusal is not None:  # over its IP's limits: refused before the session starts
            transport.send_close(WSCloseCode.POLICY_VIOLATION, refusal.message.strip().encode()[:123])
            transport.disconnect()
            return
        self.attach(transport.underlying_transport.write, f"{peer[0]}:{peer[1]}" if peer else "-")

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        handshake = transport.close_handshake
        code = None if handshake is None else (handshake.recv or handshake.sent)
        self.detach(str(getattr(code, "code", "no close frame")))

    def on_ws_frame(self, transport: WSTransport, ws_frame: WSFrame) -> None:
        msg_type = ws_frame.msg_type
        if msg_type == WSMsgType.CLOSE:
            transport.send_close(ws_frame.get_close_code(), ws_frame.get_close_message())
            transport.disconnect()
            return
        if msg_type in (WSMsgType.PING, WSMsgType.PONG) or self.closing:
            return
        if ws_frame.rsv1 or ws_frame.rsv2 or ws_frame.rsv3:
            self.close(CloseCode.PROTOCOL_ERROR, "reserved bits set: no extension was negotiated")
            return
        message = self._assemble(ws_frame)
        if message is not None:
            self.receive_message(*message)

    # -- the socket, for Connection ------------------------------------------------

    def frame(self, payload: bytes) -> bytes:
        return frame(payload)

    def buffered_bytes(self) -> int:
        transport = self.transport
        return 0 if transport is None else transport.underlying_transport.get_write_buffer_size()

    def _close_transport(self, code: int, reason: str, abort: bool) -> None:
        transport = self.transport
        if transport is None:
            return
        transport.send_close(WSCloseCode(code), reason.encode()[:123])
        if abort:
            reset_on_close(transport.underlying_transport.get_extra_info("socket"))
            transport.disconnect(graceful=False)
        else:
            # Wait for the peer's close frame (on_ws_frame disconnects then): closing the socket with
            # unread input would reset it, and the peer would never see our close code.
            asyncio.get_running_loop().call_later(CLOSE_TIMEOUT_S, transport.disconnect)

    # -- inbound framing -------------------------------------------------------------

    def _assemble(self, ws_frame: WSFrame) -> tuple[bytes, bool] | None:
        """A complete message from one or several frames; None while incomplete or refused."""
        msg_type = ws_frame.msg_type
        in_message = bool(self._fragments)
        if msg_type == WSMsgType.CONTINUATION:
            if not in_message:
                self.close(CloseCode.PROTOCOL_ERROR, "continuation frame without a message to continue")
                return None
        else:
            if in_message:
                self.close(CloseCode.PROTOCOL_ERROR, "new data frame inside a fragmented message")
                return None
            self._fragments_size = 0
            self._fragment_is_text = msg_type == WSMsgType.TEXT
        self._fragments_size += ws_frame.payload_size
        if self.message_too_big(self._fragments_size):
            return None
        if ws_frame.fin and not in_message:
            return ws_frame.get_payload_as_bytes(), msg_type == WSMsgType.TEXT
        self._fragments.append(ws_frame.get_payload_as_bytes())
        if not ws_frame.fin:
            return None
        message = b"".join(self._fragments)
        self._fragments.clear()
        self._fragments_size = 0
        return message, self._fragment_is_text


def _refusal(status: int, reason: str, headers: dict[str, str] | None = None) -> WSUpgradeResponseWithListener:
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    response = WSUpgradeResponse.create_error_response(status, reason.encode(), headers)
    return WSUpgradeResponseWithListener(response, None)


class PicowsServer(Listener):
    """A listening socket whose connections speak one face, on picows."""

    def __init__(self, face: str, codec: Codec, session_factory: SessionFactory, limits: ConnectionLimits,
                 metrics: Metrics, origin_policy: OriginPolicy = ANY_ORIGIN) -> None:
        super().__init__(face, codec, session_factory, limits, metrics, wrap=FramedCodec, origin_policy=origin_policy)
        self._server: asyncio.Server | None = None
        self.tls: ssl.SSLContext | None = None
        """Speak TLS (wss://) with this context."""

    def _upgrade(self, request: WSUpgradeRequest) -> PicowsConnection | WSUpgradeResponseWithListener:
        headers = {k.lower(): v for k, v in request.headers.items()}
        problem = unsupported_version(headers)
        if problem is not None:
            self.refused("version")
            return _refusal(426, problem, {"Sec-WebSocket-Version": "13"})
        handshake = Handshake.of(request.path.decode("latin-1"), headers)
        admitted = self.admit(handshake, None)  # the IP is known once connected (admit_ip)
        if isinstance(admitted, Refusal):
            return _refusal(admitted.status, admitted.message)
        return PicowsConnection(self, handshake, admitted)

    async def start(self, host: str, port: int, reuse_port: bool = False) -> None:
        """Listen on ``host:port``; ``reuse_port``: share the port with other processes (``--workers``)."""
        self._server = await ws_create_server(
            self._upgrade, host, port,
            max_frame_size=self.limits.max_message_bytes,
            enable_auto_ping=True, auto_ping_idle_timeout=20, auto_ping_reply_timeout=20,
            websocket_handshake_timeout=self.limits.idle_timeout_s,
            # Client messages are small; picows grows the buffer when one is not (default 16 KiB per connection).
            read_buffer_init_size=2048, reuse_port=reuse_port, ssl=self.tls)
        log.info("%s listening on %s://%s:%d", self.face, "ws" if self.tls is None else "wss", host, self.port)

    @property
    def port(self) -> int:
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self, timeout_s: float = 3.0) -> None:
        """Stop accepting, close every connection with 1001, wait for them to go."""
        if self._server is None:
            return
        self._server.close()
        await self.close_all(timeout_s)
        await self._server.wait_closed()
        self._server = None
