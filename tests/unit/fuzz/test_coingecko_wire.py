"""CoinGecko's ``/coins/markets`` answer (sources/coingecko_wire.py): any body is refused whole with
``CoinGeckoError`` or gives each coin exactly once, as an update or as a problem; every update is one the faces
can render; and entries built here parse to exactly the decimal price and time they carry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from pricefeed.coins import SEED_COINS
from pricefeed.faces.simple_ws import SimpleWsCodec
from pricefeed.model import PriceUpdate
from pricefeed.sources.coingecko_wire import CoinGeckoError, parse_markets

from .strategies import BYTES, JSON, dumps

COINS = SEED_COINS[:3]
NUMBERS = st.sampled_from(["1e999999", "1e-999999", "92233720368.54775808", "0", "-1", "1.5", "NaN", '"1"',
                           "12345678901234567890.123"]) | st.decimals(allow_nan=False, allow_infinity=False).map(str)
TIMES = st.sampled_from(['"2024-04-07T16:45:08.402Z"', '"0001-01-01T00:00:00+14:00"', '"2024-04-07"', "null",
                         '"9999-12-31T23:59:59-14:00"', "1712508308"])


@st.composite
def bodies(draw: st.DrawFn) -> str:
    """A markets array written by hand, so numbers can be what JSON allows and Python's floats do not."""
    entries = []
    for coin in draw(st.lists(st.sampled_from(COINS), max_size=4)):
        fields = [f'"id": "{coin.coingecko_id}"', f'"current_price": {draw(NUMBERS)}',
                  f'"last_updated": {draw(TIMES)}']
        for name in draw(st.sets(st.sampled_from(["price_change_24h", "total_volume", "market_cap", "name"]))):
            fields.append(f'"{name}": {draw(NUMBERS)}')
        entries.append("{" + ", ".join(draw(st.permutations(fields))) + "}")
    return "[" + ", ".join(entries) + "]"


def renders(update: PriceUpdate) -> bool:
    SimpleWsCodec().encode(update.feed_id, update)
    return -(2**63) <= update.price < 2**63 and -30 <= update.expo <= 0


@given(BYTES | JSON.map(dumps) | bodies())
@example('[{"id": "bitcoin", "current_price": 1e999999, "last_updated": "2024-04-07T16:45:08Z"}]')  # 3M-bit price
@example('[{"id": "bitcoin", "current_price": 1e-999999, "last_updated": "2024-04-07T16:45:08Z"}]')
def test_any_body_is_refused_whole_or_each_coin_is_an_update_or_a_problem(body: Any) -> None:
    try:
        answer = parse_markets(body, COINS)
    except CoinGeckoError as exc:
        assert str(exc)
        return
    updated = [u.feed_id for u in answer.updates]
    assert sorted(updated + [c.feed_id for c in COINS if c.symbol in answer.problems]) == sorted(
        c.feed_id for c in COINS)
    assert all(renders(u) for u in answer.updates)


PRICES = st.builds(lambda mantissa, expo: Decimal(mantissa).scaleb(expo), st.integers(1, 10**10), st.integers(-20, 0))
MOMENTS = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC))


@given(st.lists(st.tuples(PRICES, MOMENTS), min_size=len(COINS), max_size=len(COINS)))
def test_an_entry_parses_to_exactly_its_decimal_price_and_time(values: list[tuple[Decimal, datetime]]) -> None:
    entries = [{"id": coin.coingecko_id, "current_price": str(price), "last_updated": when.isoformat()}
               for coin, (price, when) in zip(COINS, values, strict=True)]
    body = dumps(entries).decode().replace('"current_price": "', '"current_price": ').replace('", "last', ', "last')
    answer = parse_markets(body, COINS)
    assert answer.problems == {}
    for update, (price, when) in zip(answer.updates, values, strict=True):
        assert Decimal(update.price).scaleb(update.expo) == price and update.expo <= -8
        assert update.publish_time_us == (when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
