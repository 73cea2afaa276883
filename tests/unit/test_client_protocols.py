"""The client's pieces without a network: each protocol's decoding into exact decimals, its keys, the cache."""

from __future__ import annotations

import struct
from decimal import Decimal

import orjson
import pytest

from pricefeed.client import (
    ClientBuilder,
    Confirmation,
    FeedSubscription,
    LazerFeed,
    LazerSubscription,
    PriceUpdate,
    ServerError,
    StreamUpdated,
    SubscribedWithInvalidFeedIdsIgnored,
    guess_protocol,
)
from pricefeed.client.dedup import TtlCache
from pricefeed.client.protocols import HermesSseProtocol, HermesWsProtocol, LazerProtocol, Seed000Protocol
from pricefeed.client.protocols.base import ProtocolError
from pricefeed.client.protocols.lazer import BINARY_UPDATE_MAGIC, JSON_MAGIC

BTC = "e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43"

# reference/lazer.md section 4, verbatim from Pyth's payload reference
FULL_PAYLOAD = """{
  "type": "streamUpdated",
  "subscriptionId": 1,
  "parsed": {
    "timestampUs": "1758690761750000",
    "priceFeeds": [
      {
        "priceFeedId": 1,
        "price": "11223872331053",
        "bestBidPrice": "11222498842767",
        "bestAskPrice": "11224513591935",
        "publisherCount": 9,
        "exponent": -8,
        "confidence": 1373488286,
        "marketSession": "regular",
        "feedUpdateTimestamp": 1758690761750000,
        "emaPrice": "11223843563091",
        "emaConfidence": 1347630281
      }
    ]
  },
  "evm": {
    "encoding": "base64",
    "data": "0x..."
  }
}"""


def test_lazer_stream_updated_decodes_to_exact_decimals() -> None:
    [message] = LazerProtocol().decode(FULL_PAYLOAD)
    assert isinstance(message, StreamUpdated)
    assert message.subscription_id == 1 and message.timestamp_us == 1758690761750000
    assert message.feeds == (LazerFeed(
        price_feed_id=1, price=Decimal("112238.72331053"), best_bid_price=Decimal("112224.98842767"),
        best_ask_price=Decimal("112245.13591935"), publisher_count=9, exponent=-8,
        confidence=Decimal("13.73488286"), market_session="regular", ema_price=Decimal("112238.43563091"),
        ema_confidence=Decimal("13.47630281"), feed_update_timestamp_us=1758690761750000),)
    assert [(p.format, p.encoding, p.data) for p in message.payloads] == [("evm", "base64", "0x...")]


def test_lazer_copies_in_another_key_order_or_spacing_have_one_key() -> None:
    protocol = LazerProtocol()
    compact = orjson.dumps(orjson.loads(FULL_PAYLOAD)).decode()
    reordered = orjson.dumps(orjson.loads(FULL_PAYLOAD), option=orjson.OPT_SORT_KEYS).decode()
    keys = {protocol.key(protocol.decode(text)[0]) for text in (FULL_PAYLOAD, compact, reordered)}
    assert len(keys) == 1
    later = FULL_PAYLOAD.replace('"1758690761750000"', '"1758690761800000"')
    assert protocol.key(protocol.decode(later)[0]) not in keys


def test_lazer_binary_frames_carry_the_parsed_json() -> None:
    parsed = orjson.dumps({"timestampUs": "1000", "priceFeeds": [{"priceFeedId": 2, "price": "5", "exponent": -2}]})
    body = struct.pack("<I", JSON_MAGIC) + parsed
    frame = struct.pack("<I", BINARY_UPDATE_MAGIC) + struct.pack(">Q", 7) + struct.pack(">H", len(body)) + body
    [message] = LazerProtocol().decode(frame)
    assert message == StreamUpdated(7, 1000, (LazerFeed(2, price=Decimal("0.05"), exponent=-2),))
    with pytest.raises(ProtocolError):
        LazerProtocol().decode(b"\x00" * 12)


def test_lazer_responses() -> None:
    protocol = LazerProtocol()
    [ignored] = protocol.decode('{"type":"subscribedWithInvalidFeedIdsIgnored","subscriptionId":1,'
                                '"subscribedFeedIds":[1],"ignoredInvalidFeedIds":{"unknownIds":[99999],'
                                '"unknownSymbols":[],"unsupportedChannels":[],"unstable":[]}}')
    assert isinstance(ignored, SubscribedWithInvalidFeedIdsIgnored)
    assert ignored.subscribed_feed_ids == (1,) and ignored.ignored.unknown_ids == (99999,)
    assert protocol.decode('{"type":"error","error":"client too slow"}') == [ServerError("client too slow")]
    with pytest.raises(ProtocolError):
        protocol.decode('{"type":"pong"}')


