"""Seed 000 (faces/simple_ws.py) under arbitrary frames: every message gets exactly the answer the protocol
gives it, computed here by a model of the session; errors are ``{"type": "error", "message": ...}``."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import example, given
from hypothesis import strategies as st

from pricefeed.model import PriceUpdate, parse_feed_id

from ..test_simple_ws_session import BTC, ETH, session
from .strategies import JSON, dumps, frames, ids_as_written, spelled

LIMIT = 2
KNOWN = [BTC, ETH]
FEED = ids_as_written(KNOWN) | JSON
MESSAGES = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(["subscribe", "unsubscribe"])}, optional={"feed_id": FEED}),
    st.fixed_dictionaries({"type": st.just("subscribe_multiple")}, optional={
        "subscriptions": st.lists(FEED | st.fixed_dictionaries({}, optional={"feed_id": FEED}), max_size=4) | JSON}),
    st.fixed_dictionaries({"type": st.sampled_from(["get_available_feeds", "x", "Subscribe"]) | JSON}),
)


class Model:
    """What the session must answer, message by message (reply types, in order)."""

    def __init__(self) -> None:
        self.subscribed: set[str] = set()

    def answer(self, frame: bytes) -> list[str]:
        try:
            message = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return ["error"]
        if not isinstance(message, dict):
            return ["error"]
        kind = message.get("type")
        if kind in ("subscribe", "unsubscribe"):
            return self.one(message.get("feed_id"), kind)
        if kind == "subscribe_multiple":
            entries = message.get("subscriptions")
            if not isinstance(entries, list) or not entries:
                return ["error"]
            return [t for e in entries for t in self.one(e.get("feed_id") if isinstance(e, dict) else e, "subscribe")]
        return ["available_feeds"] if kind == "get_available_feeds" else ["error"]

    def one(self, raw: Any, command: str) -> list[str]:
        try:
            feed_id = parse_feed_id(raw)
        except ValueError:
            return ["error"]
        if feed_id not in KNOWN:
            return ["error"]
        if command == "unsubscribe":
            self.subscribed.discard(feed_id)
            return ["unsubscription_confirmed"]
        if feed_id in self.subscribed:
            return ["subscription_confirmed"]  # no second snapshot
        if len(self.subscribed) >= LIMIT:
            return ["error"]
        self.subscribed.add(feed_id)
        return ["subscription_confirmed", "price_update"] if feed_id == BTC else ["subscription_confirmed"]


@given(st.lists(frames(MESSAGES), min_size=1, max_size=8))
@example([b'{"type": "\xff"}'])  # not UTF-8 inside a string
@example([b'{"type": "subscribe_multiple", "subscriptions": [null]}'])
@example([dumps({"type": "subscribe", "feed_id": "0X" + BTC.upper()})])
def test_every_frame_gets_exactly_the_protocols_answer(messages: list[bytes]) -> None:
    s, peer, hub = session(max_subscriptions=LIMIT)
    hub.latest[BTC] = PriceUpdate(BTC, 6163088000000, 3308129843, -8, 1714748301_000_000, 6130103000000, 3587126400)
    model = Model()
    s.opened()
    assert [m["type"] for m in peer.sent] == ["connection_established"]
    for frame in messages:
        before = len(peer.sent)
        s.receive_text(frame)
        replies = peer.sent[before:]
        assert [r["type"] for r in replies] == model.answer(frame), frame
        for reply in replies:
            if reply["type"] == "error":
                assert list(reply) == ["type", "message"] and reply["message"]
    assert s.subscriptions == model.subscribed
    assert hub.subscription_count() == len(model.subscribed)
    s.closed()
    assert hub.subscription_count() == 0


@given(st.sampled_from(KNOWN).flatmap(lambda f: st.tuples(st.just(f), spelled(f))))
def test_a_subscribe_in_any_spelling_is_confirmed_with_the_normalised_id(spelling: tuple[str, str]) -> None:
    feed_id, written = spelling
    s, peer, _ = session()
    s.receive_text(dumps({"type": "subscribe", "feed_id": written}))
    s.receive_text(dumps({"type": "unsubscribe", "feed_id": written}))
    assert peer.sent == [{"type": "subscription_confirmed", "feed_id": feed_id},
                         {"type": "unsubscription_confirmed", "feed_id": feed_id}]


@given(st.binary(max_size=32))
def test_binary_frames_get_an_error(data: bytes) -> None:
    s, peer, _ = session()
    s.receive_binary(data)
    assert peer.sent == [{"type": "error",
                          "message": "binary frames are not supported: send JSON messages as text frames"}]
