"""Reading Hermes' wire format: the recorded payloads, exact integers, and everything around the stream."""

from __future__ import annotations

import orjson
import pytest

from pricefeed.model import Feed, Status
from pricefeed.sources.hermes import (
    PROVISIONAL_EXPO,
    Endpoint,
    HermesProtocolError,
    decode_price_event,
    feeds_from_metadata,
    parse_not_found_ids,
    plan_shards,
    symbol_index,
)
from pricefeed.sources.http import parse_retry_after

from ..hermes_server import BTC, ETH, LATEST_RESPONSE, PYTH, SSE_EVENT_1, SSE_EVENT_2, default_metadata, price_item


def test_the_verbatim_second_event_gives_its_exact_price() -> None:
    event = decode_price_event(SSE_EVENT_2)
    assert event.problems == []
    [update] = event.updates
    assert update.feed_id == BTC
    assert (update.price, update.conf, update.expo) == (6163088000000, 3308129843, -8)
    assert (update.ema_price, update.ema_conf) == (6130103000000, 3587126400)
    assert update.publish_time_us == 1714748301_000_000
    assert update.prev_publish_time_us == 1714748300_000_000
    assert update.slot == 138886135
    assert update.status is Status.TRADING
    assert update.source == "hermes"


def test_the_first_event_repeats_its_publish_time_as_previous() -> None:
    [update] = decode_price_event(SSE_EVENT_1.decode()).updates
    assert (update.price, update.conf, update.slot) == (6163260000000, 3268548079, 138886134)
    assert update.prev_publish_time_us == update.publish_time_us == 1714748300_000_000


def test_the_latest_answer_gives_both_feeds_in_order() -> None:
    updates = decode_price_event(orjson.dumps(LATEST_RESPONSE)).updates
    assert [(u.feed_id[:4], u.price, u.conf, u.ema_price, u.ema_conf) for u in updates] == [
        ("e62d", 6140993501000, 3287868567, 6094004700000, 3792887800),
        ("c964", 4959503, 5465, 4982594, 5536),
    ]


def test_mantissas_beyond_float_precision_stay_exact() -> None:
    item = price_item(BTC, 9223372036854775807, publish_time=1, slot=1, conf=18446744073709551615,
                      ema_price=-9223372036854775808)
    [update] = decode_price_event(orjson.dumps({"parsed": [item]})).updates
    assert update.price == 9223372036854775807
    assert update.conf == 18446744073709551615
    assert update.ema_price == -9223372036854775808


@pytest.mark.parametrize(("field", "value"), [
    ("price", 6163088000000),  # a JSON number, not a string
    ("price", "6163088000000.0"),
    ("price", "6.16e12"),
    ("price", " 6163088000000"),
    ("price", "+6163088000000"),
    ("price", "6_163_088"),
    ("price", "٦١٦"),  # non-ASCII digits
    ("price", "9223372036854775808"),  # above i64
    ("conf", "-1"),  # conf is unsigned
    ("expo", -8.0),
    ("expo", True),
    ("publish_time", "1714748301"),
])
def test_anything_but_exact_integers_is_refused(field: str, value: object) -> None:
    item = price_item(BTC, 1, publish_time=1714748301, slot=1)
    item["price"][field] = value
    event = decode_price_event(orjson.dumps({"parsed": [item]}))
    assert event.updates == []
    assert len(event.problems) == 1 and field in event.problems[0]


def test_one_bad_item_does_not_cost_the_others_their_price() -> None:
    good = price_item(ETH, 330000000000, publish_time=10, slot=5)
    event = decode_price_event(orjson.dumps({"parsed": [{"id": "nope"}, good]}))
    assert [u.feed_id for u in event.updates] == [ETH]
    assert len(event.problems) == 1


@pytest.mark.parametrize("data", [b'{"binary":{"encoding":"hex","data":["50', b"", b"[1, 2]", b"null", b'"text"'])
def test_malformed_events_raise_a_protocol_error(data: bytes) -> None:
    with pytest.raises(HermesProtocolError):
        decode_price_event(data)


