"""Server-Sent Event streams on the API port, on the same :class:`Connection` as every WebSocket.

uvicorn parses the request and the face validates it; then the stream takes
the socket over (see ``http.py``) and writes HTTP/1.1 chunks itself. The hub's
frames are a stream's items (Hermes' ``parsed[]`` entries, encoded once per
update); each write joins one pass's items, or everything a slow client missed,
conflated per feed, into one event. A stream whose format has an ``event_id``
gives each event an ``id:`` line, read when the event is written (what the
client has then seen), which a reconnecting client sends back as
``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from ..contracts import CloseCode, Handshake
from ..policy import OPEN, Admission
from .connection import Connection, SessionFactory
from .picows import reset_on_close

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .listener import Listener

KEEPALIVE = b":\n\n"
END = b"0\r\n\r\n"
"""The last chunk of a chunked body: the stream ends cleanly."""


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


@dataclass(frozen=True, slots=True)
class EventFormat:
    """How one stream wraps its items into events, and what it says in its own words."""

    prefix: bytes
    """An event's bytes before its items, e.g. ``data:{"binary":{...},"parsed":[``."""
    suffix: bytes
    separator: bytes = b","
    show_items: bool = True
    """False: an event says that something moved but carries no items (Hermes' ``parsed=false``)."""
    keepalive_s: float = 15.0
    max_age_s: float | None = None
    """The stream ends after this long (Hermes: 24 h) with ``timeout_event``."""
    timeout_event: bytes = b""
    slow_event: bytes = b""
    """Sent (if the socket takes it) before a slow client is cut off."""
    headers: tuple[tuple[bytes, bytes], ...] = ()
    event_id: Callable[[], bytes] | None = None
    """The ``id:`` of an event written now (none: events have no id)."""


class SseStream(Connection, asyncio.Protocol):
    """One event stream: a :class:`Connection` whose frames are event items."""

    def __init__(self, listener: Listener, handshake: Handshake, event_format: EventFormat,
                 session_factory: SessionFactory, admission: Admission = OPEN) -> None:
        self.format = event_format
        self.transport: asyncio.Transport | None = None
        self.opened_at = time.monotonic()
        self._last_write_at = self.opened_at
        Connection.__init__(self, listener, handshake, session_factory, admission)

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio's classes
        head = [b"HTTP/1.1 200 OK\r\n", b"content-type: text/event-stream\r\n", b"cache-control: no-cache\r\n",
                b"transfer-encoding: chunked\r\n"]
        head += [name + b": " + value + b"\r\n" for name, value in self.format.headers]
        self.transport.write(b"".join(head) + b"\r\n")
        peer = transport.get_extra_info("peername")
        self.attach(self._write_chunk, f"{peer[0]}:{peer[1]}" if peer else "-")

    def data_received(self, data: bytes) -> None:
        """A client has nothing to say on an event stream."""

    def connection_lost(self, exc: Exception | None) -> None:
        self.detach("closed by the client" if exc is None else str(exc))

    # -- the stream ---------------------------------------------------------------------

    def _write_chunk(self, data: bytes) -> None:
        if data and self.transport is not None:
            self.transport.write(chunk(data))
            self._last_write_at = time.monotonic()

    def tick(self, now: float) -> None:
        """A listener sweep: a keep-alive after quiet, the end of the stream at its maximum age."""
        if self.closing or self.transport is None:
            return
        max_age = self.format.max_age_s
        if max_age is not None and now - self.opened_at > max_age:
            self._end(self.format.timeout_event)
        elif now - self._last_write_at >= self.format.keepalive_s and not self.outbox:
            self._write_chunk(KEEPALIVE)

    def _end(self, last_event: bytes) -> None:
        """Say goodbye, end the chunked body, close."""
        self.outbox.take()
        self._write_chunk(last_event)
        self.close(CloseCode.NORMAL, "end of stream")

    # -- the socket, for Connection --------------------------------------------------

    def frame(self, payload: bytes) -> bytes:
        return payload

    def render(self, frames: Iterable[bytes]) -> bytes:
        event_id = self.format.event_id
        return self.event(frames, None if event_id is None else event_id())

    def event(self, frames: Iterable[bytes], event_id: bytes | None) -> bytes:
        """One event of ``frames`` (empty items left out; nothing if none is left), with its ``id:`` if any."""
        items = [item for item in frames if item]
        if not items:
            return b""
        fmt = self.format
        head = fmt.prefix if event_id is None else b"id:" + event_id + b"\n" + fmt.prefix
        return head + (fmt.separator.join(items) if fmt.show_items else b"") + fmt.suffix

    def write_event(self, frames: Iterable[bytes], event_id: bytes) -> None:
        """Write one event now, ahead of anything the hub delivers later (a resumed stream's replay)."""
        self._write_chunk(self.event(frames, event_id))

    def buffered_bytes(self) -> int:
        return 0 if self.transport is None else self.transport.get_write_buffer_size()

    def _close_transport(self, code: int, reason: str, abort: bool) -> None:
        transport = self.transport
        if transport is None:
            return
        if abort:
            if code == CloseCode.POLICY_VIOLATION and self.format.slow_event:
                transport.write(chunk(self.format.slow_event))
            reset_on_close(transport.get_extra_info("socket"))
            transport.abort()
            return
        transport.write(END)
        transport.close()


def sweep_streams(connection: Connection) -> None:
    """A listener sweep's per-connection work on event streams."""
    if isinstance(connection, SseStream):
        connection.tick(time.monotonic())
