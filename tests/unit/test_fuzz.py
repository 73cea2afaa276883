"""Property-based fuzzing without sockets: no exception escapes a parser or session, every bad input gets the
protocol's own error, good input round-trips. Few examples by default; scripts/test-slow runs the long profile."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from pricefeed.faces.hermes_json import QueryError, parse_id, parse_ids
from pricefeed.faces.lazer.requests import RequestError, Subscribe, Unsubscribe, parse_request
from pricefeed.policy import AccessPolicy, Admission, KeyRing, Refusal, parse_keys, presented_key

from .test_simple_ws_session import BTC, session

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                 max_size=4), max_leaves=12)
SEED000_TYPES = st.sampled_from(["subscribe", "unsubscribe", "subscribe_multiple", "get_available_feeds", "x"])
SEED000_MESSAGES = st.one_of(
    st.binary(max_size=64).map(lambda b: b.decode("latin-1")),
    JSON.map(json.dumps),
    st.fixed_dictionaries({"type": SEED000_TYPES}, optional={"feed_id": JSON | st.just(BTC),
                                                             "subscriptions": JSON}).map(json.dumps))


@given(st.lists(SEED000_MESSAGES, min_size=1, max_size=6))
def test_seed000_session_answers_every_message_and_never_raises(messages: list[str]) -> None:
    s, peer, hub = session(max_subscriptions=3)
    s.opened()
    for text in messages:
        before = len(peer.sent)
        s.receive_text(text.encode())
        replies = peer.sent[before:]
        assert replies, f"no answer to {text!r}"
        assert all(r["type"] in ("error", "subscription_confirmed", "unsubscription_confirmed", "available_feeds",
                                 "price_update") for r in replies)
    assert hub.subscription_count() <= 3
    s.closed()
    assert hub.subscription_count() == 0


@given(st.binary(max_size=32))
def test_seed000_binary_frames_get_an_error(data: bytes) -> None:
    s, peer, _ = session()
    s.receive_binary(data)
    assert [m["type"] for m in peer.sent] == ["error"]


@given(st.one_of(st.text(max_size=80), JSON.map(json.dumps)))
def test_lazer_requests_parse_or_get_lazers_error(text: str) -> None:
    try:
        parsed = parse_request(text)
    except RequestError as exc:
        assert str(exc)
    else:
        assert isinstance(parsed, Subscribe | Unsubscribe)


@given(st.integers(0, 2**64 - 1), st.lists(st.integers(1, 2**31), min_size=1, max_size=5, unique=True))
def test_lazer_subscribe_round_trips(subscription_id: int, ids: list[int]) -> None:
    request = {"type": "subscribe", "subscriptionId": subscription_id, "priceFeedIds": ids,
               "properties": ["price"], "formats": [], "channel": "real_time"}
    parsed = parse_request(json.dumps(request))
    assert isinstance(parsed, Subscribe) and parsed.subscription_id == subscription_id


@given(st.text(max_size=70))
def test_hermes_ids_parse_or_get_hermes_error(text: str) -> None:
    try:
        feed_id = parse_id(text)
    except QueryError as exc:
        assert str(exc)
    else:
        assert len(feed_id) == 64 and int(feed_id, 16) >= 0


@given(st.binary(min_size=32, max_size=32), st.booleans())
def test_hermes_ids_round_trip(raw: bytes, prefixed: bool) -> None:
    text = ("0x" if prefixed else "") + raw.hex()
    assert parse_ids([("ids[]", text)]) == [raw.hex()]


@given(st.dictionaries(st.sampled_from(["authorization", "sec-websocket-protocol", "origin"]), st.text(max_size=40)),
       st.dictionaries(st.sampled_from(["token", "ACCESS_TOKEN", "other"]), st.text(max_size=20)))
def test_the_policy_admits_only_a_known_key(headers: dict[str, str], query: dict[str, str]) -> None:
    policy = AccessPolicy(KeyRing(["the-key"]))
    decision = policy.admit("seed000", headers, query, "1.2.3.4")
    presented = presented_key(headers, query)
    if presented == "the-key":
        assert isinstance(decision, Admission)
    else:
        assert isinstance(decision, Refusal) and decision.status == 401


KEY_ENTRIES = st.fixed_dictionaries({"key": st.text(max_size=5) | JSON}, optional={
    "name": JSON, "faces": JSON | st.lists(st.text(max_size=5)), "feeds": JSON,
    "limits": JSON | st.dictionaries(st.sampled_from(["connections", "bytes_per_second", "x"]), JSON)})


@given(JSON | st.lists(KEY_ENTRIES, max_size=3).map(lambda keys: {"keys": keys}))
def test_a_keys_document_parses_or_says_what_is_wrong(document: Any) -> None:
    try:
        parse_keys(document, "keys.json")
    except ValueError as exc:
        assert str(exc)
