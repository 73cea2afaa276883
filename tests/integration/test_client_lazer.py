"""The resilient client against local Lazer routers: de-duplication, the three token forms, and real faults."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from pricefeed.client import (
    BackoffPolicy,
    Client,
    ClientBuilder,
    ConnectionState,
    LazerSubscription,
    StreamUpdated,
    Subscribed,
    SubscriptionError,
)

from ..lazer_server import BY_ID, FakeLazer, feed_values

FAST_BACKOFF = BackoffPolicy(initial_s=0.05, multiplier=1.5, max_s=0.5)
PERIOD_US = 200_000


@pytest.fixture
async def routers() -> AsyncIterator[tuple[FakeLazer, FakeLazer]]:
    a, b = await FakeLazer(token="t0k3n").start(), await FakeLazer(token="t0k3n").start()
    try:
        yield a, b
    finally:
        await a.kill()
        await b.kill()


def client_for(*servers: FakeLazer, timeout_s: float = 5.0, connections: int = 4, auth: str = "header") -> Client:
    return (ClientBuilder("t0k3n").with_endpoints([s.url for s in servers]).with_num_connections(connections)
            .with_backoff(FAST_BACKOFF).with_timeout(timeout_s).with_auth(auth).build())  # type: ignore[arg-type]


class Collector:
    """Reads the client's messages into lists until stopped."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.updates: list[StreamUpdated] = []
        self.others: list[object] = []
        self.got_update = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for message in self.client:
            if isinstance(message, StreamUpdated):
                self.updates.append(message)
                self.got_update.set()
            else:
                self.others.append(message)

    async def next_update(self, timeout_s: float = 5.0) -> None:
        self.got_update.clear()
        await asyncio.wait_for(self.got_update.wait(), timeout_s)


def assert_exact_and_contiguous(updates: list[StreamUpdated], feed_ids: list[int]) -> None:
    ticks = [u.timestamp_us for u in updates]
    assert ticks, "no update arrived"
    assert all(t is not None for t in ticks)
    assert len(set(ticks)) == len(ticks), "a tick was delivered twice"
    expected = list(range(ticks[0], ticks[-1] + 1, PERIOD_US))  # type: ignore[arg-type, operator]
    assert ticks == expected, f"missed ticks: {sorted(set(expected) - set(ticks))[:10]}"
    for update in updates:
        assert [f.price_feed_id for f in update.feeds] == feed_ids
        for feed in update.feeds:
            values = feed_values(BY_ID[feed.price_feed_id], update.timestamp_us)  # type: ignore[arg-type]
            assert feed.price == Decimal(values["price"]).scaleb(-8)
            assert feed.feed_update_timestamp_us == update.timestamp_us


@pytest.mark.parametrize("auth", ["header", "query", "subprotocol"])
async def test_every_token_form_and_one_copy_of_each_message(routers: tuple[FakeLazer, FakeLazer],
                                                             auth: str) -> None:
    a, b = routers
    async with client_for(a, b, auth=auth) as client:
        collector = Collector(client)
        await client.subscribe(LazerSubscription(7, price_feed_ids=[1, 2]))
        for _ in range(5):
            await collector.next_update()
        stats = client.stats()
    await collector.task
    assert collector.others == [Subscribed(7)]  # four connections said it; the consumer hears it once
    assert_exact_and_contiguous(collector.updates, [1, 2])
    assert [s.state for s in stats] == [ConnectionState.CONNECTED] * 4
    assert sum(s.duplicates for s in stats) >= 3 * (len(collector.updates) - 1)
    assert all("t0k3n" not in s.endpoint for s in stats)
    if auth == "subprotocol":
        assert all(h.get("sec-websocket-protocol") == "pyth-lazer-auth, t0k3n" for h in a.handshakes)
    elif auth == "query":
        assert all("authorization" not in h for h in a.handshakes)
    else:
        assert all(h.get("authorization") == "Bearer t0k3n" for h in a.handshakes)


async def test_a_rejected_subscription_is_reported_and_the_stream_goes_on(
        routers: tuple[FakeLazer, FakeLazer]) -> None:
    a, b = routers
    async with client_for(a, b, connections=2) as client:
        collector = Collector(client)
        await client.subscribe(LazerSubscription(1, price_feed_ids=[1]))
        await collector.next_update()
        await client.subscribe(LazerSubscription(2, price_feed_ids=[424242]))
        await client.unsubscribe(1)
        await client.subscribe(LazerSubscription(3, price_feed_ids=[2]))
        while not any(u.subscription_id == 3 for u in collector.updates):
            await collector.next_update()
        stats = client.stats()
    await collector.task
    assert SubscriptionError(2, "unknown price feed ids or symbols") in collector.others
    assert all(s.last_error == "server: unknown price feed ids or symbols" or s.last_error is None for s in stats)
    assert any(s.last_error is not None for s in stats)


async def restart_every(server: FakeLazer, period_s: float, down_s: float, until: float) -> int:
    kills = 0
    while kills < 2 or time.monotonic() + period_s < until:
        await asyncio.sleep(period_s - down_s)
        await server.kill()
        kills += 1
        await asyncio.sleep(down_s)
        await server.start()
    return kills


