"""The coins of the crypto-prices service (seed 002): how clients name them and how CoinGecko knows them.

Shared by the CoinGecko source and the Socket.IO face, so neither imports the other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from .model import FeedId

COINGECKO = "coingecko"
"""The CoinGecko source's name, part of every coin's feed id."""
QUOTE = "USD"


@dataclass(frozen=True, slots=True)
class Coin:
    """A coin as clients name it (the seed's ``symbol`` and ``name``) and as CoinGecko knows it."""

    symbol: str
    coingecko_id: str
    name: str | None = None
    """None: take CoinGecko's name."""

    @property
    def feed_id(self) -> FeedId:
        """A stable feed id: the same coin is the same feed in every process and after every restart."""
        return coin_feed_id(self.coingecko_id)


def coin_feed_id(coingecko_id: str) -> FeedId:
    return hashlib.sha256(f"{COINGECKO}:{coingecko_id}".encode()).hexdigest()


SEED_COINS: tuple[Coin, ...] = (
    Coin("BTC", "bitcoin", "Bitcoin"),
    Coin("ETH", "ethereum", "Ethereum"),
    Coin("BNB", "binancecoin", "Binance Coin"),
    Coin("ADA", "cardano", "Cardano"),
    Coin("SOL", "solana", "Solana"),
    Coin("DOT", "polkadot", "Polkadot"),
    Coin("USDT", "tether", "Tether"),
    Coin("USDC", "usd-coin", "USD Coin"),
    Coin("XRP", "ripple", "Ripple"),
    # MATIC became POL on 2024-09-04; CoinGecko's old id (matic-network) now returns empty data.
    Coin("MATIC", "polygon-ecosystem-token", "Polygon"),
)
"""The seed's ten coins, with the seed's names."""

KNOWN_COINS: dict[str, Coin] = {coin.symbol: coin for coin in SEED_COINS} | {
    "POL": Coin("POL", "polygon-ecosystem-token", "POL (ex-MATIC)"),
    "DOGE": Coin("DOGE", "dogecoin", "Dogecoin"),
}
SYMBOL_ALIASES = {"MATIC": "POL"}
"""Symbols whose asset trades under another name today (what Pyth and exchanges call it)."""


def parse_coins(specs: Iterable[str]) -> list[Coin]:
    """Coins from ``BTC`` (a known symbol) or ``SYMBOL=coingecko-id`` items; ``ValueError`` names a bad one."""
    coins: dict[str, Coin] = {}
    for spec in specs:
        symbol, sep, coin_id = spec.strip().partition("=")
        symbol = symbol.strip().upper()
        if not symbol or not symbol.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"bad coin {spec!r}: expected a symbol such as BTC, or SYMBOL=coingecko-id")
        if sep:
            coin_id = coin_id.strip().lower()
            if not coin_id or any(c.isspace() or c in ",/?&=" for c in coin_id):
                raise ValueError(f"bad coin {spec!r}: expected SYMBOL=coingecko-id, e.g. DOGE=dogecoin")
            known = KNOWN_COINS.get(symbol)
            coin = Coin(symbol, coin_id, known.name if known and known.coingecko_id == coin_id else None)
        elif symbol in KNOWN_COINS:
            coin = KNOWN_COINS[symbol]
        else:
            known_list = ", ".join(sorted(KNOWN_COINS))
            raise ValueError(f"unknown coin {symbol!r}: give it as {symbol}=<coingecko id> (known: {known_list})")
        if symbol in coins:
            continue
        if any(c.coingecko_id == coin.coingecko_id for c in coins.values()):
            raise ValueError(f"coin {symbol} repeats CoinGecko id {coin.coingecko_id!r}")
        coins[symbol] = coin
    if not coins:
        raise ValueError("at least one coin is needed")
    return list(coins.values())


def decimal_text(mantissa: int, expo: int) -> str:
    """The shortest plain decimal for ``mantissa x 10^expo`` (``70187``, ``0.00001234``), a valid JSON number."""
    text = format(Decimal(mantissa).scaleb(expo), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
