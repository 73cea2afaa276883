"""Hermes SSE event ids and Last-Event-ID resume, on the shared transport without a network."""

from __future__ import annotations

import re

import pytest

from pricefeed.contracts import Handshake, Peer
from pricefeed.faces import hermes_sse
from pricefeed.faces.hermes_json import QueryError
from pricefeed.metrics import Metrics
from pricefeed.model import Feed, FeedId, PriceUpdate
from pricefeed.pipeline import Pipeline, local_pipeline
from pricefeed.resume import RecentUpdates
from pricefeed.transport.limits import ConnectionLimits
from pricefeed.transport.listener import Listener
from pricefeed.transport.sse import EventFormat, SseStream

from ..fake_transport import FakeTransport

BTC = "e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43"
ETH = "ff61491a931112ddf1bd8147cd1b641375f79f5825126d665480874634fd0ace"
IDS = [BTC, ETH]
EVENT = re.compile(rb"id:([0-9.]*)\ndata:(\{.*?\})\n\n")


class Market:
    def __init__(self) -> None:
        self.pipeline: Pipeline = local_pipeline()
        self.pipeline.ingest.add_feeds([Feed(BTC, "Crypto.BTC/USD", -8, "t"), Feed(ETH, "Crypto.ETH/USD", -8, "t")])
        self.recent = RecentUpdates()
        self.pipeline.hub.add_listener(self.recent.add)
        self.second = 1_714_748_300

    def tick(self, *feeds: FeedId) -> None:
        self.second += 1
        for feed in feeds:
            self.pipeline.ingest.publish(PriceUpdate(feed, self.second, 1, -8, self.second * 1_000_000, self.second, 1,
                                                     slot=self.second))
        self.pipeline.ingest.run_pass()

    def open(self, last_event_id: str | None = None) -> tuple[SseStream, FakeTransport]:
        hub = self.pipeline.hub
        listener = Listener("hermes_sse", hermes_sse.ALL_UPDATES, lambda peer: None,  # type: ignore[arg-type,return-value]
                            ConnectionLimits(), Metrics())
        prefix, suffix = hermes_sse.event_parts("hex", True)
        resume_from = hermes_sse.parse_event_id(last_event_id, IDS)

        def session(peer: Peer) -> hermes_sse.PriceStreamSession:
            assert isinstance(peer, SseStream)
            return hermes_sse.PriceStreamSession(hub, peer, IDS, False, self.recent, resume_from, peer.write_event)

        event_format = EventFormat(prefix=prefix, suffix=suffix,
                                   event_id=hermes_sse.StreamCursor(hub, IDS).event_id)
        stream = SseStream(listener, Handshake(), event_format, session)
        transport = FakeTransport()
        stream.connection_made(transport)
        _head, _, replay = transport.take().partition(b"\r\n\r\n")
        transport.writes = [replay] if replay else []
        return stream, transport


def events(transport: FakeTransport) -> list[tuple[str, list[tuple[str, int]]]]:
    """Each event's id and its items as (feed, seq read from the id)."""
    out = []
    for event_id, data in EVENT.findall(transport.take()):
        seqs = dict(zip(IDS, [int(part) if part else 0 for part in event_id.split(b".")], strict=True))
        items = [(item[:3], seqs[item]) for item in re.findall(rb'"id":"([0-9a-f]{64})"', data)
                 for item in [item.decode()]]
        out.append((event_id.decode(), [(feed[:3], seq) for feed, seq in items]))
    return out


async def test_each_event_has_the_seqs_the_client_has_seen_as_its_id() -> None:
    market = Market()
    _, transport = market.open()
    market.tick(BTC, ETH)
    market.tick(BTC)
    assert events(transport) == [("1.1", [("e62", 1), ("ff6", 1)]), ("2.1", [("e62", 2)])]


async def test_a_reconnect_with_last_event_id_replays_exactly_what_was_missed_then_live() -> None:
    market = Market()
    first, transport = market.open()
    market.tick(BTC, ETH)
    [(last_id, _)] = events(transport)
    first.connection_lost(None)
    market.tick(BTC, ETH)
    market.tick(BTC)
    market.tick(BTC)
    _, transport = market.open(last_id)
    replayed = events(transport)
    assert replayed == [("2.2", [("e62", 2), ("ff6", 2)]), ("3.2", [("e62", 3)]), ("4.2", [("e62", 4)])]
    market.tick(BTC, ETH)
    assert events(transport) == [("5.3", [("e62", 5), ("ff6", 3)])]


async def test_a_client_at_the_latest_seqs_gets_nothing_replayed() -> None:
    market = Market()
    market.tick(BTC, ETH)
    _, transport = market.open("1.1")
    assert transport.take() == b""
    market.tick(ETH)
    assert events(transport) == [("1.2", [("ff6", 2)])]


async def test_an_empty_part_means_that_feed_live_only() -> None:
    market = Market()
    for _ in range(3):
        market.tick(BTC, ETH)
    _, transport = market.open("1.")
    assert events(transport) == [("2.", [("e62", 2)]), ("3.", [("e62", 3)])]
    market.tick(BTC, ETH)
    assert events(transport) == [("4.4", [("e62", 4), ("ff6", 4)])]


@pytest.mark.parametrize("bad", ["1", "1.2.3", "a.1", "-1.2", "1.2 "])
def test_a_malformed_last_event_id_is_a_query_error(bad: str) -> None:
    with pytest.raises(QueryError, match="Invalid Last-Event-ID"):
        hermes_sse.parse_event_id(bad, IDS)
    assert hermes_sse.parse_event_id(None, IDS) is None
    assert hermes_sse.parse_event_id("7.", IDS) == [7, None]  # ETH: nothing seen, live only