def test_lazer_token_forms_and_request() -> None:
    assert LazerProtocol("tok").headers() == {"Authorization": "Bearer tok"}
    query = LazerProtocol("tok", "query")
    assert query.headers() == {} and query.url("wss://h/v1/stream?x=1", []) == "wss://h/v1/stream?x=1&ACCESS_TOKEN=tok"
    assert LazerProtocol("tok", "subprotocol").subprotocols() == ["pyth-lazer-auth", "tok"]
    request = LazerSubscription(1, price_feed_ids=[1, 2], properties=("price", "exponent"), formats=("solana",))
    assert LazerProtocol().subscribe_frames(request) == [
        '{"type":"subscribe","subscriptionId":1,"priceFeedIds":[1,2],"symbols":null,"properties":["price",'
        '"exponent"],"formats":["solana"],"deliveryFormat":"json","jsonBinaryEncoding":"base64","parsed":true,'
        '"channel":"fixed_rate@200ms","ignoreInvalidFeeds":false}']


def test_seed000_reads_prices_from_their_text_not_through_a_float() -> None:
    frame = ('{"type":"price_update","data":{"id":"' + BTC + '","price":95000.12345678,"conf":41.62604479,'
             '"expo":-8,"status":"trading","publish_time":"2026-12-03T15:04:00.586Z","ema_price":0.1,"ema_conf":0.3}}')
    [message] = Seed000Protocol().decode(frame)
    assert message == PriceUpdate(BTC, Decimal("95000.12345678"), Decimal("41.62604479"), -8, 1796310240586000,
                                  Decimal("0.1"), Decimal("0.3"), "trading")
    assert Seed000Protocol().decode('{"type":"connection_established","client_id":"x","message":"hi"}') == []
    assert Seed000Protocol().decode('{"type":"subscription_confirmed","feed_id":"' + BTC + '"}') == [
        Confirmation("subscription_confirmed", BTC)]


def test_seed000_unsubscribes_only_feeds_no_other_subscription_holds() -> None:
    eth = "ff" * 32
    frames = Seed000Protocol().unsubscribe_frames(FeedSubscription(1, [BTC, eth]), [FeedSubscription(2, [eth])])
    assert [orjson.loads(f) for f in frames] == [{"type": "unsubscribe", "feed_id": BTC}]


def test_hermes_keys_leave_out_the_receive_time_and_keep_the_slot() -> None:
    def frame(receive_time: int, slot: int) -> str:
        return orjson.dumps({"type": "price_update", "price_feed": {
            "id": BTC, "price": {"price": "6163088000000", "conf": "3308129843", "expo": -8, "publish_time": 17},
            "ema_price": {"price": "6130103000000", "conf": "3587126400", "expo": -8, "publish_time": 17},
            "metadata": {"slot": slot, "emitter_chain": 26, "price_service_receive_time": receive_time,
                         "prev_publish_time": 16}}}).decode()

    protocol = HermesWsProtocol()
    a, b, c = (protocol.key(protocol.decode(frame(*args))[0]) for args in ((18, 5), (19, 5), (18, 6)))
    assert a == b != c
    [update] = protocol.decode(frame(18, 5))
    assert isinstance(update, PriceUpdate)
    assert update.price == Decimal("61630.88") and update.publish_time_us == 17_000_000 and update.slot == 5


def test_hermes_event_stream_url_and_items() -> None:
    protocol = HermesSseProtocol("key")
    url = protocol.url("https://hermes.pyth.network", [FeedSubscription(1, ["0x" + BTC.upper()])])
    assert url == f"https://hermes.pyth.network/v2/updates/price/stream?ids%5B%5D={BTC}&parsed=true"
    assert protocol.headers() == {"Authorization": "Bearer key"}
    event = orjson.dumps({"binary": {"encoding": "hex", "data": []}, "parsed": [
        {"id": BTC, "price": {"price": "1", "conf": "2", "expo": -8, "publish_time": 3},
         "ema_price": {"price": "4", "conf": "5", "expo": -8, "publish_time": 3},
         "metadata": {"slot": 9, "proof_available_time": 4, "prev_publish_time": 2}}]})
    assert protocol.decode(event) == [PriceUpdate(BTC, Decimal("1E-8"), Decimal("2E-8"), -8, 3_000_000,
                                                  Decimal("4E-8"), Decimal("5E-8"), slot=9)]


