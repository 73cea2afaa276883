"""Hermes' price events upstream (sources/hermes/wire.py): any event is refused whole with
``HermesProtocolError`` or gives each item as an update or a problem, every update one the faces can render;
items built here from Hermes' format parse to exactly the integers they carry."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import example, given
from hypothesis import strategies as st

from pricefeed.faces.hermes_json import price_feed
from pricefeed.faces.simple_ws import SimpleWsCodec
from pricefeed.sources.hermes import HermesProtocolError, decode_price_event

from ...hermes_server import BTC, price_item
from .strategies import BYTES, HEX_ID, JSON, dumps

I64 = st.integers(-(2**63), 2**63 - 1)
U64 = st.integers(0, 2**64 - 1)
TIMES = st.integers(1, 2**33)
MANTISSAS = I64.map(str) | st.sampled_from(["9223372036854775808", "-1", "1.0", "+1", " 1", "١"]) | JSON
INTEGERS = st.integers(-(2**70), 2**70) | st.sampled_from([10**9, -(10**9), 2**62]) | JSON


def fuzzed_item(item: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A valid item with some of its fields replaced by anything."""
    keys = [("price", "price"), ("price", "conf"), ("price", "expo"), ("price", "publish_time"), ("ema_price", "conf"),
            ("metadata", "slot"), ("metadata", "prev_publish_time"), ("id", None)]

    def replace(changes: dict[int, Any]) -> dict[str, Any]:
        out = {k: dict(v) if isinstance(v, dict) else v for k, v in item.items()}
        for index, value in changes.items():
            outer, inner = keys[index]
            if inner is None:
                out[outer] = value
            else:
                out[outer][inner] = value
        return out

    return st.dictionaries(st.integers(0, len(keys) - 1), MANTISSAS | INTEGERS, max_size=3).map(replace)


ITEMS = st.builds(lambda feed_id, price, t, slot: price_item(feed_id, price, publish_time=t, slot=slot),
                  HEX_ID, I64, TIMES, U64)
EVENTS = st.lists(ITEMS.flatmap(fuzzed_item) | JSON, max_size=3).map(lambda items: {"parsed": items})


def renders(update: Any) -> None:
    SimpleWsCodec().encode(update.feed_id, update)
    orjson.dumps(price_feed(update, verbose=True))


@given(BYTES | JSON.map(dumps) | EVENTS.map(dumps))
@example(dumps({"parsed": [price_item(BTC, 1, publish_time=1, slot=1) | {"price": {
    "price": "1", "conf": "1", "expo": 10**9, "publish_time": 1}}]}))  # 10^(10^9): no face could render it
@example(dumps({"parsed": [price_item(BTC, 1, publish_time=2**62, slot=1)]}))  # beyond any calendar
def test_any_event_is_refused_whole_or_each_item_is_an_update_or_a_problem(data: bytes) -> None:
    try:
        event = decode_price_event(data)
    except HermesProtocolError as exc:
        assert str(exc)
        return
    parsed = orjson.loads(data).get("parsed") or []
    assert len(event.updates) + len(event.problems) == len(parsed)
    for update in event.updates:
        renders(update)


@given(st.lists(st.tuples(HEX_ID, I64, U64, st.integers(-12, 0), TIMES, U64), min_size=1, max_size=4))
def test_items_parse_to_exactly_their_integers(values: list[tuple[str, int, int, int, int, int]]) -> None:
    items = [price_item(f, p, conf=c, expo=e, publish_time=t, slot=s, ema_price=-p // 2, ema_conf=c // 3)
             for f, p, c, e, t, s in values]
    event = decode_price_event(dumps({"parsed": items}))
    assert event.problems == []
    assert [(u.feed_id, u.price, u.conf, u.expo, u.publish_time_us, u.slot, u.ema_price, u.ema_conf,
             u.prev_publish_time_us) for u in event.updates] == [
        (f, p, c, e, t * 1_000_000, s, -p // 2, c // 3, (t - 1) * 1_000_000) for f, p, c, e, t, s in values]
