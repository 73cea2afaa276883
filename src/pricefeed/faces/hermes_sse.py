"""Hermes' price stream as Server-Sent Events (reference/hermes.md section 1.4), without I/O.

``data:<compact json>`` per hub pass with every requested feed that moved,
``:`` keep-alive after 15 s of quiet, and named ``event:error`` events for a
slow consumer or the 24 h limit, after which the stream ends, as Hermes does.
The transport (``transport/sse.py``) writes what this describes.
"""

from __future__ import annotations

import orjson

from ..contracts import Peer
from ..hub import Hub
from ..model import FeedId, PriceUpdate
from ..topics import Topic
from .hermes_json import binary, parsed_update

KEEPALIVE_S = 15.0
MAX_CONNECTION_S = 24 * 3600.0
SLOW_CONSUMER = b"event:error\ndata:Slow consumer: disconnected\n\n"
TIMEOUT_24H = b"event:error\ndata:Connection timeout reached (24h)\n\n"


class ParsedItemCodec:
    """One ``parsed[]`` item per update, shared by every stream; empty when a benchmarks-only stream skips it."""

    face = "hermes_sse"

    def __init__(self, benchmarks_only: bool) -> None:
        self.benchmarks_only = benchmarks_only

    def encode(self, topic: Topic, item: object) -> bytes:
        assert isinstance(item, PriceUpdate)
        if self.benchmarks_only and item.prev_publish_time_us is not None \
                and item.prev_publish_time_us // 1_000_000 == item.publish_time:
            return b""  # not the first update at its timestamp
        return orjson.dumps(parsed_update(item))


ALL_UPDATES = ParsedItemCodec(benchmarks_only=False)
BENCHMARKS_ONLY = ParsedItemCodec(benchmarks_only=True)


def event_parts(encoding: str, parsed: bool) -> tuple[bytes, bytes]:
    """What goes before and after a pass's items in one event (with ``parsed=false`` the items are left out)."""
    prefix = b'data:{"binary":' + orjson.dumps(binary(encoding))
    if parsed:
        return prefix + b',"parsed":[', b"]}\n\n"
    return prefix, b"}\n\n"


class PriceStreamSession:
    """One stream: subscribed to its feeds while open."""

    def __init__(self, hub: Hub, peer: Peer, ids: list[FeedId], benchmarks_only: bool) -> None:
        self.hub = hub
        self.ids = ids
        self.lane = peer.lane(BENCHMARKS_ONLY if benchmarks_only else ALL_UPDATES)

    def opened(self) -> None:
        for feed_id in self.ids:
            self.hub.subscribe(feed_id, self.lane)

    def closed(self) -> None:
        for feed_id in self.ids:
            self.hub.unsubscribe(feed_id, self.lane)

    def receive_text(self, text: str | bytes) -> None:
        """A stream has no inbound messages."""

    def receive_binary(self, data: bytes) -> None:
        """A stream has no inbound messages."""
