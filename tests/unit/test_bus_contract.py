"""One contract, three buses: the local bus (one process), the Redis bus (Redis Streams between processes) and
the socket bus (a Unix socket from one ingest process to the edges of one machine).

Ingest publishes passes; every edge gets exactly the same passes, in order, with the same ``seq``; edges know a
feed before its updates; ingest sees the union of every edge's demand. Then what only the Redis bus does: an
edge that starts late catches up from Redis, a new ingest leader goes on from the published ``seq``, and an
outage of Redis loses nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pytest

from pricefeed.bus.local import LocalBus
from pricefeed.bus.redis import RedisBus, redis_client
from pricefeed.bus.socket import SocketBusClient, SocketBusServer
from pricefeed.bus.wire import _Row, decode_updates, encode_updates
from pricefeed.ingest import Ingest
from pricefeed.model import Feed, FeedId, PriceUpdate, Quote, Status, now_us

from ..redis_server import RedisServer, require_redis

A = "a" * 64
B = "b" * 64
FEEDS = [Feed(A, "Crypto.AAA/USD", -8, "sim"), Feed(B, "Crypto.BBB/USD", -8, "sim")]


@dataclass
class RecordingEdge:
    """An edge that keeps what the bus hands it."""

    wanted: set[FeedId] = field(default_factory=set)
    feeds: dict[FeedId, Feed] = field(default_factory=dict)
    restored: list[PriceUpdate] = field(default_factory=list)
    passes: list[tuple[list[tuple[FeedId, int, int]], set[FeedId]]] = field(default_factory=list)
    unknown: list[FeedId] = field(default_factory=list)
    """Updates of feeds the edge did not know yet (must stay empty)."""
    lost_count: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def add_feeds(self, feeds: Iterable[Feed]) -> None:
        self.feeds.update((f.id, f) for f in feeds)

    def restore(self, updates: Iterable[PriceUpdate]) -> None:
        self.restored += updates

    def receive(self, accepted: list[PriceUpdate], seen: Iterable[FeedId]) -> None:
        self.unknown += [u.feed_id for u in accepted if u.feed_id not in self.feeds]
        self.passes.append(([(u.feed_id, u.seq, u.price) for u in accepted], set(seen)))
        self.changed.set()

    def demand(self) -> set[FeedId]:
        return self.wanted

    def lost(self) -> None:
        self.lost_count += 1

    def updates(self) -> list[tuple[FeedId, int, int]]:
        return [u for accepted, _ in self.passes for u in accepted]

    async def wait_updates(self, count: int, timeout_s: float = 5.0) -> None:
        async def enough() -> None:
            while len(self.updates()) < count:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(enough(), timeout_s)


class Cluster(Protocol):
    ingest: Ingest
    edges: list[RecordingEdge]


@dataclass
class LocalCluster:
    ingest: Ingest
    edges: list[RecordingEdge]


@dataclass
class RedisCluster:
    """Ingest's bus and each edge's own bus (as in separate processes), all on one redis-server."""

    ingest: Ingest
    edges: list[RecordingEdge]
    publisher: RedisBus
    edge_buses: list[RedisBus]


def redis_bus(server: RedisServer, process: str, **options: float) -> RedisBus:
    return RedisBus(redis_client(server.url, timeout_s=1.0), prefix="t:", process=process, demand_interval_s=0.05,
                    block_s=0.2, **options)  # type: ignore[arg-type]


async def start_edge(server: RedisServer, name: str, edge: RecordingEdge) -> RedisBus:
    bus = redis_bus(server, name)
    bus.attach(edge)
    await bus.start_edges()
    return bus


async def connected(server: SocketBusServer, edges: int) -> None:
    deadline = time.monotonic() + 5
    while server.status()["edges"] != edges:  # another task's connect: polling its count is the honest wait
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)


@pytest.fixture(params=["local", "redis", "socket"])
async def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Cluster]:
    edges = [RecordingEdge(), RecordingEdge()]
    if request.param == "local":
        local = LocalBus()
        for edge in edges:
            local.attach(edge)
        yield LocalCluster(Ingest(local), edges)
        return
    if request.param == "socket":
        server = SocketBusServer(tmp_path / "bus.sock")
        await server.start()
        clients = [SocketBusClient(tmp_path / "bus.sock", demand_interval_s=0.05) for _ in edges]
        for client, edge in zip(clients, edges, strict=True):
            client.attach(edge)
            await client.start()
        await connected(server, 2)
        try:
            yield LocalCluster(Ingest(server), edges)
        finally:
            for client in clients:
                await client.stop()
            await server.stop()
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    publisher = redis_bus(server, "ingest")
    await publisher.start_publishing()
    buses = [await start_edge(server, f"edge{i}", edge) for i, edge in enumerate(edges)]
    try:
        yield RedisCluster(Ingest(publisher), edges, publisher, buses)
    finally:
        for bus in buses:
            await bus.stop_edges()
            await bus.close()
        await publisher.stop_publishing()
        await publisher.close()


def tick(feed_id: FeedId, price: int, t_us: int) -> PriceUpdate:
    return PriceUpdate(feed_id, price, 1, -8, t_us, price, 1, source="sim")


def run_passes(ingest: Ingest, passes: int, start_us: int) -> None:
    """``passes`` passes, each a new price of A and of B, and one repeat of A's price (dropped, but seen)."""
    for n in range(passes):
        t = start_us + n * 1000
        ingest.publish_many([tick(A, 100 + n, t), tick(B, 200 + n, t)])
        ingest.run_pass()
        ingest.publish(tick(A, 100 + n, t))  # not newer: seen, not accepted
        ingest.run_pass()


