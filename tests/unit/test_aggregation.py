"""Pyth's aggregation and EMA against the program's own test vectors, and the price-account update rule."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from pricefeed.aggregation import (
    Decimal,
    Ema,
    PriceAccount,
    Quote,
    QuoteRejected,
    aggregate,
    stored_status,
    update_twap,
)
from pricefeed.model import Status

VECTORS = Path(__file__).parent / "pyth_vectors"
"""pyth-client's ``program/rust/test_data`` (Apache-2.0): every file there is a case, whatever its name."""
AGGREGATION_CASES = sorted(VECTORS.glob("aggregation/*.json"))
EMA_CASES = sorted(VECTORS.glob("ema/*.csv"))
_STATUS = {0: Status.UNKNOWN, 1: Status.TRADING, 2: Status.HALTED, 3: Status.AUCTION, 4: Status.IGNORED}


def test_every_vector_has_its_result_and_there_are_vectors() -> None:
    assert AGGREGATION_CASES and EMA_CASES
    for suffix, cases, result in (("json", AGGREGATION_CASES, ".result"), ("csv", EMA_CASES, ".result")):
        inputs = {p.stem for p in cases}
        results = {p.stem for p in VECTORS.glob(f"{'aggregation' if suffix == 'json' else 'ema'}/*{result}")}
        assert inputs == results, f"{suffix} vectors without a result or results without a vector"


@pytest.mark.parametrize("case", AGGREGATION_CASES, ids=lambda p: p.stem)
def test_aggregation_vector(case: Path) -> None:
    """As ``test_aggregation.rs``: a zeroed price account whose aggregate was last published at slot 1000,
    each quote at 1000 + its ``slot_diff``, aggregated at 1001; the account's price, conf and status compared
    (a zeroed account keeps price and conf 0 when the result is unknown)."""
    given = json.loads(case.read_text())
    expected = json.loads(case.with_suffix(".result").read_text())
    account = PriceAccount(expo=given["exponent"], pub_slot=1000)
    account.permit(str(i) for i in range(len(given["quotes"])))
    for component, q in zip(account.components.values(), given["quotes"], strict=True):
        component.latest = Quote(q["price"], q["conf"], _STATUS[q["status"]], 1000 + q.get("slot_diff", 0))
    account.aggregate(1001, 1234)
    assert {"exponent": account.expo, "price": account.price, "conf": account.conf,
            "status": str(account.status)} == expected


def _rows(path: Path) -> list[dict[str, int]]:
    with path.open(encoding="utf-8-sig") as f:
        return [{k.strip(): int(v) for k, v in row.items()} for row in csv.DictReader(f)]


@pytest.mark.parametrize("negate", [False, True], ids=["as-written", "negated"])
@pytest.mark.parametrize("case", EMA_CASES, ids=lambda p: p.stem)
def test_ema_vector(case: Path, negate: bool) -> None:
    """As ``test_ema.rs`` (and ``test_ema_negated``, which negates every price and twap)."""
    sign = -1 if negate else 1
    twap, twac = Ema(), Ema()
    inputs, rows = _rows(case), _rows(case.with_suffix(".result"))
    assert len(rows) == len(inputs), "Mismatched CSV file lengths"
    for given, row in zip(inputs, rows, strict=True):
        twap, twac = update_twap(twap, twac, sign * given["price"], given["conf"], given["expo"], given["nslots"])
        assert (twap.val, twac.val) == (sign * row["twap"], row["twac"]), row


# -- worked examples of the reference -------------------------------------------


@pytest.mark.parametrize(("quotes", "price", "conf"), [
    ([(100, 10)], 100, 10),
    ([(100, 10), (200, 20)], 145, 55),
    ([(100, 10), (200, 20), (300, 30)], 200, 90),
    ([(100, 10), (200, 20), (300, 30), (400, 40)], 245, 85),
])
def test_worked_examples(quotes: list[tuple[int, int]], price: int, conf: int) -> None:
    result = aggregate([Quote(p, c, Status.TRADING, 1000) for p, c in quotes], 1001)
    assert (result.price, result.conf, result.status, result.num_qt) == (price, conf, Status.TRADING, len(quotes))


def test_staleness_boundary_is_25_slots() -> None:
    quote = [Quote(100, 10, Status.TRADING, 1000)]
    assert aggregate(quote, 1025).status == Status.TRADING
    late = aggregate(quote, 1026)
    assert (late.status, late.num_qt, late.price) == (Status.UNKNOWN, 0, None)


