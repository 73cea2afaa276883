"""seed-000's since_seq over a real ingest, hub and recent log: exactly the missed updates, in order, then live."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pricefeed.faces.simple_ws import Limits, SimpleWsCodec, SimpleWsSession
from pricefeed.model import Feed, FeedId, PriceUpdate
from pricefeed.pipeline import Pipeline, local_pipeline
from pricefeed.resume import RecentUpdates
from pricefeed.transport.outbox import Outbox

BTC = "e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43"
ETH = "ff61491a931112ddf1bd8147cd1b641375f79f5825126d665480874634fd0ace"


class QueueingPeer:
    """A connection that cannot write yet: every frame waits in a real (conflating) outbox."""

    codec = SimpleWsCodec()

    def __init__(self) -> None:
        self.outbox = Outbox()

    def send(self, payload: bytes) -> None:
        self.outbox.put_control(payload)

    def send_price(self, feed_id: FeedId, payload: bytes) -> None:
        self.outbox.put(feed_id, payload)

    def discard_price(self, feed_id: FeedId) -> None:
        self.outbox.discard(feed_id)

    def deliver(self, frames: dict[FeedId, bytes]) -> None:
        for topic, frame in frames.items():
            self.outbox.put(topic, frame)

    def claim(self, feeds: Iterable[str]) -> str | None:
        return None  # no API key: every feed may be subscribed

    def unclaim(self, feeds: Iterable[str]) -> None:
        pass

    def written(self) -> list[dict[str, Any]]:
        return [json.loads(frame) for frame in self.outbox.take_frames()]


class Market:
    def __init__(self, keep_s: float = 600.0) -> None:
        self.pipeline: Pipeline = local_pipeline()
        self.pipeline.ingest.add_feeds([Feed(BTC, "Crypto.BTC/USD", -8, "test"), Feed(ETH, "Crypto.ETH/USD", -8, "t")])
        self.recent = RecentUpdates(keep_s=keep_s)
        self.pipeline.hub.add_listener(self.recent.add)
        self.second = 1_700_000_000

    def tick(self, *feeds: FeedId) -> None:
        """One ingest pass moving each of ``feeds`` once."""
        self.second += 1
        for feed in feeds:
            self.pipeline.ingest.publish(PriceUpdate(feed, self.second * 100, 10, -8, self.second * 1_000_000,
                                                     self.second * 100, 10, source="test"))
        self.pipeline.ingest.run_pass()

    def session(self) -> tuple[SimpleWsSession, QueueingPeer]:
        peer = QueueingPeer()
        return SimpleWsSession(self.pipeline.hub, peer, "c", Limits(), self.recent), peer


def send(session: SimpleWsSession, message: dict[str, Any]) -> None:
    session.receive_text(json.dumps(message))


def prices(messages: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(m["data"]["id"][:3], m["data"]["seq"]) for m in messages if m["type"] == "price_update"]


async def test_reconnect_with_since_seq_gets_exactly_what_it_missed_then_live() -> None:
    market = Market()
    first, peer = market.session()
    send(first, {"type": "subscribe", "feed_id": BTC})
    seen = []
    for _ in range(2):
        market.tick(BTC, ETH)
        seen += prices(peer.written())
    assert seen == [("e62", 1), ("e62", 2)]
    first.closed()
    for _ in range(4):
        market.tick(BTC, ETH)  # missed while away: 3..6
    again, peer = market.session()
    send(again, {"type": "subscribe", "feed_id": BTC, "since_seq": 2})
    market.tick(BTC, ETH)
    messages = peer.written()
    assert messages[0] == {"type": "subscription_confirmed", "feed_id": BTC, "recovered": True}
    assert prices(messages) == [("e62", s) for s in (3, 4, 5, 6, 7)]


async def test_a_live_frame_still_queued_is_not_sent_twice_and_stays_behind_the_replay() -> None:
    market = Market()
    session, peer = market.session()
    send(session, {"type": "subscribe_multiple", "subscriptions": [{"feed_id": BTC}, {"feed_id": ETH}]})
    market.tick(BTC, ETH)
    assert prices(peer.written()) == [("e62", 1), ("ff6", 1)]
    market.tick(BTC, ETH)
    market.tick(BTC, ETH)  # BTC 3 waits in the outbox, conflated over 2: the client sees a jump unless it resumes
    send(session, {"type": "subscribe_multiple", "subscriptions": [{"feed_id": BTC, "since_seq": 1}]})
    market.tick(BTC, ETH)
    messages = peer.written()
    assert prices(messages) == [("ff6", 4), ("e62", 2), ("e62", 3), ("e62", 4)]  # ETH conflated in its place
    assert {"type": "subscription_confirmed", "feed_id": BTC, "recovered": True} in messages


async def test_at_the_latest_seq_nothing_is_replayed_and_an_old_seq_is_not_recovered() -> None:
    market = Market(keep_s=2)
    for _ in range(6):
        market.tick(BTC)
    session, peer = market.session()
    send(session, {"type": "subscribe", "feed_id": BTC, "since_seq": 6})
    assert peer.written() == [{"type": "subscription_confirmed", "feed_id": BTC, "recovered": True}]
    send(session, {"type": "subscribe", "feed_id": BTC, "since_seq": 1})  # 2 is older than the 2 s kept
    messages = peer.written()
    assert messages[0] == {"type": "subscription_confirmed", "feed_id": BTC, "recovered": False}
    assert prices(messages) == [("e62", 6)]
    send(session, {"type": "subscribe", "feed_id": ETH, "since_seq": 0})  # no price at all yet: nothing missed
    assert peer.written() == [{"type": "subscription_confirmed", "feed_id": ETH, "recovered": True}]
    send(session, {"type": "subscribe", "feed_id": ETH, "since_seq": 3})  # a seq this process never had
    assert peer.written() == [{"type": "subscription_confirmed", "feed_id": ETH, "recovered": False}]


async def test_a_bad_since_seq_is_an_error_and_subscribes_nothing() -> None:
    market = Market()
    session, peer = market.session()
    for bad in (-1, "3", 1.5, True, [2]):
        send(session, {"type": "subscribe", "feed_id": BTC, "since_seq": bad})
        [message] = peer.written()
        assert message["type"] == "error"
        assert message["message"].startswith("since_seq must be a non-negative integer"), message
    assert session.subscriptions == set()
    send(session, {"type": "subscribe_multiple", "subscriptions": [{"feed_id": BTC, "since_seq": "x"},
                                                                    {"feed_id": ETH, "since_seq": 0}]})
    assert [m["type"] for m in peer.written()] == ["error", "subscription_confirmed"]
    assert session.subscriptions == {ETH}
