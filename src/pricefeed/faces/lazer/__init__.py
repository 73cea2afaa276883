"""Pyth Lazer's ``/v1/stream`` and ``/v1/symbols``, served from every feed pricefeed has, whatever its source.

Channels ``real_time`` (every update) and ``fixed_rate@50ms``/``@200ms``/
``@1000ms`` (the changed feeds' latest prices at each tick of the channel's
clock). Lazer's own feeds keep Lazer's ids; the others get stable ids of
their own (``lazer_ids.py``), all listed at ``GET /v1/symbols``.
"""

from __future__ import annotations

from collections.abc import Iterable

from ...contracts import Peer
from ...hub import Hub
from ...lazer_ids import LazerIds
from ...topics import Topic
from .auth import AUTH_SUBPROTOCOL, lazer_token
from .clock import FixedRateClock
from .codec import FeedEntryCodec, Tick
from .session import LazerSession

__all__ = ["AUTH_SUBPROTOCOL", "PING_INTERVAL_S", "FeedEntryCodec", "LazerFace", "LazerSession", "lazer_token"]

PING_INTERVAL_S = 2.0
"""Lazer's SDKs give up on a connection silent for 5 s; under Node a ping counts, so quiet feeds keep it."""


class LazerFace:
    """What the Lazer face's connections share: the hub, the id map, the fixed-rate clock, one codec per
    property set."""

    def __init__(self, hub: Hub, max_feeds: int = 1000) -> None:
        self.hub = hub
        self.max_feeds = max_feeds
        self.ids = LazerIds(hub.feeds)
        self.clock = FixedRateClock(hub)
        self._codecs: dict[frozenset[str], FeedEntryCodec] = {}
        self.default_codec = self.codec(("price",))

    def codec(self, properties: Iterable[str]) -> FeedEntryCodec:
        key = frozenset(properties)
        codec = self._codecs.get(key)
        if codec is None:
            codec = self._codecs[key] = FeedEntryCodec(key, self._lazer_id)
        return codec

    def _lazer_id(self, feed_id: str) -> int | None:
        return self.ids.lazer_id(feed_id)

    def session(self, peer: Peer) -> LazerSession:
        return LazerSession(self, peer, self.max_feeds)

    def price_timestamp(self, topic: Topic) -> int:
        return self.hub.latest[topic].publish_time_us

    def tick_timestamp(self, topic: Topic) -> int:
        tick = self.hub.latest_events[topic]
        assert isinstance(tick, Tick)
        return tick.timestamp_us
