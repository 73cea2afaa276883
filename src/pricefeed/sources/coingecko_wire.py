"""CoinGecko's wire format: the coin set, the ``/coins/markets`` request, and its answer parsed exactly.

Numbers are parsed as decimals (never through float) into the model's integer
mantissa and exponent, so a price reaches every face as CoinGecko wrote it. A
coin whose entry is missing or malformed is reported on its own; the rest of
the batch goes on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..coins import (
    COINGECKO,
    QUOTE,
    Coin,
)
from ..model import Feed, MarketStats, PriceUpdate, Status

SOURCE = COINGECKO
VS_CURRENCY = "usd"
FEED_EXPO = -8
"""Prices get at least this many decimals (Pyth's crypto exponent); more when CoinGecko sends more."""
MIN_EXPO = -30
"""The smallest exponent a price may have (30 decimals)."""
_I64 = 2**63
MAX_PRICE = Decimal(_I64).scaleb(FEED_EXPO)
PER_PAGE = 250
"""The most coins ``/coins/markets`` returns in one call."""
PUBLIC_URL = "https://api.coingecko.com/api/v3"
PRO_URL = "https://pro-api.coingecko.com/api/v3"
API_KEY_HEADERS = {"demo": "x-cg-demo-api-key", "pro": "x-cg-pro-api-key"}
DEMO_MONTHLY_CALLS = 10_000
"""The demo plan's monthly quota; every call counts, failed ones too."""


def coin_feed(coin: Coin, name: str | None = None) -> Feed:
    """The feed of a coin: symbol ``CoinGecko.BTC/USD`` (unique: Pyth's is ``Crypto.BTC/USD``), asset type Crypto."""
    shown = coin.name or name or coin.symbol
    display = f"{coin.symbol}/{QUOTE}"
    attributes = {
        "asset_type": "Crypto",
        "base": coin.symbol,
        "coingecko_id": coin.coingecko_id,
        "description": f"{shown.upper()} / US DOLLAR (COINGECKO)",
        "display_symbol": display,
        "generic_symbol": coin.symbol + QUOTE,
        "name": shown,
        "quote_currency": QUOTE,
        "schedule": "America/New_York;O,O,O,O,O,O,O;",
        "symbol": f"CoinGecko.{display}",
    }
    return Feed(coin.feed_id, attributes["symbol"], FEED_EXPO, SOURCE, attributes)


def markets_params(coins: Sequence[Coin]) -> dict[str, str]:
    """The query of one ``/coins/markets`` call for up to :data:`PER_PAGE` coins: every field the face needs."""
    return {"vs_currency": VS_CURRENCY, "ids": ",".join(c.coingecko_id for c in coins), "order": "market_cap_desc",
            "per_page": str(PER_PAGE), "page": "1", "sparkline": "false", "precision": "full"}


class CoinGeckoError(ValueError):
    """An answer that is not a ``/coins/markets`` array."""


@dataclass
class MarketsAnswer:
    """What one ``/coins/markets`` answer gave: an update per good coin, CoinGecko's names, and what was wrong."""

    updates: list[PriceUpdate]
    names: dict[str, str]
    """CoinGecko id -> CoinGecko's name of the coin."""
    problems: dict[str, str]
    """Coin symbol -> why it was skipped."""


def parse_markets(body: bytes | str, coins: Sequence[Coin]) -> MarketsAnswer:
    """Parse a ``/coins/markets`` body for ``coins``; ``CoinGeckoError`` if the body as a whole is unusable."""
    try:
        data = json.loads(body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CoinGeckoError(f"invalid JSON from /coins/markets: {exc}") from None
    if not isinstance(data, list):
        raise CoinGeckoError(f"/coins/markets returned {_kind(data)}, not an array{_error_text(data)}")
    by_id: dict[str, dict[str, Any]] = {}
    for entry in data:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            by_id.setdefault(entry["id"], entry)
    answer = MarketsAnswer([], {}, {})
    for coin in coins:
        entry = by_id.get(coin.coingecko_id)
        if entry is None:
            answer.problems[coin.symbol] = f"{coin.coingecko_id!r} missing from the answer"
            continue
        if isinstance(entry.get("name"), str) and entry["name"]:
            answer.names[coin.coingecko_id] = entry["name"]
        try:
            answer.updates.append(market_update(coin, entry))
        except ValueError as exc:
            answer.problems[coin.symbol] = f"{coin.coingecko_id!r}: {exc}"
    return answer


def market_update(coin: Coin, entry: dict[str, Any]) -> PriceUpdate:
    """One coin's entry as a price update; ``ValueError`` says which field is missing or malformed."""
    price = _number(entry, "current_price", required=True)
    assert price is not None
    if price <= 0:
        raise ValueError(f"current_price {price} is not positive")
    # Checked before and after scaling: 1e999999 scaled would have 3 million bits, which no face can render.
    mantissa, expo = to_mantissa(price) if price < MAX_PRICE else (_I64, FEED_EXPO)
    if mantissa >= _I64 or expo < MIN_EXPO:
        raise ValueError(f"current_price {price} is out of range: a price is an i64 mantissa, exponent {MIN_EXPO} "
                         f"or more")
    publish_time_us = parse_time_us(entry.get("last_updated"))
    stats = MarketStats(change_24h=_number(entry, "price_change_24h"),
                        change_percent_24h=_number(entry, "price_change_percentage_24h"),
                        volume_24h=_number(entry, "total_volume"), market_cap=_number(entry, "market_cap"))
    return PriceUpdate(coin.feed_id, mantissa, 0, expo, publish_time_us, ema_price=mantissa, ema_conf=0,
                       status=Status.TRADING, source=SOURCE, market=stats)


def to_mantissa(value: Decimal, min_decimals: int = -FEED_EXPO) -> tuple[int, int]:
    """``value`` as ``(mantissa, expo)`` exactly, with at least ``min_decimals`` decimals."""
    if not value.is_finite():
        raise ValueError(f"{value} is not a finite number")
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    mantissa = int("".join(map(str, digits)) or "0")
    if exponent > -min_decimals:
        mantissa *= 10 ** (exponent + min_decimals)
        exponent = -min_decimals
    return (-mantissa if sign else mantissa), exponent


def parse_time_us(value: object) -> int:
    """CoinGecko's ``last_updated`` (ISO 8601, ``Z``) in unix microseconds."""
    if not isinstance(value, str):
        raise ValueError(f"last_updated is {_kind(value)}, expected an ISO 8601 time")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"last_updated {value!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        raise ValueError(f"last_updated {value!r} has no time zone")
    return int(when.timestamp()) * 1_000_000 + when.microsecond


def _number(entry: dict[str, Any], key: str, *, required: bool = False) -> Decimal | None:
    value = entry.get(key)
    if value is None:
        if required:
            raise ValueError(f"{key} is {'null' if key in entry else 'missing'}")
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise ValueError(f"{key} is {_kind(value)}, expected a number")
    return Decimal(value)


def _kind(value: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


def _error_text(data: object) -> str:
    """CoinGecko's own error message, from ``{"error": ...}`` or ``{"status": {"error_message": ...}}``."""
    if not isinstance(data, dict):
        return ""
    status = data.get("status")
    message = data.get("error") or (status.get("error_message") if isinstance(status, dict) else None)
    return f": {message}" if isinstance(message, str) else ""
