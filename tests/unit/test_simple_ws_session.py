"""The seed-000 protocol without a socket: a session over a recording peer."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pricefeed.faces.simple_ws import Limits, SimpleWsCodec, SimpleWsSession
from pricefeed.hub import Hub
from pricefeed.model import Feed, FeedId, PriceUpdate

BTC = "e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43"
ETH = "ff61491a931112ddf1bd8147cd1b641375f79f5825126d665480874634fd0ace"


class Peer:
    codec = SimpleWsCodec()

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, payload: bytes) -> None:
        self.sent.append(json.loads(payload))

    def send_price(self, feed_id: FeedId, payload: bytes) -> None:
        self.sent.append(json.loads(payload))

    def discard_price(self, feed_id: FeedId) -> None:
        pass

    def claim(self, feeds: Iterable[str]) -> str | None:
        return None

    def unclaim(self, feeds: Iterable[str]) -> None:
        pass

    def deliver(self, frames: dict[FeedId, bytes]) -> None:
        self.sent.extend(json.loads(frame) for frame in frames.values())


def session(max_subscriptions: int = 10) -> tuple[SimpleWsSession, Peer, Hub]:
    hub = Hub()
    hub.add_feeds([Feed(BTC, "Crypto.BTC/USD", -8, "test"), Feed(ETH, "Crypto.ETH/USD", -8, "test")])
    peer = Peer()
    return SimpleWsSession(hub, peer, "client-1", Limits(max_subscriptions)), peer, hub


def test_welcome() -> None:
    s, peer, _ = session()
    s.opened()
    assert peer.sent == [{"type": "connection_established", "client_id": "client-1",
                          "message": "Connected to Pyth Price Feed Websocket Server"}]


def test_subscribe_sends_the_latest_price_right_after_the_confirmation() -> None:
    s, peer, hub = session()
    hub.latest[BTC] = PriceUpdate(BTC, 6163088000000, 3308129843, -8, 1714748301_000_000, 6130103000000,
                                  3587126400)
    s.receive_text(json.dumps({"type": "subscribe", "feed_id": "0x" + BTC}))
    assert peer.sent == [
        {"type": "subscription_confirmed", "feed_id": BTC},
        {"type": "price_update", "data": {
            "id": BTC, "price": 61630.88, "conf": 33.08129843, "expo": -8, "status": "stale",
            "publish_time": "2024-05-03T14:58:21.000Z", "ema_price": 61301.03, "ema_conf": 35.871264, "seq": 0}}]
    s.receive_text(json.dumps({"type": "subscribe", "feed_id": BTC}))
    assert peer.sent[-1] == {"type": "subscription_confirmed", "feed_id": BTC}, "no second snapshot"


def test_a_feed_without_a_price_yet_is_confirmed_without_a_snapshot() -> None:
    s, peer, hub = session()
    s.receive_text(json.dumps({"type": "subscribe", "feed_id": ETH}))
    assert peer.sent == [{"type": "subscription_confirmed", "feed_id": ETH}]
    assert hub.subscription_count() == 1


def test_close_removes_every_subscription() -> None:
    s, _, hub = session()
    s.receive_text(json.dumps({"type": "subscribe_multiple", "subscriptions": [{"feed_id": BTC}, {"feed_id": ETH}]}))
    assert hub.subscription_count() == 2
    s.closed()
    assert hub.subscription_count() == 0


def test_available_feeds_without_prices() -> None:
    s, peer, _ = session()
    s.receive_text(b'{"type": "get_available_feeds"}')
    assert peer.sent[0]["feeds"][0] == {"id": BTC, "symbol": "BTC/USD", "price": None, "conf": None, "expo": -8,
                                        "status": "unknown"}


def test_invalid_utf8_is_an_error_not_a_crash() -> None:
    s, peer, _ = session()
    s.receive_text(b'{"type": "\xff"}')
    assert peer.sent[0]["type"] == "error" and "invalid JSON" in peer.sent[0]["message"]


def test_the_subscription_limit_counts_distinct_feeds() -> None:
    s, peer, hub = session(max_subscriptions=1)
    s.receive_text(json.dumps({"type": "subscribe_multiple", "subscriptions": [BTC, BTC, ETH]}))
    assert [m["type"] for m in peer.sent] == ["subscription_confirmed", "subscription_confirmed", "error"]
    assert hub.subscription_count() == 1