def test_an_event_without_parsed_prices_is_empty() -> None:
    assert decode_price_event(b'{"binary":{"encoding":"hex","data":[]}}').updates == []


def test_ids_are_normalised_and_metadata_is_optional() -> None:
    item = price_item("0x" + BTC.upper(), 1, publish_time=2, slot=3)
    del item["metadata"]
    [update] = decode_price_event(orjson.dumps({"parsed": [item]})).updates
    assert update.feed_id == BTC
    assert update.slot is None and update.prev_publish_time_us is None


def test_not_found_body_names_the_unknown_ids() -> None:
    body = f"Price ids not found: 0x{BTC}, 0x{ETH.upper()}"
    assert parse_not_found_ids(body) == {BTC, ETH}
    assert parse_not_found_ids("Update data not found") == set()


def test_retry_after_as_seconds_or_date() -> None:
    assert parse_retry_after("60") == 60.0
    assert parse_retry_after(" 2 ") == 2.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") is None


@pytest.mark.parametrize(("url", "base"), [
    ("https://hermes.pyth.network/v2/updates/price/stream", "https://hermes.pyth.network"),
    ("https://pyth.dourolabs.app/hermes/", "https://pyth.dourolabs.app/hermes"),
    ("https://pyth.dourolabs.app/hermes/v2/updates/price/stream", "https://pyth.dourolabs.app/hermes"),
    ("http://127.0.0.1:9000/v2/price_feeds", "http://127.0.0.1:9000"),
])
def test_the_base_url_is_derived_from_the_stream_url(url: str, base: str) -> None:
    endpoint = Endpoint.from_url(url)
    assert endpoint.base == base
    assert endpoint.stream_url == base + "/v2/updates/price/stream"
    assert endpoint.metadata_url == base + "/v2/price_feeds"


def test_credentials_in_a_url_are_kept_for_requests_but_never_shown() -> None:
    endpoint = Endpoint.from_url("https://user:pw@h.example/hermes/v2/updates/price/stream?ACCESS_TOKEN=tok&ids[]=x")
    assert endpoint.params == (("ACCESS_TOKEN", "tok"),)
    assert endpoint.display == "https://h.example/hermes"
    with pytest.raises(ValueError) as excinfo:
        Endpoint.from_url("ftp://user:secret@h.example/")
    assert "secret" not in str(excinfo.value)


def test_shards_split_large_sets_and_change_as_little_as_possible() -> None:
    ids = {f"{n:064x}" for n in range(5)}
    first = plan_shards([], ids, 2)
    assert sorted(len(s) for s in first) == [1, 2, 2]
    assert set().union(*first) == ids
    grown = plan_shards(first, ids | {"f" * 64}, 2)
    assert len([s for s in grown if s not in first]) == 1, "one new id reopens one stream"
    smaller = plan_shards(grown, (ids | {"f" * 64}) - {min(ids)}, 2)
    assert len([s for s in smaller if s not in grown]) == 1
    assert plan_shards(first, set(), 2) == []


def test_metadata_becomes_feeds_keeping_the_exponent_we_know() -> None:
    existing = {PYTH: Feed(PYTH, "Crypto.PYTH/USD", -7, "hermes")}
    feeds = {f.id: f for f in feeds_from_metadata(default_metadata(), existing)}
    assert feeds[BTC].symbol == "Crypto.BTC/USD" and feeds[BTC].expo == -8
    assert feeds[BTC].attributes["display_symbol"] == "BTC/USD"
    assert feeds[PYTH].expo == -7
    assert feeds_from_metadata([{"id": "ab" * 32, "attributes": {"symbol": "X.Y/Z"}}], {})[0].expo == PROVISIONAL_EXPO
    with pytest.raises(HermesProtocolError):
        feeds_from_metadata({"oops": 1}, {})


def test_symbols_resolve_by_full_or_display_name() -> None:
    index = symbol_index(feeds_from_metadata(default_metadata(), {}))
    assert index["crypto.btc/usd"] == BTC
    assert index["pyth/usd"] == PYTH
    assert index["eth/usd"] == ETH