@pytest.mark.parametrize(("url", "protocol"), [
    ("wss://pyth-lazer-0.dourolabs.app/v1/stream", "lazer"), ("ws://localhost:8765", "seed000"),
    ("wss://hermes.pyth.network/ws", "hermes_ws"), ("https://hermes.pyth.network", "hermes_sse"),
])
def test_the_protocol_is_told_from_the_url(url: str, protocol: str) -> None:
    assert guess_protocol(url) == protocol


def test_the_cache_forgets_after_its_time_and_beyond_its_capacity() -> None:
    now = [0.0]
    cache = TtlCache(capacity=3, ttl_s=10, clock=lambda: now[0])
    assert [cache.seen(k) for k in "abca"] == [False, False, False, True]
    assert not cache.seen("d") and len(cache) == 3  # "a", the oldest, made room
    assert not cache.seen("a")
    now[0] = 10.5
    assert [cache.seen(k) for k in "cdc"] == [False, False, True]  # older than 10 s: forgotten
    assert len(cache) == 3


def test_the_builder_checks_its_configuration() -> None:
    with pytest.raises(ValueError, match="At least one endpoint"):
        ClientBuilder().with_endpoints([]).build()
    with pytest.raises(ValueError, match="connections"):
        ClientBuilder().with_num_connections(0).build()
    client = ClientBuilder("t").with_endpoints(["ws://a/v1/stream", "ws://b/v1/stream"]).build()
    assert (client.num_connections, client.timeout_s, client.channel_capacity) == (4, 5.0, 1000)
    with pytest.raises(ValueError, match="not both"):
        LazerSubscription(1, price_feed_ids=[1], symbols=["Crypto.BTC/USD"])


ETH = "ff61491a931112ddf1bd8147cd1b641375f79f5825126d665480874634fd0ace"


def test_seed000_resumes_each_feed_it_has_a_seq_for_and_keeps_seq_out_of_the_key() -> None:
    protocol = Seed000Protocol()
    [frame] = protocol.resume_frames(FeedSubscription(1, [BTC, ETH]), {BTC: 41})
    assert orjson.loads(frame) == {"type": "subscribe_multiple",
                                   "subscriptions": [{"feed_id": BTC, "since_seq": 41}, {"feed_id": ETH}]}
    data = {"id": BTC, "price": 1.5, "conf": 0.1, "expo": -8, "status": "trading",
            "publish_time": "2026-12-03T15:04:00.586Z", "ema_price": 1.4, "ema_conf": 0.2}
    [plain] = protocol.decode(orjson.dumps({"type": "price_update", "data": data}))
    [numbered] = protocol.decode(orjson.dumps({"type": "price_update", "data": {**data, "seq": 42}}))
    assert isinstance(numbered, PriceUpdate) and numbered.seq == 42 and plain.seq is None  # type: ignore[union-attr]
    assert protocol.key(plain) == protocol.key(numbered)


def test_hermes_event_stream_resumes_with_last_event_id_in_the_urls_order() -> None:
    protocol = HermesSseProtocol()
    subscriptions = [FeedSubscription(1, [BTC, ETH])]
    assert protocol.resume_headers(subscriptions, {}) == {}
    assert protocol.resume_headers(subscriptions, {ETH: 7}) == {"Last-Event-ID": ".7"}
    assert protocol.resume_headers(subscriptions, {BTC: 3, ETH: 7}) == {"Last-Event-ID": "3.7"}
    assert protocol.event_seqs("3.7", subscriptions) == {BTC: 3, ETH: 7}
    assert protocol.event_seqs("not-ours", subscriptions) == {}  # another server's ids are left alone


def test_lazer_resume_asks_for_seqs_then_sends_the_last_ones_and_only_when_asked() -> None:
    protocol = LazerProtocol()
    resuming = LazerSubscription(1, price_feed_ids=[1, 2], properties=["price"], channel="real_time", resume=True)
    [first] = protocol.subscribe_frames(resuming)
    assert orjson.loads(first)["sinceSeq"] == {}
    [again] = protocol.resume_frames(resuming, {"1": 40, "2": 17})
    assert orjson.loads(again)["sinceSeq"] == {"1": 40, "2": 17}
    plain = LazerSubscription(2, price_feed_ids=[1], channel="real_time")
    assert "sinceSeq" not in orjson.loads(protocol.resume_frames(plain, {"1": 40})[0]), "Pyth's routers know none"
    [update] = protocol.decode(orjson.dumps({"type": "streamUpdated", "subscriptionId": 1, "parsed": {
        "timestampUs": "1", "priceFeeds": [{"priceFeedId": 1, "price": "5", "seq": 41}]}}).decode())
    assert isinstance(update, StreamUpdated) and update.feeds[0].seq == 41
