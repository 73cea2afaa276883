"""The Hermes SSE face on the shared transport, without a network: framing, keep-alive, slow consumers, the end."""

from __future__ import annotations

import time

from pricefeed.contracts import CloseCode, Handshake, Peer
from pricefeed.faces import hermes_sse
from pricefeed.metrics import Metrics
from pricefeed.model import Feed, PriceUpdate
from pricefeed.pipeline import Pipeline, local_pipeline
from pricefeed.transport.limits import ConnectionLimits
from pricefeed.transport.listener import Listener
from pricefeed.transport.sse import END, EventFormat, SseStream, chunk

from ..fake_transport import FakeTransport

BTC = "e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43"
LIMITS = ConnectionLimits(outbox_limit_bytes=16 * 1024, slow_client_timeout_s=10.0)


def pipeline_with_btc() -> Pipeline:
    pipeline = local_pipeline()
    pipeline.ingest.add_feeds([Feed(BTC, "Crypto.BTC/USD", -8, "test")])
    return pipeline


def update(step: int) -> PriceUpdate:
    return PriceUpdate(BTC, 6163088000000 + step, 3308129843, -8, (1714748301 + step) * 1_000_000, 6130103000000,
                       3587126400, prev_publish_time_us=(1714748300 + step) * 1_000_000, slot=138886135 + step)


def no_session(peer: object) -> hermes_sse.PriceStreamSession:
    raise AssertionError("a stream's session comes from its request")


def open_stream(pipeline: Pipeline, *, parsed: bool = True) -> tuple[SseStream, FakeTransport]:
    listener = Listener("hermes_sse", hermes_sse.ALL_UPDATES, no_session, LIMITS, Metrics())
    prefix, suffix = hermes_sse.event_parts("hex", parsed)
    event_format = EventFormat(prefix=prefix, suffix=suffix, show_items=parsed, keepalive_s=hermes_sse.KEEPALIVE_S,
                               max_age_s=hermes_sse.MAX_CONNECTION_S, timeout_event=hermes_sse.TIMEOUT_24H,
                               slow_event=hermes_sse.SLOW_CONSUMER)

    def session(peer: Peer) -> hermes_sse.PriceStreamSession:
        return hermes_sse.PriceStreamSession(pipeline.hub, peer, [BTC], benchmarks_only=False)

    stream = SseStream(listener, Handshake(), event_format, session)
    transport = FakeTransport()
    stream.connection_made(transport)
    return stream, transport


async def test_an_event_is_hermes_framing_and_quiet_gets_a_keepalive() -> None:
    pipeline = pipeline_with_btc()
    stream, transport = open_stream(pipeline)
    head = transport.take()
    assert head.startswith(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n")
    assert b"transfer-encoding: chunked\r\n" in head and head.endswith(b"\r\n\r\n")
    stream.tick(time.monotonic() + hermes_sse.KEEPALIVE_S)  # quiet: keep-alive comment
    assert transport.take() == chunk(b":\n\n")
    pipeline.ingest.publish(update(0))
    pipeline.ingest.run_pass()
    assert transport.take() == chunk(
        b'data:{"binary":{"encoding":"hex","data":[]},"parsed":[{"id":"' + BTC.encode() +
        b'","price":{"price":"6163088000000","conf":"3308129843","expo":-8,"publish_time":1714748301},'
        b'"ema_price":{"price":"6130103000000","conf":"3587126400","expo":-8,"publish_time":1714748301},'
        b'"metadata":{"slot":138886135,"proof_available_time":1714748301,'
        b'"prev_publish_time":1714748300}}]}\n\n')
    stream.connection_lost(None)
    assert pipeline.hub.subscription_count() == 0


async def test_parsed_false_events_carry_no_items() -> None:
    pipeline = pipeline_with_btc()
    _, transport = open_stream(pipeline, parsed=False)
    transport.take()
    pipeline.ingest.publish(update(0))
    pipeline.ingest.run_pass()
    assert transport.take() == chunk(b'data:{"binary":{"encoding":"hex","data":[]}}\n\n')


async def test_a_consumer_that_falls_behind_is_conflated_then_cut_off_with_the_slow_consumer_error() -> None:
    pipeline = pipeline_with_btc()
    stream, transport = open_stream(pipeline)
    transport.take()
    stream.pause_writing()  # the client stopped reading: the socket buffer is full
    for step in range(1, 50):
        pipeline.ingest.publish(update(step))
        pipeline.ingest.run_pass()
    assert transport.take() == b""  # nothing written while blocked
    assert len(stream.outbox) == 1  # conflated: only BTC's newest price waits
    transport.buffered = LIMITS.outbox_limit_bytes  # the kernel holds more than the bound
    pipeline.ingest.publish(update(50))
    pipeline.ingest.run_pass()
    assert transport.aborted
    assert transport.take() == chunk(hermes_sse.SLOW_CONSUMER)
    stream.connection_lost(None)
    assert pipeline.hub.subscription_count() == 0


async def test_a_blocked_consumer_is_cut_off_after_the_timeout_even_with_nothing_new_to_send() -> None:
    pipeline = pipeline_with_btc()
    stream, transport = open_stream(pipeline)
    stream.pause_writing()
    stream._paused_since = time.monotonic() - LIMITS.slow_client_timeout_s - 1  # blocked for longer than allowed
    assert stream.check_slow()  # what the listener's sweep calls every second
    assert transport.aborted


async def test_a_resumed_consumer_gets_what_it_missed_in_one_event() -> None:
    pipeline = pipeline_with_btc()
    stream, transport = open_stream(pipeline)
    transport.take()
    stream.pause_writing()
    for step in range(3):
        pipeline.ingest.publish(update(step))
        pipeline.ingest.run_pass()
    stream.resume_writing()
    [event] = transport.writes
    assert event.count(b"data:") == 1 and b'"price":"6163088000002"' in event


async def test_shutdown_ends_the_stream_cleanly() -> None:
    pipeline = pipeline_with_btc()
    stream, transport = open_stream(pipeline)
    transport.take()
    stream.close(CloseCode.GOING_AWAY, "server shutting down")
    assert transport.take() == END and transport.closed and not transport.aborted


async def test_the_stream_ends_after_24_hours() -> None:
    pipeline = pipeline_with_btc()
    stream, transport = open_stream(pipeline)
    transport.take()
    stream.tick(time.monotonic() + hermes_sse.MAX_CONNECTION_S + 1)
    assert transport.take() == chunk(hermes_sse.TIMEOUT_24H) + END
    assert transport.closed
