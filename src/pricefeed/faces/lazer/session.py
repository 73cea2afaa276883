"""One ``/v1/stream`` connection: its subscriptions, each delivering ``streamUpdated`` messages, without I/O.

A subscription is a subscriber of the hub in its own right: on ``real_time``
it watches the feeds' price topics, on a fixed-rate channel their tick topics
(see ``clock.py``). Each pass it gets the entries of its feeds that moved,
already encoded for its property set, and sends one ``streamUpdated`` with
them in the order the request named the feeds.

Resume (a pricefeed addition): a ``real_time`` subscription may give
``sinceSeq``, ``{"<price feed id>": <last seq seen>}``; its entries then carry
``seq``, ``subscribed`` says ``recovered`` (whether every feed's missed
updates were all still held), and instead of the snapshot come the missed
updates as ``streamUpdated`` messages (the k-th missed update of each feed in
the k-th), then live.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson

from ...contracts import Codec, Peer
from ...hub import Hub
from ...lazer_ids import LazerIds
from ...model import FeedId, PriceUpdate, now_us
from ...resume import RecentUpdates
from ...topics import Topic
from .clock import FixedRateClock, last_tick_us, tick_topic
from .codec import FeedEntryCodec, Tick
from .requests import RequestError, Subscribe, Unsubscribe, parse_request


def error(message: str) -> bytes:
    return orjson.dumps({"type": "error", "error": message})


def subscription_error(subscription_id: int, message: str) -> bytes:
    return orjson.dumps({"type": "subscriptionError", "subscriptionId": subscription_id, "error": message})


class Stream:
    """One subscription, as the hub sees it."""

    __slots__ = ("channel", "codec", "feeds", "peer", "position", "prefix", "subscription_id", "timestamp_of",
                 "topics")

    def __init__(self, subscription_id: int, channel: str, feeds: list[FeedId], codec: Codec, peer: Peer,
                 timestamp_of: Callable[[Topic], int]) -> None:
        self.subscription_id = subscription_id
        self.channel = channel
        self.feeds = feeds
        self.codec: Codec = codec
        self.peer = peer
        self.topics = feeds if channel == "real_time" else [tick_topic(channel, feed_id) for feed_id in feeds]
        self.position = {topic: index for index, topic in enumerate(self.topics)}
        self.timestamp_of = timestamp_of
        self.prefix = b'{"type":"streamUpdated","subscriptionId":%d,"parsed":{"timestampUs":"' % subscription_id

    def deliver(self, frames: dict[Topic, bytes]) -> None:
        if not frames:
            return
        ordered = sorted(frames, key=self.position.__getitem__) if len(frames) > 1 else list(frames)
        timestamp = max(map(self.timestamp_of, ordered))
        self.peer.send(b"".join((self.prefix, b"%d" % timestamp, b'","priceFeeds":[',
                                 b",".join(frames[topic] for topic in ordered), b"]}}")))
        self.peer.flush()


class LazerSession:
    def __init__(self, face: LazerFace, peer: Peer, max_feeds: int) -> None:
        self.face = face
        self.peer = peer
        self.max_feeds = max_feeds
        self.streams: dict[int, Stream] = {}

    def opened(self) -> None:
        """Lazer says nothing until the client subscribes."""

    def closed(self) -> None:
        for subscription_id in list(self.streams):
            self._drop(subscription_id)

    def receive_binary(self, data: bytes) -> None:
        self.receive_text(data)

    def receive_text(self, text: str | bytes) -> None:
        try:
            request = parse_request(text)
        except RequestError as exc:
            self.peer.send(error(exc.message) if exc.subscription_id is None else
                           subscription_error(exc.subscription_id, exc.message))
            return
        if isinstance(request, Unsubscribe):
            self._unsubscribe(request.subscription_id)
        else:
            self._subscribe(request)

    def _unsubscribe(self, subscription_id: int) -> None:
        if subscription_id not in self.streams:
            self.peer.send(subscription_error(subscription_id, f"no subscription with id {subscription_id}"))
            return
        self._drop(subscription_id)
        self.peer.send(orjson.dumps({"type": "unsubscribed", "subscriptionId": subscription_id}))

    def _subscribe(self, request: Subscribe) -> None:
        sid = request.subscription_id
        if sid in self.streams:
            self.peer.send(subscription_error(sid, f"Duplicate subscription IDs: {sid} is already subscribed"))
            return
        ids = self.face.ids
        feeds: list[FeedId] = []
        lazer_ids: list[int] = []
        unknown_ids: list[int] = []
        unknown_symbols: list[str] = []
        for lazer_id in request.price_feed_ids or ():
            feed_id = ids.feed_of(lazer_id)
            if feed_id is None:
                unknown_ids.append(lazer_id)
            else:
                feeds.append(feed_id)
                lazer_ids.append(lazer_id)
        for symbol in request.symbols or ():
            feed_id = ids.feed_of_symbol(symbol)
            symbol_id = None if feed_id is None else ids.lazer_id(feed_id)
            if feed_id is None or symbol_id is None:
                unknown_symbols.append(symbol)
            else:
                feeds.append(feed_id)
                lazer_ids.append(symbol_id)
        invalid = bool(unknown_ids or unknown_symbols)
        if not feeds or (invalid and not request.ignore_invalid_feeds):
            problems = ([f"unknown price feed ids: {unknown_ids}"] if unknown_ids else []) + \
                ([f"unknown symbols: {unknown_symbols}"] if unknown_symbols else [])
            self.peer.send(subscription_error(sid, "; ".join(problems) + " (GET /v1/symbols lists the feeds)"))
            return
        feeds = list(dict.fromkeys(feeds))  # a symbol and an id may name the same feed
        if request.since_seq is not None and request.channel != "real_time":
            self.peer.send(subscription_error(sid, "sinceSeq resumes real_time subscriptions only: a fixed-rate "
                                                   "channel sends the price as of each tick, not every update"))
            return
        used = sum(len(stream.feeds) for stream in self.streams.values())
        if used + len(feeds) > self.max_feeds:
            self.peer.send(subscription_error(sid, f"subscription limit reached: at most {self.max_feeds} feeds "
                                                   f"per connection ({used} already subscribed)"))
            return
        refused = self.peer.claim(feeds)  # the API key's feeds and subscription limit
        if refused is not None:
            self.peer.send(subscription_error(sid, refused))
            return
        stream = self._add(request, feeds)
        resumed = None if request.since_seq is None else self._missed(feeds, request.since_seq)
        resume_reply = {} if resumed is None else {"recovered": resumed[1]}
        if invalid:
            self.peer.send(orjson.dumps({
                "type": "subscribedWithInvalidFeedIdsIgnored", "subscriptionId": sid, "subscribedFeedIds": lazer_ids,
                "ignoredInvalidFeedIds": {"unknownIds": unknown_ids, "unknownSymbols": unknown_symbols,
                                          "unsupportedChannels": [], "unstable": []}, **resume_reply}))
        else:
            self.peer.send(orjson.dumps({"type": "subscribed", "subscriptionId": sid, **resume_reply}))
        if resumed is None:
            self._snapshot(stream)
        else:
            self._replay(stream, resumed[0])

    def _missed(self, feeds: list[FeedId], since_seq: dict[int, int]) -> tuple[list[list[PriceUpdate]], bool]:
        """Per feed, what came after its seq (a feed without one: its latest, as the snapshot), and whether all
        of it was still held."""
        recent, ids, latest = self.face.recent, self.face.ids, self.face.hub.latest
        missed, recovered = [], True
        for feed_id in feeds:
            lazer_id = ids.lazer_id(feed_id)
            seq = None if lazer_id is None else since_seq.get(lazer_id)
            if seq is None:
                update = latest.get(feed_id)
                missed.append([] if update is None else [update])
                continue
            recovery = recent.since(feed_id, seq)
            missed.append(recovery.updates)
            recovered = recovered and recovery.recovered
        return missed, recovered

    def _replay(self, stream: Stream, missed: list[list[PriceUpdate]]) -> None:
        """The missed updates as streamUpdated messages, sent before the hub's next pass brings the live ones."""
        for k in range(max(map(len, missed), default=0)):
            frames, stamps = {}, {}
            for topic, updates in zip(stream.topics, missed, strict=True):
                if k < len(updates):
                    frames[topic] = stream.codec.encode(topic, updates[k])
                    stamps[topic] = updates[k].publish_time_us
            Stream(stream.subscription_id, stream.channel, stream.feeds, stream.codec, self.peer,
                   stamps.__getitem__).deliver(frames)

    def _add(self, request: Subscribe, feeds: list[FeedId]) -> Stream:
        face, channel = self.face, request.channel
        timestamp_of = face.price_timestamp if channel == "real_time" else face.tick_timestamp
        stream = Stream(request.subscription_id, channel, feeds,
                        face.codec(request.properties, with_seq=request.since_seq is not None), self.peer,
                        timestamp_of)
        self.streams[request.subscription_id] = stream
        for feed_id, topic in zip(feeds, stream.topics, strict=True):
            if channel != "real_time":
                face.clock.watch(channel, feed_id)
            face.hub.subscribe(topic, stream)
        return stream

    def _drop(self, subscription_id: int) -> None:
        stream = self.streams.pop(subscription_id)
        still = {feed for other in self.streams.values() for feed in other.feeds}
        self.peer.unclaim(feed for feed in stream.feeds if feed not in still)
        for feed_id, topic in zip(stream.feeds, stream.topics, strict=True):
            self.face.hub.unsubscribe(topic, stream)
            if stream.channel != "real_time":
                self.face.clock.unwatch(stream.channel, feed_id)

    def _snapshot(self, stream: Stream) -> None:
        """The subscribed feeds' latest prices at once: on a fixed-rate channel, those older than its latest tick,
        stamped with that tick; a newer one goes out at the next tick, as if it had changed then."""
        latest = self.face.hub.latest
        items: dict[Topic, Any] = {}
        stamps: dict[Topic, int] = {}
        tick = None if stream.channel == "real_time" else last_tick_us(stream.channel, now_us())
        for feed_id, topic in zip(stream.feeds, stream.topics, strict=True):
            update = latest.get(feed_id)
            if update is None:
                continue
            if tick is None:
                items[topic], stamps[topic] = update, update.publish_time_us
            elif update.publish_time_us <= tick:
                items[topic], stamps[topic] = Tick(update, tick), tick
            else:
                self.face.clock.changed(stream.channel, feed_id)
        if items:
            frames = {topic: stream.codec.encode(topic, item) for topic, item in items.items()}
            Stream(stream.subscription_id, stream.channel, stream.feeds, stream.codec, self.peer,
                   stamps.__getitem__).deliver(frames)


class LazerFace:
    """What the Lazer face's connections share: the hub, the id map, the fixed-rate clock, one codec per
    property set."""

    def __init__(self, hub: Hub, max_feeds: int = 1000, recent: RecentUpdates | None = None) -> None:
        self.hub = hub
        self.max_feeds = max_feeds
        self.recent = recent if recent is not None else RecentUpdates(keep_s=0)
        self.ids = LazerIds(hub.feeds)
        self.clock = FixedRateClock(hub)
        self._codecs: dict[tuple[frozenset[str], bool], FeedEntryCodec] = {}
        self.default_codec = self.codec(("price",))

    def codec(self, properties: Iterable[str], with_seq: bool = False) -> FeedEntryCodec:
        key = (frozenset(properties), with_seq)
        codec = self._codecs.get(key)
        if codec is None:
            codec = self._codecs[key] = FeedEntryCodec(key[0], self._lazer_id, with_seq)
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
