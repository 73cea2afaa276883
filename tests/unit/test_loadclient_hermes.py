"""The load client's Hermes side without sockets: the SSE stream reader and the clock that dates Hermes deliveries."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import orjson
import pytest
from benchmarks import samples
from benchmarks.common import HIST_SCALE, parse_iso_time
from benchmarks.hermes_clients import SseStream, hermes_ws_sampler, hermes_ws_subscribe, sse_sampler, stream_request
from benchmarks.samples import PublishClock, seed000_key

BTC = "e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43"
ETH = "ff61491a931112ddf1bd8147cd1b641375f79f5825126d665480874634fd0ace"


def parsed_item(feed_id: str, price: str, conf: str, publish_time: int = 1714748301) -> dict[str, Any]:
    """A ``parsed[]`` item as Hermes writes it (reference/hermes.md 1.4)."""
    return {"id": feed_id, "price": {"price": price, "conf": conf, "expo": -8, "publish_time": publish_time},
            "ema_price": {"price": price, "conf": conf, "expo": -8, "publish_time": publish_time},
            "metadata": {"slot": 138886135, "proof_available_time": publish_time, "prev_publish_time": publish_time}}


def event(*items: dict[str, Any]) -> bytes:
    return b"data:" + orjson.dumps({"binary": {"encoding": "hex", "data": []}, "parsed": list(items)}) + b"\n\n"


def chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


class FakeTransport:
    def __init__(self) -> None:
        self.written = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True


class Recorder:
    def __init__(self, request: bytes = b"GET / HTTP/1.1\r\n\r\n") -> None:
        self.ready: list[str | None] = []
        self.sampled: list[bytes] = []
        self.closed = 0
        self.transport = FakeTransport()
        self.stream = SseStream(request, self.ready.append, self.sampled.append, self.on_closed)
        self.stream.connection_made(self.transport)  # type: ignore[arg-type]

    def on_closed(self) -> None:
        self.closed += 1

    def feed(self, data: bytes, piece: int) -> None:
        for start in range(0, len(data), piece):
            self.stream.data_received(data[start:start + piece])


FIRST = event(parsed_item(BTC, "6163088000000", "3308129843"))
SECOND = event(parsed_item(BTC, "6163090000000", "3308100000"), parsed_item(ETH, "312345000000", "150000000"))
THIRD = event(*(parsed_item(BTC, str(6163090000000 + i), "3308100001") for i in range(3)))
HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
        b"transfer-encoding: chunked\r\n\r\n")


@pytest.mark.parametrize("piece", [1, 2, 7, 64, 100_000])
def test_every_parsed_item_is_counted_once_however_the_stream_is_cut(piece: int) -> None:
    # Chunks that split events (and the item marker) anywhere, a keep-alive, and events sharing a chunk.
    body = FIRST + SECOND + b":\n\n" + THIRD
    cuts = [0, 9, len(FIRST) + 3, len(FIRST) + 40, len(FIRST) + len(SECOND) + 1, len(body)]
    recorder = Recorder()
    recorder.feed(HEAD + chunked(*(body[a:b] for a, b in pairwise(cuts))), piece)
    assert recorder.stream.frames == 1 + 2 + 3
    assert recorder.ready == [None]  # ready with the first event, once
    assert recorder.sampled == [SECOND[5:-2], THIRD[5:-2]]  # later events' data, in order, each once
    assert recorder.transport.closed  # the stream ended (terminal chunk), so the client closes


def test_a_stream_without_chunking_is_read_until_the_server_closes() -> None:
    recorder = Recorder()
    recorder.feed(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n" + FIRST + SECOND,
                  5)
    assert (recorder.stream.frames, recorder.ready) == (3, [None])
    recorder.stream.connection_lost(None)
    assert recorder.ready == [None] and recorder.closed == 1


def test_named_events_and_keep_alives_are_not_deliveries() -> None:
    recorder = Recorder()
    recorder.feed(HEAD + chunked(b":\n\n", FIRST, b"event:error\ndata:Slow consumer: disconnected\n\n"), 100)
    assert recorder.stream.frames == 1
    assert recorder.sampled == []


def test_a_refused_stream_reports_hermes_reason() -> None:
    recorder = Recorder()
    body = b"Price ids not found: 0x" + b"ab" * 32
    recorder.feed(b"HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n%s"
                  % (len(body), body), 3)
    assert recorder.ready == ["HTTP 404: " + body.decode()]
    assert recorder.stream.frames == 0 and recorder.transport.closed


def test_a_stream_closed_before_its_first_event_is_not_ready() -> None:
    recorder = Recorder()
    recorder.feed(HEAD, 10)
    recorder.stream.connection_lost(None)
    assert recorder.ready == ["stream closed before its first event (HTTP 200)"]
    assert recorder.closed == 1


def test_requests_ask_for_the_feeds_as_hermes_clients_do() -> None:
    request = stream_request("127.0.0.1", 8080, [BTC, "0x" + ETH])
    assert request == (f"GET /v2/updates/price/stream?ids%5B%5D=0x{BTC}&ids%5B%5D=0x{ETH}&parsed=true HTTP/1.1\r\n"
                       "Host: 127.0.0.1:8080\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n").encode()
    assert orjson.loads(hermes_ws_subscribe([BTC])) == {"type": "subscribe", "ids": ["0x" + BTC]}


# -- dating Hermes deliveries -------------------------------------------------------------------------------

STAMP = "2024-05-03T14:58:21.123Z"
PRODUCED = parse_iso_time(STAMP)


def seed000_frame(feed_id: str, price: float, conf: float) -> bytes:
    """A seed-000 price_update of the same update: decimals, and publish_time in milliseconds."""
    return orjson.dumps({"type": "price_update", "data": {
        "id": feed_id, "price": price, "conf": conf, "expo": -8, "status": "trading", "publish_time": STAMP,
        "ema_price": price, "ema_conf": conf}})


def bin_of(delay_s: float) -> int:
    """The histogram bin of a delivery received ``delay_s`` after PRODUCED (computed as the client does)."""
    return int(((PRODUCED + delay_s) - PRODUCED) * 1000.0 * HIST_SCALE)


@pytest.fixture(autouse=True)
def empty_histogram() -> None:
    samples.hist.clear()


def test_a_seed000_update_and_its_hermes_twin_have_one_key() -> None:
    data = orjson.loads(seed000_frame("0x" + BTC.upper(), 61630.88, 33.08129843))["data"]
    assert seed000_key(data) == (BTC, "6163088000000", "3308129843")


def test_a_delivery_is_dated_whether_it_arrives_before_or_after_the_clock_learns_its_update() -> None:
    clock = PublishClock()
    clock.new_window()
    clock.received((BTC, "6163088000000", "3308129843"), PRODUCED + 0.004)  # before: it waits
    assert samples.hist == {}
    clock.learn(seed000_frame(BTC, 61630.88, 33.08129843))
    assert samples.hist == {bin_of(0.004): 1}
    clock.received((BTC, "6163088000000", "3308129843"), PRODUCED + 0.0123)  # after: dated at once
    assert samples.hist == {bin_of(0.004): 1, bin_of(0.0123): 1}
    clock.received((ETH, "1", "1"), PRODUCED)  # never published on the clock's connection
    assert clock.end_window() == 1


def test_hermes_ws_and_sse_samplers_date_each_update_by_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = PublishClock()
    clock.learn(seed000_frame(BTC, 61630.9, 33.081))
    clock.learn(seed000_frame(ETH, 3123.45, 1.5))
    monkeypatch.setattr(samples.time, "time", lambda: PRODUCED + 0.002)
    monkeypatch.setattr("benchmarks.hermes_clients.time.time", lambda: PRODUCED + 0.002)
    sse_sampler(clock)(SECOND[5:-2])
    hermes_ws_sampler(clock)(orjson.dumps({"type": "price_update", "price_feed": {
        "id": BTC, "price": {"price": "6163090000000", "conf": "3308100000", "expo": -8, "publish_time": 1714748301},
        "ema_price": {"price": "6163090000000", "conf": "3308100000", "expo": -8, "publish_time": 1714748301}}}))
    assert samples.hist == {bin_of(0.002): 3}
    assert clock.end_window() == 0


def test_events_with_pricefeeds_id_line_are_counted_and_sampled() -> None:
    recorder = Recorder()
    recorder.feed(HEAD + chunked(b"id:7.3\n" + FIRST, b"id:8.4\n" + SECOND), 4)
    assert (recorder.stream.frames, recorder.ready) == (3, [None])
    assert recorder.sampled == [SECOND[5:-2]]
