"""Lazer's ``/v1/stream`` (faces/lazer/session.py, requests.py) under arbitrary frames: a request whose
subscription id cannot be read gets ``{"type": "error", "error": ...}``, any other refusal
``{"type": "subscriptionError", "subscriptionId": ..., "error": ...}``; a good subscribe exactly ``subscribed``
(or ``subscribedWithInvalidFeedIdsIgnored`` naming what was ignored), a good unsubscribe ``unsubscribed``."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from pricefeed.client.requests import CHANNELS, PROPERTIES
from pricefeed.faces.lazer.requests import CHANNEL_IDS, FORMATS, RequestError, Subscribe, Unsubscribe, parse_request

from ..test_lazer_face import setup
from .strategies import JSON, dumps, frames

SYMBOLS = ["Crypto.BTC/USD", "Crypto.ETH/USD", "Crypto.OTHER/USD", "Crypto.NOPE/USD"]
SUBSCRIPTION_IDS = st.integers(0, 3) | st.integers(-1, 2**64) | JSON
FIELDS = {
    "priceFeedIds": st.lists(st.integers(0, 4) | JSON, max_size=3) | JSON,
    "symbols": st.lists(st.sampled_from(SYMBOLS) | JSON, max_size=3) | JSON,
    "properties": st.lists(st.sampled_from(PROPERTIES[:4]) | JSON, max_size=3) | JSON,
    "formats": st.just([]) | st.lists(st.sampled_from(FORMATS) | JSON, max_size=2) | JSON,
    "channel": st.sampled_from([*CHANNELS, 1, 4, "2", 5, "fixed_rate@1ms"]) | JSON,
    "deliveryFormat": st.sampled_from(["json", "binary"]) | JSON,
    "jsonBinaryEncoding": st.sampled_from(["base64", "hex"]) | JSON,
    "parsed": st.booleans() | JSON, "ignoreInvalidFeeds": st.booleans() | JSON,
    "ignoreInvalidFeedIds": st.booleans() | JSON,
}
REQUESTS = st.fixed_dictionaries({"type": st.sampled_from(["subscribe", "unsubscribe"]) | JSON},
                                 optional={"subscriptionId": SUBSCRIPTION_IDS, **FIELDS})
LOOP = asyncio.new_event_loop()
"""Fixed-rate channels tick on the running loop."""


def answer(request: Subscribe | Unsubscribe, streams: dict[int, int], face: Any) -> list[str]:
    """What the session answers a request that parsed; ``streams`` is subscription id -> feed count."""
    sid = request.subscription_id
    if isinstance(request, Unsubscribe):
        return ["unsubscribed"] if streams.pop(sid, None) is not None else ["subscriptionError"]
    if sid in streams:
        return ["subscriptionError"]
    ids = face.ids
    feeds = [ids.feed_of(i) for i in request.price_feed_ids or ()]
    feeds += [f if f is not None and ids.lazer_id(f) is not None else None
              for f in map(ids.feed_of_symbol, request.symbols or ())]
    known = {f for f in feeds if f is not None}
    invalid = None in feeds
    if not known or (invalid and not request.ignore_invalid_feeds):
        return ["subscriptionError"]
    if sum(streams.values()) + len(known) > face.max_feeds:
        return ["subscriptionError"]
    streams[sid] = len(known)
    return ["subscribedWithInvalidFeedIdsIgnored" if invalid else "subscribed"]


@given(st.lists(frames(REQUESTS), min_size=1, max_size=6))
@example([dumps({"type": "subscribe", "subscriptionId": 1, "priceFeedIds": [1, 7], "properties": ["price"],
                 "formats": [], "channel": 3, "ignoreInvalidFeedIds": True})])
def test_every_request_gets_lazers_answer(messages: list[bytes]) -> None:
    LOOP.run_until_complete(_run(messages))


async def _run(messages: list[bytes]) -> None:
    pipeline, face, session, peer = setup()
    streams: dict[int, int] = {}
    for frame in messages:
        session.receive_text(frame)
        replies = peer.take()
        try:
            request = parse_request(frame)
        except RequestError as exc:
            if exc.subscription_id is None:
                assert replies == [{"type": "error", "error": exc.message}]
            else:
                assert replies == [{"type": "subscriptionError", "subscriptionId": exc.subscription_id,
                                    "error": exc.message}]
            continue
        assert [r["type"] for r in replies] == answer(request, streams, face), frame
        assert all(r["subscriptionId"] == request.subscription_id and (r["type"] != "subscriptionError"
                                                                       or r["error"]) for r in replies)
        assert {sid: len(s.feeds) for sid, s in session.streams.items()} == streams
    session.closed()
    assert pipeline.hub.subscription_count() == 0


@given(st.one_of(st.text(max_size=80), JSON.map(lambda v: dumps(v).decode()), REQUESTS.map(dumps)))
def test_requests_parse_or_get_lazers_error(text: str | bytes) -> None:
    try:
        parsed = parse_request(text)
    except RequestError as exc:
        assert exc.message and (exc.subscription_id is None or 0 <= exc.subscription_id < 2**64)
    else:
        assert isinstance(parsed, Subscribe | Unsubscribe)


VALID = st.fixed_dictionaries({
    "type": st.just("subscribe"), "subscriptionId": st.integers(0, 2**64 - 1),
    "properties": st.lists(st.sampled_from(PROPERTIES), min_size=1, unique=True),
    "formats": st.just([]), "channel": st.sampled_from([*CHANNELS, *CHANNEL_IDS, *map(str, CHANNEL_IDS)]),
}, optional={"parsed": st.just(True), "deliveryFormat": st.just("json"), "ignoreInvalidFeeds": st.booleans(),
             "jsonBinaryEncoding": st.sampled_from(["base64", "hex"])})
FEEDS = st.one_of(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=5, unique=True).map(
    lambda ids: {"priceFeedIds": ids}), st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=4,
                                                 unique=True).map(lambda symbols: {"symbols": symbols}))


@given(VALID, FEEDS)
def test_a_valid_subscribe_parses_to_exactly_its_fields(request: dict[str, Any], feeds: dict[str, Any]) -> None:
    parsed = parse_request(dumps({**request, **feeds}))
    channel = request["channel"]
    assert parsed == Subscribe(
        request["subscriptionId"], None if "priceFeedIds" not in feeds else tuple(feeds["priceFeedIds"]),
        None if "symbols" not in feeds else tuple(feeds["symbols"]), tuple(request["properties"]),
        channel if channel in CHANNELS else CHANNEL_IDS[int(channel)], request.get("ignoreInvalidFeeds", False))
