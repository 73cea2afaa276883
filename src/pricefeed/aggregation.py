"""Pyth's on-chain aggregation, exactly: publisher quotes in, aggregate price, confidence and EMA out.

Everything here is pure integer arithmetic that reproduces the oracle program
bit for bit (``upd_aggregate.h``, ``price_model.c`` and ``pd.h`` of
pyth-client; see ``reference/pythd.md`` section 6):

* :func:`aggregate` turns the stored quotes into a price and confidence: three
  votes per valid trading quote, the median, and the wider of the distances to
  the 25th and 75th percentile.
* :func:`update_ema` is the "twap"/"twac" exponential average, computed with
  Pyth's own decimal type (:class:`Decimal`), whose truncations are part of the
  result (a constant price drifts by about 1e-8).
* :class:`PriceAccount` is the state of one price account and the update rule
  that drives both: aggregate on the first update of a new slot, then store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .model import Status

MAX_LATENCY_SLOTS = 25
"""``PC_MAX_SEND_LATENCY``: a quote older than this many slots does not vote."""
MAX_CONF_DIVISOR = 3
"""A quote with ``conf > |price| / 3`` is stored as ``ignored``."""
EMA_MAX_DIFF_SLOTS = 4145
"""``PD_EMA_MAX_DIFF``: after a longer gap the EMA restarts from the current value."""
EMA_DECAY = -117065
"""``PD_EMA_DECAY`` at exponent -9: ``1e9 * -ln(2) / 5921``, a half-life of 5921 slots."""

_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


# -- the aggregate -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Quote:
    """A publisher's price as stored in the price account (``latest`` / ``agg`` of a component)."""

    price: int = 0
    conf: int = 0
    status: Status = Status.UNKNOWN
    pub_slot: int = 0


@dataclass(frozen=True, slots=True)
class Aggregate:
    """What :func:`aggregate` found: ``price``/``conf`` are None when the status is unknown."""

    status: Status
    num_qt: int
    price: int | None = None
    conf: int | None = None


def stored_status(price: int, conf: int, status: Status) -> Status:
    """The status the program stores for a quote: ``ignored`` when the interval is too wide."""
    return Status.IGNORED if conf > abs(price) // MAX_CONF_DIVISOR else status


def votes(quotes: Iterable[Quote], slot: int, max_latency: int = MAX_LATENCY_SLOTS) -> list[int]:
    """Three votes ``p-c, p, p+c`` for every fresh trading quote with a positive, non-overflowing interval."""
    result: list[int] = []
    for q in quotes:
        if (q.status == Status.TRADING and q.conf > 0 and _I64_MIN + q.conf <= q.price <= _I64_MAX - q.conf
                and slot - q.pub_slot <= max_latency):
            result += (q.price - q.conf, q.price, q.price + q.conf)
    return result


def percentiles(vote_list: list[int]) -> tuple[int, int, int]:
    """The 25th, 50th and 75th percentile as ``price_model_core`` picks them (n >= 1)."""
    v = sorted(vote_list)
    n = len(v)
    p25 = v[n >> 2]
    # avg_2_int64 is floor((x + y) / 2); Python's >> floors the same way.
    p50 = v[n >> 1] if n & 1 else (v[(n >> 1) - 1] + v[n >> 1]) >> 1
    p75 = v[n - 1 - (n >> 2)]
    return p25, p50, p75


def aggregate(quotes: Iterable[Quote], slot: int, min_pub: int = 1,
              max_latency: int = MAX_LATENCY_SLOTS) -> Aggregate:
    """The aggregate of ``quotes`` at ``slot`` (``upd_aggregate`` without the bookkeeping)."""
    vote_list = votes(quotes, slot, max_latency)
    num_qt = len(vote_list) // 3
    if num_qt == 0 or num_qt < min_pub:
        return Aggregate(Status.UNKNOWN, num_qt)
    p25, p50, p75 = percentiles(vote_list)
    conf = max(p50 - p25, p75 - p50)
    if conf <= 0:
        return Aggregate(Status.UNKNOWN, num_qt)
    return Aggregate(Status.TRADING, num_qt, p50, conf)


# -- Pyth's decimal arithmetic (pd.h) -------------------------------------------


