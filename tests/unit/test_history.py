from __future__ import annotations

from pricefeed.history import PriceHistory
from pricefeed.model import PriceUpdate

FEED = "a" * 64


def update(price: int, publish_time_us: int) -> PriceUpdate:
    return PriceUpdate(feed_id=FEED, price=price, conf=1, expo=-8, publish_time_us=publish_time_us,
                       ema_price=price, ema_conf=1)


def test_only_the_first_update_of_each_second_is_kept_and_found() -> None:
    history = PriceHistory(keep_s=600)
    # 100 updates per second for 5 seconds, from t = 1000 s.
    history.add([update(second * 1000 + i, second * 1_000_000 + i * 10_000) for second in range(1000, 1005)
                 for i in range(100)])
    assert history.size() == 5
    found = history.first_at_or_after(FEED, 1002)
    assert found is not None and found.price == 1002 * 1000
    assert history.first_at_or_after(FEED, 1005) is None  # not yet


def test_a_time_older_than_the_history_is_a_miss() -> None:
    history = PriceHistory(keep_s=10)
    history.add([update(second, second * 1_000_000) for second in range(1000, 1100)])
    assert history.size() == 11  # 1089 .. 1099
    assert history.first_at_or_after(FEED, 1050) is None
    found = history.first_at_or_after(FEED, 1090)
    assert found is not None and found.price == 1090
