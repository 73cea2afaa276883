"""Hermes' price stream as Server-Sent Events (reference/hermes.md section 1.4).

``data:<compact json>`` per hub pass with every requested feed that moved,
``:`` keep-alive after 15 s of quiet, and named ``event:error`` events for a
slow consumer or the 24 h limit, after which the stream ends, as Hermes does.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator

import orjson
from starlette.responses import StreamingResponse

from ..hub import Codec, Hub
from ..model import Feed, FeedId, PriceUpdate
from .hermes_json import binary, parsed_update

KEEPALIVE_S = 15.0
MAX_CONNECTION_S = 24 * 3600.0
MAX_PENDING_EVENTS = 256
"""Events queued for a client that does not read; past this it is a slow consumer."""
KEEPALIVE = b":\n\n"
SLOW_CONSUMER = b"event:error\ndata:Slow consumer: disconnected\n\n"
TIMEOUT_24H = b"event:error\ndata:Connection timeout reached (24h)\n\n"


class ParsedItemCodec:
    """One ``parsed[]`` item per update, shared by every stream; empty when a benchmarks-only stream skips it."""

    def __init__(self, benchmarks_only: bool) -> None:
        self.benchmarks_only = benchmarks_only

    def encode_update(self, update: PriceUpdate, feed: Feed) -> bytes:
        if self.benchmarks_only and update.prev_publish_time_us is not None \
                and update.prev_publish_time_us // 1_000_000 == update.publish_time:
            return b""  # not the first update at its timestamp
        return orjson.dumps(parsed_update(update))


ALL_UPDATES = ParsedItemCodec(benchmarks_only=False)
BENCHMARKS_ONLY = ParsedItemCodec(benchmarks_only=True)


class StreamSubscriber:
    """One SSE client as a hub subscriber: each pass becomes one event."""

    def __init__(self, *, encoding: str, parsed: bool, benchmarks_only: bool) -> None:
        self.codec: Codec = BENCHMARKS_ONLY if benchmarks_only else ALL_UPDATES
        self._prefix = b'data:{"binary":' + orjson.dumps(binary(encoding))
        self._parsed = parsed
        self.events: deque[bytes] = deque()
        self.wake = asyncio.Event()
        self.slow = False

    def deliver(self, frames: dict[FeedId, bytes]) -> None:
        items = [frame for frame in frames.values() if frame]
        if not items:
            return
        parsed = b',"parsed":[' + b",".join(items) + b"]" if self._parsed else b""
        self.events.append(self._prefix + parsed + b"}\n\n")
        if len(self.events) > MAX_PENDING_EVENTS:
            self.slow = True
        self.wake.set()


def price_stream(hub: Hub, ids: list[FeedId], *, encoding: str, parsed: bool,
                 benchmarks_only: bool) -> StreamingResponse:
    subscriber = StreamSubscriber(encoding=encoding, parsed=parsed, benchmarks_only=benchmarks_only)

    async def events() -> AsyncIterator[bytes]:
        started = time.monotonic()
        for feed_id in ids:  # here, not earlier: `finally` below is sure to run once this has
            hub.subscribe(feed_id, subscriber)
        try:
            while True:
                if subscriber.slow:
                    yield SLOW_CONSUMER
                    return
                if time.monotonic() - started > MAX_CONNECTION_S:
                    yield TIMEOUT_24H
                    return
                if not subscriber.events:
                    try:
                        await asyncio.wait_for(subscriber.wake.wait(), KEEPALIVE_S)
                    except TimeoutError:
                        yield KEEPALIVE
                        continue
                    subscriber.wake.clear()
                while subscriber.events and not subscriber.slow:
                    yield subscriber.events.popleft()
        finally:
            for feed_id in ids:
                hub.unsubscribe(feed_id, subscriber)

    return StreamingResponse(events(), headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
