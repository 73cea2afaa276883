"""The crypto-prices payload without I/O: which feed serves each coin, and the exact text of the event."""

from __future__ import annotations

from decimal import Decimal

from pricefeed.catalog import KNOWN_FEEDS
from pricefeed.coins import SEED_COINS
from pricefeed.faces.crypto.prices import CoinFeeds, coin_object, encode_event
from pricefeed.model import Feed, MarketStats, PriceUpdate
from pricefeed.sources.coingecko_wire import coin_feed

PYTH = {k.display_symbol: Feed(k.id, k.symbol, k.expo, "hermes", k.attributes()) for k in KNOWN_FEEDS}
SIMULATED = {k.display_symbol: Feed(k.id, k.symbol, k.expo, "sim", k.attributes(), simulated=True)
             for k in KNOWN_FEEDS}


def test_coingecko_feeds_first_then_the_same_asset_from_pyth_with_matic_as_pol() -> None:
    btc, usdt = coin_feed(SEED_COINS[0]), coin_feed(SEED_COINS[6])
    feeds = {f.id: f for f in [*PYTH.values(), btc, usdt]}
    resolved = CoinFeeds(SEED_COINS).resolve(feeds)
    assert resolved["BTC"] == btc.id and resolved["USDT"] == usdt.id
    assert resolved["ETH"] == PYTH["ETH/USD"].id and resolved["MATIC"] == PYTH["POL/USD"].id
    assert list(resolved) == ["BTC", "ETH", "BNB", "ADA", "SOL", "DOT", "USDT", "USDC", "XRP", "MATIC"]


def test_without_a_feed_a_coin_is_not_served() -> None:
    assert CoinFeeds(SEED_COINS).resolve({PYTH["EUR/USD"].id: PYTH["EUR/USD"]}) == {}


def test_the_event_carries_the_seeds_fields_and_exact_decimals() -> None:
    coin = SEED_COINS[6]
    update = PriceUpdate(coin.feed_id, 100012345678912345, 0, -17, 1712508308402000, 100012345678912345, 0,
                         market=MarketStats(Decimal("-0.000409872153461"), Decimal("-0.04097"),
                                            Decimal("44119046215.25112"), Decimal("106871362231.7745")))
    text = encode_event([coin_object(coin, coin_feed(coin), update, stale=True)])
    assert text == ('2["crypto-prices",[{"symbol":"USDT","name":"Tether","price":1.00012345678912345,'
                    '"change24h":-0.000409872153461,"changePercent24h":-0.04097,"volume24h":44119046215.25112,'
                    '"marketCap":106871362231.7745,"lastUpdated":"2024-04-07T16:45:08.402Z","stale":true}]]')


def test_a_pyth_feed_has_no_24h_figures() -> None:
    coin, feed = SEED_COINS[-1], SIMULATED["POL/USD"]
    update = PriceUpdate(feed.id, 45000000, 1, -8, 1_700_000_000_000_000, 45000000, 1)
    assert encode_event([coin_object(coin, feed, update, stale=False)]) == (
        '2["crypto-prices",[{"symbol":"MATIC","name":"Polygon","price":0.45,"change24h":null,'
        '"changePercent24h":null,"volume24h":null,"marketCap":null,"lastUpdated":"2023-11-14T22:13:20.000Z",'
        '"stale":false}]]')
