"""Which feeds of different sources are the same asset: a normalised asset key such as ``BTC/USD``.

Each source names its feeds its own way (Hermes ``Crypto.BTC/USD``, Lazer
``BTC/USD`` by its Pyth symbol, CoinGecko ``CoinGecko.BTC/USD`` from the coin
``bitcoin``, a local oracle's products file ``Crypto.BTC/USD``), but every one
sets a base and a quote currency, or a ``BASE/QUOTE`` display symbol. The key is
``BASE/QUOTE`` in upper case, so a USDT quote never matches a USD one. Exchange-
listed instruments keep their venue (``NSE.RELIANCE/INR``): a stock on two
exchanges is two assets. Asset types that are not a price of the base in the
quote (indices, redemption rates, interest rates) get no key and are never compared.
"""

from __future__ import annotations

from .coins import SYMBOL_ALIASES
from .model import Feed

COMPARABLE_TYPES = frozenset({"crypto", "fx", "metal", "commodities", "equity"})
"""Asset types (as :func:`~pricefeed.model.asset_type_key` names them) whose feeds are a base priced in a quote."""


def _part(text: str) -> str:
    return text.strip().upper()


def asset_key(feed: Feed) -> str | None:
    """The asset a feed prices, e.g. ``BTC/USD``; None for a feed that names no base and quote."""
    if feed.asset_type_key not in COMPARABLE_TYPES:
        return None
    attributes = feed.attributes
    base, quote = attributes.get("base", ""), attributes.get("quote_currency", "")
    if not base or not quote:
        base, slash, quote = feed.display_symbol.partition("/")
        if not slash:
            return None
    base, quote = _part(base), _part(quote)
    if not base or not quote or "/" in base or "/" in quote or ":" in base + quote:
        return None
    base = SYMBOL_ALIASES.get(base, base)
    venue = _part(attributes.get("exchange", ""))
    return f"{venue}.{base}/{quote}" if venue else f"{base}/{quote}"


def parse_asset(text: str) -> str:
    """An asset as a client writes it (``btc/usd``, ``BTC-USD``, ``btc_usd``) in the key's form."""
    key = _part(text)
    if "/" not in key:
        for separator in ("-", "_"):
            base, found, quote = key.rpartition(separator)
            if found and base and quote:
                return f"{base}/{quote}"
    return key
