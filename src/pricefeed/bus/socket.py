"""The bus between the processes of one machine without Redis: a Unix socket stream from the ingest process.

``--workers N`` with no Redis runs one ingest process and N edges; the ingest
listens on a Unix socket and every edge connects to it. The same seam as the
other buses: ingest publishes passes (:class:`SocketBusServer` is its
:class:`~pricefeed.bus.base.Bus`), each edge's hub receives them in order
(:class:`SocketBusClient`), and the edges' demand flows back on the same socket.

Frames: a 4-byte big-endian length, a 1-byte kind, a MessagePack body (``bus.wire``). On connecting, an edge
gets the feeds, the latest price of each, and every update the ingest keeps (``--history-depth``): the first
time they fill its resume log; after a lost connection, what it missed comes as passes, so nothing is lost.
An edge that reads too slowly is disconnected (it reconnects and catches up); ingest never waits for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..model import Feed, FeedId, PriceUpdate
from ..resilience import Backoff, describe_error
from ..resume import RecentUpdates
from .base import Edge
from .wire import (
    decode_feeds,
    decode_ids,
    decode_pass,
    decode_updates,
    encode_feeds,
    encode_ids,
    encode_pass,
    encode_updates,
)

log = logging.getLogger(__name__)

FEEDS, LATEST, HISTORY, PASS, DEMAND = b"f", b"l", b"h", b"u", b"d"
_HEADER = struct.Struct(">IB")
MAX_BEHIND_BYTES = 64 * 1024 * 1024
"""What an edge may leave unread before ingest disconnects it (it reconnects and catches up)."""

Backfill = Callable[[list[PriceUpdate]], None]


def frame(kind: bytes, body: bytes) -> bytes:
    return _HEADER.pack(len(body) + 1, kind[0]) + body


async def read_frame(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    length, kind = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    return bytes([kind]), await reader.readexactly(length - 1)


class SocketBusServer:
    """Ingest's side: publishes every pass to each connected edge."""

    def __init__(self, path: Path, history_s: float = 600.0) -> None:
        self.path = path
        self.recent = RecentUpdates(keep_s=history_s)
        self._feeds: dict[FeedId, Feed] = {}
        self._latest: dict[FeedId, PriceUpdate] = {}
        self._edges: dict[asyncio.StreamWriter, set[FeedId]] = {}
        self._server: asyncio.AbstractServer | None = None
        self.published = 0
        self.disconnected_slow = 0

    # -- the Bus protocol ---------------------------------------------------------------

    def attach(self, edge: Edge) -> None:
        raise TypeError("edges connect to the socket bus from their own process")

    def publish_feeds(self, feeds: list[Feed]) -> None:
        self._feeds.update((f.id, f) for f in feeds)
        self._send(frame(FEEDS, encode_feeds(feeds)))

    def publish_restored(self, updates: list[PriceUpdate]) -> None:
        self._latest.update((u.feed_id, u) for u in updates)
        self._send(frame(LATEST, encode_updates(updates)))

    def publish(self, accepted: list[PriceUpdate], seen: Iterable[FeedId]) -> None:
        accepted_ids = {u.feed_id for u in accepted}
        for update in accepted:
            self._latest[update.feed_id] = update
        self.recent.add(accepted)
        self.published += len(accepted)
        self._send(frame(PASS, encode_pass(accepted, [f for f in seen if f not in accepted_ids])))

    def demand(self) -> set[FeedId]:
        wanted: set[FeedId] = set()
        for feeds in self._edges.values():
            wanted |= feeds
        return wanted

    def _send(self, data: bytes) -> None:
        for writer in list(self._edges):
            if writer.transport.get_write_buffer_size() > MAX_BEHIND_BYTES:
                log.warning("socket bus: an edge is %d bytes behind: disconnecting it (it will catch up)",
                            writer.transport.get_write_buffer_size())
                self.disconnected_slow += 1
                self._edges.pop(writer, None)
                writer.transport.abort()
                continue
            writer.write(data)

    # -- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a socket file left by a process that died
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        log.info("socket bus: publishing on %s", self.path)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        history = [u for feed_id in self._feeds for u in self.recent.kept(feed_id)]
        writer.write(frame(FEEDS, encode_feeds(list(self._feeds.values())))
                     + frame(LATEST, encode_updates(list(self._latest.values())))
                     + frame(HISTORY, encode_updates(history)))
        self._edges[writer] = set()  # from now on it gets every pass, after the catch-up above
        try:
            while True:
                kind, body = await read_frame(reader)
                if kind == DEMAND:
                    self._edges[writer] = set(decode_ids(body))
        except (asyncio.IncompleteReadError, ConnectionError, KeyError):
            pass
        finally:
            self._edges.pop(writer, None)
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._edges):
                writer.close()
            await self._server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def problems(self) -> list[str]:
        return []

    def status(self) -> dict[str, Any]:
        return {"kind": "socket", "path": str(self.path), "edges": len(self._edges), "published": self.published,
                "disconnected_slow": self.disconnected_slow}


