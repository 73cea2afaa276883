"""Backoff (the Pyth Lazer client's numbers) and the freshness filter behind de-duplication."""

from __future__ import annotations

import random
from typing import Any

import pytest

from pricefeed.resilience import Backoff, Freshness, FreshnessFilter


def test_nominal_delays_grow_by_half_from_half_a_second_to_a_minute() -> None:
    backoff = Backoff(jitter=0.0)
    delays = [backoff.next_delay() for _ in range(16)]
    assert delays[:5] == pytest.approx([0.5, 0.75, 1.125, 1.6875, 2.53125])
    assert max(delays) == 60.0
    assert delays[-1] == 60.0


def test_jitter_stays_within_half_either_side_and_never_above_the_cap() -> None:
    backoff = Backoff(rng=random.Random(3))
    for _ in range(200):
        low, high = backoff.bounds()
        nominal = backoff.nominal_s
        delay = backoff.next_delay()
        assert nominal * 0.5 <= low <= delay <= high <= 60.0
        assert high == min(60.0, nominal * 1.5)


def test_jitter_actually_spreads_delays() -> None:
    delays = {Backoff(rng=random.Random(seed)).next_delay() for seed in range(20)}
    assert len(delays) == 20
    assert all(0.25 <= d <= 0.75 for d in delays)


def test_a_stable_connection_resets_the_backoff_a_short_one_does_not() -> None:
    backoff = Backoff(jitter=0.0, stable_after_s=10.0)
    for _ in range(5):
        backoff.next_delay()
    backoff.connection_ended(lived_s=2.0)
    assert backoff.next_delay() == pytest.approx(0.5 * 1.5**5)
    backoff.connection_ended(lived_s=10.0)
    assert backoff.next_delay() == 0.5


@pytest.mark.parametrize("kwargs", [{"initial_s": -1}, {"factor": 0.5}, {"cap_s": 0.1}, {"jitter": 1.0}])
def test_nonsense_settings_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)


def test_freshness_lets_each_update_through_once_and_in_order() -> None:
    fresh: FreshnessFilter[str] = FreshnessFilter()
    assert fresh.check("btc", (100, 7)) is Freshness.FRESH
    assert fresh.check("btc", (100, 7)) is Freshness.DUPLICATE
    assert fresh.check("btc", (99, 9)) is Freshness.STALE
    assert fresh.check("btc", (100, 6)) is Freshness.STALE
    assert fresh.check("btc", (100, 8)) is Freshness.FRESH
    assert fresh.newest("btc") == (100, 8)


def test_freshness_is_per_key() -> None:
    fresh: FreshnessFilter[str] = FreshnessFilter()
    assert fresh.check("btc", (5,)) is Freshness.FRESH
    assert fresh.check("eth", (1,)) is Freshness.FRESH
    assert fresh.newest("sol") is None


def test_a_lagging_copy_of_a_delivered_update_is_a_duplicate_not_out_of_order() -> None:
    fresh: FreshnessFilter[str] = FreshnessFilter(memory=3)
    for slot in (1, 2, 3):
        assert fresh.check("btc", (slot,)) is Freshness.FRESH
    assert fresh.check("btc", (2,)) is Freshness.DUPLICATE
    assert fresh.check("btc", (0,)) is Freshness.STALE  # never delivered
    fresh.check("btc", (4,))
    assert fresh.check("btc", (1,)) is Freshness.STALE  # beyond memory: older than everything remembered
