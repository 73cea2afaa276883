"""Alert rules on scripted tick sequences: each kind fires exactly once per crossing (hysteresis), a firing reaches
only its owner's topic, and rules with their last trigger survive a restart of the store."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from pricefeed.alerts import AlertBook, AlertEvent, alerts_topic, parse_rule
from pricefeed.analytics.candles import CandleBook, parse_interval
from pricefeed.analytics.days import DayClock
from pricefeed.model import Feed, PriceUpdate
from pricefeed.pipeline import Pipeline, local_pipeline
from pricefeed.store.alert_state import AlertStore, AlertWriter

FEED = "ab" * 32
OTHER = "cd" * 32
T0 = 1_764_720_000_000_000  # 2025-12-03 00:00:00 UTC
S = 1_000_000
S1 = parse_interval("1s")


class Recorder:
    """A hub subscriber keeping each alert event it is handed: (time, ids that fired, their values)."""

    def __init__(self) -> None:
        self.codec = self
        self.face = "test"
        self.events: list[AlertEvent] = []

    def encode(self, topic: str, item: object) -> bytes:
        assert isinstance(item, AlertEvent)
        self.events.append(item)
        return orjson.dumps(item.alerts)

    def deliver(self, frames: dict[str, bytes]) -> None:
        pass

    def fired(self) -> list[tuple[int, float]]:
        """(seconds after T0, the triggering value) of each firing, in order."""
        return [((e.time_us - T0) // S, a["value"]) for e in self.events for a in e.alerts if a["triggered"]]


def setup() -> tuple[Pipeline, AlertBook]:
    pipeline = local_pipeline()
    schedule = {"schedule": "Asia/Kolkata;O,O,O,O,O,O,O;"}
    pipeline.ingest.add_feeds([Feed(FEED, "Equity.NSE.TEST/INR", -2, "test", schedule),
                               Feed(OTHER, "Equity.NSE.OTHER/INR", -2, "test", schedule)])
    candles = CandleBook(pipeline.hub, (S1,), history=10, day_of=DayClock(pipeline.hub.feeds).day_of,
                         clock=lambda: T0 / S)
    pipeline.hub.add_listener(candles.add)
    book = AlertBook(pipeline.hub, candles)
    pipeline.hub.add_listener(book.add_updates)
    return pipeline, book


async def feed(pipeline: Pipeline, ticks: list[tuple[float, float] | tuple[float, float, int]],
               feed_id: str = FEED) -> None:
    """(seconds, price[, day volume]) ticks, each in a pass of its own."""
    for item in ticks:
        seconds, price = item[0], item[1]
        volume = item[2] if len(item) > 2 else None  # type: ignore[misc]
        pipeline.ingest.publish(PriceUpdate(feed_id, round(price * 100), 0, -2, T0 + int(seconds * S),
                                            round(price * 100), 0, volume=volume, quantity=0))
        for _ in range(3):
            await asyncio.sleep(0)


async def run_rule(rule: dict[str, Any], ticks: list[Any]) -> list[tuple[int, float]]:
    pipeline, book = setup()
    recorder = Recorder()
    alert = book.create("alice", FEED, rule, T0)
    pipeline.hub.subscribe(alerts_topic("alice", FEED), recorder)
    await feed(pipeline, ticks)
    assert alert.triggers == len(recorder.fired())
    return recorder.fired()


async def test_price_above_fires_once_per_crossing_and_rearms_only_past_the_band() -> None:
    ticks = [(0, 99), (1, 100.2), (2, 100.5), (3, 99.8), (4, 100.3), (5, 99.4), (6, 100.1), (7, 100.4)]
    assert await run_rule({"type": "price_above", "level": 100, "hysteresis": 0.5}, ticks) == [(1, 100.2), (6, 100.1)]


async def test_price_below_fires_once_per_crossing_and_rearms_only_past_the_band() -> None:
    ticks = [(0, 101), (1, 99.9), (2, 99.5), (3, 100.2), (4, 99.7), (5, 100.6), (6, 100), (7, 99)]
    assert await run_rule({"type": "price_below", "level": 100, "hysteresis": 0.5}, ticks) == [(1, 99.9), (6, 100)]


async def test_price_crossing_fires_each_way_but_not_while_hovering() -> None:
    ticks = [(0, 99), (1, 100.1), (2, 99.9), (3, 100.2), (4, 99.95), (5, 100.6), (6, 99.7), (7, 100.3), (8, 99.2)]
    fired = await run_rule({"type": "price_crossing", "level": 100, "hysteresis": 0.5}, ticks)
    assert fired == [(1, 100.1), (6, 99.7)]


async def test_the_default_band_is_a_thousandth_of_the_level() -> None:
    ticks = [(0, 990), (1, 1000), (2, 999.5), (3, 1000), (4, 998.9), (5, 1000.5)]
    assert await run_rule({"type": "price_above", "level": 1000}, ticks) == [(1, 1000), (5, 1000.5)]


async def test_percent_move_within_a_window() -> None:
    ticks = [(0, 100), (1, 101), (2, 102), (3, 102.5), (4, 104.1), (5, 104.2), (30, 106), (31, 104.5),
             (32, 102.9)]
    fired = await run_rule({"type": "percent_move", "percent": 2, "window_s": 10, "hysteresis": 0.5}, ticks)
    # 100 -> 102: +2 %; disarmed until the move from 102 is under 1.5 % (102.5), then 102 -> 104.1: +2.06 %;
    # after 25 s the window starts afresh at 106, and 106 -> 102.9 is -2.92 %.
    assert fired == [(2, 2.0), (4, 2.0588), (32, -2.9245)]


async def test_percent_move_in_one_direction_only() -> None:
    ticks = [(0, 100), (1, 97), (2, 100), (3, 102.5)]
    fired = await run_rule({"type": "percent_move", "percent": 2, "window_s": 60, "direction": "up"}, ticks)
    assert fired == [(3, 2.5)]  # from the window's oldest price (100), not from the low; the fall never fires


async def test_volume_spike_fires_once_per_bar() -> None:
    # 1 s bars of 10 each for three seconds; the fourth reaches 25 (> 2 x 10) and goes on to 55 (one firing);
    # the fifth's 60 is over 2 x the mean of 10, 10 and 55 (50), and fires again (a new bar re-arms).
    ticks = [(0, 100, 1000), (0.5, 100, 1010), (1.5, 100, 1020), (2.5, 100, 1030),
             (3.1, 100, 1040), (3.5, 100, 1055), (3.7, 100, 1085), (4.2, 100, 1145), (4.4, 100, 1150)]
    fired = await run_rule({"type": "volume_spike", "interval": "1s", "period": 3, "multiple": 2}, ticks)
    assert fired == [(3, 25.0), (4, 60.0)]


async def test_breakout_above_the_high_and_below_the_low_of_the_last_bars() -> None:
    ticks = [(0, 100), (0.5, 101), (1.2, 100.5), (2.3, 100.2), (3.1, 101.5), (3.4, 100.8), (3.8, 101.6),
             (4.5, 99.9), (5.5, 99.5)]
    high = await run_rule({"type": "breakout_high", "interval": "1s", "bars": 3, "hysteresis": 0.5}, ticks)
    # bars 0..2 high 101: 101.5 breaks out; 100.8 is not below 100.5 so no re-arm; 101.6 does not fire again.
    assert high == [(3, 101.5)]
    low = await run_rule({"type": "breakout_low", "interval": "1s", "bars": 3, "hysteresis": 0.1}, ticks)
    assert low == [(4, 99.9)]  # bars 1..3 low 100.2; 99.5 is below bars 2..4's low 99.9 but not re-armed


async def test_a_firing_reaches_only_its_owner_and_feed() -> None:
    pipeline, book = setup()
    alice, bob, alice_other = Recorder(), Recorder(), Recorder()
    book.create("alice", FEED, {"type": "price_above", "level": 100}, T0)
    book.create("bob", FEED, {"type": "price_above", "level": 200}, T0)
    pipeline.hub.subscribe(alerts_topic("alice", FEED), alice)
    pipeline.hub.subscribe(alerts_topic("bob", FEED), bob)
    pipeline.hub.subscribe(alerts_topic("alice", OTHER), alice_other)
    await feed(pipeline, [(0, 99), (1, 150)])
    await feed(pipeline, [(2, 300)], feed_id=OTHER)
    assert alice.fired() == [(1, 150)] and bob.fired() == [] and alice_other.fired() == []


@pytest.mark.parametrize("rule", [{"type": "nope"}, {"type": "price_above"}, {"type": "price_above", "level": -1},
                                  {"type": "percent_move", "percent": 1, "direction": "sideways"},
                                  {"type": "breakout_high", "interval": "7m"}, "price_above"])
def test_bad_rules_say_what_is_wrong(rule: Any) -> None:
    with pytest.raises(ValueError):
        parse_rule(rule, (S1,))


async def test_rules_and_their_last_trigger_survive_a_restart(tmp_path: Path) -> None:
    pipeline, book = setup()
    writer = AlertWriter(book, AlertStore(tmp_path / "db"), interval_s=60)
    await writer.start()
    kept = book.create("alice", FEED, {"type": "price_above", "level": 100, "hysteresis": 0.5}, T0)
    gone = book.create("alice", FEED, {"type": "price_below", "level": 50}, T0)
    await feed(pipeline, [(0, 99), (1, 100.2)])
    assert book.delete("alice", gone.id) is gone
    await writer.stop()

    pipeline, book = setup()
    recorder = Recorder()
    pipeline.hub.subscribe(alerts_topic("alice", FEED), recorder)
    writer = AlertWriter(book, AlertStore(tmp_path / "db"), interval_s=60)
    await writer.start()
    try:
        assert list(book.alerts) == [kept.id]
        restored = book.alerts[kept.id]
        assert (restored.rule, restored.armed, restored.triggers, restored.last_value, restored.last_time_us) == (
            kept.rule, False, 1, 100.2, T0 + S)
        await feed(pipeline, [(2, 100.3), (3, 99.4), (4, 100.1)])  # still disarmed after the restart
        assert recorder.fired() == [(4, 100.1)]
    finally:
        await writer.stop()
