"""Candles from a known tick sequence: exact bars, aligned in UTC, each final bar once, across a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from pricefeed.analytics.candles import Bar, CandleBook, Interval, final_topic, forming_topic, parse_interval
from pricefeed.analytics.days import DayClock
from pricefeed.faces.simple_ws import iso_time
from pricefeed.faces.streams.codecs import candle_fields
from pricefeed.model import Feed, PriceUpdate
from pricefeed.pipeline import Pipeline, local_pipeline
from pricefeed.store import SqliteStore

FEED = "ab" * 32
T0 = 1_764_720_000_000_000  # 2025-12-03 00:00:00 UTC, a multiple of every interval
S = 1_000_000
M1, S1 = parse_interval("1m"), parse_interval("1s")


class Recorder:
    """A hub subscriber that keeps every candle message it is handed, in order."""

    def __init__(self) -> None:
        self.codec = self
        self.face = "test"
        self.got: list[tuple[str, dict[str, object]]] = []

    def encode(self, topic: str, item: object) -> bytes:
        assert isinstance(item, Bar)
        return orjson.dumps(candle_fields(item))

    def deliver(self, frames: dict[str, bytes]) -> None:
        self.got += [(topic.rsplit(":", 1)[-1], orjson.loads(frame)) for topic, frame in frames.items()]

    def finals(self) -> list[dict[str, object]]:
        return [bar for kind, bar in self.got if kind == "final"]


def tick(offset_us: int, price: int, volume: int | None = None, quantity: int | None = None) -> PriceUpdate:
    return PriceUpdate(FEED, price, 0, -2, T0 + offset_us, price, 0, volume=volume, quantity=quantity)


def bar(start_s: float, o: float, h: float, low: float, c: float, volume: int | None, ticks: int,
        final: bool = True, interval: Interval = M1) -> dict[str, object]:
    start = T0 + int(start_s * S)
    return {"interval": interval.label, "start": iso_time(start), "end": iso_time(start + interval.us), "open": o,
            "high": h, "low": low, "close": c, "volume": volume, "ticks": ticks, "final": final}


def setup(intervals: tuple[Interval, ...] = (M1,), grace_s: float = 2.0) -> tuple[Pipeline, CandleBook, Recorder]:
    pipeline = local_pipeline()
    feed = Feed(FEED, "Equity.NSE.TEST/INR", -2, "test", {"schedule": "Asia/Kolkata;O,O,O,O,O,O,O;"})
    pipeline.ingest.add_feeds([feed])
    book = CandleBook(pipeline.hub, intervals, history=10, grace_s=grace_s, day_of=DayClock(pipeline.hub.feeds).day_of,
                      clock=lambda: T0 / S)
    pipeline.hub.add_listener(book.add)
    recorder = Recorder()
    for interval in intervals:
        pipeline.hub.subscribe(forming_topic(FEED, interval), recorder)
        pipeline.hub.subscribe(final_topic(FEED, interval), recorder)
    return pipeline, book, recorder


async def feed(pipeline: Pipeline, *ticks: PriceUpdate) -> None:
    """Each tick in a pass of its own, as a source publishes them one by one."""
    for update in ticks:
        pipeline.ingest.publish(update)
        await settle()


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_a_known_tick_sequence_gives_known_bars() -> None:
    pipeline, book, recorder = setup()
    await feed(pipeline,
               tick(5 * S, 10000, volume=1000, quantity=50),   # first tick ever: its own quantity counts
               tick(20 * S, 10050, volume=1100, quantity=100),
               tick(59 * S + 999_999, 9990, volume=1180, quantity=80),
               tick(60 * S, 10010, volume=1200, quantity=20),  # the next minute closes the first bar
               tick(150 * S, 10100, volume=1500, quantity=10))  # a minute without ticks has no bar
    assert recorder.finals() == [bar(0, 100.0, 100.5, 99.9, 99.9, 50 + 100 + 80, 3),
                                 bar(60, 100.1, 100.1, 100.1, 100.1, 20, 1)]
    assert [b for kind, b in recorder.got if kind != "final"][-1] == bar(120, 101.0, 101.0, 101.0, 101.0, 300, 1,
                                                                         final=False)
    finals, forming = book.recent(FEED, M1)
    assert [candle_fields(b) for b in finals] == recorder.finals()
    assert forming is not None and candle_fields(forming) == bar(120, 101.0, 101.0, 101.0, 101.0, 300, 1, final=False)


async def test_a_bar_without_a_later_tick_closes_after_the_grace_and_late_ticks_change_no_closed_bar() -> None:
    pipeline, book, recorder = setup(grace_s=2.0)
    await feed(pipeline, tick(10 * S, 10000, volume=10, quantity=10), tick(30 * S, 10020, volume=25, quantity=15))
    assert book.close_due(T0 + 61 * S) == 0  # ended, but within the grace: a late tick may still come
    await feed(pipeline, tick(59 * S, 10040, volume=30, quantity=5))
    assert book.close_due(T0 + 62 * S) == 1
    await settle()
    assert recorder.finals() == [bar(0, 100.0, 100.4, 100.0, 100.4, 30, 3)]
    await feed(pipeline, tick(59 * S + 500_000, 10500, volume=40, quantity=10))  # too late for its bar
    assert book.late_ticks == 1
    await feed(pipeline, tick(65 * S, 10060, volume=41, quantity=1))  # the late tick's volume goes on
    assert book.recent(FEED, M1)[1] is not None
    assert candle_fields(book.recent(FEED, M1)[1]) == bar(60, 100.6, 100.6, 100.6, 100.6, 11, 1, final=False)
    assert recorder.finals() == [bar(0, 100.0, 100.4, 100.0, 100.4, 30, 3)]  # once, never again


async def test_two_bars_closing_in_one_pass_both_go_out_in_order() -> None:
    pipeline, _, recorder = setup(intervals=(S1,))
    pipeline.ingest.publish_many([tick(0, 100, 1, 1), tick(S, 101, 2, 1), tick(2 * S, 102, 3, 1)])
    await settle()
    await settle()
    assert recorder.finals() == [bar(0, 1.0, 1.0, 1.0, 1.0, 1, 1, interval=S1),
                                 bar(1, 1.01, 1.01, 1.01, 1.01, 1, 1, interval=S1)]


async def test_a_new_day_counts_volume_from_the_session_start() -> None:
    pipeline, book, recorder = setup()
    day = 86_400 * S
    await feed(pipeline, tick(10 * S, 100, volume=5000, quantity=5), tick(day + 5 * S, 101, volume=70, quantity=7))
    assert recorder.finals() == [bar(0, 1.0, 1.0, 1.0, 1.0, 5, 1)]
    forming = book.recent(FEED, M1)[1]
    assert forming is not None and forming.volume == 70  # the whole of the new day's volume so far


async def test_a_feed_without_volume_has_bars_without_volume() -> None:
    pipeline, _, recorder = setup()
    await feed(pipeline, tick(1 * S, 100), tick(61 * S, 99))
    assert recorder.finals() == [bar(0, 1.0, 1.0, 1.0, 1.0, None, 1)]


async def test_bars_survive_a_restart_through_the_store(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db")
    await store.open()
    pipeline, book, recorder = setup()
    await feed(pipeline, tick(5 * S, 10000, 1000, 50), tick(20 * S, 10050, 1100, 100), tick(70 * S, 10010, 1200, 100))
    await store.save_bars(book.take_unsaved(), book.intervals, book.history, T0 + 80 * S)
    await store.close()

    store = SqliteStore(tmp_path / "db")
    await store.open()
    pipeline, book, recorder = setup()
    book.restore(await store.load_bars(book.intervals, book.history, T0 + 90 * S))
    await store.close()
    finals, forming = book.recent(FEED, M1)
    assert [candle_fields(b) for b in finals] == [bar(0, 100.0, 100.5, 100.0, 100.5, 150, 2)]
    await feed(pipeline, tick(80 * S, 10030, 1230, 30), tick(125 * S, 10000, 1240, 10))
    assert recorder.finals() == [bar(60, 100.1, 100.3, 100.1, 100.3, 100 + 30, 2)]  # the stored forming bar goes on
    forming = book.recent(FEED, M1)[1]
    assert forming is not None and (forming.volume, forming.ticks) == (10, 1)


@pytest.mark.parametrize(("text", "label", "seconds"), [("1s", "1s", 1), ("1m", "1m", 60), ("5M", "5m", 300),
                                                        ("1h", "1h", 3600), ("1d", "1d", 86400)])
def test_intervals(text: str, label: str, seconds: int) -> None:
    assert parse_interval(text) == Interval(label, seconds * S)


@pytest.mark.parametrize("text", ["0s", "7m", "2d", "1w", "m", ""])
def test_bad_intervals(text: str) -> None:
    with pytest.raises(ValueError, match="candle interval"):
        parse_interval(text)
