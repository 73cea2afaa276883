"""Positions per owner, marked to market on every tick with Decimal arithmetic (no float drift).

A position is a symbol's quantity (fractional allowed), its average cost and
the currency both are in. On each accepted price of a held feed the book
values every owner's position once and publishes it on the derived topic
``portfolio:<owner>:<feed id>``: current value, cost basis, unrealised PnL in
value and percent, the day's PnL (against the previous close, where the day
is known), the PnL realised so far, the owner's totals per currency, and the
total in the base currency (``--base-currency``), converted with the rates of
:mod:`.fx`, naming each rate used, or null with the reason when a rate is
missing. Money is rounded to the cent (half up) only when reported;
percentages to two decimals.

Trades (``trade``) follow the average-cost method: buying more (or selling
more short) moves the average cost to the quantity-weighted mean of the old
cost and the trade's price; reducing the position realises
``closed quantity x (price - average cost)`` (the other way round for a
short) and leaves the average cost as it was; a trade through zero closes
the old position and opens the rest at the trade's price. A position closed
to zero is kept while it has realised PnL, which is persisted with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

from .fx import FxRates, Rate
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
    realised_pnl: Decimal = Decimal(0)
    """PnL realised by the trades that reduced the position (average-cost method), in its currency."""


@dataclass(frozen=True, slots=True)
class Valuation:
    """One position marked at one price, and the owner's totals per currency at that moment."""

    owner: str
    feed_id: FeedId
    time_us: int
    position: dict[str, Any]
    totals: dict[str, dict[str, Any]]
    base_total: dict[str, Any]
    """The totals in the base currency, with the rates used (amounts null, with a reason, if one is missing)."""


def rate_fields(rate: Rate) -> dict[str, Any]:
    """A rate as a message names it: pair, value, source (``feed`` or ``configured``) and, for a feed, the
    feed's symbol and its price's time."""
    when = None if rate.time_us is None else datetime.fromtimestamp(rate.time_us / 1e6, UTC).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")
    return {"pair": rate.pair, "value": rate.value, "source": rate.source, "symbol": rate.symbol, "time": when}


