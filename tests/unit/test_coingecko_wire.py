"""CoinGecko's /coins/markets answer parsed exactly: decimals, not floats; one bad coin skipped, not the batch."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pricefeed.coins import SEED_COINS, coin_feed_id, decimal_text, parse_coins
from pricefeed.model import MarketStats, parse_feed_id
from pricefeed.sources.coingecko_wire import CoinGeckoError, coin_feed, markets_params, parse_markets, to_mantissa

from ..coingecko_server import SEED_IDS, recorded_entries

BODY = b"[" + b",".join(recorded_entries()[i] for i in SEED_IDS) + b"]"


def test_the_seed_coins_are_one_batched_call_for_every_field() -> None:
    assert [c.symbol for c in SEED_COINS] == ["BTC", "ETH", "BNB", "ADA", "SOL", "DOT", "USDT", "USDC", "XRP", "MATIC"]
    assert markets_params(SEED_COINS) == {
        "vs_currency": "usd", "ids": ",".join(SEED_IDS), "order": "market_cap_desc", "per_page": "250", "page": "1",
        "sparkline": "false", "precision": "full"}


def test_prices_and_market_figures_are_exact_decimals() -> None:
    answer = parse_markets(BODY, SEED_COINS)
    assert answer.problems == {}
    by_symbol = {c.symbol: u for c, u in zip(SEED_COINS, answer.updates, strict=True)}
    btc = by_symbol["BTC"]  # the OpenAPI example, verbatim
    assert (btc.feed_id, btc.price, btc.expo, btc.conf, btc.source) == (coin_feed_id("bitcoin"), 7018700000000, -8, 0,
                                                                         "coingecko")
    assert btc.publish_time_us == 1712508571736000  # 2024-04-07T16:49:31.736Z
    assert btc.market == MarketStats(Decimal("2126.88"), Decimal("3.12502"), Decimal("20154184933"),
                                     Decimal("1381651251183"))
    eth = by_symbol["ETH"]
    assert (eth.price, eth.expo) == (34529123675012364, -13)
    usdt = by_symbol["USDT"]  # more digits than a float holds
    assert (usdt.price, usdt.expo) == (100012345678912345, -17)
    assert decimal_text(usdt.price, usdt.expo) == "1.00012345678912345"
    assert usdt.market is not None and usdt.market.change_24h == Decimal("-0.000409872153461")
    matic = by_symbol["MATIC"]
    assert matic.feed_id == coin_feed_id("polygon-ecosystem-token")
    assert matic.market is not None and matic.market.market_cap == Decimal("0.0")
    assert answer.names["polygon-ecosystem-token"] == "POL (ex-MATIC)"


@pytest.mark.parametrize(("mantissa", "expo", "text"), [
    (7018700000000, -8, "70187"), (123, -8, "0.00000123"), (-5, 0, "-5"), (0, -8, "0"), (12, 3, "12000")])
def test_decimal_text_is_the_shortest_plain_number(mantissa: int, expo: int, text: str) -> None:
    assert decimal_text(mantissa, expo) == text
    back_mantissa, back_expo = to_mantissa(Decimal(text))
    assert Decimal(back_mantissa).scaleb(back_expo) == Decimal(mantissa).scaleb(expo) and back_expo <= -8


def test_a_malformed_coin_is_skipped_and_the_rest_of_the_batch_goes_on() -> None:
    entries = recorded_entries()
    body = b"[" + b",".join([
        entries["bitcoin"].replace(b'"current_price":70187', b'"current_price":null'),
        entries["ethereum"].replace(b'"last_updated":"2024-04-07T16:49:28.411Z"', b'"last_updated":"yesterday"'),
        entries["tether"].replace(b'"total_volume":44119046215.25112', b'"total_volume":"lots"'),
        entries["solana"],
    ]) + b"]"
    answer = parse_markets(body, SEED_COINS)
    assert [u.feed_id for u in answer.updates] == [coin_feed_id("solana")]
    assert answer.problems == {
        "BTC": "'bitcoin': current_price is null",
        "ETH": "'ethereum': last_updated 'yesterday' is not an ISO 8601 time",
        "USDT": "'tether': total_volume is a string, expected a number",
        "BNB": "'binancecoin' missing from the answer", "ADA": "'cardano' missing from the answer",
        "DOT": "'polkadot' missing from the answer", "USDC": "'usd-coin' missing from the answer",
        "XRP": "'ripple' missing from the answer", "MATIC": "'polygon-ecosystem-token' missing from the answer"}


@pytest.mark.parametrize(("body", "message"), [
    (b"<html>502 Bad Gateway</html>", "invalid JSON from /coins/markets"),
    (b'{"status":{"error_code":429,"error_message":"slow down"}}', "returned an object, not an array: slow down"),
    (b'{"error":"coin not found"}', "not an array: coin not found"),
])
def test_an_unusable_body_fails_the_whole_call(body: bytes, message: str) -> None:
    with pytest.raises(CoinGeckoError, match=message):
        parse_markets(body, SEED_COINS)


def test_coins_are_known_symbols_or_symbol_equals_id() -> None:
    assert [(c.symbol, c.coingecko_id) for c in parse_coins(["btc", "DOGE=dogecoin", "MATIC", "BTC"])] == [
        ("BTC", "bitcoin"), ("DOGE", "dogecoin"), ("MATIC", "polygon-ecosystem-token")]
    with pytest.raises(ValueError, match="unknown coin 'FOO': give it as FOO=<coingecko id>"):
        parse_coins(["FOO"])
    with pytest.raises(ValueError, match="repeats CoinGecko id 'polygon-ecosystem-token'"):
        parse_coins(["MATIC", "POL"])


def test_a_coin_feed_has_a_stable_id_and_a_symbol_of_its_own() -> None:
    feed = coin_feed(SEED_COINS[0])
    assert feed.id == parse_feed_id(feed.id) == coin_feed_id("bitcoin")
    assert (feed.symbol, feed.display_symbol, feed.asset_type, feed.source) == (
        "CoinGecko.BTC/USD", "BTC/USD", "Crypto", "coingecko")
    assert feed.attributes["name"] == "Bitcoin" and feed.attributes["coingecko_id"] == "bitcoin"
