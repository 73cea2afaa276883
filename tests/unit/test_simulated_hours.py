"""The simulated market's equities trade in their market hours; its slots are on the slot clock."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from pricefeed.pipeline import local_pipeline
from pricefeed.slots import SlotClock
from pricefeed.sources.simulated import SimulatedMarket

AAPL = "49f6b65cb1de6b10eaf75e7c03ca029c306d0357e91b5311b175084a5ad55688"
SATURDAY = datetime(2025, 1, 11, 15, 0, tzinfo=UTC)
MONDAY_OPEN = datetime(2025, 1, 13, 15, 0, tzinfo=UTC)  # 10:00 in New York


def test_an_equity_is_left_out_while_its_market_is_closed() -> None:
    sim = SimulatedMarket(local_pipeline().ingest, seed=1)
    first = {u.feed_id: u for u in sim.tick()}  # the first tick prices every feed
    closed = {u.feed_id for u in sim.tick(SATURDAY)}
    assert AAPL in first and AAPL not in closed and len(closed) == len(first) - 1
    reopened = {u.feed_id: u for u in sim.tick(MONDAY_OPEN)}
    assert reopened[AAPL].prev_publish_time_us == first[AAPL].publish_time_us  # the last one published


def test_slots_start_on_the_slot_clock_and_count_ticks() -> None:
    sim = SimulatedMarket(local_pipeline().ingest, seed=1)
    before = SlotClock().slot_at(time.time())
    a, b = sim.tick()[0], sim.tick()[0]
    assert a.slot is not None and before <= a.slot <= SlotClock().now()
    assert b.slot == a.slot + 1
