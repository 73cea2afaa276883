"""Hermes' price stream as Server-Sent Events (reference/hermes.md section 1.4), without I/O.

``data:<compact json>`` per hub pass with every requested feed that moved,
``:`` keep-alive after 15 s of quiet, and named ``event:error`` events for a
slow consumer or the 24 h limit, after which the stream ends, as Hermes does.
The transport (``transport/sse.py``) writes what this describes.

Lossless resume (an addition: Hermes' events have no id): each event's ``id:``
is the seq of the last update of each requested feed the client has seen, in
the order of the request's ids, joined by ``.`` (``0``: none yet), e.g.
``id:1042.977.0``; in a ``Last-Event-ID`` an empty part (``1042..0``) means
"nothing seen, just live" (a client that adds a feed to its stream). An
event carries at most one update per feed, so a client reads each item's seq
from its event's id. A reconnect with that id as
``Last-Event-ID`` (a browser ``EventSource`` sends it by itself) first gets
what it missed, as events of their own, oldest first, then the live stream;
a feed the resume log no longer covers gets its latest update (Hermes has no
place to say ``recovered: false``: the seq in the id then jumps).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import orjson

from ..contracts import Peer
from ..hub import Hub
from ..model import FeedId, PriceUpdate
from ..resume import RecentUpdates
from ..topics import Topic
from .hermes_json import QueryError, binary, parsed_update

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


def encode_event_id(seqs: Sequence[int | None]) -> bytes:
    return b".".join(b"" if seq is None else b"%d" % seq for seq in seqs)


def parse_event_id(text: str | None, ids: Sequence[FeedId]) -> list[int | None] | None:
    """The seqs of a ``Last-Event-ID`` for a stream of ``ids`` (None: no header; a None seq: that feed live only);
    ``QueryError`` if malformed."""
    if text is None or text == "":
        return None
    parts = text.split(".")
    if len(parts) != len(ids) or not all(part == "" or (part.isascii() and part.isdigit() and len(part) < 20)
                                         for part in parts):
        raise QueryError(f"Invalid Last-Event-ID {text[:80]!r}: expected {len(ids)} seqs joined by '.', one per "
                         "requested id in order, as this stream's event ids are")
    return [int(part) if part else None for part in parts]


class StreamCursor:
    """A stream's event id when an event is written: the hub's latest seq of each feed, for the client has then
    been sent every update the hub fanned out (the last write takes everything queued)."""

    def __init__(self, hub: Hub, ids: Sequence[FeedId]) -> None:
        self.latest = hub.latest
        self.ids = ids

    def event_id(self) -> bytes:
        latest = self.latest
        return encode_event_id([u.seq if (u := latest.get(feed_id)) is not None else 0 for feed_id in self.ids])


EventWriter = Callable[[list[bytes], bytes], None]
"""Writes one event of items with its id, now (``SseStream.write_event``)."""


class PriceStreamSession:
    """One stream: subscribed to its feeds while open; a resumed stream first replays what its client missed."""

    def __init__(self, hub: Hub, peer: Peer, ids: list[FeedId], benchmarks_only: bool,
                 recent: RecentUpdates | None = None, resume_from: list[int | None] | None = None,
                 write_event: EventWriter | None = None) -> None:
        self.hub = hub
        self.ids = ids
        self.codec = BENCHMARKS_ONLY if benchmarks_only else ALL_UPDATES
        self.lane = peer.lane(self.codec)
        self.recent = recent
        self.resume_from = resume_from
        self.write_event = write_event

    def opened(self) -> None:
        if self.recent is not None and self.resume_from is not None and self.write_event is not None:
            self._replay(self.recent, self.resume_from, self.write_event)
        for feed_id in self.ids:
            self.hub.subscribe(feed_id, self.lane)

    def _replay(self, recent: RecentUpdates, resume_from: list[int | None], write_event: EventWriter) -> None:
        """What came after each feed's seq, as events with at most one update per feed (the k-th missed update
        of each), written before the stream subscribes: the hub's next pass brings the updates after them."""
        missed = [[] if seq is None else recent.since(feed_id, seq).updates
                  for feed_id, seq in zip(self.ids, resume_from, strict=True)]
        seqs = list(resume_from)
        for k in range(max(map(len, missed), default=0)):
            items = []
            for i, updates in enumerate(missed):
                if k < len(updates):
                    items.append(self.codec.encode(self.ids[i], updates[k]))
                    seqs[i] = updates[k].seq
            write_event(items, encode_event_id(seqs))

    def closed(self) -> None:
        for feed_id in self.ids:
            self.hub.unsubscribe(feed_id, self.lane)

    def receive_text(self, text: str | bytes) -> None:
        """A stream has no inbound messages."""

    def receive_binary(self, data: bytes) -> None:
        """A stream has no inbound messages."""