class SocketBusClient:
    """An edge's side: connects to the ingest's socket (again and again) and hands what it reads to its hub."""

    def __init__(self, path: Path, demand_interval_s: float = 1.0) -> None:
        self.path = path
        self.demand_interval_s = demand_interval_s
        self._edges: list[Edge] = []
        self._backfills: list[Backfill] = []
        self._last_seq: dict[FeedId, int] = {}
        self._task: asyncio.Task[None] | None = None
        self.received = 0
        self.connections = 0
        self.error: str | None = "not connected yet"

    def attach(self, edge: Edge) -> None:
        self._edges.append(edge)

    def add_backfill(self, backfill: Backfill) -> None:
        self._backfills.append(backfill)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="socket bus client")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        backoff = Backoff(initial_s=0.1, cap_s=2.0)
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(str(self.path))
            except OSError as exc:
                self._lost(describe_error(exc))
                await asyncio.sleep(backoff.next_delay())
                continue
            backoff.reset()
            demand = asyncio.create_task(self._send_demand(writer))
            try:
                await self._read(reader)
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                self._lost(describe_error(exc) or "the ingest process closed the bus")
            finally:
                demand.cancel()
                writer.close()
            await asyncio.sleep(backoff.next_delay())

    async def _read(self, reader: asyncio.StreamReader) -> None:
        self.connections += 1
        caught_up = False
        while True:
            kind, body = await read_frame(reader)
            if kind == PASS:
                accepted, seen_only = decode_pass(body)
                self._hand_over(accepted, [*(u.feed_id for u in accepted), *seen_only])
            elif kind == FEEDS:
                feeds = decode_feeds(body)
                for edge in self._edges:
                    edge.add_feeds(feeds)
            elif kind == LATEST:
                latest = decode_updates(body)
                if not caught_up and self.connections == 1:
                    for edge in self._edges:
                        edge.restore(latest)
            elif kind == HISTORY:
                self._catch_up(decode_updates(body))
                caught_up = True
                if self.error is not None:
                    log.info("socket bus: reading from %s", self.path)
                self.error = None

    def _catch_up(self, history: list[PriceUpdate]) -> None:
        """The first time, fill the resume log; after a lost connection, hand over what was missed."""
        if self.connections == 1:
            for backfill in self._backfills:
                backfill(history)
            self._last_seq.update((u.feed_id, u.seq) for u in history)
            return
        missed = [u for u in history if u.seq > self._last_seq.get(u.feed_id, 0)]
        if missed:
            self._hand_over(missed, [u.feed_id for u in missed])

    def _hand_over(self, accepted: list[PriceUpdate], seen: list[FeedId]) -> None:
        last_seq = self._last_seq
        for update in accepted:
            last_seq[update.feed_id] = update.seq
        self.received += len(accepted)
        for edge in self._edges:
            edge.receive(accepted, seen)

    def _lost(self, error: str) -> None:
        if self.error is None:
            log.warning("socket bus: lost the ingest process (%s): serving the last prices as stale", error)
            for edge in self._edges:
                edge.lost()
        self.error = error

    async def _send_demand(self, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while True:
                wanted: set[FeedId] = set()
                for edge in self._edges:
                    wanted |= edge.demand()
                writer.write(frame(DEMAND, encode_ids(sorted(wanted))))
                await asyncio.sleep(self.demand_interval_s)

    def problems(self) -> list[str]:
        return [] if self.error is None else [f"socket bus {self.path} unavailable, serving the last prices as "
                                              f"stale: {self.error}"]

    def status(self) -> dict[str, Any]:
        return {"kind": "socket", "path": str(self.path), "connections": self.connections, "received": self.received,
                "error": self.error}


def default_socket_path() -> Path:
    """Where a supervisor's ingest listens: private to this user, unique to the supervisor."""
    return Path(os.environ.get("XDG_RUNTIME_DIR") or "/tmp") / f"pricefeed-bus-{os.getpid()}.sock"
