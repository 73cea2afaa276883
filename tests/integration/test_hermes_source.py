"""The Hermes source against a local Hermes that speaks its SSE byte for byte, with scripted faults.

Every test looks at what a client of pricefeed sees (a hub subscriber): the
exact prices of the recorded payloads, each once, in order, and the state the
source reports. Nothing sleeps to wait for data: each wait is on an event or a
condition, with a timeout.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import orjson
import pytest

from pricefeed.config import load_settings
from pricefeed.contracts import Codec
from pricefeed.hub import Hub
from pricefeed.model import Feed, FeedId, PriceUpdate
from pricefeed.pipeline import Pipeline, local_pipeline
from pricefeed.resilience import Backoff
from pricefeed.sources.base import SourceState
from pricefeed.sources.hermes import HermesSource, HermesStream, StreamState
from pricefeed.sources.http import RequestBudget

from ..hermes_server import (
    BTC,
    ETH,
    LATEST_RESPONSE,
    PYTH,
    SOL,
    SSE_EVENT_1,
    SSE_EVENT_2,
    Hang,
    HermesServer,
    HoldHeaders,
    Request,
    Respond,
    StreamConnection,
    all_ids,
    btc_item,
    price_item,
)

UNKNOWN = "ab" * 32
WAIT = 5.0


# -- what a client sees --------------------------------------------------------


def _as_message(update: PriceUpdate) -> dict[str, Any]:
    return {"feed_id": update.feed_id, "price": update.price, "conf": update.conf, "expo": update.expo,
            "ema_price": update.ema_price, "ema_conf": update.ema_conf, "publish_time_us": update.publish_time_us,
            "prev_publish_time_us": update.prev_publish_time_us, "slot": update.slot, "seq": update.seq,
            "source": update.source}


class _UnusedCodec:
    face = "test"

    def encode(self, topic: str, item: object) -> bytes:
        return b""


class Client:
    """A subscriber of the hub (so the source streams its feeds), recording every update the hub accepts for them.

    It records from the hub's listener rather than from its deliveries because a pass conflates a feed's
    updates to the newest, and these tests are about each update the source hands over.
    """

    codec: Codec = _UnusedCodec()

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.seen: list[dict[str, Any]] = []
        self._feeds: set[FeedId] = set()
        hub.add_listener(self._accepted)

    def subscribe(self, *feed_ids: FeedId) -> None:
        for feed_id in feed_ids:
            self._feeds.add(feed_id)
            self.hub.subscribe(feed_id, self)

    def deliver(self, frames: dict[FeedId, bytes]) -> None:
        pass

    def _accepted(self, updates: list[PriceUpdate]) -> None:
        for update in updates:
            if update.feed_id in self._feeds:
                message = _as_message(update)
                self.seen.append(message)
                self.frames.put_nowait(message)

    async def next(self, timeout: float = WAIT) -> dict[str, Any]:
        return await asyncio.wait_for(self.frames.get(), timeout)

    async def prices(self, count: int) -> list[int]:
        return [(await self.next())["price"] for _ in range(count)]


async def until(condition: Callable[[], object], timeout: float = WAIT, what: str = "condition") -> None:
    """Wait for a condition on the source's state (checked every 10 ms), failing after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def fast_backoff(initial_s: float = 0.02) -> Callable[[], Backoff]:
    return lambda: Backoff(initial_s=initial_s, factor=1.5, cap_s=max(1.0, initial_s), jitter=0.5, stable_after_s=5.0,
                           rng=random.Random(1))


def btc_price(step: int) -> int:
    return int(btc_item(step)["price"]["price"])


def stream_of(source: HermesSource, replica: int = 0) -> HermesStream:
    return next(s for s in source.streams if s.replica == replica)


# -- fixtures -----------------------------------------------------------------


async def _running_hermes() -> AsyncIterator[HermesServer]:
    server = HermesServer()
    await server.start()
    yield server
    await server.stop()


hermes = pytest.fixture(_running_hermes, name="hermes")
hermes_b = pytest.fixture(_running_hermes, name="hermes_b")


@pytest.fixture
def pipeline() -> Pipeline:
    return local_pipeline()


@pytest.fixture
def hub(pipeline: Pipeline) -> Hub:
    return pipeline.hub


@pytest.fixture
def client(hub: Hub) -> Client:
    return Client(hub)


SourceFactory = Callable[..., HermesSource]


