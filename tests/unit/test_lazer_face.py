"""The Lazer face without a socket: requests and their errors verbatim, the channels, the ids, the token forms."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from pricefeed.contracts import Handshake
from pricefeed.faces.lazer import LazerFace, lazer_token
from pricefeed.faces.lazer.clock import last_tick_us
from pricefeed.faces.lazer.requests import NO_BINARY, NO_SIGNED_FORMATS, PARSED_ONLY
from pricefeed.faces.lazer.session import LazerSession
from pricefeed.lazer_ids import ASSIGNED_BASE
from pricefeed.model import Feed, MarketDetails, PriceUpdate
from pricefeed.pipeline import Pipeline, local_pipeline

BTC = "e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43"
ETH = "ff61491a931112ddf1bd8147cd1b641375f79f5825126d665480874634fd0ace"
OTHER = "aa" * 32


class Peer:
    """Records what a session sends."""

    codec: Any = None

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.raw: list[bytes] = []

    def send(self, payload: bytes) -> None:
        self.raw.append(payload)
        self.sent.append(orjson.loads(payload))

    def flush(self) -> None:
        pass

    def claim(self, feeds: object) -> str | None:
        return None

    def unclaim(self, feeds: object) -> None:
        pass

    def take(self) -> list[dict[str, Any]]:
        sent, self.sent = self.sent, []
        return sent


def setup() -> tuple[Pipeline, LazerFace, LazerSession, Peer]:
    pipeline = local_pipeline()
    pipeline.ingest.add_feeds([Feed(BTC, "Crypto.BTC/USD", -8, "test"), Feed(ETH, "Crypto.ETH/USD", -8, "test"),
                               Feed(OTHER, "Crypto.OTHER/USD", -6, "test")])
    face = LazerFace(pipeline.hub, max_feeds=3)
    peer = Peer()
    return pipeline, face, face.session(peer), peer  # type: ignore[arg-type]


def update(feed_id: str, price: int, time_us: int, details: MarketDetails | None = None) -> PriceUpdate:
    return PriceUpdate(feed_id, price, 12, -8, time_us, price - 5, 10, details=details)


def request(session: LazerSession, **fields: Any) -> None:
    session.receive_text(orjson.dumps(fields))


def subscribe(session: LazerSession, **fields: Any) -> None:
    body = {"type": "subscribe", "subscriptionId": 1, "priceFeedIds": [1], "properties": ["price"], "formats": [],
            "channel": "real_time"}
    body.update(fields)
    request(session, **{k: v for k, v in body.items() if v is not ...})


@pytest.mark.parametrize(("fields", "message"), [
    ({"priceFeedIds": ...}, "either price feed ids or symbols must be specified"),
    ({"priceFeedIds": None, "symbols": None}, "either price feed ids or symbols must be specified"),
    ({"symbols": ["Crypto.BTC/USD"]}, "either price feed ids or symbols must be specified, not both"),
    ({"priceFeedIds": []}, "no price feed ids specified"),
    ({"priceFeedIds": [1, 1]}, "duplicate price feed ids specified"),
    ({"priceFeedIds": None, "symbols": []}, "no symbols specified"),
    ({"priceFeedIds": None, "symbols": ["A", "A"]}, "duplicate symbols specified"),
    ({"properties": []}, "no properties specified"),
    ({"properties": ["price", "price"]}, "duplicate properties specified"),
    ({"formats": ["evm", "evm"]}, "duplicate formats or chains specified"),
    ({"formats": ..., "chains": ["solana", "solana"]}, "duplicate formats or chains specified"),
    ({"properties": ...}, "missing field `properties`"),
    ({"formats": ...}, "missing field `formats`"),
    ({"channel": ...}, "missing field `channel`"),
    ({"properties": ["price", "colour"]}, "unknown variant 'colour', expected one of `price`, `bestBidPrice`, "
     "`bestAskPrice`, `publisherCount`, `exponent`, `confidence`, `fundingRate`, `fundingTimestamp`, "
     "`fundingRateInterval`, `marketSession`, `emaPrice`, `emaConfidence`, `feedUpdateTimestamp`"),
    ({"priceFeedIds": ["1"]}, "invalid type: a string '1', expected u32"),
    ({"priceFeedIds": [-1]}, "invalid value: integer `-1`, expected u32"),
    ({"formats": ["solana"]}, NO_SIGNED_FORMATS),
    ({"deliveryFormat": "binary"}, NO_BINARY),
    ({"parsed": False}, PARSED_ONLY),
    ({"priceFeedIds": [1, 99999]}, "unknown price feed ids: [99999] (GET /v1/symbols lists the feeds)"),
    ({"priceFeedIds": [99999], "ignoreInvalidFeeds": True},
     "unknown price feed ids: [99999] (GET /v1/symbols lists the feeds)"),
])
def test_a_bad_subscribe_gets_the_servers_message_as_a_subscription_error(fields: dict[str, Any],
                                                                          message: str) -> None:
    _, _, session, peer = setup()
    subscribe(session, **fields)
    assert peer.take() == [{"type": "subscriptionError", "subscriptionId": 1, "error": message}]
    assert not session.streams


@pytest.mark.parametrize(("text", "message"), [
    (b"{", "failed to parse request: unexpected end of data: line 1 column 2 (char 1)"),
    (b"[]", "invalid type: an array, expected internally tagged enum WsRequest"),
    (b'{"subscriptionId":1}', "missing field `type`"),
    (b'{"type":"ping"}', "unknown variant 'ping', expected `subscribe` or `unsubscribe`"),
    (b'{"type":"subscribe"}', "missing field `subscriptionId`"),
    (b'{"type":"unsubscribe","subscriptionId":"x"}', "invalid type: a string 'x', expected u64"),
])
def test_a_request_without_a_readable_id_gets_an_error(text: bytes, message: str) -> None:
    _, _, session, peer = setup()
    session.receive_text(text)
    assert peer.take() == [{"type": "error", "error": message}]


async def test_real_time_sends_every_update_in_the_requested_order_with_the_requested_properties() -> None:
    pipeline, _, session, peer = setup()
    details = MarketDetails(best_bid=99, best_ask=101, publisher_count=7, market_session="regular")
    pipeline.ingest.publish_many([update(BTC, 100, 1_000_000, details), update(ETH, 200, 1_000_000)])
    await asyncio.sleep(0)
    subscribe(session, priceFeedIds=[2, 1], properties=["bestAskPrice", "price", "publisherCount", "exponent",
                                                        "feedUpdateTimestamp"], ignoreInvalidFeedIds=True)
    assert peer.take() == [
        {"type": "subscribed", "subscriptionId": 1},
        {"type": "streamUpdated", "subscriptionId": 1, "parsed": {"timestampUs": "1000000", "priceFeeds": [
            {"priceFeedId": 2, "price": "200", "exponent": -8, "feedUpdateTimestamp": 1000000},
            {"priceFeedId": 1, "price": "100", "bestAskPrice": "101", "publisherCount": 7, "exponent": -8,
             "feedUpdateTimestamp": 1000000}]}}]
    pipeline.ingest.publish(update(BTC, 103, 1_200_000))
    await asyncio.sleep(0)
    assert peer.raw[-1] == (b'{"type":"streamUpdated","subscriptionId":1,"parsed":{"timestampUs":"1200000",'
                            b'"priceFeeds":[{"priceFeedId":1,"price":"103","exponent":-8,'
                            b'"feedUpdateTimestamp":1200000}]}}')
    request(session, type="unsubscribe", subscriptionId=1)
    pipeline.ingest.publish(update(BTC, 104, 1_400_000))
    await asyncio.sleep(0)
    assert peer.take()[-1] == {"type": "unsubscribed", "subscriptionId": 1}
    assert pipeline.hub.subscription_count() == 0


async def test_a_fixed_rate_channel_sends_the_changed_feeds_latest_values_at_its_ticks() -> None:
    pipeline, face, session, peer = setup()
    subscribe(session, priceFeedIds=[1, 2], channel="fixed_rate@200ms")
    assert peer.take() == [{"type": "subscribed", "subscriptionId": 1}]
    assert pipeline.hub.demand() == {BTC, ETH}  # so an upstream streams the feeds a fixed-rate client watches
    pipeline.ingest.publish_many([update(BTC, 100, 1_010_000), update(ETH, 200, 1_020_000)])
    await asyncio.sleep(0)
    pipeline.ingest.publish(update(BTC, 101, 1_150_000))
    await asyncio.sleep(0)
    assert peer.take() == []  # nothing between ticks
    face.clock.tick("fixed_rate@200ms", 1_200_000)
    face.clock.tick("fixed_rate@50ms", 1_200_000)  # another channel's clock sends nothing to this one
    await asyncio.sleep(0)
    assert peer.take() == [{"type": "streamUpdated", "subscriptionId": 1, "parsed": {
        "timestampUs": "1200000", "priceFeeds": [{"priceFeedId": 1, "price": "101"},
                                                 {"priceFeedId": 2, "price": "200"}]}}]
    pipeline.ingest.publish(update(ETH, 201, 1_300_000))
    await asyncio.sleep(0)
    face.clock.tick("fixed_rate@200ms", 1_400_000)
    await asyncio.sleep(0)
    face.clock.tick("fixed_rate@200ms", 1_600_000)  # nothing changed since: nothing sent
    await asyncio.sleep(0)
    assert peer.take() == [{"type": "streamUpdated", "subscriptionId": 1, "parsed": {
        "timestampUs": "1400000", "priceFeeds": [{"priceFeedId": 2, "price": "201"}]}}]
    session.closed()
    assert pipeline.hub.demand() == set() and pipeline.hub.subscription_count() == 0


def test_channels_by_id_symbols_ignored_feeds_and_the_limit() -> None:
    _, _, session, peer = setup()
    subscribe(session, priceFeedIds=None, symbols=["Crypto.ETH/USD", "Crypto.NOPE/USD"], channel="3",
              ignoreInvalidFeeds=True)
    assert peer.take() == [{"type": "subscribedWithInvalidFeedIdsIgnored", "subscriptionId": 1,
                            "subscribedFeedIds": [2], "ignoredInvalidFeedIds": {
                                "unknownIds": [], "unknownSymbols": ["Crypto.NOPE/USD"], "unsupportedChannels": [],
                                "unstable": []}}]
    assert session.streams[1].channel == "fixed_rate@200ms"
    subscribe(session, subscriptionId=2, channel=4)
    subscribe(session, subscriptionId=2, channel=4)
    subscribe(session, subscriptionId=3, priceFeedIds=[1, 2], channel=1)
    assert peer.take() == [
        {"type": "subscribed", "subscriptionId": 2},
        {"type": "subscriptionError", "subscriptionId": 2, "error": "Duplicate subscription IDs: 2 is already "
                                                                     "subscribed"},
        {"type": "subscriptionError", "subscriptionId": 3, "error": "subscription limit reached: at most 3 feeds "
                                                                     "per connection (2 already subscribed)"}]
    assert session.streams[2].channel == "fixed_rate@1000ms"
    request(session, type="unsubscribe", subscriptionId=9)
    assert peer.take() == [{"type": "subscriptionError", "subscriptionId": 9, "error": "no subscription with id 9"}]


def test_feeds_lazer_does_not_publish_get_stable_ids_of_their_own() -> None:
    _, face, _, _ = setup()
    assert face.ids.lazer_id(BTC) == 1 and face.ids.lazer_id(ETH) == 2
    own = face.ids.lazer_id(OTHER)
    assert own is not None and ASSIGNED_BASE <= own < 2 * ASSIGNED_BASE
    assert own == LazerFace(face.hub).ids.lazer_id(OTHER)  # the same in any process with the same feeds
    assert face.ids.feed_of(own) == OTHER


@pytest.mark.parametrize(("target", "headers", "token"), [
    ("/v1/stream", {"Authorization": "Bearer abc"}, "abc"),
    ("/v1/stream?ACCESS_TOKEN=def", {}, "def"),
    ("/v1/stream", {"Sec-WebSocket-Protocol": "pyth-lazer-auth, ghi"}, "ghi"),
    ("/v1/stream", {}, None),
    ("/v1/stream", {"Sec-WebSocket-Protocol": "pyth-lazer-auth"}, None),
])
def test_the_three_token_forms(target: str, headers: dict[str, str], token: str | None) -> None:
    assert lazer_token(Handshake.of(target, headers)) == token


async def test_a_late_tick_sends_each_price_as_of_its_instant_never_a_later_one() -> None:
    pipeline, face, session, peer = setup()
    subscribe(session, priceFeedIds=[1, 2], channel="fixed_rate@200ms")
    peer.take()
    pipeline.ingest.publish_many([update(BTC, 100, 1_150_000), update(ETH, 200, 1_150_000)])
    await asyncio.sleep(0)
    # The 1.2 s timer fires late: BTC and ETH moved again after 1.2 s, ETH twice.
    pipeline.ingest.publish_many([update(BTC, 101, 1_210_000), update(ETH, 201, 1_210_000)])
    await asyncio.sleep(0)
    pipeline.ingest.publish(update(ETH, 202, 1_220_000))
    await asyncio.sleep(0)
    face.clock.tick("fixed_rate@200ms", 1_200_000)
    await asyncio.sleep(0)
    # BTC as of 1.2 s; ETH's last two prices are both later, so it waits for the next tick.
    assert peer.take() == [{"type": "streamUpdated", "subscriptionId": 1, "parsed": {
        "timestampUs": "1200000", "priceFeeds": [{"priceFeedId": 1, "price": "100"}]}}]
    face.clock.tick("fixed_rate@200ms", 1_400_000)
    await asyncio.sleep(0)
    assert peer.take() == [{"type": "streamUpdated", "subscriptionId": 1, "parsed": {
        "timestampUs": "1400000", "priceFeeds": [{"priceFeedId": 1, "price": "101"},
                                                 {"priceFeedId": 2, "price": "202"}]}}]


def test_ticks_fall_on_multiples_of_the_period() -> None:
    assert last_tick_us("fixed_rate@200ms", 1_730_986_152_412_345) == 1_730_986_152_400_000
    assert last_tick_us("fixed_rate@50ms", 1_758_690_761_799_999) == 1_758_690_761_750_000
    assert last_tick_us("fixed_rate@1000ms", 5_000_000) == 5_000_000
