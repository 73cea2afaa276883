"""Positions per owner, marked to market on every tick with Decimal arithmetic (no float drift).

A position is a symbol's quantity (fractional allowed), its average cost and
the currency both are in. On each accepted price of a held feed the book
values every owner's position once and publishes it on the derived topic
``portfolio:<owner>:<feed id>``: current value, cost basis, unrealised PnL in
value and percent, the day's PnL (against the previous close, where the day
is known) and the owner's totals per currency. Money is rounded to the cent
(half up) only when reported; percentages to two decimals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

from .hub import Hub
from .model import FeedId, PriceUpdate
from .topics import Topic, derived_topic

PORTFOLIO = "portfolio"
CENT = Decimal("0.01")
SMALLEST, LARGEST = Decimal("1e-30"), Decimal("1e18")
"""The magnitudes a quantity or a cost may have (or 0)."""
_WIDE = Context(prec=80)
"""Rounds a value or percent to the cent however many digits it has (a 28-digit context refuses past 28)."""


def portfolio_topic(owner: str, feed_id: FeedId) -> Topic:
    return derived_topic(PORTFOLIO, owner, feed_id)


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP, context=_WIDE)


def percent(part: Decimal, whole: Decimal) -> Decimal | None:
    return None if not whole else (part * 100 / abs(whole)).quantize(CENT, rounding=ROUND_HALF_UP, context=_WIDE)


def price_of(update: PriceUpdate) -> Decimal:
    """The exact decimal price ``mantissa x 10^expo``."""
    return Decimal(update.price).scaleb(update.expo)


def decimal_of(raw: object, name: str) -> Decimal:
    """A JSON number or numeric string as an exact Decimal; ``ValueError`` saying what is wrong."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ValueError(f"\"{name}\" must be a number or a numeric string, got {raw!r}")
    try:
        value = Decimal(str(raw))  # str(float) is its shortest repr: 0.1 stays 0.1
    except InvalidOperation:
        raise ValueError(f"\"{name}\" must be a number, got {raw!r}") from None
    if not value.is_finite():
        raise ValueError(f"\"{name}\" must be finite, got {raw!r}")
    if value and not SMALLEST <= abs(value) < LARGEST:  # beyond, marking to market would overflow Decimal
        raise ValueError(f"\"{name}\" must be 0 or of magnitude from {SMALLEST} to below {LARGEST}, got {raw!r}")
    return value


@dataclass(slots=True)
class Position:
    owner: str
    feed_id: FeedId
    quantity: Decimal
    average_cost: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class Valuation:
    """One position marked at one price, and the owner's totals per currency at that moment."""

    owner: str
    feed_id: FeedId
    time_us: int
    position: dict[str, Any]
    totals: dict[str, dict[str, Any]]


