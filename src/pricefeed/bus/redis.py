"""The Redis bus: ingest publishes each pass to Redis Streams, and every edge process fans out what it reads.

Centrifugo's Redis engine is the model: one set of upstream connections, one
ordered history in Redis, any number of processes serving clients.

Keys (under ``--redis-prefix``):

- ``bus:<shard>``: a stream; one entry per ingest pass of the shard's feeds (``u``: the accepted updates,
  ``s``: feeds heard from that only repeated themselves) or per feed registration (``f``). Trimmed by time
  (``MINID``: the entry ids are milliseconds), so it holds ``history_s`` of updates, whatever their rate.
- ``bus:latest``: the newest published update of each feed, written in the same transaction as the entry,
  so a new ingest leader continues every feed's ``seq`` and a new edge starts with every price.
- ``bus:feeds``: every feed's metadata.
- ``demand:<process>``: the feeds one edge's clients subscribe to, with a TTL the edge keeps renewing;
  ingest reads the union, so an upstream streams each wanted feed once for the whole cluster.

Why one stream per shard rather than per feed: an edge serves every feed (``/feeds``, candles, the Hermes
stream of all updates), so it reads all of them anyway. One XREAD on a few streams is one round trip per
batch, where per-feed streams would mean thousands of keys in every XREAD and one XADD per feed per pass.
An entry carries a whole pass, so an edge hands its hub the same passes ingest made (one fan-out, one write
per connection per pass, as in one process). A feed always goes to the same shard, so its order is the
stream's order; shards (``--bus-shards``) spread the streams over the nodes of a Redis Cluster. Resume reads
one feed's updates from the edge's own memory (:mod:`pricefeed.resume`), filled from the stream at start,
so nothing needs per-feed streams.

Redis unavailable: ingest keeps the passes it could not write (up to ``buffer_limit`` updates; beyond that
the oldest are dropped and counted) and writes them in order when Redis is back; edges keep serving the last
prices, flagged stale, and read on from where they stopped. Nothing raises into ingest or the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..model import Feed, FeedId, PriceUpdate
from ..resilience import Backoff, describe_error
from .base import Edge
from .wire import decode_feeds, decode_ids, decode_updates, encode_feeds, encode_ids, encode_updates

log = logging.getLogger(__name__)

Backfill = Callable[[list[PriceUpdate]], None]


def redis_client(url: str | None = None, *, host: str | None = None, port: int = 6379, username: str | None = None,
                 password: str | None = None, timeout_s: float = 2.0) -> Redis:
    """A client that fails fast (the bus retries with its own backoff); nothing connects before the first command."""
    options: dict[str, Any] = {"socket_connect_timeout": timeout_s, "socket_timeout": timeout_s,
                               "retry": Retry(NoBackoff(), 0)}
    if url is not None:
        return Redis.from_url(url, **options)
    return Redis(host=host or "localhost", port=port, username=username, password=password, **options)


@dataclass(slots=True)
class _Entry:
    shard: int
    fields: dict[str, bytes]
    latest: dict[FeedId, bytes]
    updates: int


class RedisBus:
    def __init__(self, client: Redis, *, prefix: str = "pricefeed:", process: str = "", shards: int = 1,
                 history_s: float = 600.0, buffer_limit: int = 100_000, demand_ttl_s: float = 5.0,
                 demand_interval_s: float = 1.0, block_s: float = 1.0) -> None:
        self.redis = client
        self.prefix = prefix
        self.process = process
        self.shards = shards
        self.history_ms = int(history_s * 1000)
        self.buffer_limit = buffer_limit
        self.demand_ttl_ms = int(demand_ttl_s * 1000)
        self.demand_interval_s = demand_interval_s
        self.block_ms = int(block_s * 1000)
        self.streams = [f"{prefix}bus:{shard}" for shard in range(shards)]
        self.latest_key = prefix + "bus:latest"
        self.feeds_key = prefix + "bus:feeds"
        self.demand_prefix = prefix + "demand:"
        self._edges: list[Edge] = []
        self._backfills: list[Backfill] = []
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # ingest's side
        self._queue: deque[_Entry] = deque()
        self._queued_updates = 0
        self._wake = asyncio.Event()
        self._feeds: dict[FeedId, bytes] = {}
        self._latest: dict[FeedId, bytes] = {}
        self._cluster_demand: set[FeedId] = set()
        self.published = 0
        self.dropped = 0
        """Updates dropped because Redis stayed away longer than the buffer lasts."""
        self.publish_error: str | None = None
        # the edges' side
        self._last_ids: dict[str, str] = {}
        self._synced = False
        self.received = 0
        self.read_error: str | None = None
        self.down_since: float | None = None

    # -- the Bus protocol (ingest's side: never awaits) --------------------------------

    def attach(self, edge: Edge) -> None:
        """Fan out what this process reads from Redis through ``edge`` (started by :meth:`start_edges`)."""
        self._edges.append(edge)

    def add_backfill(self, backfill: Backfill) -> None:
        """Called once at start with the stream's history (every update, in order): a resume log fills from it."""
        self._backfills.append(backfill)

    def shard_of(self, feed_id: FeedId) -> int:
        return 0 if self.shards == 1 else zlib.crc32(feed_id.encode()) % self.shards

    def publish_feeds(self, feeds: list[Feed]) -> None:
        encoded = {feed.id: encode_feeds([feed]) for feed in feeds}
        self._feeds.update(encoded)
        payload = encode_feeds(feeds)
        for shard in range(self.shards):  # every shard: an edge knows a feed before any of its updates
            self._enqueue(_Entry(shard, {"f": payload}, {}, 0))

    def publish_restored(self, updates: list[PriceUpdate]) -> None:
        """Nothing to send: edges read the restored prices from ``bus:latest`` themselves."""

    def publish(self, accepted: list[PriceUpdate], seen: Iterable[FeedId]) -> None:
        by_shard: dict[int, list[PriceUpdate]] = {}
        for update in accepted:
            by_shard.setdefault(self.shard_of(update.feed_id), []).append(update)
        repeats: dict[int, list[FeedId]] = {}
        accepted_ids = {u.feed_id for u in accepted}
        for feed_id in seen:
            if feed_id not in accepted_ids:
                repeats.setdefault(self.shard_of(feed_id), []).append(feed_id)
        for shard in by_shard.keys() | repeats.keys():
            updates = by_shard.get(shard, [])
            fields = {"u": encode_updates(updates)}
            if shard in repeats:
                fields["s"] = encode_ids(repeats[shard])
            latest = {u.feed_id: encode_updates([u]) for u in updates}
            self._latest.update(latest)
            self._enqueue(_Entry(shard, fields, latest, len(updates)))

    def demand(self) -> set[FeedId]:
        wanted = set(self._cluster_demand)
        for edge in self._edges:
            wanted |= edge.demand()
        return wanted

    def _enqueue(self, entry: _Entry) -> None:
        self._queue.append(entry)
        self._queued_updates += entry.updates
        while self._queued_updates > self.buffer_limit:  # Redis is away for long: the oldest updates go
            oldest = next(i for i, queued in enumerate(self._queue) if queued.updates)  # feeds stay: few, needed
            dropped = self._queue[oldest].updates
            del self._queue[oldest]
            self._queued_updates -= dropped
            self.dropped += dropped
        self._wake.set()

    # -- what is in Redis -----------------------------------------------------------------

    async def load_feeds(self) -> list[Feed]:
        values = cast(list[bytes], await self.redis.hvals(self.feeds_key))
        return [feed for value in values for feed in decode_feeds(value)]

    async def load_latest(self) -> list[PriceUpdate]:
        """The newest published update of each feed (a new leader's ``seq`` goes on from these)."""
        values = cast(list[bytes], await self.redis.hvals(self.latest_key))
        return [u for value in values for u in decode_updates(value)]

    # -- ingest's side: the writer ----------------------------------------------------------

    async def start_publishing(self) -> None:
        self._start("redis bus publisher", self._publish_loop())
        self._start("redis bus demand reader", self._read_demand_loop())

    async def stop_publishing(self) -> None:
        """Write what is queued (a last try, bounded), then stop."""
        await self._cancel("redis bus demand reader")
        await self._cancel("redis bus publisher")
        if self._queue:
            with contextlib.suppress(RedisError, TimeoutError):
                await asyncio.wait_for(self._write(list(self._queue), resync=False), 2.0)
                self._queue.clear()

    def abandon(self) -> int:
        """Forget what is queued (this ingest lost the lead: the new leader owns ``seq``); returns the updates lost."""
        lost = self._queued_updates
        self._queue.clear()
        self._queued_updates = 0
        return lost

    async def _publish_loop(self) -> None:
        backoff = Backoff(initial_s=0.1, cap_s=2.0)
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch = list(self._queue)
                try:
                    await self._write(batch, resync=self.publish_error is not None)
                except (RedisError, OSError) as exc:
                    error = describe_error(exc)
                    if self.publish_error is None:
                        log.warning("cannot publish to Redis (%s): buffering up to %d updates", error,
                                    self.buffer_limit)
                    self.publish_error = error
                    await asyncio.sleep(backoff.next_delay())
                    continue
                written = {id(entry) for entry in batch}  # what arrived meanwhile stays queued
                while self._queue and id(self._queue[0]) in written:
                    self._queued_updates -= self._queue.popleft().updates
                self.published += sum(entry.updates for entry in batch)
                if self.publish_error is not None:
                    log.info("publishing to Redis again")
                    self.publish_error = None
                backoff.reset()

    async def _write(self, batch: list[_Entry], resync: bool) -> None:
        """One transaction: each entry and the latest prices it carries (after an outage, every feed and
        price again too: a restarted Redis may have lost them)."""
        min_id = max(0, int(time.time() * 1000) - self.history_ms)
        async with self.redis.pipeline(transaction=True) as pipe:
            if resync and self._feeds:
                pipe.hset(self.feeds_key, mapping=self._feeds)  # type: ignore[arg-type]  # redis-py's narrow Mapping
            if resync and self._latest:
                pipe.hset(self.latest_key, mapping=self._latest)  # type: ignore[arg-type]
            for entry in batch:
                pipe.xadd(self.streams[entry.shard], entry.fields, minid=min_id, approximate=True)  # type: ignore[arg-type]
                if entry.latest:
                    pipe.hset(self.latest_key, mapping=entry.latest)  # type: ignore[arg-type]
                if "f" in entry.fields:
                    feeds: dict[str | bytes, bytes] = {f.id: encode_feeds([f]) for f in decode_feeds(entry.fields["f"])}
                    pipe.hset(self.feeds_key, mapping=feeds)  # type: ignore[arg-type]
            await pipe.execute()

    async def _read_demand_loop(self) -> None:
        while True:
            try:
                keys = [key async for key in self.redis.scan_iter(self.demand_prefix + "*", count=1000)]
                values = cast(list[bytes | None], await self.redis.mget(keys) if keys else [])
                self._cluster_demand = {feed_id for value in values if value for feed_id in decode_ids(value)}
            except (RedisError, OSError):
                pass  # keep the last union; the publisher reports the outage
            await asyncio.sleep(self.demand_interval_s)

    # -- the edges' side: the reader ----------------------------------------------------------

    async def start_edges(self) -> None:
        """Catch up (feeds, latest prices, the stream's history), then read on; Redis down just means later."""
        with contextlib.suppress(RedisError, OSError):
            await self._sync()
        self._start("redis bus reader", self._read_loop())
        self._start("redis bus demand writer", self._write_demand_loop())

    async def stop_edges(self) -> None:
        await self._cancel("redis bus demand writer")
        await self._cancel("redis bus reader")
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            await asyncio.wait_for(self.redis.delete(self.demand_prefix + self.process), 1.0)

    async def _sync(self) -> None:
        feeds = await self.load_feeds()
        latest = await self.load_latest()
        min_id = str(max(0, int(time.time() * 1000) - self.history_ms))
        history: list[PriceUpdate] = []
        last_ids: dict[str, str] = {}
        for stream in self.streams:
            last_ids[stream] = "0-0"
            entries = cast(list[tuple[bytes, dict[bytes, bytes]]], await self.redis.xrange(stream, min=min_id))
            for entry_id, fields in entries:
                last_ids[stream] = _text(entry_id)
                if b"u" in fields:
                    history += decode_updates(fields[b"u"])
                elif b"f" in fields:
                    feeds += decode_feeds(fields[b"f"])
        feeds = list({feed.id: feed for feed in feeds}.values())  # the hash, then newer ones from the stream
        for edge in self._edges:
            edge.add_feeds(feeds)
            edge.restore(latest)
        history.sort(key=lambda u: (u.feed_id, u.seq))  # shards interleave; each feed's own order is what counts
        for backfill in self._backfills:
            backfill(history)
        self._last_ids = last_ids
        self._synced = True
        log.info("redis bus: %d feeds, %d latest prices and %d recent updates from Redis",
                 len(feeds), len(latest), len(history))

    async def _read_loop(self) -> None:
        backoff = Backoff(initial_s=0.2, cap_s=5.0)
        while True:
            try:
                if not self._synced:
                    await self._sync()
                replies = cast(list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]], await self.redis.xread(
                    self._last_ids, count=1000, block=self.block_ms))  # type: ignore[arg-type]  # redis-py's narrow Mapping
            except (RedisError, OSError) as exc:
                self._lost(describe_error(exc))
                await asyncio.sleep(backoff.next_delay())
                continue
            if self.read_error is not None:
                log.info("redis bus: reading again after %.1f s", time.monotonic() - (self.down_since or 0.0))
                self.read_error = self.down_since = None
            backoff.reset()
            for stream, entries in replies:
                name = _text(stream)
                for entry_id, fields in entries:
                    self._last_ids[name] = _text(entry_id)
                    self._hand_over(fields)

    def _hand_over(self, fields: dict[bytes, bytes]) -> None:
        if b"f" in fields:
            feeds = decode_feeds(fields[b"f"])
            for edge in self._edges:
                edge.add_feeds(feeds)
            return
        accepted = decode_updates(fields[b"u"]) if b"u" in fields else []
        seen = [u.feed_id for u in accepted]
        if b"s" in fields:
            seen += decode_ids(fields[b"s"])
        self.received += len(accepted)
        for edge in self._edges:
            edge.receive(accepted, seen)

    def _lost(self, error: str) -> None:
        if self.read_error is None:
            log.warning("redis bus: cannot read (%s): serving the last prices as stale until it is back", error)
            self.down_since = time.monotonic()
            for edge in self._edges:
                edge.lost()
        self.read_error = error

    async def _write_demand_loop(self) -> None:
        key = self.demand_prefix + self.process
        while True:
            wanted: set[FeedId] = set()
            for edge in self._edges:
                wanted |= edge.demand()
            with contextlib.suppress(RedisError, OSError):
                await self.redis.set(key, encode_ids(sorted(wanted)), px=self.demand_ttl_ms)
            await asyncio.sleep(self.demand_interval_s)

    # -- health and life cycle --------------------------------------------------------------------

    def problems(self) -> list[str]:
        """Why the bus is degraded (for ``/health``); empty when all is well."""
        found = []
        if self.read_error is not None:
            found.append(f"redis bus unavailable for {time.monotonic() - (self.down_since or 0.0):.1f} s, "
                         f"serving the last prices as stale: {self.read_error}")
        if self.publish_error is not None:
            found.append(f"cannot publish to redis ({self._queued_updates} updates buffered, {self.dropped} "
                         f"dropped): {self.publish_error}")
        return found

    def status(self) -> dict[str, Any]:
        return {"kind": "redis", "shards": self.shards, "published": self.published, "buffered": self._queued_updates,
                "dropped": self.dropped, "received": self.received, "publish_error": self.publish_error,
                "read_error": self.read_error}

    def _start(self, name: str, work: Any) -> None:
        self._tasks[name] = asyncio.create_task(work, name=name)

    async def _cancel(self, name: str) -> None:
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def close(self) -> None:
        await self.redis.aclose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