async def test_every_edge_gets_the_same_passes_in_order_with_the_same_seq(cluster: Cluster) -> None:
    cluster.ingest.add_feeds(FEEDS)
    run_passes(cluster.ingest, 50, now_us())
    for edge in cluster.edges:
        await edge.wait_updates(100)
    first, second = cluster.edges
    expected = [(feed, n + 1, base + n) for n in range(50) for feed, base in ((A, 100), (B, 200))]
    assert first.updates() == expected
    assert first.passes == second.passes
    assert first.passes[:2] == [([(A, 1, 100), (B, 1, 200)], {A, B}), ([], {A})]  # a repeat: seen, not accepted
    assert first.unknown == [] and set(first.feeds) == {A, B}


async def test_ingest_sees_the_union_of_the_edges_demand(cluster: Cluster) -> None:
    cluster.edges[0].wanted = {A}
    cluster.edges[1].wanted = {A, B}
    deadline = time.monotonic() + 5
    while cluster.ingest.demand() != {A, B}:  # the edges renew their demand in Redis every 50 ms here
        assert time.monotonic() < deadline, cluster.ingest.demand()
        await asyncio.sleep(0.02)
    cluster.edges[1].wanted = set()
    while cluster.ingest.demand() != {A}:
        assert time.monotonic() < deadline, cluster.ingest.demand()
        await asyncio.sleep(0.02)


def test_the_wire_row_is_the_update_in_field_order() -> None:
    assert len(_Row.__args__) == len(dataclasses.fields(PriceUpdate))  # type: ignore[attr-defined]
    update = PriceUpdate(A, 5, 1, -2, 7, 5, 1, Status.HALTED, 6, 9, "kite", 4, 10, 3, Quote(open=4))
    assert decode_updates(encode_updates([update])) == [update]


# -- what only the Redis bus does ------------------------------------------------------------------------------


async def test_a_late_edge_catches_up_on_feeds_latest_prices_and_the_streams_history(
        redis_server: RedisServer) -> None:
    require_redis()
    publisher = redis_bus(redis_server, "ingest")
    await publisher.start_publishing()
    ingest = Ingest(publisher)
    ingest.add_feeds(FEEDS)
    run_passes(ingest, 20, now_us())
    early = RecordingEdge()
    early_bus = await start_edge(redis_server, "early", early)
    backfilled: list[PriceUpdate] = []
    late = RecordingEdge()
    late_bus = redis_bus(redis_server, "late")
    late_bus.attach(late)
    late_bus.add_backfill(backfilled.extend)
    try:
        deadline = time.monotonic() + 5
        while publisher.status()["published"] < 40:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        await late_bus.start_edges()
        assert set(late.feeds) == {A, B}
        assert sorted((u.feed_id, u.seq, u.price) for u in late.restored) == [(A, 20, 119), (B, 20, 219)]
        assert [(u.feed_id, u.seq) for u in backfilled] == [(A, n) for n in range(1, 21)] + [(B, n) for n in
                                                                                              range(1, 21)]
        run_passes(ingest, 1, now_us() + 1_000_000)
        await late.wait_updates(2)
        assert late.updates() == [(A, 21, 100), (B, 21, 200)]
    finally:
        for bus in (early_bus, late_bus):
            await bus.stop_edges()
            await bus.close()
        await publisher.stop_publishing()
        await publisher.close()


