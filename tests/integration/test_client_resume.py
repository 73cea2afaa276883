"""The resilient client over one pricefeed whose link is cut for a second (the service goes on publishing) and which
is then restarted under it (SIGTERM, same ports and database): with resume on reconnect (seed 000's since_seq, the
event stream's Last-Event-ID, Lazer's sinceSeq) its consumer sees every seq of each feed exactly once, in order: no
gap, no duplicate, whatever the server published meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pricefeed.client import (
    BackoffPolicy,
    ClientBuilder,
    FeedSubscription,
    LazerSubscription,
    PriceUpdate,
    StreamUpdated,
)

from ..service import ServiceProcess
from ..tcp_cut import CuttableLink
from ..wsclient import BTC, ETH


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[ServiceProcess]:
    svc = ServiceProcess(tmp_path / "db", "--source", "sim", "--seed", "11", "--sim-interval", "0.1")
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


LAZER_OF = {1: BTC, 2: ETH}


def endpoint(service: ServiceProcess, protocol: str) -> tuple[str, int]:
    if protocol == "seed000":
        return service.ws_url, service.ws_port
    if protocol == "lazer":
        return service.api_url.replace("http://", "ws://") + "/v1/stream", service.api_port
    return service.api_url, service.api_port


def subscription(protocol: str) -> FeedSubscription | LazerSubscription:
    if protocol == "lazer":
        return LazerSubscription(1, price_feed_ids=[1, 2], properties=["price"], channel="real_time", resume=True)
    return FeedSubscription(1, [BTC, ETH])


def received(message: object) -> list[tuple[str, int]]:
    """The (feed, seq) pairs a message brings."""
    if isinstance(message, PriceUpdate):
        assert message.seq is not None, message
        return [(message.feed_id, message.seq)]
    if isinstance(message, StreamUpdated):
        assert all(feed.seq is not None for feed in message.feeds), message
        return [(LAZER_OF[feed.price_feed_id], feed.seq) for feed in message.feeds if feed.seq is not None]
    return []


@pytest.mark.parametrize("protocol", ["seed000", "hermes_sse", "lazer"])
async def test_a_restart_under_the_client_costs_no_seq_and_repeats_none(service: ServiceProcess,
                                                                        protocol: str) -> None:
    url, port = endpoint(service, protocol)
    link = await CuttableLink(port).start()
    client = (ClientBuilder().with_protocol(protocol).with_endpoints([link.url(url, port)])
              .with_num_connections(1).with_backoff(BackoffPolicy(initial_s=0.1, max_s=0.3)).build())
    seqs: dict[str, list[int]] = {BTC: [], ETH: []}
    counted = asyncio.Condition()

    async def consume() -> None:
        async for message in client:
            for feed_id, seq in received(message):
                seqs[feed_id].append(seq)
            async with counted:
                counted.notify_all()

    async def until(count: int) -> None:
        async with counted:
            await asyncio.wait_for(counted.wait_for(lambda: min(map(len, seqs.values())) >= count), 20)

    async with client:
        await client.subscribe(subscription(protocol))
        consumer = asyncio.create_task(consume())
        await until(5)
        await link.outage(1.0)  # ten ticks of the market go by
        await until(min(map(len, seqs.values())) + 5)
        await service.restart()
        await until(min(map(len, seqs.values())) + 10)
        stats = client.stats()
    await consumer
    await link.close()
    assert stats[0].reconnects >= 2
    for feed_id, got in seqs.items():
        assert got == list(range(got[0], got[0] + len(got))), f"{feed_id[:8]}: gap, repeat or reorder: {got}"
        assert len(got) >= 20
