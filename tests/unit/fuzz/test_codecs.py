"""The faces' price codecs under every update the upstream parsers let through (i64 prices, u64 confidences,
exponents within ±30, times from 1970 to year 9999): each encodes without an exception, and what a client
decodes is exactly the price, exponent and time encoded."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from hypothesis import given
from hypothesis import strategies as st

from pricefeed.faces.hermes_ws import PLAIN, VERBOSE
from pricefeed.faces.lazer.codec import ENTRY_ORDER, FeedEntryCodec
from pricefeed.faces.simple_ws import SimpleWsCodec
from pricefeed.faces.streams.codecs import StreamCodecs
from pricefeed.faces.streams.symbols import SymbolIndex
from pricefeed.model import Feed, PriceUpdate, scaled

from .service import BTC

I64 = st.integers(-(2**63), 2**63 - 1)
U64 = st.integers(0, 2**64 - 1)
UPDATES = st.builds(PriceUpdate, st.just(BTC), I64, U64, st.integers(-30, 30), st.integers(0, 253402300799_999_999),
                    I64, U64, slot=st.none() | U64, prev_publish_time_us=st.none() | st.integers(0, 2**40))
STREAMS = StreamCodecs(SymbolIndex({BTC: Feed(BTC, "Crypto.BTC/USD", -8, "test")}), None)
LAZER = FeedEntryCodec(frozenset(ENTRY_ORDER), lambda feed_id: 1)


def iso_us(text: str) -> int:
    """Unix microseconds of ``2024-05-03T14:58:21.000Z``."""
    when = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return (when - datetime(1970, 1, 1, tzinfo=UTC)).days * 86_400_000_000 + (
        when.hour * 3600 + when.minute * 60 + when.second) * 1_000_000 + when.microsecond


@given(UPDATES)
def test_seed000_and_the_stream_service_carry_the_price_and_its_millisecond(update: PriceUpdate) -> None:
    for codec in (SimpleWsCodec(), STREAMS.data, STREAMS.tick):
        message = orjson.loads(codec.encode(BTC, update))
        data = message["data"]
        assert data["price"] == scaled(update.price, update.expo)
        stamp = data.get("publish_time") or message["timestamp"]
        assert iso_us(stamp) == update.publish_time_us // 1000 * 1000


@given(UPDATES)
def test_hermes_carries_the_exact_mantissas_and_the_second(update: PriceUpdate) -> None:
    for codec in (PLAIN, VERBOSE):
        feed = orjson.loads(codec.encode(BTC, update))["price_feed"]
        assert feed["price"] == {"price": str(update.price), "conf": str(update.conf), "expo": update.expo,
                                 "publish_time": update.publish_time_us // 1_000_000}
        assert feed["ema_price"]["price"] == str(update.ema_price)
        assert ("metadata" in feed) == (codec is VERBOSE)


@given(UPDATES)
def test_lazer_carries_the_exact_mantissa_and_the_microsecond(update: PriceUpdate) -> None:
    entry = orjson.loads(LAZER.encode(BTC, update))
    assert entry.get("price") == (str(update.price) if update.price else None)
    assert entry.get("confidence") == (update.conf or None)
    assert (entry["priceFeedId"], entry["exponent"], entry["feedUpdateTimestamp"]) == (
        1, update.expo, update.publish_time_us)