async def test_a_new_leader_goes_on_from_the_published_seq(redis_server: RedisServer) -> None:
    first = redis_bus(redis_server, "first")
    await first.start_publishing()
    ingest = Ingest(first)
    ingest.add_feeds(FEEDS)
    run_passes(ingest, 5, now_us())
    await first.stop_publishing()  # the leader goes away
    await first.close()
    second = redis_bus(redis_server, "second")
    try:
        successor = Ingest(second)
        successor.add_feeds(await second.load_feeds())
        successor.restore(await second.load_latest())
        successor.publish(tick(A, 999, now_us() + 1_000_000))
        successor.run_pass()
        assert successor.latest[A].seq == 6 and successor.latest[B].seq == 5
    finally:
        await second.close()


async def test_an_outage_of_redis_loses_nothing_and_flags_the_edges(tmp_path: Path) -> None:
    require_redis()
    server = RedisServer(tmp_path / "redis").start()
    publisher = redis_bus(server, "ingest")
    edge = RecordingEdge()
    edge_bus = redis_bus(server, "edge")
    edge_bus.attach(edge)
    try:
        await publisher.start_publishing()
        await edge_bus.start_edges()
        ingest = Ingest(publisher)
        ingest.add_feeds(FEEDS)
        start = now_us()
        run_passes(ingest, 5, start)
        await edge.wait_updates(10)
        server.stop()
        run_passes(ingest, 5, start + 10_000)  # published while Redis is away: buffered
        deadline = time.monotonic() + 5
        while not (edge.lost_count and publisher.publish_error):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        assert any("redis bus unavailable" in p for p in edge_bus.problems())
        assert any("10 updates buffered" in p for p in publisher.problems())
        server.start()
        run_passes(ingest, 5, start + 20_000)
        await edge.wait_updates(30, timeout_s=10)
        assert edge.updates() == [(feed, n + 1, base + n % 5) for n in range(15) for feed, base in
                                  ((A, 100), (B, 200))]
        assert edge_bus.problems() == [] and publisher.problems() == [] and publisher.dropped == 0
    finally:
        await edge_bus.stop_edges()
        await publisher.stop_publishing()
        await edge_bus.close()
        await publisher.close()
        server.stop()


async def test_a_buffer_that_overflows_drops_the_oldest_and_counts_them() -> None:
    bus = RedisBus(redis_client("redis://127.0.0.1:1/0"), buffer_limit=6)  # never started: everything queues
    ingest = Ingest(bus)
    ingest.add_feeds(FEEDS)
    run_passes(ingest, 5, now_us())
    assert (bus.dropped, bus.status()["buffered"]) == (4, 6)
    await bus.close()



# -- what only the socket bus does -----------------------------------------------------------------------------


async def test_a_socket_edge_that_loses_the_connection_gets_what_it_missed_on_reconnecting(tmp_path: Path) -> None:
    server = SocketBusServer(tmp_path / "bus.sock")
    await server.start()
    ingest = Ingest(server)
    ingest.add_feeds(FEEDS)
    start = now_us()
    run_passes(ingest, 3, start)  # before any edge: its resume log fills from these
    edge = RecordingEdge()
    backfilled: list[PriceUpdate] = []
    client = SocketBusClient(tmp_path / "bus.sock")
    client.attach(edge)
    client.add_backfill(backfilled.extend)
    try:
        await client.start()
        await connected(server, 1)
        run_passes(ingest, 2, start + 10_000)
        await edge.wait_updates(4)
        for writer in list(server._edges):  # the connection breaks
            writer.transport.abort()
        run_passes(ingest, 2, start + 20_000)  # published while the edge is away
        await edge.wait_updates(8)
        run_passes(ingest, 1, start + 30_000)
        await edge.wait_updates(10)
    finally:
        await client.stop()
        await server.stop()
    assert [(u.feed_id, u.seq) for u in backfilled] == [(A, 1), (A, 2), (A, 3), (B, 1), (B, 2), (B, 3)]
    assert [(feed, seq) for feed, seq, _ in edge.updates()] == [
        (A, 4), (B, 4), (A, 5), (B, 5), (A, 6), (A, 7), (B, 6), (B, 7), (A, 8), (B, 8)]  # the missed ones by feed
    assert edge.lost_count == 1 and client.connections == 2
