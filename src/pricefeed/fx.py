"""FX rates for converting money between currencies: a feed's price where one is fresh (the simulated market's
``FX.USD/INR``, or any FX feed a source brings), else a configured rate (``--fx-rate USDINR=83.25``).

A rate ``USD/INR 83.25`` is 83.25 rupees for one dollar; it converts either way (dividing the other way round),
exactly in Decimal. A stale feed's price is not used: a configured rate wins then, and without one there is
no rate (the caller says so rather than convert with an old number).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from .model import Feed, FeedId, PriceUpdate

FEED = "feed"
CONFIGURED = "configured"
_PAIR = re.compile(r"([A-Za-z]{3})/?([A-Za-z]{3})=(.+)")


def parse_rate(text: str) -> tuple[str, str, Decimal]:
    """``USDINR=83.25`` (or ``USD/INR=83.25``): base, quote and the quote's units per base; ``ValueError``."""
    match = _PAIR.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a rate: expected BASEQUOTE=VALUE, e.g. USDINR=83.25")
    try:
        value = Decimal(match[3].strip())
    except InvalidOperation:
        raise ValueError(f"{text!r}: the rate {match[3]!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise ValueError(f"{text!r}: a rate must be a positive number")
    base, quote = match[1].upper(), match[2].upper()
    if base == quote:
        raise ValueError(f"{text!r}: a rate needs two different currencies")
    return base, quote, value


@dataclass(frozen=True, slots=True)
class Rate:
    """``value`` units of ``quote`` per one ``base``, where it came from and (for a feed) its price's time."""

    base: str
    quote: str
    value: Decimal
    source: str
    """``feed`` or ``configured``."""
    time_us: int | None
    symbol: str | None = None
    """The feed's symbol (a feed's rate)."""

    @property
    def pair(self) -> str:
        return f"{self.base}/{self.quote}"

    def convert(self, amount: Decimal, currency: str) -> Decimal:
        """``amount`` of ``currency`` (the base or the quote) in the other currency."""
        return amount * self.value if currency == self.base else amount / self.value


class FxRates:
    """Finds the rate between two currencies: a fresh FX feed's latest price, else a configured rate."""

    def __init__(self, feeds: dict[FeedId, Feed], latest: dict[FeedId, PriceUpdate], is_stale: Callable[[FeedId], bool],
                 configured: list[str] | None = None) -> None:
        self.feeds = feeds
        self.latest = latest
        self.is_stale = is_stale
        self.configured: dict[frozenset[str], Rate] = {}
        for text in configured or ():
            base, quote, value = parse_rate(text)
            self.configured[frozenset((base, quote))] = Rate(base, quote, value, CONFIGURED, None)
        self._feed_of: dict[frozenset[str], FeedId] = {}
        self._scanned: dict[frozenset[str], int] = {}
        """Per pair without a feed: how many feeds there were when we looked (look again when sources add some)."""

    def rate(self, one: str, other: str) -> Rate | None:
        """The rate between two currencies (either way round), or None if no fresh feed nor setting has it."""
        pair = frozenset((one, other))
        feed_id = self._find_feed(pair)
        if feed_id is not None and not self.is_stale(feed_id):
            update = self.latest.get(feed_id)
            feed = self.feeds[feed_id]
            if update is not None and update.price > 0:
                return Rate(feed.attributes["base"].upper(), feed.attributes["quote_currency"].upper(),
                            Decimal(update.price).scaleb(update.expo), FEED, update.publish_time_us, feed.symbol)
        return self.configured.get(pair)

    def _find_feed(self, pair: frozenset[str]) -> FeedId | None:
        found = self._feed_of.get(pair)
        if found is None and self._scanned.get(pair) != len(self.feeds):
            self._scanned[pair] = len(self.feeds)
            for feed in self.feeds.values():
                attributes = feed.attributes
                if attributes.get("asset_type", "").upper() == "FX" and frozenset(
                        (attributes.get("base", "").upper(), attributes.get("quote_currency", "").upper())) == pair:
                    found = self._feed_of[pair] = feed.id
                    break
        return found
