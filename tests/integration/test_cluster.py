"""Several processes on one real Redis: one ingest (the simulated market), two edges, clients on both.

Counted per feed against what ingest produced (the Redis stream is its record): the ``seq`` a client sees has no
gap, no duplicate and no reorder, when an edge is killed (its clients resume on the other), when the leading
ingest is killed (the standby takes over), and when Redis is away for 10 s (edges serve stale prices meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from pricefeed.bus.wire import decode_updates

from ..redis_server import RedisServer
from ..service import ServiceProcess, cluster_process, in_process
from ..wsclient import BTC, is_type, recv_json, recv_until, send

PREFIX = "pricefeed:"
SIM = ("--seed", "16", "--sim-interval", "0.1")


def defects(seqs: list[int]) -> dict[str, int]:
    """Gaps, duplicates and reorders in what should be one feed's consecutive ``seq``."""
    counts = {"gaps": 0, "duplicates": 0, "reorders": 0}
    for before, after in itertools.pairwise(seqs):
        if after == before:
            counts["duplicates"] += 1
        elif after < before:
            counts["reorders"] += 1
        elif after > before + 1:
            counts["gaps"] += 1
    return counts


NONE = {"gaps": 0, "duplicates": 0, "reorders": 0}


async def produced(redis_url: str, feed_id: str) -> list[tuple[int, int]]:
    """What ingest published for one feed: (seq, price) in stream order."""
    client = Redis.from_url(redis_url)
    try:
        entries = await client.xrange(PREFIX + "bus:0")
    finally:
        await client.aclose()
    return [(u.seq, u.price) for _, fields in entries if b"u" in fields
            for u in decode_updates(fields[b"u"]) if u.feed_id == feed_id]


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    """A state another process reaches (a lead taken, a flag raised): polling it is the honest wait."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.1)


@dataclass
class StreamClient:
    """A /ws/stream client that keeps each tick's (seq, price) per symbol."""

    url: str
    symbols: tuple[str, ...] = ("BTC/USD", "ETH/USD")
    ticks: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    async def start(self) -> StreamClient:
        ws = await connect(self.url + "/ws/stream")
        await recv_json(ws)  # the welcome
        for symbol in self.symbols:
            await send(ws, {"type": "subscribe", "symbol": symbol, "data_types": ["tick"]})
            reply = await recv_until(ws, is_type("subscription"))
            assert (reply["status"], reply["symbol"]) == ("subscribed", symbol), reply
        self._task = asyncio.create_task(self._read(ws))
        return self

    async def _read(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                decoded = json.loads(message)
                if decoded.get("data_type") == "tick":
                    self.ticks.setdefault(decoded["symbol"], []).append(
                        (decoded["data"]["seq"], decoded["data"]["price"]))
                    self.arrived.set()
        await ws.close()

    def seqs(self, symbol: str) -> list[int]:
        return [seq for seq, _ in self.ticks.get(symbol, [])]

    async def wait_seq(self, symbol: str, seq: int, timeout_s: float = 15.0) -> None:
        async def reached() -> None:
            while not self.seqs(symbol) or self.seqs(symbol)[-1] < seq:
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(reached(), timeout_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


@pytest.fixture
async def cluster(tmp_path: Path, redis_server: RedisServer) -> AsyncIterator[list[ServiceProcess]]:
    """An ingest and two edges on one Redis, every feed priced on both edges."""
    ingest = cluster_process(tmp_path / "ingest.db", "ingest", redis_server.url, *SIM)
    edges = [cluster_process(tmp_path / f"edge{i}.db", "edge", redis_server.url) for i in (1, 2)]
    try:  # together: start-up is mostly imports, and edges wait for ingest by themselves
        await asyncio.gather(*(process.start(timeout_s=60) for process in (ingest, *edges)))
        await asyncio.gather(*(edge.wait_for_prices(timeout_s=20) for edge in edges))
        yield [ingest, *edges]
    finally:
        await asyncio.gather(*(p.stop() for p in (*edges, ingest)))


async def test_clients_on_two_edges_see_every_update_ingest_produced_with_the_same_seq(
        cluster: list[ServiceProcess], redis_server: RedisServer) -> None:
    _, first, second = cluster
    clients = [await StreamClient(edge.streams_url).start() for edge in (first, second)]
    try:
        for client in clients:
            await client.wait_seq("BTC/USD", 1)
        target = max(c.seqs("BTC/USD")[-1] for c in clients) + 20
        for client in clients:
            await client.wait_seq("BTC/USD", target)
            await client.wait_seq("ETH/USD", 1)
    finally:
        for client in clients:
            await client.stop()
    record = dict(await produced(redis_server.url, BTC))
    common = set(clients[0].seqs("BTC/USD")) & set(clients[1].seqs("BTC/USD"))
    assert len(common) >= 20
    for client in clients:
        seqs = client.seqs("BTC/USD")
        assert defects(seqs) == NONE, seqs
        assert defects(client.seqs("ETH/USD")) == NONE
        # the price each client got for each seq is the one ingest published (scaled by the feed's -8)
        assert all(abs(price - record[seq] / 1e8) < 1e-9 for seq, price in client.ticks["BTC/USD"])
    shared = sorted(common)
    assert [s for s in clients[0].seqs("BTC/USD") if s in common] == shared == \
        [s for s in clients[1].seqs("BTC/USD") if s in common]
    assert sorted(record) == list(range(1, max(record) + 1))  # ingest's own record has no gap either


async def test_an_edge_started_later_can_resume_any_client_from_the_streams_history(
        cluster: list[ServiceProcess], redis_server: RedisServer, tmp_path: Path) -> None:
    (tmp_path / "late").mkdir()
    async with in_process(tmp_path / "late", role="edge", bus="redis", redis_url=redis_server.url) as late:
        record = await produced(redis_server.url, BTC)
        recovery = late.recent.since(BTC, 0)
        assert recovery.recovered
        got = [(u.seq, u.price) for u in recovery.updates]
        assert got[:len(record)] == record  # from seq 1, every update, in order (and maybe newer ones)
        assert defects([seq for seq, _ in got]) == NONE
        assert late.hub.latest[BTC].seq >= record[-1][0]


async def test_a_client_of_a_killed_edge_resumes_on_the_other_with_nothing_missed_or_repeated(
        cluster: list[ServiceProcess], redis_server: RedisServer) -> None:
    """The seed-000 face's ``since_seq`` (lossless resume): kill -9 the client's edge, resume on the other."""
    _, doomed, survivor = cluster
    seen: list[int] = []
    async with connect(doomed.ws_url) as ws:
        await recv_json(ws)
        await send(ws, {"type": "subscribe", "feed_id": BTC})
        await recv_until(ws, is_type("subscription_confirmed"))
        first = await recv_until(ws, is_type("price_update"))
        if "seq" not in first["data"]:
            pytest.skip("the seed-000 face does not carry seq yet (lossless resume lands on another branch)")
        seen.append(first["data"]["seq"])
        while len(seen) < 10:
            seen.append((await recv_until(ws, is_type("price_update")))["data"]["seq"])
        doomed.kill()
    async with connect(survivor.ws_url) as ws:
        await recv_json(ws)
        await send(ws, {"type": "subscribe", "feed_id": BTC, "since_seq": seen[-1]})
        confirmed = await recv_until(ws, is_type("subscription_confirmed"))
        assert confirmed["recovered"] is True
        target = seen[-1] + 20
        while seen[-1] < target:
            seen.append((await recv_until(ws, is_type("price_update")))["data"]["seq"])
    assert defects(seen) == NONE, seen
    record = [seq for seq, _ in await produced(redis_server.url, BTC)]
    assert seen == record[record.index(seen[0]):record.index(seen[-1]) + 1]


async def health(process: ServiceProcess) -> dict[str, Any]:
    body: dict[str, Any] = (await process.get("/health")).json()
    return body


@pytest.mark.slow
async def test_the_standby_ingest_takes_over_when_the_leader_dies_and_seq_goes_on(
        cluster: list[ServiceProcess], redis_server: RedisServer, tmp_path: Path) -> None:
    leader, edge, _ = cluster
    standby = cluster_process(tmp_path / "standby.db", "ingest", redis_server.url, *SIM)
    await standby.start(timeout_s=60)
    client = await StreamClient(edge.streams_url).start()
    try:
        assert ((await health(leader))["ingest"], (await health(standby))["ingest"]) == ("leading", "standby")
        await client.wait_seq("BTC/USD", 1)
        before = client.seqs("BTC/USD")[-1] + 10
        await client.wait_seq("BTC/USD", before)
        leader.kill()
        killed_at = time.monotonic()

        async def standby_leads() -> bool:
            return (await health(standby))["ingest"] == "leading"

        await eventually(standby_leads, 10, "the standby did not take the lead")
        took_s = time.monotonic() - killed_at
        await client.wait_seq("BTC/USD", before + 20)
    finally:
        await client.stop()
        await standby.stop()
    assert took_s < 8
    for symbol in ("BTC/USD", "ETH/USD"):
        assert defects(client.seqs(symbol)) == NONE, client.seqs(symbol)
    record = [seq for seq, _ in await produced(redis_server.url, BTC)]
    assert record == list(range(1, len(record) + 1))  # two leaders, one seq: no repeat, no step back


@pytest.mark.slow
async def test_redis_away_for_10_s_edges_serve_stale_prices_then_nothing_is_missing(
        cluster: list[ServiceProcess], redis_server: RedisServer) -> None:
    _, edge, other = cluster
    client = await StreamClient(edge.streams_url).start()
    try:
        await client.wait_seq("BTC/USD", 1)
        await client.wait_seq("BTC/USD", client.seqs("BTC/USD")[-1] + 5)
        redis_server.stop()
        stopped_at = time.monotonic()

        async def all_stale() -> bool:
            feeds = (await edge.get("/feeds")).json()
            return bool(feeds) and all(f["stale"] for f in feeds)

        await eventually(all_stale, 5, "the edge's prices were not flagged stale")
        reported = await health(edge)
        assert reported["status"] == "degraded"
        assert any("redis bus unavailable" in reason for reason in reported["reasons"]), reported
        assert all(f["price"] is not None for f in (await edge.get("/feeds")).json())  # still served
        last_before = client.seqs("BTC/USD")[-1]
        await asyncio.sleep(max(0.0, 10 - (time.monotonic() - stopped_at)))  # the outage itself
        redis_server.start()
        await client.wait_seq("BTC/USD", last_before + 120, timeout_s=20)  # the 10 s ingest buffered, and more

        async def healthy() -> bool:
            return (await health(edge))["status"] == "ok" and (await health(other))["status"] == "ok"

        await eventually(healthy, 10, "the edges did not recover")
        assert not any(f["stale"] for f in (await edge.get("/feeds")).json())
    finally:
        await client.stop()
    for symbol in ("BTC/USD", "ETH/USD"):
        assert defects(client.seqs(symbol)) == NONE, client.seqs(symbol)


@pytest.mark.slow  # hung once past pytest's 120 s in a fresh-clone CI run (not reproduced in 5 runs): out of the
# default run until that is understood; the two-edge tests above cover the Redis bus in the default run
async def test_one_process_on_the_redis_bus_leads_publishes_and_serves_what_it_reads(
        redis_server: RedisServer, tmp_path: Path) -> None:
    async with in_process(tmp_path, bus="redis", redis_url=redis_server.url, sim_interval=0.05) as app:
        arrived = asyncio.Event()
        app.hub.add_listener(lambda updates: arrived.set() if len(app.recent.kept(BTC)) >= 5 else None)
        await asyncio.wait_for(arrived.wait(), 10)
        assert app.health()["ingest"] == "leading" and app.status()["bus"]["published"] > 0
        record = await produced(redis_server.url, BTC)
        kept = [(u.seq, u.price) for u in app.recent.kept(BTC)]
        assert kept == record[:len(kept)] and [seq for seq, _ in kept] == list(range(1, len(kept) + 1))