@pytest.fixture
async def make_source(pipeline: Pipeline, hermes: HermesServer) -> AsyncIterator[SourceFactory]:
    """Start a source with test-sized timings; stops it at the end of the test."""
    started: list[HermesSource] = []

    def make(**options: Any) -> HermesSource:
        settings: dict[str, Any] = {
            "endpoints": [hermes.stream_url], "feeds": [BTC], "connections": 1, "silence_timeout_s": 2.0,
            "demand_poll_s": 0.02, "backoff": fast_backoff(), "metadata_refresh_s": 60.0, "connect_timeout_s": 2.0,
        }
        settings.update(options)
        source = HermesSource(pipeline.ingest, **settings)
        started.append(source)
        return source

    yield make
    for source in started:
        await source.stop()


# -- replay -------------------------------------------------------------------


async def test_recorded_payloads_reach_clients_with_their_exact_prices(
        hermes: HermesServer, make_source: SourceFactory, client: Client, hub: Hub) -> None:
    source = make_source()
    await source.start()
    client.subscribe(BTC)
    stream = await hermes.next_connection()
    assert stream.ids == [BTC]
    stream.send_event(orjson.dumps({**LATEST_RESPONSE, "parsed": LATEST_RESPONSE["parsed"][:1]}))
    stream.send_event(SSE_EVENT_1)
    stream.send_event(SSE_EVENT_2)
    seen = [await client.next() for _ in range(3)]
    assert [(m["price"], m["conf"], m["ema_price"], m["ema_conf"], m["slot"]) for m in seen] == [
        (6140993501000, 3287868567, 6094004700000, 3792887800, 138881186),
        (6163260000000, 3268548079, 6130098800000, 3587162000, 138886134),
        (6163088000000, 3308129843, 6130103000000, 3587126400, 138886135),
    ]
    assert [m["publish_time_us"] for m in seen] == [1714746101_000_000, 1714748300_000_000, 1714748301_000_000]
    assert seen[2]["prev_publish_time_us"] == 1714748300_000_000
    assert {m["expo"] for m in seen} == {-8} and {m["source"] for m in seen} == {"hermes"}
    assert [m["seq"] for m in seen] == [1, 2, 3]
    await until(lambda: source.metadata_feeds == len(hermes.metadata), what="metadata")
    assert hub.feeds[BTC].symbol == "Crypto.BTC/USD" and hub.feeds[BTC].source == "hermes"
    assert hub.feeds[PYTH].attributes["display_symbol"] == "PYTH/USD"
    assert source.state == SourceState.CONNECTED


async def test_status_reports_each_stream(hermes: HermesServer, make_source: SourceFactory) -> None:
    source = make_source()
    await source.start()
    stream = await hermes.next_connection()
    stream.send_event(SSE_EVENT_2)
    await until(lambda: stream_of(source).events == 1, what="the event")
    status = orjson.loads(orjson.dumps(source.status()))
    [report] = status["streams"]
    assert report["endpoint"] == hermes.url
    assert report["state"] == "connected"
    assert report["connected_since"].endswith("+00:00")
    assert 0 <= report["last_event_age_s"] < WAIT
    assert report["events"] == 1
    assert report["duplicates_dropped"] == report["out_of_order_dropped"] == report["reconnects"] == 0
    assert report["last_error"] is None
    assert status["state"] == "connected" and status["feeds_wanted"] == status["feeds_covered"] == 1


# -- redundancy ---------------------------------------------------------------


async def test_redundant_streams_over_two_endpoints_deliver_each_update_once_and_in_order(
        hermes: HermesServer, hermes_b: HermesServer, make_source: SourceFactory, client: Client) -> None:
    source = make_source(endpoints=[hermes.stream_url, hermes_b.stream_url], connections=2)
    await source.start()
    client.subscribe(BTC)
    a, b = await hermes.next_connection(), await hermes_b.next_connection()
    for step in range(1, 6):  # both carry every slot; the faster one alternates
        first, second = (a, b) if step % 2 else (b, a)
        first.send_items([btc_item(step)])
        second.send_items([btc_item(step)])
    assert await client.prices(5) == [btc_price(step) for step in range(1, 6)]
    await until(lambda: stream_of(source, 0).duplicates + stream_of(source, 1).duplicates == 5,
                what="5 duplicates counted")
    # b lags: slot 7 from a, then slot 6 from b must not go back in time.
    a.send_items([btc_item(7)])
    b.send_items([btc_item(6)])
    b.send_items([btc_item(8)])
    assert await client.prices(2) == [btc_price(7), btc_price(8)]
    assert stream_of(source, 1).out_of_order == 1
    prices = [m["price"] for m in client.seen]
    assert prices == sorted(prices) and len(set(prices)) == len(prices)