class PortfolioBook:
    def __init__(self, hub: Hub, day_change: Callable[[PriceUpdate], Decimal | None] | None = None,
                 base_currency: str = "USD", rates: FxRates | None = None) -> None:
        self.hub = hub
        self.day_change = day_change
        self.base_currency = base_currency.upper()
        self.rates = rates
        """Where the base total's rates come from (None: only a single-currency portfolio has a base total)."""
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
        old = self._existing(owner, feed_id, currency)
        realised = Decimal(0) if old is None else old.realised_pnl
        return self._put(Position(owner, feed_id, quantity, average_cost, currency.upper(), realised))

    def _existing(self, owner: str, feed_id: FeedId, currency: str) -> Position | None:
        """The owner's position (open or closed with realised PnL); ``ValueError`` for a currency other than
        its own (its realised PnL is in its own)."""
        if not currency or not currency.isalpha() or len(currency) > 8:
            raise ValueError(f"\"currency\" must be a currency code such as INR or USD, got {currency!r}")
        old = self.positions.get((owner, feed_id))
        if old is not None and old.currency != currency.upper():
            raise ValueError(f"the position is in {old.currency}, not {currency.upper()}")
        return old

    def trade(self, owner: str, feed_id: FeedId, quantity: Decimal, price: Decimal | None,
              currency: str) -> tuple[Position, Decimal]:
        """Buy (``quantity`` > 0) or sell (< 0) at ``price`` (None: the latest price), average-cost method: the
        position after it and the PnL it realised. ``ValueError`` saying what is wrong."""
        if not quantity:
            raise ValueError("\"quantity\" must not be zero: positive buys, negative sells")
        if price is None:
            latest = self.hub.latest.get(feed_id)
            if latest is None:
                raise ValueError("no price is known yet: give the trade's \"price\"")
            price = price_of(latest)
        if price < 0:
            raise ValueError(f"\"price\" must not be negative, got {price}")
        old = self._existing(owner, feed_id, currency)
        held = Decimal(0) if old is None else old.quantity
        cost = Decimal(0) if old is None else old.average_cost
        realised = Decimal(0)
        if not held or (held > 0) == (quantity > 0):  # opening or adding: the average cost moves
            cost = (held * cost + quantity * price) / (held + quantity)
        else:  # reducing: realise on the closed part at the average cost
            closed = min(abs(quantity), abs(held))
            realised = closed * (price - cost) * (1 if held > 0 else -1)
            if abs(quantity) > abs(held):  # through zero: the rest opens at the trade's price
                cost = price
        total_realised = realised + (Decimal(0) if old is None else old.realised_pnl)
        position = self._put(Position(owner, feed_id, held + quantity, cost, currency.upper(), total_realised))
        return position, realised

    def _put(self, position: Position) -> Position:
        owner, feed_id = position.owner, position.feed_id
        key = (owner, feed_id)
        old = self.positions.pop(key, None)
        if old is not None and old in self._holders.get(feed_id, ()):
            self._holders[feed_id].remove(old)
        self._marks.pop(key, None)
        if position.quantity or position.realised_pnl:  # a closed position is kept for its realised PnL
            self.positions[key] = position
        if position.quantity:
            self._holders.setdefault(feed_id, []).append(position)
        self.dirty.add(key)
        latest = self.hub.latest.get(feed_id)
        if position.quantity and latest is not None:  # valued at once: its owner's connections need not wait
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
                "day_pnl": None if change is None else money(position.quantity * change),
                "realised_pnl": money(position.realised_pnl)}

    def _sums(self, owner: str) -> dict[str, list[Decimal]]:
        """Per currency, exact: the marked positions' value and cost, and the realised PnL of all."""
        sums: dict[str, list[Decimal]] = {}
        for position in self.of(owner):
            acc = sums.setdefault(position.currency, [Decimal(0), Decimal(0), Decimal(0)])
            acc[2] += position.realised_pnl
            mark = self._marks.get((owner, position.feed_id))
            if mark is not None:
                acc[0] += position.quantity * mark["price"]
                acc[1] += position.quantity * position.average_cost
        return sums

    @staticmethod
    def _total(value: Decimal, cost: Decimal, realised: Decimal) -> dict[str, Any]:
        return {"current_value": money(value), "cost_basis": money(cost), "unrealised_pnl": money(value - cost),
                "unrealised_pnl_percent": percent(value - cost, cost), "realised_pnl": money(realised)}

    def totals(self, owner: str) -> dict[str, dict[str, Any]]:
        """Per currency: the marked positions' value, cost, PnL and PnL percent, and the realised PnL (to the
        cent, from exact sums)."""
        return {currency: self._total(*acc) for currency, acc in sorted(self._sums(owner).items())}

    def base_total(self, owner: str) -> dict[str, Any]:
        """The totals in the base currency, converted exactly before rounding, with every rate used; with a
        currency that has no rate, the amounts are null and ``reason`` says which rate is missing."""
        base = self.base_currency
        total = [Decimal(0), Decimal(0), Decimal(0)]
        rates: list[dict[str, Any]] = []
        missing: list[str] = []
        for currency, acc in sorted(self._sums(owner).items()):
            rate = None
            if currency != base:
                rate = None if self.rates is None else self.rates.rate(currency, base)
                if rate is None:
                    missing.append(currency)
                    continue
                rates.append(rate_fields(rate))
            for i, amount in enumerate(acc):
                total[i] += amount if rate is None else rate.convert(amount, currency)
        if missing:
            pairs = ", ".join(f"{base}/{currency}" for currency in missing)
            reason = (f"no rate for {pairs}: no fresh FX feed has it and none is configured "
                      f"(e.g. --fx-rate {base}{missing[0]}=...)")
            return {"currency": base, "current_value": None, "cost_basis": None, "unrealised_pnl": None,
                    "unrealised_pnl_percent": None, "realised_pnl": None, "rates": rates, "reason": reason}
        return {"currency": base, **self._total(*total), "rates": rates, "reason": None}

    def valuation(self, owner: str, feed_id: FeedId, time_us: int) -> Valuation | None:
        mark = self._marks.get((owner, feed_id))
        return None if mark is None else Valuation(owner, feed_id, time_us, mark, self.totals(owner),
                                                   self.base_total(owner))

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
            if not position.quantity:
                continue
            self._holders.setdefault(position.feed_id, []).append(position)
            latest = self.hub.latest.get(position.feed_id)
            if latest is not None:
                self._marks[key] = self._mark(position, latest)

    def status(self) -> dict[str, object]:
        return {"positions": len(self.positions), "valuations": self.valuations}