def _trunc_div(a: int, b: int) -> int:
    """C integer division: rounds toward zero."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def _wrap64(v: int) -> int:
    """Two's-complement int64, as the C code overflows (only reachable with extreme inputs)."""
    return (v + 2**63) % 2**64 - 2**63


@dataclass(frozen=True, slots=True)
class Decimal:
    """Pyth's ``pd_t``: ``v * 10**e``, with ``|v|`` kept below 2**28 by truncating."""

    v: int
    e: int

    @classmethod
    def scaled(cls, v: int, e: int) -> Decimal:
        """``pd_scale``: drop digits (truncating) until ``|v| < 2**28``."""
        neg = v < 0
        v = -v if neg else v
        while v >= 1 << 28:
            v //= 10
            e += 1
        return cls(-v if neg else v, e)

    def __mul__(self, other: Decimal) -> Decimal:
        return Decimal.scaled(_wrap64(self.v * other.v), self.e + other.e)

    def __truediv__(self, other: Decimal) -> Decimal:
        if self.v == 0:
            return self
        v1, v2, m = abs(self.v), abs(other.v), 0
        while v1 & 0xFFFFFFFFF0000000 == 0:  # pre-scale the numerator to at least 2**28
            v1 *= 10
            m += 1
        v = _wrap64(v1 * 10**9) // v2
        if (self.v < 0) != (other.v < 0):
            v = -v
        return Decimal.scaled(v, self.e - other.e - m - 9)

    def __add__(self, other: Decimal) -> Decimal:
        d = self.e - other.e
        if d == 0:
            return Decimal.scaled(self.v + other.v, self.e)
        big, small = (self, other) if d > 0 else (other, self)
        d = abs(d)
        if d < 9:  # align the larger exponent down to the smaller one
            return Decimal.scaled(_wrap64(big.v * 10**d) + small.v, small.e)
        if d < 18 + 9:  # meet in the middle: the larger goes down 9, the smaller up d - 9
            return Decimal.scaled(_wrap64(big.v * 10**9) + _trunc_div(small.v, 10 ** (d - 9)), big.e - 9)
        return Decimal.scaled(big.v, big.e)

    def adjusted(self, expo: int) -> int:
        """``pd_adjust``: the mantissa at exponent ``expo`` (C truncation)."""
        d = self.e - expo
        if d > 0:
            return _wrap64(self.v * 10**d)
        if d < 0:
            return _trunc_div(self.v, 10**-d)
        return self.v

    def packed(self) -> int | None:
        """``pd_store``: ``(v << 5) | (e & 31)`` with a 59-bit v and 5-bit e; None if it does not fit."""
        v, e = self.v, self.e
        while v < -(1 << 58) or v > (1 << 58) - 1:
            v = _trunc_div(v, 10)
            e += 1
        while e < -16:
            v = _trunc_div(v, 10)
            e += 1
        while e > 15:
            v *= 10
            if v < -(1 << 58) or v > (1 << 58) - 1:
                return None
            e -= 1
        return _wrap64((v << 5) | (e & 31))

    @classmethod
    def unpacked(cls, n: int) -> Decimal:
        """``pd_load``: the inverse of :meth:`packed` (then scaled)."""
        e = n & 31
        return cls.scaled(n >> 5, e - 32 if e & 16 else e)


_ONE = Decimal(100_000_000, -8)


@dataclass(frozen=True, slots=True)
class Ema:
    """One of Pyth's EMAs (``pc_ema_t``): the value in price units, numerator and denominator packed."""

    val: int = 0
    numer: int = 0
    denom: int = 0


def update_ema(ema: Ema, value: int, conf: int, nslot: int, expo: int) -> Ema:
    """``upd_ema``: fold ``value`` (weighted by ``1/conf``) into ``ema`` after ``nslot`` slots."""
    val = Decimal.scaled(value, expo)
    conf_d = Decimal.scaled(conf, expo)
    weight = _ONE / conf_d if conf_d.v else _ONE
    if nslot > EMA_MAX_DIFF_SLOTS:
        numer, denom = val * weight, weight  # start over from the current value
    else:
        # A linear decay 1 + nslot * ln(2)/5921, not exp(): that is what the program computes.
        decay = Decimal(EMA_DECAY, -9) * Decimal(nslot, 0) + _ONE
        numer = Decimal.unpacked(ema.numer) * decay + val * weight
        denom = Decimal.unpacked(ema.denom) * decay + weight
        val = numer / denom
    packed_numer, packed_denom = numer.packed(), denom.packed()
    if packed_numer is None or packed_denom is None:  # the program keeps the old state then
        return Ema(val.adjusted(expo), ema.numer, ema.denom)
    return Ema(val.adjusted(expo), packed_numer, packed_denom)


