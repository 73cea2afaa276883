"""``notify_price_sched`` on uvloop: exactly one notification per subscription per interval, for every account.

uvloop's clock counts whole milliseconds, so a timer may fire a little before its target; the schedule must
not take that for "not yet" and send the same tick again. Each subscription's notifications are counted in a
window of whole intervals from its first one: exactly one per interval, with the window's end half an
interval away from any tick, so only a tick moved by half an interval could change the count.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import defaultdict
from pathlib import Path

import pytest
import uvloop
from picows import WSCloseCode

from pricefeed.faces.jsonrpc import Handshake, JsonRpcSession, PythdApi
from pricefeed.model import FeedId
from pricefeed.pipeline import local_pipeline
from pricefeed.sources.publishers import LocalOracle, ProductSpec, load_products

EXAMPLE = Path(__file__).parents[2] / "examples" / "products.json"
TIMEOUT_S = 10.0


class TimedPeer:
    """Records when each subscription's notification arrives (loop time)."""

    def __init__(self, arrivals: dict[int, list[float]]) -> None:
        self.arrivals = arrivals
        self.replies: list[dict[str, object]] = []

    def send(self, payload: bytes) -> None:
        self.replies.append(json.loads(payload))

    def send_price(self, feed_id: FeedId, payload: bytes) -> None:
        message = json.loads(payload)
        assert message["method"] == "notify_price_sched"
        self.arrivals[message["params"]["subscription"]].append(asyncio.get_running_loop().time())

    def flush(self) -> None:
        pass

    def close(self, code: WSCloseCode, reason: str) -> None:
        raise AssertionError(reason)

    def charge(self, cost: float) -> bool:
        return True


async def count_per_interval(specs: list[ProductSpec], interval_s: float, intervals: int,
                             subscribers_per_account: int = 2) -> dict[str, list[int]]:
    """Per price account, each subscription's count of notifications in ``intervals`` of its interval."""
    pipeline = local_pipeline()
    hub = pipeline.hub
    oracle = LocalOracle(pipeline.ingest, products=specs)
    api = PythdApi.create(hub, oracle, publish_interval_s=interval_s)
    arrivals: dict[int, list[float]] = defaultdict(list)
    subscriptions: dict[str, list[int]] = defaultdict(list)
    sessions = []
    for account in oracle.products:
        for _ in range(subscribers_per_account):
            peer = TimedPeer(arrivals)
            session = JsonRpcSession(api, peer, Handshake)
            session.opened()
            session.receive_text(json.dumps({"jsonrpc": "2.0", "method": "subscribe_price_sched", "id": 1,
                                             "params": {"account": account}}))
            (reply,) = peer.replies
            subscriptions[account].append(reply["result"]["subscription"])  # type: ignore[index]
            sessions.append(session)

    async def every_window_is_over() -> None:
        while not all(len(arrivals[sub]) > intervals for subs in subscriptions.values() for sub in subs):
            await asyncio.sleep(interval_s / 4)

    try:
        await asyncio.wait_for(every_window_is_over(), TIMEOUT_S + intervals * 2.0)
    finally:
        for session in sessions:
            session.closed()
        api.notifier.close()
    counts: dict[str, list[int]] = {}
    for account, subs in subscriptions.items():
        step = api.notifier.interval_of(account)
        counts[account] = []
        for sub in subs:
            first = arrivals[sub][0]
            window_end = first + (intervals - 0.5) * step
            counts[account].append(sum(1 for t in arrivals[sub] if t < window_end))
    return counts


def on_uvloop(work: asyncio.Future[dict[str, list[int]]] | object) -> dict[str, list[int]]:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(work)  # type: ignore[arg-type]


@pytest.mark.parametrize(("interval_s", "intervals"), [(1.0, 3), (0.4, 5)])  # pythd's default, the agent's sample
def test_one_notification_per_subscription_per_interval_for_every_example_account(interval_s: float,
                                                                                  intervals: int) -> None:
    specs = load_products(EXAMPLE)
    counts = on_uvloop(count_per_interval(specs, interval_s, intervals))
    assert counts == {spec.account: [intervals, intervals] for spec in specs}


def test_a_product_publish_interval_sets_its_notification_interval() -> None:
    fast = ProductSpec(symbol="Crypto.FAST/USD", exponent=-5, publishers=())
    slow = ProductSpec(symbol="Crypto.SLOW/USD", exponent=-5, publishers=(), attributes={"publish_interval": "0.6"})
    counts = on_uvloop(count_per_interval([fast, slow], interval_s=0.2, intervals=4, subscribers_per_account=1))
    assert counts == {fast.account: [4], slow.account: [4]}


def test_the_intervals_between_notifications_are_the_product_interval() -> None:
    slow = ProductSpec(symbol="Crypto.SLOW/USD", exponent=-5, publishers=(), attributes={"publish_interval": "0.5"})

    async def gaps() -> list[float]:
        pipeline = local_pipeline()
        hub = pipeline.hub
        oracle = LocalOracle(pipeline.ingest, products=[slow])
        api = PythdApi.create(hub, oracle, publish_interval_s=0.1)
        arrivals: dict[int, list[float]] = defaultdict(list)
        session = JsonRpcSession(api, TimedPeer(arrivals), Handshake)
        session.receive_text(json.dumps({"jsonrpc": "2.0", "method": "subscribe_price_sched", "id": 1,
                                         "params": {"account": slow.account}}))

        async def three() -> None:
            while len(arrivals[1]) < 3:
                await asyncio.sleep(0.05)

        await asyncio.wait_for(three(), TIMEOUT_S)
        session.closed()
        times = arrivals[1]
        return [b - a for a, b in itertools.pairwise(times)]

    assert all(abs(gap - 0.5) < 0.2 for gap in on_uvloop(gaps()))
