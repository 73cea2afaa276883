"""What a load client needs to speak Hermes' faces: the ``/ws`` subscribe message and sampler, and an SSE stream.

Built on the wire protocol only (reference/hermes.md sections 1.4 and 4), so it measures any server that
speaks it. A ``/ws`` client sends ``{"type":"subscribe","ids":[...]}``, is answered
``{"type":"response","status":"success"}`` and then gets one ``price_update`` message per feed per pass;
each is one delivery. An SSE client sends ``GET /v2/updates/price/stream?ids[]=..&parsed=true`` and gets
one ``data:{"binary":..,"parsed":[..]}`` event per pass with every feed that moved; each ``parsed`` item
is one delivery. The stream is an HTTP/1.1 response (chunked, or ended by close) read on a raw socket:
httptools (llhttp, in C) takes the HTTP framing off, and events are split on their blank line, counted
with one ``bytes.count`` and parsed only by a sampling client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import cast
from urllib.parse import quote

import httptools
import orjson

from .samples import PublishClock

HERMES_WS_CONFIRMATION = b'"status":"success"'
HERMES_WS_REFUSAL = b'"status":"error"'
PARSED_ITEM = b'{"id":'
"""How each ``parsed`` item of an event begins (Hermes writes compact JSON with ``id`` first)."""


def hermes_ws_subscribe(feeds: list[str]) -> bytes:
    return orjson.dumps({"type": "subscribe", "ids": ["0x" + feed.removeprefix("0x") for feed in feeds]})


def hermes_ws_sampler(clock: PublishClock) -> Callable[[bytes], None]:
    """Dates each ``price_update`` of a ``/ws`` sampling client by the clock."""

    def sample(payload: bytes) -> None:
        message = orjson.loads(payload)
        now = time.time()
        feed = message.get("price_feed")
        if feed is not None:
            price = feed["price"]
            clock.received((feed["id"], price["price"], price["conf"]), now)

    return sample


def sse_sampler(clock: PublishClock) -> Callable[[bytes], None]:
    """Dates each ``parsed`` item of an SSE event (its ``data:`` field) by the clock."""

    def sample(data: bytes) -> None:
        event = orjson.loads(data)
        now = time.time()
        for item in event.get("parsed", ()):
            price = item["price"]
            clock.received((item["id"], price["price"], price["conf"]), now)

    return sample


def stream_request(host: str, port: int, feeds: list[str]) -> bytes:
    ids = "&".join("ids%5B%5D=" + quote("0x" + feed.removeprefix("0x")) for feed in feeds)
    return (f"GET /v2/updates/price/stream?{ids}&parsed=true HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n").encode()


class SseStream(asyncio.Protocol):
    """One SSE client: counts ``parsed`` items; ready once the first event arrived (it is subscribed then).

    ``on_ready`` is called once, with None when the first event came, or with the reason it never will
    (a refused request, or the stream ended first). ``sample`` gets each event's data of a sampling client.
    """

    def __init__(self, request: bytes, on_ready: Callable[[str | None], None],
                 sample: Callable[[bytes], None] | None, on_closed: Callable[[], None]) -> None:
        self.frames = 0
        """Deliveries: ``parsed`` items received (named like the WebSocket listeners' counter)."""
        self.request = request
        self.on_ready: Callable[[str | None], None] | None = on_ready
        self.sample = sample
        self.on_closed = on_closed
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.status = 0
        self.pending = b""
        """The start of an event whose blank line has not arrived yet (or a refusal's body)."""

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is one, though not a subclass
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._not_ready(f"bad HTTP response: {exc}")
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._not_ready(f"stream closed before its first event (HTTP {self.status or 'no response'})")
        self.on_closed()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # -- httptools callbacks

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        if self.status != 200:
            self.pending += body
            return
        buffer = self.pending + body if self.pending else body
        if b"\n\n" not in buffer:
            self.pending = buffer
            return
        *events, self.pending = buffer.split(b"\n\n")
        for event in events:
            if event[:3] == b"id:":  # pricefeed's event id (lossless resume) comes before the data
                event = event[event.find(b"\n") + 1:]
            if event[:5] != b"data:":
                continue  # a ":" keep-alive, or a named event such as event:error (the stream then ends)
            self.frames += event.count(PARSED_ITEM)
            if self.on_ready is not None:
                self.on_ready(None)
                self.on_ready = None
            elif self.sample is not None:
                self.sample(event[5:])

    def on_message_complete(self) -> None:
        if self.status != 200:
            self._not_ready(f"HTTP {self.status}: {self.pending.decode(errors='replace')[:200]}")
        self.close()

    def _not_ready(self, reason: str) -> None:
        if self.on_ready is not None:
            self.on_ready(reason)
            self.on_ready = None