def update_twap(twap: Ema, twac: Ema, price: int, conf: int, expo: int, nslot: int) -> tuple[Ema, Ema]:
    """``upd_twap``: the price EMA and the confidence EMA, both weighted by ``1/conf``."""
    return update_ema(twap, price, conf, nslot, expo), update_ema(twac, conf, conf, nslot, expo)


# -- the price account --------------------------------------------------------


@dataclass(slots=True)
class Component:
    """One permitted publisher of a price account: its newest quote and the one the last aggregate used."""

    publisher: str
    latest: Quote = Quote()
    agg: Quote = Quote()


class QuoteRejected(ValueError):
    """The program refuses the quote (``InvalidArgument``): a publishing slot from the future."""


@dataclass(slots=True)
class PriceAccount:
    """A Pyth price account and its update rule (``upd_price`` + ``upd_aggregate`` + ``upd_twap``).

    ``update`` stores a publisher's quote; the first update in a new slot first
    aggregates the quotes stored so far, so a quote shows in the aggregate one
    slot later (the lag pythd's clients see).
    """

    expo: int
    min_pub: int = 1
    max_latency: int = MAX_LATENCY_SLOTS
    components: dict[str, Component] = field(default_factory=dict)
    status: Status = Status.UNKNOWN
    price: int = 0
    conf: int = 0
    pub_slot: int = 0
    """Slot of the last aggregation attempt (``agg.pub_slot``)."""
    valid_slot: int = 0
    """Slot of the attempt before it."""
    timestamp_us: int = 0
    num_qt: int = 0
    prev_slot: int = 0
    prev_price: int = 0
    prev_conf: int = 0
    prev_timestamp_us: int = 0
    twap: Ema = Ema()
    twac: Ema = Ema()

    def permit(self, publishers: Iterable[str]) -> None:
        """Set the permitted publishers; a publisher that stays keeps its quotes."""
        wanted = list(dict.fromkeys(publishers))
        self.components = {key: self.components.get(key) or Component(key) for key in wanted}

    def update(self, publisher: str, price: int, conf: int, status: Status, pub_slot: int,
               slot: int, timestamp_us: int) -> bool:
        """Store ``publisher``'s quote at clock ``slot``; True if this update ran an aggregation first.

        ``KeyError`` if the publisher is not permitted, :class:`QuoteRejected` for a future slot.
        A second quote of the same publisher in the same slot replaces the first (the last value
        wins, as pyth-agent's batching does) rather than failing like a repeated on-chain slot.
        """
        component = self.components[publisher]
        if pub_slot > slot:
            raise QuoteRejected(f"publishing slot {pub_slot} is in the future (clock slot {slot})")
        if pub_slot < component.latest.pub_slot:
            raise QuoteRejected(f"publishing slot {pub_slot} is older than the stored {component.latest.pub_slot}")
        aggregated = slot > self.pub_slot
        if aggregated:
            self.aggregate(slot, timestamp_us)
        component.latest = Quote(price, conf, stored_status(price, conf, status), pub_slot)
        return aggregated

    def aggregate(self, slot: int, timestamp_us: int) -> bool:
        """Aggregate the stored quotes at ``slot``; True (and the EMAs move) if the result is trading."""
        if self.status == Status.TRADING:
            self.prev_slot, self.prev_price, self.prev_conf = self.pub_slot, self.price, self.conf
            self.prev_timestamp_us = self.timestamp_us
        self.valid_slot, self.pub_slot, self.timestamp_us = self.pub_slot, slot, timestamp_us
        for component in self.components.values():
            component.agg = component.latest
        result = aggregate((c.agg for c in self.components.values()), slot, self.min_pub, self.max_latency)
        self.num_qt, self.status = result.num_qt, result.status
        if result.price is None or result.conf is None:
            return False  # price and conf stay as they were
        self.price, self.conf = result.price, result.conf
        self.twap, self.twac = update_twap(self.twap, self.twac, self.price, self.conf, self.expo,
                                           slot - self.prev_slot)
        return True