async def run_restarts(routers: tuple[FakeLazer, FakeLazer], seconds: float) -> None:
    a, b = routers
    async with client_for(a, b) as client:
        collector = Collector(client)
        await client.subscribe(LazerSubscription(1, price_feed_ids=[1, 2, 6]))
        await collector.next_update()
        kills = await restart_every(a, period_s=3.0, down_s=0.5, until=time.monotonic() + seconds)
        await collector.next_update()
        stats = client.stats()
    await collector.task
    assert kills >= seconds // 3 - 1
    assert_exact_and_contiguous(collector.updates, [1, 2, 6])
    assert len(collector.updates) >= seconds * 5 * 0.9
    restarted = [s for s in stats if s.index % 2 == 0]  # connections 0 and 2 go to the first router
    assert all(s.reconnects >= kills for s in restarted)
    assert all(s.reconnects == 0 for s in stats if s.index % 2 == 1)


async def test_an_endpoint_restarting_every_few_seconds_loses_and_repeats_nothing(
        routers: tuple[FakeLazer, FakeLazer]) -> None:
    await run_restarts(routers, seconds=10)


@pytest.mark.slow
async def test_an_endpoint_restarting_for_a_minute_loses_and_repeats_nothing(
        routers: tuple[FakeLazer, FakeLazer]) -> None:
    await run_restarts(routers, seconds=60)


async def test_all_endpoints_down_then_back_resumes_alone(routers: tuple[FakeLazer, FakeLazer]) -> None:
    a, b = routers
    async with client_for(a, b) as client:
        collector = Collector(client)
        await client.subscribe(LazerSubscription(1, price_feed_ids=[1]))
        await collector.next_update()
        await a.kill()
        await b.kill()
        await asyncio.sleep(1.5)  # the outage itself, not a wait for data
        assert all(s.state != ConnectionState.CONNECTED for s in client.stats())
        before = len(collector.updates)
        await a.start()
        await b.start()
        for _ in range(3):
            await collector.next_update(timeout_s=10)
        stats = client.stats()
    await collector.task
    resumed = collector.updates[before:]
    assert_exact_and_contiguous(resumed, [1])
    assert_exact_and_contiguous(collector.updates[:before], [1])
    assert all(s.reconnects >= 1 and s.state == ConnectionState.CONNECTED for s in stats)


@pytest.mark.parametrize("when", ["after the handshake", "before the handshake"])
async def test_a_silent_endpoint_is_detected_within_the_timeout(routers: tuple[FakeLazer, FakeLazer],
                                                                 when: str) -> None:
    a, b = routers
    timeout_s = 2.0
    started = time.monotonic()
    if when == "before the handshake":
        a.silence()
    async with client_for(a, b, timeout_s=timeout_s, connections=2) as client:
        collector = Collector(client)
        await client.subscribe(LazerSubscription(1, price_feed_ids=[1]))
        silent = client.connections[0]
        if when == "after the handshake":
            while silent.state != ConnectionState.CONNECTED or silent.messages == 0:
                await collector.next_update()
            a.silence()
            started = time.monotonic()
        while silent.last_error is None:  # polls the connection's state, which no event announces
            await asyncio.sleep(0.02)
            assert time.monotonic() - started < timeout_s + 3, "the silent connection was never given up"
        detected_after = time.monotonic() - started
        count = len(collector.updates)
        for _ in range(3):
            await collector.next_update()  # the other endpoint goes on meanwhile
    await collector.task
    assert detected_after <= timeout_s + 0.5, f"detected after {detected_after:.2f} s"
    assert len(collector.updates) >= count + 3
    assert_exact_and_contiguous(collector.updates, [1])
    expected = "no message, heartbeat or pong within 2 s" if when == "after the handshake" else "TimeoutError"
    assert expected in silent.last_error, silent.last_error


async def test_a_full_channel_warns_holds_the_connections_back_and_loses_nothing(
        routers: tuple[FakeLazer, FakeLazer], caplog: pytest.LogCaptureFixture) -> None:
    a, b = routers
    client = (ClientBuilder("t0k3n").with_endpoints([a.url, b.url]).with_num_connections(2).with_timeout(1.0)
              .with_channel_capacity(3).build())
    async with client:
        receiver = await client.start()
        await client.subscribe(LazerSubscription(1, price_feed_ids=[1]))
        first = await asyncio.wait_for(receiver.recv(), 5)
        assert first == Subscribed(1)
        while receiver.qsize() < 3:  # the channel fills while nobody reads
            await asyncio.sleep(0.05)
        await asyncio.sleep(2.5)  # a consumer busy elsewhere for longer than the timeout
        assert receiver.qsize() == 3
        updates = []
        while len(updates) < 20:
            message = await asyncio.wait_for(receiver.recv(), 5)
            assert isinstance(message, StreamUpdated)
            updates.append(message)
        stats = client.stats()
    assert_exact_and_contiguous(updates, [1])
    assert all(s.reconnects == 0 and s.last_error is None for s in stats)  # held back, not given up
    assert "the channel is full (3 messages): messages will be delayed" in caplog.text