# -- faults -------------------------------------------------------------------


async def test_a_connection_dropped_mid_event_reconnects_and_the_half_event_never_arrives(
        hermes: HermesServer, make_source: SourceFactory, client: Client) -> None:
    source = make_source()
    await source.start()
    client.subscribe(BTC)
    first = await hermes.next_connection()
    first.send_event(SSE_EVENT_1)
    assert await client.prices(1) == [6163260000000]
    frame = b"data:" + SSE_EVENT_2 + b"\n\n"
    first.send_raw(frame[: len(frame) // 2])
    first.abort()
    second = await hermes.next_connection()
    second.send_items([btc_item(1)])
    assert await client.prices(1) == [btc_price(1)]
    assert [m["price"] for m in client.seen] == [6163260000000, btc_price(1)]
    report = source.status()["streams"][0]
    assert report["reconnects"] == 1 and report["state"] == "connected"
    assert "RemoteProtocolError" in report["last_error"]
    assert source.reconnects == 1


async def test_a_line_written_in_two_halves_is_read_whole(
        hermes: HermesServer, make_source: SourceFactory, client: Client) -> None:
    source = make_source()
    await source.start()
    client.subscribe(BTC)
    stream = await hermes.next_connection()
    await until(lambda: stream_of(source).state == StreamState.CONNECTED)
    frame = b"data:" + SSE_EVENT_2 + b"\n\n"
    before = stream_of(source).last_bytes_at
    stream.send_raw(frame[:700])
    await until(lambda: stream_of(source).last_bytes_at != before, what="the first half to be read")
    stream.send_raw(frame[700:])
    assert await client.prices(1) == [6163088000000]


async def test_malformed_json_is_skipped_and_the_stream_goes_on(
        hermes: HermesServer, make_source: SourceFactory, client: Client) -> None:
    source = make_source()
    await source.start()
    client.subscribe(BTC)
    stream = await hermes.next_connection()
    stream.send_event(SSE_EVENT_2[:300])
    stream.send_items([btc_item(1)])
    assert await client.prices(1) == [btc_price(1)]
    report = source.status()["streams"][0]
    assert report["malformed_events"] == 1 and "malformed JSON" in report["last_error"]
    assert report["reconnects"] == 0 and len(hermes.connections) == 1


async def test_slow_consumer_error_reconnects(hermes: HermesServer, make_source: SourceFactory,
                                              client: Client) -> None:
    source = make_source()
    await source.start()
    client.subscribe(BTC)
    first = await hermes.next_connection()
    first.send_event(SSE_EVENT_1)
    first.send_error("Slow consumer: disconnected")
    first.end()
    second = await hermes.next_connection()
    second.send_event(SSE_EVENT_2)
    assert await client.prices(2) == [6163260000000, 6163088000000]
    report = source.status()["streams"][0]
    assert "Slow consumer: disconnected" in report["last_error"] and report["reconnects"] == 1


async def test_the_24h_limit_error_reconnects_at_once_without_backoff(
        hermes: HermesServer, make_source: SourceFactory, client: Client) -> None:
    source = make_source(backoff=fast_backoff(initial_s=10.0))  # a backoff would mean >= 5 s
    await source.start()
    client.subscribe(BTC)
    first = await hermes.next_connection()
    first.send_error("Connection timeout reached (24h)")
    first.end()
    second = await hermes.next_connection(timeout=2.0)
    second.send_event(SSE_EVENT_2)
    assert await client.prices(1) == [6163088000000]
    assert "Connection timeout reached (24h)" in source.status()["streams"][0]["last_error"]


async def test_a_per_event_error_leaves_the_stream_open(hermes: HermesServer, make_source: SourceFactory,
                                                        client: Client) -> None:
    source = make_source()
    await source.start()
    client.subscribe(BTC)
    stream = await hermes.next_connection()
    stream.send_error("Error receiving update: Lagged(3)")
    stream.send_event(SSE_EVENT_2)
    assert await client.prices(1) == [6163088000000]
    report = source.status()["streams"][0]
    assert report["error_events"] == 1 and report["reconnects"] == 0


async def test_keepalives_keep_a_quiet_stream_open_and_silence_replaces_it(
        hermes: HermesServer, make_source: SourceFactory, client: Client) -> None:
    source = make_source(silence_timeout_s=0.3)
    await source.start()
    client.subscribe(BTC)
    quiet = await hermes.next_connection()
    quiet.keep_alive_every(0.05)
    await until(lambda: quiet.keepalives_sent >= 20, what="a second of keep-alives")  # > 3 silence timeouts
    assert not quiet.closed.is_set() and len(hermes.connections) == 1
    assert stream_of(source).reconnects == 0 and stream_of(source).last_event_at is None
    assert source.status()["streams"][0]["last_message_age_s"] < 0.3
    quiet.keep_alive_every(None)
    replacement = await hermes.next_connection()
    await quiet.wait_closed()
    replacement.send_event(SSE_EVENT_2)
    assert await client.prices(1) == [6163088000000]
    assert "silent for 0.3 s" in str(source.status()["streams"][0]["last_error"])


async def test_a_hung_connection_is_replaced(hermes: HermesServer, make_source: SourceFactory,
                                             client: Client) -> None:
    hermes.stream_script.append(Hang())
    source = make_source(silence_timeout_s=0.3)
    await source.start()
    client.subscribe(BTC)
    stream = await hermes.next_connection()
    assert len(hermes.stream_requests()) == 2
    stream.send_event(SSE_EVENT_2)
    assert await client.prices(1) == [6163088000000]
    assert stream_of(source).reconnects == 1


async def test_an_unknown_id_is_dropped_and_the_rest_streams(hermes: HermesServer, make_source: SourceFactory,
                                                             client: Client) -> None:
    source = make_source(feeds=[BTC, "0x" + UNKNOWN.upper()])
    await source.start()
    client.subscribe(BTC)
    stream = await hermes.next_connection()
    assert stream.ids == [BTC]
    first_request = hermes.stream_requests()[0]
    assert sorted(v for k, v in first_request.query if k == "ids[]") == sorted([BTC, UNKNOWN])
    stream.send_event(SSE_EVENT_2)
    assert await client.prices(1) == [6163088000000]
    status = source.status()
    assert status["invalid_feeds"] == [UNKNOWN]
    assert status["state"] == "connected" and [s["state"] for s in status["streams"]] == ["connected"]


async def test_429_waits_as_long_as_retry_after_says(hermes: HermesServer, make_source: SourceFactory) -> None:
    hermes.stream_script.append(Respond(429, "Too Many Requests", {"Retry-After": "1"}))
    source = make_source()
    await source.start()
    await hermes.next_connection(timeout=3.0)
    refused, accepted = hermes.stream_requests()
    assert accepted.at - refused.at >= 0.99
    assert "HTTP 429 (Retry-After 1 s)" in str(stream_of(source).last_error)


async def test_reconnections_follow_the_backoff_bounds(hermes: HermesServer, make_source: SourceFactory) -> None:
    for _ in range(4):
        hermes.stream_script.append(Respond(503, "upstream restarting"))
    source = make_source(backoff=fast_backoff(initial_s=0.1))
    await source.start()
    await hermes.next_connection()
    times = [r.at for r in hermes.stream_requests()]
    assert len(times) == 5
    for attempt, (earlier, later) in enumerate(itertools.pairwise(times)):
        nominal = 0.1 * 1.5**attempt
        assert nominal * 0.5 <= later - earlier <= nominal * 1.5 + 0.1, (attempt, later - earlier)
    assert stream_of(source).reconnects == 4
    assert source.status()["streams"][0]["last_error"] == "HTTP 503: upstream restarting"


# -- demand, sharding, roll-over ----------------------------------------------


async def test_a_client_subscription_opens_the_new_stream_before_closing_the_old(
        hermes: HermesServer, make_source: SourceFactory, client: Client) -> None:
    source = make_source()
    await source.start()
    client.subscribe(BTC)
    old = await hermes.next_connection()
    await until(lambda: source.metadata_feeds > 0, what="metadata")
    release = asyncio.Event()
    hermes.stream_script.append(HoldHeaders(release))
    client.subscribe(ETH)
    await until(lambda: len(hermes.stream_requests()) == 2, what="the new stream's request")
    assert sorted(v for k, v in hermes.stream_requests()[1].query if k == "ids[]") == sorted([BTC, ETH])
    old.send_items([btc_item(1)])  # the old stream still serves while the new one is not up
    assert await client.prices(1) == [btc_price(1)]
    assert not old.closed.is_set()
    release.set()
    new = await hermes.next_connection()
    await old.wait_closed()
    new.send_items([btc_item(2), price_item(ETH, 330012345678, publish_time=1714748303, slot=138886137)])
    seen = {m["feed_id"]: m["price"] for m in [await client.next(), await client.next()]}
    assert seen == {BTC: btc_price(2), ETH: 330012345678}


async def test_large_feed_sets_are_split_across_streams(hermes: HermesServer, make_source: SourceFactory,
                                                        client: Client) -> None:
    source = make_source(feeds=[BTC, ETH, SOL], max_ids_per_stream=2)
    await source.start()
    client.subscribe(BTC, ETH, SOL)
    streams = [await hermes.next_connection(), await hermes.next_connection()]
    assert sorted(len(s.ids) for s in streams) == [1, 2] and all_ids(streams) == {BTC, ETH, SOL}
    slot = [price_item(f, 100 + n, publish_time=1714748400, slot=138886200) for n, f in enumerate([BTC, ETH, SOL])]
    hermes.broadcast(slot)
    seen = {(await client.next())["feed_id"] for _ in range(3)}
    assert seen == {BTC, ETH, SOL}


async def test_streams_roll_over_before_the_24h_limit_without_a_gap_or_a_duplicate(
        hermes: HermesServer, make_source: SourceFactory, client: Client) -> None:
    source = make_source(rollover_after_s=0.3)
    await source.start()
    client.subscribe(BTC)
    old = await hermes.next_connection()
    old.send_items([btc_item(1)])
    new = await hermes.next_connection()  # opened while the old one is still up
    for step in (2, 3):
        old.send_items([btc_item(step)])
        new.send_items([btc_item(step)])
    await old.wait_closed()
    new.send_items([btc_item(4)])
    assert await client.prices(4) == [btc_price(step) for step in range(1, 5)]
    assert old.opened_at < new.opened_at < (old.closed_at or 0)


# -- metadata, symbols, the API key --------------------------------------------


async def test_symbols_resolve_from_metadata_and_every_feed_is_registered(
        hermes: HermesServer, make_source: SourceFactory, client: Client, hub: Hub) -> None:
    source = make_source(feeds=["PYTH/USD", "Crypto.ETH/USD"])
    await source.start()
    assert source.unresolved == ["PYTH/USD"]  # not in our catalog: wait for Hermes' list
    streams = [await hermes.next_connection(), await hermes.next_connection()]
    assert streams[0].ids == [ETH] and streams[1].ids == sorted([ETH, PYTH])
    assert source.unresolved == []
    assert {f.id for f in hub.feeds.values() if f.source == "hermes"} == hermes.known_ids


async def test_without_hermes_metadata_the_stored_feeds_still_resolve(
        hermes: HermesServer, make_source: SourceFactory, pipeline: Pipeline) -> None:
    hermes.metadata_script.extend(Respond(500, "RPC connection error") for _ in range(50))
    # As the app does at start-up: feeds from the store, saved when Hermes last answered.
    pipeline.ingest.add_feeds([Feed(PYTH, "Crypto.PYTH/USD", -8, "hermes", {"display_symbol": "PYTH/USD"})])
    source = make_source(feeds=["PYTH/USD"])
    await source.start()
    stream = await hermes.next_connection()
    assert stream.ids == [PYTH]
    await until(lambda: source.metadata_error is not None, what="the metadata error")
    assert "500" in str(source.status()["metadata"]["last_error"])


async def test_metadata_is_refreshed_periodically(hermes: HermesServer, make_source: SourceFactory) -> None:
    source = make_source(metadata_refresh_s=0.05)
    await source.start()
    await until(lambda: len(hermes.metadata_requests()) >= 3, what="three metadata fetches")


async def test_a_feed_known_only_from_its_price_gets_registered_with_the_right_exponent(
        hermes: HermesServer, make_source: SourceFactory, client: Client, hub: Hub) -> None:
    source = make_source(feeds=[PYTH])
    await source.start()
    client.subscribe(PYTH)
    stream = await hermes.next_connection()
    stream.send_items([price_item(PYTH, 12970522, expo=-7, publish_time=1743742256, slot=208345111)])
    message = await client.next()
    assert (message["price"], message["expo"]) == (12970522, -7)
    assert hub.feeds[PYTH].expo == -7


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    yield caplog


async def test_the_api_key_is_sent_as_a_bearer_token_and_never_logged(
        hermes: HermesServer, make_source: SourceFactory, client: Client,
        all_logs: pytest.LogCaptureFixture) -> None:
    key = "pk-test-9f8e7d6c5b4a"
    hermes.stream_script.append(Respond(401, "Unauthorized"))
    source = make_source(api_key=key, feeds=[BTC, UNKNOWN])
    await source.start()
    client.subscribe(BTC)
    stream = await hermes.next_connection()
    stream.send_event(SSE_EVENT_2)
    await client.next()
    await until(lambda: source.metadata_feeds > 0, what="metadata")
    assert {r.headers.get("authorization") for r in hermes.requests} == {f"Bearer {key}"}
    assert key not in all_logs.text
    assert all_logs.records, "logging was captured"
    assert key not in orjson.dumps(source.status()).decode() and key not in repr(source)


async def test_a_200_that_is_not_an_event_stream_is_retried(hermes: HermesServer, make_source: SourceFactory,
                                                            client: Client) -> None:
    hermes.stream_script.append(Respond(200, "<html>captive portal</html>"))
    source = make_source()
    await source.start()
    client.subscribe(BTC)
    stream = await hermes.next_connection()
    stream.send_event(SSE_EVENT_2)
    assert await client.prices(1) == [6163088000000]
    report = source.status()["streams"][0]
    assert report["reconnects"] == 1 and report["events"] == 1


# -- the request budget -----------------------------------------------------------


async def test_many_streams_reconnecting_at_once_stay_inside_the_request_budget(
        hermes: HermesServer, make_source: SourceFactory) -> None:
    # 2 shards x 2 replicas = 4 streams, plus the metadata fetch: 5 requests at start, 4 more when all drop at once.
    source = make_source(feeds=[BTC, ETH], max_ids_per_stream=1, connections=2, request_budget=RequestBudget(3, 1.0))
    await source.start()
    first = [await hermes.next_connection() for _ in range(4)]
    assert sorted(c.ids[0] for c in first) == sorted([BTC, BTC, ETH, ETH])
    for connection in first:
        connection.abort()
    again = [await hermes.next_connection(timeout=WAIT) for _ in range(4)]
    assert sorted(c.ids[0] for c in again) == sorted([BTC, BTC, ETH, ETH])
    assert (len(hermes.stream_requests()), len(hermes.metadata_requests()), source.budget.sent) == (8, 1, 9)
    # Hermes sees at most 3 requests in any second, less a margin for the trip from our clock to its (a busy
    # machine may hold one request back in transit while the next goes straight through).
    arrivals = [round(r.at - hermes.requests[0].at, 3) for r in hermes.requests]
    assert hermes.busiest_window(0.75) == 3, arrivals
    assert arrivals[-1] >= 2.0 - 0.25  # 9 requests at 3 a second: the last goes in the third second
    await until(lambda: source.state == SourceState.CONNECTED, what="all streams back")


async def _all_connected(hermes: HermesServer, source: HermesSource, count: int) -> list[StreamConnection]:
    connections = [await hermes.next_connection() for _ in range(count)]
    await until(lambda: source.metadata_feeds > 0 and source.state == SourceState.CONNECTED, what="steady state")
    return connections


def _sent_after(hermes: HermesServer, refused: Request, cool_down_s: float) -> list[str]:
    """The paths of the requests after a 429, checking that none reached Hermes before its cool-down ended."""
    after = [r for r in hermes.requests if r.at > refused.at]
    assert all(r.at >= refused.at + cool_down_s for r in after), [round(r.at - refused.at, 3) for r in after]
    return [r.path for r in after]


async def test_a_429_to_one_stream_holds_back_every_stream_until_retry_after(
        hermes: HermesServer, make_source: SourceFactory) -> None:
    source = make_source(feeds=[BTC, ETH, SOL], max_ids_per_stream=1, request_budget=RequestBudget(100, 10.0))
    await source.start()
    a, b, c = await _all_connected(hermes, source, 3)
    hermes.stream_script.append(Respond(429, "Too Many Requests", {"Retry-After": "1"}))
    a.abort()
    await until(lambda: source.budget.rate_limited == 1, what="the 429")
    b.abort()  # these two would reconnect within ~20 ms; the cool-down holds them back
    c.abort()
    back = [await hermes.next_connection(timeout=3.0) for _ in range(3)]
    assert sorted(conn.ids[0] for conn in back) == sorted([BTC, ETH, SOL])
    refused = hermes.stream_requests()[3]
    assert _sent_after(hermes, refused, 1.0) == ["/v2/updates/price/stream"] * 3
    assert len(hermes.stream_requests()) == 3 + 1 + 3
    refused_stream = next(s for s in source.streams if s.ids == frozenset(a.ids))
    assert refused_stream.last_error == "HTTP 429 (Retry-After 1 s)"


async def test_a_429_to_the_metadata_fetch_holds_back_the_streams_too(
        hermes: HermesServer, make_source: SourceFactory) -> None:
    source = make_source(feeds=[BTC, ETH], max_ids_per_stream=1, metadata_refresh_s=0.2,
                         request_budget=RequestBudget(100, 10.0))
    await source.start()
    streams = [await hermes.next_connection() for _ in range(2)]
    await until(lambda: source.metadata_feeds > 0, what="the first metadata")
    hermes.metadata_script.append(Respond(429, "Too Many Requests", {"Retry-After": "1"}))  # for the refresh
    await until(lambda: source.budget.rate_limited == 1, what="the metadata's 429")
    for stream in streams:
        stream.abort()
    for _ in range(2):
        await hermes.next_connection(timeout=3.0)
    refused = hermes.metadata_requests()[1]
    assert _sent_after(hermes, refused, 1.0).count("/v2/updates/price/stream") == 2
    assert len(hermes.stream_requests()) == 2 + 2
    assert "HTTP 429 (waiting 1 s)" in str(source.metadata_error)


async def test_a_429_without_retry_after_waits_the_penalty(hermes: HermesServer,
                                                           make_source: SourceFactory) -> None:
    hermes.stream_script.append(Respond(429, "Too Many Requests"))
    source = make_source(request_budget=RequestBudget(100, 10.0, penalty_s=0.5))
    await source.start()
    await hermes.next_connection(timeout=3.0)
    refused, accepted = hermes.stream_requests()
    assert accepted.at - refused.at >= 0.5
    assert stream_of(source).last_error == "HTTP 429 without Retry-After (waiting 0.5 s)"


def test_the_budget_setting_reaches_the_source(hub: Hub) -> None:
    budget = HermesSource.from_settings(hub, load_settings({"hermes_requests_per_10s": 4})).budget
    assert (budget.requests, budget.window_s, budget.penalty_s) == (4, 10.0, 60.0)
    assert HermesSource.from_settings(hub, load_settings()).budget.requests == 10


# -- what a newcomer is told ---------------------------------------------------------


@pytest.mark.parametrize(("status", "api_key", "advice"), [
    (401, None, "Hermes requires an API key: pass --pyth-api-key"),
    (403, None, "Hermes requires an API key: pass --pyth-api-key"),
    (401, "pk-wrong", "Hermes refused the API key: check --pyth-api-key"),
])
async def test_a_refusal_for_want_of_an_api_key_says_which_option_to_pass(
        hermes: HermesServer, make_source: SourceFactory, status: int, api_key: str | None, advice: str) -> None:
    body = {401: "Unauthorized", 403: "Forbidden"}[status]
    hermes.stream_script.extend(Respond(status, body) for _ in range(100))
    hermes.metadata_script.extend(Respond(status, body) for _ in range(100))
    source = make_source(api_key=api_key, backoff=fast_backoff(0.1))
    await source.start()
    await until(lambda: source.state == SourceState.DOWN and source.metadata_error is not None, what="down")
    assert source.last_error == f"{hermes.url}#0: HTTP {status}: {body} ({advice})"
    assert source.metadata_error == f"{hermes.url}: HTTP {status}: {body} ({advice})"


async def test_an_unresolvable_host_says_no_network_try_sim(make_source: SourceFactory) -> None:
    source = make_source(endpoints=["http://nonexistent.invalid/v2/updates/price/stream"],
                         backoff=fast_backoff(0.1))
    await source.start()
    await until(lambda: source.state == SourceState.DOWN and source.metadata_error is not None, what="down")
    assert source.last_error is not None and source.metadata_error is not None
    assert source.last_error.startswith("http://nonexistent.invalid#0: ConnectError: ")
    assert source.last_error.endswith(" (no network: try `--source sim`)")
    assert source.metadata_error.endswith(" (no network: try `--source sim`)")