def test_only_trading_quotes_with_positive_conf_vote() -> None:
    quotes = [Quote(100, 10, Status.HALTED, 1000), Quote(100, 0, Status.TRADING, 1000),
              Quote(100, 10, Status.IGNORED, 1000)]
    assert aggregate(quotes, 1001).status == Status.UNKNOWN


def test_min_pub() -> None:
    quotes = [Quote(100, 10, Status.TRADING, 1000), Quote(110, 10, Status.TRADING, 1000)]
    assert aggregate(quotes, 1001, min_pub=3) == aggregate(quotes, 1001, min_pub=3)
    assert aggregate(quotes, 1001, min_pub=3).status == Status.UNKNOWN
    assert aggregate(quotes, 1001, min_pub=2).status == Status.TRADING


def test_wide_interval_is_stored_as_ignored() -> None:
    assert stored_status(300, 100, Status.TRADING) == Status.TRADING
    assert stored_status(300, 101, Status.TRADING) == Status.IGNORED
    assert stored_status(-300, 100, Status.TRADING) == Status.TRADING
    assert stored_status(0, 1, Status.TRADING) == Status.IGNORED


def test_decimal_pack_round_trip() -> None:
    for value in (Decimal(123456789, -16), Decimal(-5, 3), Decimal(0, 0), Decimal(268435455, 15)):
        packed = value.packed()
        assert packed is not None
        assert Decimal.unpacked(packed) == value


# -- the price account's update rule ----------------------------------------------


def account(*publishers: str, min_pub: int = 1) -> PriceAccount:
    acc = PriceAccount(expo=-3, min_pub=min_pub)
    acc.permit(publishers)
    return acc


def test_a_quote_shows_in_the_aggregate_one_slot_later() -> None:
    acc = account("A")
    assert acc.update("A", 42, 2, Status.TRADING, 10, 10, 1) is True  # aggregates the empty set first
    assert (acc.status, acc.price) == (Status.UNKNOWN, 0)
    acc.update("A", 81, 1, Status.TRADING, 11, 11, 2)
    assert (acc.status, acc.price, acc.conf, acc.num_qt) == (Status.TRADING, 42, 2, 1)
    assert (acc.valid_slot, acc.pub_slot) == (10, 11)
    assert [(c.agg.price, c.agg.pub_slot) for c in acc.components.values()] == [(42, 10)]
    assert [(c.latest.price, c.latest.pub_slot) for c in acc.components.values()] == [(81, 11)]


def test_only_the_first_update_of_a_slot_aggregates() -> None:
    acc = account("A", "B")
    acc.update("A", 100, 1, Status.TRADING, 5, 5, 0)
    assert acc.update("B", 200, 1, Status.TRADING, 6, 6, 0) is True
    assert acc.update("A", 300, 1, Status.TRADING, 6, 6, 0) is False
    assert acc.price == 100
    acc.update("B", 200, 1, Status.TRADING, 7, 7, 0)
    # 300±1 and 200±1 vote [199, 200, 201, 299, 300, 301]: the median is the floor of (201 + 299) / 2.
    assert (acc.price, acc.conf, acc.num_qt) == (250, 50, 2)


def test_prev_fields_keep_the_last_trading_aggregate() -> None:
    acc = account("A")
    acc.update("A", 100, 1, Status.TRADING, 1, 1, 10)
    acc.update("A", 110, 1, Status.TRADING, 2, 2, 20)  # agg 100 at slot 2
    acc.update("A", 120, 1, Status.TRADING, 3, 3, 30)  # agg 110 at slot 3, prev = 100 at slot 2
    assert (acc.price, acc.prev_price, acc.prev_slot, acc.prev_timestamp_us) == (110, 100, 2, 20)
    acc.update("A", 130, 1, Status.TRADING, 40, 40, 40)  # quote of slot 3 is stale at 40: unknown
    assert (acc.status, acc.price, acc.prev_price, acc.prev_slot, acc.num_qt) == (Status.UNKNOWN, 110, 110, 3, 0)


def test_twap_starts_at_the_first_aggregate() -> None:
    acc = account("A")
    acc.update("A", 100_000, 10, Status.TRADING, 5000, 5000, 0)
    acc.update("A", 100_000, 10, Status.TRADING, 5001, 5001, 0)
    assert (acc.twap.val, acc.twac.val) == (100_000, 10)


def test_unpermitted_publisher_and_future_slot_are_refused() -> None:
    acc = account("A")
    with pytest.raises(KeyError):
        acc.update("B", 1, 1, Status.TRADING, 1, 1, 0)
    with pytest.raises(QuoteRejected):
        acc.update("A", 1, 1, Status.TRADING, 2, 1, 0)
