from __future__ import annotations

import pytest

from pricefeed.faces.simple_ws import iso_time
from pricefeed.model import parse_feed_id, scaled

BTC = "e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43"


@pytest.mark.parametrize("given", [BTC, "0x" + BTC, "0X" + BTC, BTC.upper(), "0x" + BTC.upper()])
def test_feed_ids_are_accepted_in_any_form_and_normalised(given: str) -> None:
    assert parse_feed_id(given) == BTC


@pytest.mark.parametrize("given", ["", "0x", BTC[:-1], BTC + "0", "g" * 64, "0x" + "g" * 64, " " + BTC, 42, None])
def test_malformed_feed_ids_are_refused(given: object) -> None:
    with pytest.raises(ValueError):
        parse_feed_id(given)


@pytest.mark.parametrize(("mantissa", "expo", "value"), [
    (6163088000000, -8, 61630.88), (99964242, -8, 0.99964242), (108123, -5, 1.08123), (5, 2, 500.0),
    (-250, -2, -2.5), (0, -8, 0.0)])
def test_scaled_is_the_nearest_float_to_the_exact_decimal(mantissa: int, expo: int, value: float) -> None:
    assert scaled(mantissa, expo) == value


def test_iso_time_has_milliseconds_and_z() -> None:
    assert iso_time(1_714_748_301_123_456) == "2024-05-03T14:58:21.123Z"
    assert iso_time(1_672_574_400_000_000) == "2023-01-01T12:00:00.000Z"