class PortfolioBook:
    def __init__(self, hub: Hub, day_change: Callable[[PriceUpdate], Decimal | None] | None = None) -> None:
        self.hub = hub
        self.day_change = day_change
        """The price's change since the previous close, where known (the day's PnL is then ``quantity x`` it)."""
        self.positions: dict[tuple[str, FeedId], Position] = {}
        self._holders: dict[FeedId, list[Position]] = {}
        self._marks: dict[tuple[str, FeedId], dict[str, Any]] = {}
        self.dirty: set[tuple[str, FeedId]] = set()
        self.valuations = 0

    def set(self, owner: str, feed_id: FeedId, quantity: Decimal, average_cost: Decimal, currency: str) -> Position:
        """Set (or with a zero quantity, close) a position; ``ValueError`` for a negative cost or no currency."""
        if average_cost < 0:
            raise ValueError(f"\"average_cost\" must not be negative, got {average_cost}")
        if not currency or not currency.isalpha() or len(currency) > 8:
            raise ValueError(f"\"currency\" must be a currency code such as INR or USD, got {currency!r}")
        key = (owner, feed_id)
        old = self.positions.pop(key, None)
        if old is not None:
            self._holders[feed_id].remove(old)
        self._marks.pop(key, None)
        position = Position(owner, feed_id, quantity, average_cost, currency.upper())
        if quantity:
            self.positions[key] = position
            self._holders.setdefault(feed_id, []).append(position)
        self.dirty.add(key)
        latest = self.hub.latest.get(feed_id)
        if quantity and latest is not None:  # valued at once: its owner's connections need not wait for a tick
            self._marks[key] = self._mark(position, latest)
            valuation = self.valuation(owner, feed_id, latest.publish_time_us)
            if valuation is not None:
                self.hub.publish_event(portfolio_topic(owner, feed_id), valuation)
        return position

    def of(self, owner: str) -> list[Position]:
        return [p for p in self.positions.values() if p.owner == owner]

    def _mark(self, position: Position, update: PriceUpdate) -> dict[str, Any]:
        self.valuations += 1
        price = price_of(update)
        value = position.quantity * price
        cost = position.quantity * position.average_cost
        pnl = value - cost
        change = None if self.day_change is None else self.day_change(update)
        return {"quantity": position.quantity, "average_cost": position.average_cost,
                "currency": position.currency, "price": price, "current_value": money(value),
                "cost_basis": money(cost), "unrealised_pnl": money(pnl), "unrealised_pnl_percent": percent(pnl, cost),
                "day_pnl": None if change is None else money(position.quantity * change)}

    def totals(self, owner: str) -> dict[str, dict[str, Any]]:
        """Per currency: the marked positions' value, cost, PnL and PnL percent (to the cent, from exact sums)."""
        sums: dict[str, list[Decimal]] = {}
        for position in self.of(owner):
            mark = self._marks.get((owner, position.feed_id))
            if mark is None:
                continue
            value = position.quantity * mark["price"]
            cost = position.quantity * position.average_cost
            acc = sums.setdefault(position.currency, [Decimal(0), Decimal(0)])
            acc[0] += value
            acc[1] += cost
        return {currency: {"current_value": money(value), "cost_basis": money(cost),
                           "unrealised_pnl": money(value - cost), "unrealised_pnl_percent": percent(value - cost, cost)}
                for currency, (value, cost) in sorted(sums.items())}

    def valuation(self, owner: str, feed_id: FeedId, time_us: int) -> Valuation | None:
        mark = self._marks.get((owner, feed_id))
        return None if mark is None else Valuation(owner, feed_id, time_us, mark, self.totals(owner))

    def add_updates(self, updates: list[PriceUpdate]) -> None:
        """The hub listener: mark each held feed's positions once per tick and publish each owner's valuation."""
        if not self._holders:
            return
        marked: dict[tuple[str, FeedId], int] = {}
        for update in updates:
            for position in self._holders.get(update.feed_id, ()):
                key = (position.owner, position.feed_id)
                self._marks[key] = self._mark(position, update)
                marked[key] = update.publish_time_us
        for (owner, feed_id), time_us in marked.items():
            valuation = self.valuation(owner, feed_id, time_us)
            if valuation is not None:
                self.hub.publish_event(portfolio_topic(owner, feed_id), valuation)

    def take_dirty(self) -> tuple[list[Position], list[tuple[str, FeedId]]]:
        """Positions to save, and (owner, feed) pairs whose position was closed."""
        keys, self.dirty = self.dirty, set()
        return [self.positions[k] for k in keys if k in self.positions], [k for k in keys if k not in self.positions]

    def restore(self, positions: list[Position]) -> None:
        for position in positions:
            key = (position.owner, position.feed_id)
            self.positions[key] = position
            self._holders.setdefault(position.feed_id, []).append(position)
            latest = self.hub.latest.get(position.feed_id)
            if latest is not None:
                self._marks[key] = self._mark(position, latest)

    def status(self) -> dict[str, object]:
        return {"positions": len(self.positions), "valuations": self.valuations}
