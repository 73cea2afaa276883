"""The Kite source against a local Kite ticker that speaks the binary protocol byte for byte, with faults.

Each test looks at what the hub accepts (every update the source hands over, in order) and at the JSON
requests the ticker receives, exactly.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from pricefeed.contracts import Codec
from pricefeed.model import DepthLevel, FeedId, PriceUpdate, Quote
from pricefeed.pipeline import Pipeline, local_pipeline
from pricefeed.resilience import Backoff
from pricefeed.sources.base import SourceState
from pricefeed.sources.kite.instruments import load_instruments, select
from pricefeed.sources.kite.source import KiteSource

from ..kite_server import FakeKiteTicker, KiteTick

INSTRUMENTS = Path(__file__).parent.parent / "data" / "kite" / "instruments.csv"
RELIANCE, INFY, TCS, NIFTY = 738561, 408065, 2953217, 256265
WAIT = 5.0


class _Unused:
    face = "test"

    def encode(self, topic: str, item: object) -> bytes:
        return b""


class Client:
    """A hub subscriber (so the source streams its feeds) that records every update the hub accepts."""

    codec: Codec = _Unused()

    def __init__(self, pipeline: Pipeline) -> None:
        self.hub = pipeline.hub
        self.updates: asyncio.Queue[PriceUpdate] = asyncio.Queue()
        self.hub.add_listener(lambda updates: [self.updates.put_nowait(u) for u in updates])

    def subscribe(self, feed_id: FeedId) -> None:
        self.hub.subscribe(feed_id, self)

    def unsubscribe(self, feed_id: FeedId) -> None:
        self.hub.unsubscribe(feed_id, self)

    def deliver(self, frames: dict[str, bytes]) -> None:
        pass

    async def next(self) -> PriceUpdate:
        return await asyncio.wait_for(self.updates.get(), WAIT)


async def until(condition: Callable[[], object], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not condition():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.fixture
async def kite() -> AsyncIterator[FakeKiteTicker]:
    async with FakeKiteTicker(heartbeat_s=0.2).running() as server:
        yield server


def make_source(pipeline: Pipeline, kite: FakeKiteTicker, *, mode: str = "full", always: tuple[str, ...] = (),
                silence_s: float = 5.0, token: str | None = None) -> KiteSource:
    instruments = load_instruments(INSTRUMENTS)
    source = KiteSource(pipeline.ingest, instruments, url=kite.url, api_key=kite.api_key,
                        access_token=token or kite.access_token, always=select(instruments, always), mode=mode,
                        silence_timeout_s=silence_s, demand_poll_s=0.05)
    source.ticker.backoff = Backoff(initial_s=0.05, factor=1.5, cap_s=0.2, jitter=0.5, rng=random.Random(1))
    return source


def feed_of(source: KiteSource, token: int) -> FeedId:
    return source.feeds[token].id


def full_tick(price: int, volume: int, timestamp: int, quantity: int = 5) -> KiteTick:
    return KiteTick(RELIANCE, price, quantity=quantity, average=price - 10, volume=volume, buy=900, sell=800,
                    open=140000, high=142500, low=139500, close=139000, last_trade_time=timestamp - 1,
                    exchange_timestamp=timestamp, bids=[(120, price - 5, 3), (80, price - 10, 1)],
                    asks=[(100, price + 5, 2)])


async def test_streams_what_a_client_wants_in_full_mode_and_every_field_arrives(kite: FakeKiteTicker) -> None:
    pipeline = local_pipeline()
    client, source = Client(pipeline), make_source(pipeline, kite)
    await source.start()
    try:
        client.subscribe(feed_of(source, RELIANCE))
        await kite.wait_streaming({RELIANCE}, "full")
        assert kite.requests == [{"a": "subscribe", "v": [RELIANCE]}, {"a": "mode", "v": ["full", [RELIANCE]]}]
        handshake = kite.handshakes[0]
        assert handshake.headers["X-Kite-Version"] == "3"
        assert handshake.path == f"/?api_key={kite.api_key}&access_token={kite.access_token}"
        await kite.send_ticks([full_tick(141025, 1_000_000, 1_764_751_502)])
        update = await client.next()
        assert (update.feed_id, update.price, update.expo, update.conf, update.ema_price, update.ema_conf) == (
            feed_of(source, RELIANCE), 141025, -2, 0, 141025, 0)
        assert (update.volume, update.quantity, update.publish_time_us, update.source) == (
            1_000_000, 5, 1_764_751_502_000_000, "kite")
        assert update.quote == Quote(open=140000, high=142500, low=139500, previous_close=139000,
                                     bids=(DepthLevel(141020, 120, 3), DepthLevel(141015, 80, 1)),
                                     asks=(DepthLevel(141030, 100, 2),))
        assert source.state == SourceState.CONNECTED
        feed = pipeline.hub.feeds[update.feed_id]
        assert feed.attributes["confidence"] == "none" and feed.attributes["trading_symbol"] == "RELIANCE"
        assert feed.symbol == "Equity.NSE.RELIANCE/INR"
    finally:
        await source.stop()


async def test_multi_packet_frames_in_each_mode_heartbeats_and_text_messages(
        kite: FakeKiteTicker, caplog: pytest.LogCaptureFixture) -> None:
    pipeline = local_pipeline()
    client, source = Client(pipeline), make_source(pipeline, kite, mode="quote", always=("RELIANCE", "NIFTY 50"))
    caplog.set_level(logging.INFO, logger="pricefeed.sources.kite")
    await source.start()
    try:
        await kite.wait_streaming({RELIANCE, NIFTY}, "quote")
        assert kite.requests == [{"a": "subscribe", "v": [NIFTY, RELIANCE]},
                                 {"a": "mode", "v": ["quote", [NIFTY, RELIANCE]]}]
        nifty = KiteTick(NIFTY, 2450050, open=2445000, high=2460000, low=2440000, close=2452000)
        await kite.send_raw(b"\x00")
        await kite.send_ticks([full_tick(141025, 1000, 1), nifty])
        first, second = await client.next(), await client.next()
        assert (first.feed_id, first.price, first.volume, first.quote is not None and first.quote.bids) == (
            feed_of(source, RELIANCE), 141025, 1000, ())
        assert (second.feed_id, second.price, second.volume, second.quantity) == (
            feed_of(source, NIFTY), 2450050, None, None)
        assert second.quote == Quote(open=2445000, high=2460000, low=2440000, previous_close=2452000)
        await kite.send_raw('{"type": "order", "data": {"order_id": "151220000000000", "status": "COMPLETE"}}')
        await kite.send_raw('{"type": "error", "data": "Too many requests"}')
        await until(lambda: source.ticker.last_error == "Kite error: Too many requests", "the error message")
        assert "Kite order update: {'order_id': '151220000000000', 'status': 'COMPLETE'}" in caplog.text
        assert source.state == SourceState.CONNECTED and len(kite.connections) == 1
    finally:
        await source.stop()


async def test_ticks_of_one_second_keep_their_order_and_a_repeated_packet_is_dropped(kite: FakeKiteTicker) -> None:
    pipeline = local_pipeline()
    client, source = Client(pipeline), make_source(pipeline, kite, always=("RELIANCE",))
    await source.start()
    try:
        await kite.wait_streaming({RELIANCE}, "full")
        ticks = [full_tick(141000, 100, 1_764_751_502), full_tick(141005, 110, 1_764_751_502),
                 full_tick(141005, 110, 1_764_751_502), full_tick(140995, 130, 1_764_751_503)]
        for tick in ticks:
            await kite.send_ticks([tick])
        got = [await client.next() for _ in range(3)]
        assert [(u.price, u.volume, u.publish_time_us) for u in got] == [
            (141000, 100, 1_764_751_502_000_000), (141005, 110, 1_764_751_502_000_001),
            (140995, 130, 1_764_751_503_000_000)]
        assert source.duplicates == 1 and client.updates.empty()
    finally:
        await source.stop()


async def test_a_malformed_frame_is_skipped_and_the_connection_goes_on(kite: FakeKiteTicker) -> None:
    pipeline = local_pipeline()
    client, source = Client(pipeline), make_source(pipeline, kite, mode="ltp", always=("RELIANCE",))
    await source.start()
    try:
        await kite.wait_streaming({RELIANCE}, "ltp")
        await kite.send_raw(bytes.fromhex("0002 0008 000b4501 00022710"))  # announces 2 packets, holds 1
        await kite.send_ticks([KiteTick(RELIANCE, 141100)])
        update = await client.next()
        assert (update.price, update.volume, update.quote) == (141100, None, None)
        assert source.ticker.bad_frames == 1 and len(kite.connections) == 1
    finally:
        await source.stop()


async def test_a_dropped_connection_reconnects_and_subscribes_again(kite: FakeKiteTicker) -> None:
    pipeline = local_pipeline()
    client, source = Client(pipeline), make_source(pipeline, kite)
    await source.start()
    try:
        client.subscribe(feed_of(source, INFY))
        await kite.wait_streaming({INFY}, "full")
        kite.drop()
        await kite.wait_streaming({INFY}, "full", connections=2)
        assert kite.requests == [{"a": "subscribe", "v": [INFY]}, {"a": "mode", "v": ["full", [INFY]]}] * 2
        assert source.reconnects == 1 and source.state == SourceState.CONNECTED
        await kite.send_ticks([KiteTick(INFY, 160050, volume=10, quantity=10, exchange_timestamp=5)])
        assert (await client.next()).price == 160050
    finally:
        await source.stop()


async def test_demand_that_goes_away_is_unsubscribed(kite: FakeKiteTicker) -> None:
    pipeline = local_pipeline()
    client, source = Client(pipeline), make_source(pipeline, kite, always=("TCS",))
    await source.start()
    try:
        client.subscribe(feed_of(source, INFY))
        await kite.wait_streaming({INFY, TCS}, "full")
        client.unsubscribe(feed_of(source, INFY))
        await kite.wait_for(lambda: {"a": "unsubscribe", "v": [INFY]} in kite.requests)
        assert kite.requests == [{"a": "subscribe", "v": [INFY, TCS]}, {"a": "mode", "v": ["full", [INFY, TCS]]},
                                 {"a": "unsubscribe", "v": [INFY]}]
    finally:
        await source.stop()


async def test_a_silent_connection_is_replaced(kite: FakeKiteTicker) -> None:
    pipeline = local_pipeline()
    source = make_source(pipeline, kite, always=("RELIANCE",), silence_s=0.5)
    await source.start()
    try:
        await kite.wait_streaming({RELIANCE}, "full")
        kite.silent = True  # the socket stays open, nothing comes: not even a heartbeat
        await kite.wait_for(lambda: len(kite.connections) == 2, timeout=WAIT)
        assert source.reconnects == 1
        assert source.ticker.last_error is not None and "nothing from Kite for" in source.ticker.last_error
    finally:
        await source.stop()


async def test_refused_credentials_are_reported_and_never_logged(kite: FakeKiteTicker,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    pipeline = local_pipeline()
    source = make_source(pipeline, kite, always=("RELIANCE",), token="expired-token-secret")
    await source.start()
    try:
        await until(lambda: kite.refused >= 2, "two refused handshakes")
        assert source.state == SourceState.RECONNECTING and source.last_error is not None
        assert "HTTP 403" in source.last_error
        status = str(source.status())
        ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("websockets.server"))
        assert "reconnecting in" in ours
        for secret in ("expired-token-secret", kite.api_key):
            assert secret not in ours and secret not in status and secret not in source.last_error
    finally:
        await source.stop()
