"""Hermes' ``/ws`` (faces/hermes_ws.py) under arbitrary frames: each message gets exactly one ``response``,
``{"type": "response", "status": "success"}`` when Hermes would take it and ``{"type": "response", "status":
"error", "error": ...}`` otherwise; the subscriptions are exactly those of the messages taken."""

from __future__ import annotations

import orjson
from hypothesis import example, given
from hypothesis import strategies as st

from pricefeed.faces.hermes_ws import HermesWsSession
from pricefeed.hub import Hub
from pricefeed.model import Feed, parse_feed_id

from ..test_simple_ws_session import BTC, ETH
from .peer import RecordingPeer
from .strategies import JSON, dumps, frames, ids_as_written, spelled

KNOWN = [BTC, ETH]
FLAGS = ("verbose", "binary", "allow_out_of_order", "ignore_invalid_price_ids")
MESSAGES = st.fixed_dictionaries(
    {"type": st.sampled_from(["subscribe", "unsubscribe"]) | JSON},
    optional={"ids": st.lists(ids_as_written(KNOWN), max_size=3) | JSON,
              **{flag: st.booleans() | JSON for flag in FLAGS}})


def setup() -> tuple[HermesWsSession, RecordingPeer, Hub]:
    hub = Hub()
    hub.add_feeds([Feed(BTC, "Crypto.BTC/USD", -8, "test"), Feed(ETH, "Crypto.ETH/USD", -8, "test")])
    peer = RecordingPeer()
    return HermesWsSession(hub, peer), peer, hub  # type: ignore[arg-type]


def taken(frame: bytes, subscribed: set[str]) -> bool:
    """Whether Hermes takes the message (and then what it does to ``subscribed``)."""
    try:
        message = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(message, dict) or message.get("type") not in ("subscribe", "unsubscribe"):
        return False
    ids = message.get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        return False
    try:
        feed_ids = {parse_feed_id(i) for i in ids}
    except ValueError:
        return False
    if message["type"] == "unsubscribe":
        subscribed -= feed_ids
        return True
    if not all(isinstance(message.get(flag, False), bool) for flag in FLAGS):
        return False
    known = feed_ids & set(KNOWN)
    if known != feed_ids and not message.get("ignore_invalid_price_ids", False):
        return False
    subscribed |= known
    return True


@given(st.lists(frames(MESSAGES), min_size=1, max_size=6))
@example([dumps({"type": "subscribe", "ids": ["0x" + "aa" * 32], "ignore_invalid_price_ids": True})])
@example([b'{"type": "subscribe", "ids": ["' + BTC.encode() + b'"], "verbose": 1}'])
def test_every_message_gets_one_response_of_hermes_form(messages: list[bytes]) -> None:
    session, peer, hub = setup()
    subscribed: set[str] = set()
    for frame in messages:
        session.receive_text(frame)
        (reply,) = peer.take()
        if taken(frame, subscribed):
            assert reply == {"type": "response", "status": "success"}, frame
        else:
            assert list(reply) == ["type", "status", "error"], frame
            assert reply["type"] == "response" and reply["status"] == "error" and reply["error"]
        assert set(session.subscriptions) == subscribed
    assert hub.subscription_count() == len(subscribed)
    session.closed()
    assert hub.subscription_count() == 0


SPELLED_IDS = st.lists(st.sampled_from(KNOWN), min_size=1, max_size=2, unique=True).flatmap(
    lambda feed_ids: st.tuples(st.just(feed_ids), st.tuples(*map(spelled, feed_ids))))


@given(SPELLED_IDS, st.booleans())
def test_a_subscribe_in_any_spelling_then_an_unsubscribe_succeed(ids: tuple[list[str], tuple[str, ...]],
                                                                 verbose: bool) -> None:
    feed_ids, written = ids
    session, peer, hub = setup()
    session.receive_text(dumps({"type": "subscribe", "ids": written, "verbose": verbose}))
    assert list(session.subscriptions) == feed_ids
    session.receive_text(dumps({"type": "unsubscribe", "ids": written}))
    assert peer.take() == [{"type": "response", "status": "success"}] * 2
    assert hub.subscription_count() == 0


@given(st.binary(max_size=48))
def test_binary_frames_are_read_as_json_too(data: bytes) -> None:
    session, peer, _ = setup()
    session.receive_binary(data)
    (reply,) = peer.take()
    assert reply["type"] == "response" and reply["status"] == ("success" if taken(data, set()) else "error")
