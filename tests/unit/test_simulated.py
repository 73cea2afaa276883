from __future__ import annotations

from pricefeed.catalog import KNOWN_FEEDS
from pricefeed.pipeline import local_pipeline
from pricefeed.sources.simulated import SimulatedMarket


def prices(seed: int, ticks: int, feeds: int = 13) -> list[list[int]]:
    sim = SimulatedMarket(local_pipeline().ingest, seed=seed, feed_count=feeds)
    return [[u.price for u in sim.tick()] for _ in range(ticks)]


def test_same_seed_same_walk_other_seed_other_walk() -> None:
    assert prices(42, 50) == prices(42, 50)
    assert prices(42, 50) != prices(43, 50)


def test_every_feed_is_real_and_says_it_is_simulated() -> None:
    sim = SimulatedMarket(local_pipeline().ingest, seed=1)
    assert [f.id for f in sim.feeds] == [k.id for k in KNOWN_FEEDS]
    for feed in sim.feeds:
        assert feed.simulated and feed.attributes["simulated"] == "true"
        assert feed.attributes["description"].startswith("SIMULATED ")
        assert list(feed.attributes) == sorted(feed.attributes)
    assert {f.asset_type for f in sim.feeds} == {"Crypto", "FX", "Equity"}


def test_updates_are_plausible_pyth_prices() -> None:
    sim = SimulatedMarket(local_pipeline().ingest, seed=3, interval_s=0.4)
    first, second = sim.tick(), sim.tick()
    for a, b in zip(first, second, strict=True):
        assert a.feed_id == b.feed_id
        assert b.publish_time_us > a.publish_time_us and b.prev_publish_time_us == a.publish_time_us
        assert 0 < b.conf < b.price // 100
        assert abs(b.price - a.price) < a.price // 50  # one slot moves a price by well under 2 %
        assert b.slot == a.slot + 1  # type: ignore[operator]
    usdc = next(u for u in second if u.feed_id.startswith("eaa020c6"))
    assert abs(usdc.price - 100_000_000) < 1_000_000


def test_thousands_of_feeds_for_load_tests() -> None:
    sim = SimulatedMarket(local_pipeline().ingest, seed=1, feed_count=5000)
    updates = sim.tick()
    assert len(updates) == len({u.feed_id for u in updates}) == 5000
    assert sim.feeds[-1].symbol == "Crypto.SIM4999/USD"
