"""WebSockets on the API port, on the ``websockets`` library's sans-I/O protocol.

uvicorn parses the HTTP request and hands the upgrade over; ``websockets``
does RFC 6455 (handshake checks, frame parsing, RSV bits, fragmentation,
control frames, close) and we write its bytes. Price frames skip it: they are
built once per topic and written as they are, like on the picows ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import cast

from websockets.exceptions import InvalidState
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from ..contracts import CloseCode, Handshake
from ..policy import OPEN, Admission, Refusal
from .connection import Connection
from .listener import Listener
from .picows import CLOSE_TIMEOUT_S, reset_on_close
from .wsframe import frame, unsupported_version

log = logging.getLogger(__name__)
_protocol_log = logging.getLogger(__name__ + ".protocol")
_protocol_log.setLevel(logging.WARNING)  # websockets logs each connection at INFO; ours are at DEBUG

PING_INTERVAL_S = 30.0
"""Hermes pings every 30 s (ws.rs) and drops a peer that has not answered by the next ping (the default of
``ConnectionLimits.ping_interval_s``)."""


class SansIoWebSocket(Connection, asyncio.Protocol):
    """One WebSocket on the API port: a :class:`Connection` fed by a ``websockets`` ``ServerProtocol``."""

    def __init__(self, listener: Listener, handshake: Handshake, protocol: ServerProtocol,
                 transport: asyncio.Transport, admission: Admission = OPEN) -> None:
        self.protocol = protocol
        self.transport = transport
        self._fragments: list[bytes] = []
        self._fragment_is_text = True
        self._ping_sent_at: float | None = None
        self._last_ping_at = -math.inf  # Hermes pings at once on connect
        Connection.__init__(self, listener, handshake, admission=admission)

    # -- asyncio.Protocol -----------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.protocol.receive_data(data)
        self._pump()

    def eof_received(self) -> bool | None:
        self.protocol.receive_eof()
        self._pump()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        code = self.protocol.close_code
        self.detach(str(code) if code is not None else "no close frame")

    # -- the websockets protocol -------------------------------------------------------

    def _pump(self) -> None:
        """Handle what the protocol parsed, then write what it wants sent (replies to pings and closes)."""
        for event in self.protocol.events_received():
            if isinstance(event, Frame):
                self._on_frame(event)
        if self.protocol.state is not State.OPEN:
            self.stop_sending()  # after a close frame, RFC 6455 allows no more data (and the protocol ends the stream)
        self._write_protocol_data()
        if self.protocol.close_expected() and not self.transport.is_closing():
            asyncio.get_running_loop().call_later(CLOSE_TIMEOUT_S, self.transport.close)

    def _write_protocol_data(self) -> None:
        for data in self.protocol.data_to_send():
            if self.transport.is_closing():
                return
            if data:
                self.transport.write(data)
            elif self.transport.can_write_eof():
                self.transport.write_eof()
            else:  # TLS cannot half-close: the server closes the connection first, as RFC 6455 asks (flushed)
                self.transport.close()
                return

    def _on_frame(self, event: Frame) -> None:
        opcode = event.opcode
        self._ping_sent_at = None  # a peer that speaks is alive, whether it answers pings or not
        if opcode is Opcode.PONG:
            return
        if opcode in (Opcode.PING, Opcode.CLOSE) or self.closing:
            return  # the protocol answers pings and closes itself
        if opcode is not Opcode.CONT:
            self._fragments.clear()
            self._fragment_is_text = opcode is Opcode.TEXT
        self._fragments.append(bytes(event.data))
        if event.fin:
            message = b"".join(self._fragments)
            self._fragments.clear()
            self.receive_message(message, self._fragment_is_text)

    def ping(self, now: float) -> None:
        """Ping every ``limits.ping_interval_s``; a peer that left a ping unanswered for ``limits.pong_timeout_s``
        (anything it sends counts as an answer) is closed."""
        limits = self.limits
        if now - self._last_ping_at < limits.ping_interval_s or self.closing:
            return
        if self._ping_sent_at is not None:
            if now - self._ping_sent_at >= limits.pong_timeout_s:
                self.close(CloseCode.POLICY_VIOLATION, "no pong to the last ping", abort=True)
                self.listener.refused("idle")
            return
        self._last_ping_at = self._ping_sent_at = now
        self.protocol.send_ping(b"")
        self._write_protocol_data()

    # -- the socket, for Connection ----------------------------------------------------

    def frame(self, payload: bytes) -> bytes:
        return frame(payload)

    def buffered_bytes(self) -> int:
        return self.transport.get_write_buffer_size()

    def _close_transport(self, code: int, reason: str, abort: bool) -> None:
        with contextlib.suppress(InvalidState):  # already closing
            self.protocol.send_close(code, reason[:123])
        self._write_protocol_data()
        if abort:
            reset_on_close(self.transport.get_extra_info("socket"))
            self.transport.abort()
        else:
            asyncio.get_running_loop().call_later(CLOSE_TIMEOUT_S, self.transport.close)


def sweep_pings(connection: Connection) -> None:
    """A listener sweep's per-connection work on the API port's WebSockets."""
    if isinstance(connection, SansIoWebSocket):
        connection.ping(time.monotonic())


class WebSocketUpgrade(asyncio.Protocol):
    """What uvicorn hands a WebSocket upgrade to: routes it by path to a face, or refuses it.

    It stays the transport's protocol (uvicorn sets it after handing the request over) and passes
    everything on to the connection once there is one.
    """

    routes: Mapping[str, Listener] = {}

    def __init__(self, **uvicorn_state: object) -> None:
        self.transport: asyncio.Transport | None = None
        self.protocol: ServerProtocol | None = None
        self.connection: SansIoWebSocket | None = None
        self._route: Listener | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio's classes

    def data_received(self, data: bytes) -> None:
        if self.connection is not None:
            self.connection.data_received(data)
            return
        assert self.transport is not None
        if self.protocol is None:
            self.protocol = ServerProtocol(max_size=None, logger=_protocol_log,
                                           select_subprotocol=lambda _, offered: self._select_subprotocol(offered))
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Request):
                self._upgrade(event)
                return

    def eof_received(self) -> bool | None:
        return None if self.connection is None else self.connection.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.connection is not None:
            self.connection.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.connection is not None:
            self.connection.pause_writing()

    def resume_writing(self) -> None:
        if self.connection is not None:
            self.connection.resume_writing()

    def _select_subprotocol(self, offered: Sequence[Subprotocol]) -> Subprotocol | None:
        """The route's subprotocol when the client offers it, else none (both sides must agree, or the client
        aborts)."""
        wanted = None if self._route is None else self._route.subprotocol
        return Subprotocol(wanted) if wanted is not None and wanted in offered else None

    def _upgrade(self, request: Request) -> None:
        assert self.transport is not None and self.protocol is not None
        headers = {k.lower(): v for k, v in request.headers.raw_items()}
        handshake = Handshake.of(request.path, headers)
        listener = self.routes.get(handshake.path)
        protocol = self.protocol
        admitted: Admission | Refusal | None = None
        if listener is None:
            response = protocol.reject(404, f"no WebSocket endpoint at {handshake.path}\n")
        elif (problem := unsupported_version(headers)) is not None:
            listener.refused("version")
            response = protocol.reject(426, problem + "\n")
            response.headers["Sec-WebSocket-Version"] = "13"
        elif isinstance(admitted := listener.admit(handshake, _peer_ip(self.transport)), Refusal):
            response = protocol.reject(admitted.status, admitted.message)
            if admitted.status == 401:
                response.headers["WWW-Authenticate"] = "Bearer"
        else:
            protocol.max_message_size = listener.limits.max_message_bytes
            self._route = listener
            response = protocol.accept(request)
        protocol.send_response(response)
        if response.status_code != 101 or listener is None:
            if listener is not None and isinstance(admitted, Admission):
                listener.access.release(admitted)  # let in by the policy, refused by RFC 6455
            for data in protocol.data_to_send():
                if data:
                    self.transport.write(data)
            self.transport.close()
            return
        assert isinstance(admitted, Admission)
        connection = self.connection = SansIoWebSocket(listener, handshake, protocol, self.transport, admitted)
        connection._write_protocol_data()  # the 101 response
        peer = self.transport.get_extra_info("peername")
        connection.attach(self.transport.write, f"{peer[0]}:{peer[1]}" if peer else "-")
        connection.ping(time.monotonic())


def _peer_ip(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if peer else "-"


def upgrade_protocol(routes: Mapping[str, Listener]) -> type[WebSocketUpgrade]:
    """The class uvicorn instantiates for each upgrade (its ``ws`` setting), bound to our routes."""
    return type("PricefeedWebSocketUpgrade", (WebSocketUpgrade,), {"routes": dict(routes)})


Routes = Callable[[], Mapping[str, Listener]]
