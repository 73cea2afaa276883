"""The load client's /ws/stream side without sockets: subscribing, waiting for the confirmations, dating samples.

The server's side of each message is pricefeed's own encoder (``faces/streams``), so the markers the load
client looks for are checked against the bytes the service really sends.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest
from benchmarks import loadclient, samples
from benchmarks.common import HIST_SCALE, parse_iso_time
from benchmarks.loadclient import STREAMS, Counting
from benchmarks.streams_client import sample_streams
from picows import WSMsgType

from pricefeed.faces.streams.codecs import StreamCodecs
from pricefeed.faces.streams.messages import connection, error, heartbeat_ack, pong, subscription
from pricefeed.faces.streams.symbols import SymbolIndex
from pricefeed.model import Feed, PriceUpdate

BTC = "e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43"
ETH = "ff61491a931112ddf1bd8147cd1b641375f79f5825126d665480874634fd0ace"
FEEDS = {BTC: Feed(BTC, "Crypto.BTC/USD", -8, "sim"), ETH: Feed(ETH, "Crypto.ETH/USD", -8, "sim")}
SYMBOLS = SymbolIndex(FEEDS)
CODECS = StreamCodecs(SYMBOLS, None)

PUBLISHED_US = 1_714_748_301_123_456
"""The update's publish time (2024-05-03T14:58:21.123456Z), long before any message here is made or sent."""
STAMP = "2024-05-03T14:58:21.123Z"
PRODUCED = parse_iso_time(STAMP)


def data(feed_id: str, price: int = 6_163_088_000_000) -> bytes:
    """The seed's ``data`` message of an update, as /ws/stream encodes it (once per pass, for every client)."""
    update = PriceUpdate(feed_id, price, 3_308_129_843, -8, PUBLISHED_US, price, 3_308_129_843)
    return CODECS.data.encode(feed_id, update)


class Frame:
    """What the listener reads of a picows frame."""

    msg_type = WSMsgType.TEXT

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def get_payload_as_bytes(self) -> bytes:
        return self.payload


def deliver(listener: Counting, *payloads: bytes) -> None:
    for payload in payloads:
        listener.on_ws_frame(None, Frame(payload))  # type: ignore[arg-type]


def bin_of(delay_s: float) -> int:
    """The histogram bin of a message parsed ``delay_s`` after STAMP (computed as the client does)."""
    return int(((PRODUCED + delay_s) - PRODUCED) * 1000.0 * HIST_SCALE)


@pytest.fixture
def setup_state(monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """The load client's set-up state for one connection on BTC and ETH; the event set when it is done."""
    done = asyncio.Event()
    monkeypatch.setattr(loadclient, "_pending_confirmations", 2)
    monkeypatch.setattr(loadclient, "_all_confirmed", done)
    monkeypatch.setattr(loadclient, "_setup_failure", None)
    samples.hist.clear()
    return done


def subscribed(sample: bool = True) -> Counting:
    """A sampling client on BTC and ETH, as ``open_ws`` leaves it once it sent its subscribe messages."""
    listener = Counting(STREAMS, sample_streams if sample else None)
    _, listener.expect = STREAMS.subscribe([BTC, ETH])
    return listener


def test_a_client_sends_one_subscribe_per_feed_naming_it_by_a_symbol_the_service_knows() -> None:
    messages, confirmations = STREAMS.subscribe([BTC, ETH])
    assert messages == [b'{"type":"subscribe","symbol":"%s"}' % feed.encode() for feed in (BTC, ETH)]
    assert confirmations == 2
    assert [SYMBOLS.resolve(orjson.loads(message)["symbol"]) for message in messages] == [BTC, ETH]


def test_the_setup_waits_for_every_subscription_past_the_welcome_and_the_snapshot(
        setup_state: asyncio.Event, monkeypatch: pytest.MonkeyPatch) -> None:
    listener = subscribed()
    deliver(listener, connection())  # the welcome's "status":"connected" is not a confirmation
    assert (loadclient._pending_confirmations, listener.expect) == (2, 2)
    deliver(listener, subscription("subscribed", "BTC/USD"), data(BTC))  # the reply, then BTC's latest price
    assert (loadclient._pending_confirmations, listener.expect) == (1, 1)
    assert not setup_state.is_set()
    monkeypatch.setattr(samples.time, "time", lambda: PRODUCED + 0.5)
    deliver(listener, subscription("subscribed", "ETH/USD"))
    assert (loadclient._pending_confirmations, listener.expect) == (0, 0)
    assert setup_state.is_set() and loadclient._setup_failure is None
    assert samples.hist == {}  # nothing of the set-up is a sample
    assert listener.frames == 4  # every text frame is counted (a window counts only what comes in it)


def test_a_data_message_is_dated_by_its_timestamp_the_publish_time_of_its_price(
        setup_state: asyncio.Event, monkeypatch: pytest.MonkeyPatch) -> None:
    listener = subscribed()
    deliver(listener, connection(), subscription("subscribed", "BTC/USD"), subscription("subscribed", "ETH/USD"))
    message = orjson.loads(data(ETH))
    assert message["timestamp"] == STAMP  # the update's publish time (ms, truncated), not the time it was sent
    assert message["symbol"] == "ETH/USD"
    monkeypatch.setattr(samples.time, "time", lambda: PRODUCED + 0.0042)
    deliver(listener, data(ETH), heartbeat_ack(), pong(), data(BTC, 6_163_090_000_000))
    assert samples.hist == {bin_of(0.0042): 2}  # the two data messages; replies made "now" are not samples
    assert listener.frames == 3 + 4


def test_a_counting_client_counts_without_parsing(setup_state: asyncio.Event) -> None:
    listener = subscribed(sample=False)
    deliver(listener, connection(), subscription("subscribed", "BTC/USD"), subscription("subscribed", "ETH/USD"),
            data(BTC), data(ETH), b"not even JSON")
    assert setup_state.is_set()
    assert (listener.frames, samples.hist) == (6, {})


def test_a_refused_subscription_fails_the_setup_with_the_services_error(setup_state: asyncio.Event) -> None:
    listener = subscribed()
    refusal = error("unknown symbol 'XYZ': known symbols are BTC/USD, ETH/USD")
    deliver(listener, connection(), subscription("subscribed", "BTC/USD"), refusal)
    assert setup_state.is_set()
    assert loadclient._setup_failure == refusal.decode()
    assert loadclient._pending_confirmations == 1
