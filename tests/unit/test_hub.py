from __future__ import annotations

import asyncio

from pricefeed.contracts import Codec
from pricefeed.model import Feed, FeedId, PriceUpdate
from pricefeed.pipeline import Pipeline, local_pipeline

A, B = "a" * 64, "b" * 64


class CountingCodec:
    face = "test"

    def __init__(self) -> None:
        self.encoded = 0

    def encode(self, topic: str, item: object) -> bytes:
        assert isinstance(item, PriceUpdate)
        self.encoded += 1
        return f"{item.feed_id[:1]}{item.price};".encode()


class Recorder:
    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self.writes: list[bytes] = []

    def deliver(self, frames: dict[FeedId, bytes]) -> None:
        self.writes.append(b"".join(frames.values()))


def update(feed_id: str, price: int, t: int) -> PriceUpdate:
    return PriceUpdate(feed_id=feed_id, price=price, conf=1, expo=-8, publish_time_us=t, ema_price=price, ema_conf=1)


def hub_with_feeds(clock: list[float] | None = None) -> Pipeline:
    now = clock if clock is not None else [0.0]
    pipeline = local_pipeline(stale_after_s=5.0, clock=lambda: now[0])
    pipeline.ingest.add_feeds([Feed(A, "Crypto.A/USD", -8, "test"), Feed(B, "Crypto.B/USD", -8, "test")])
    return pipeline


async def test_one_pass_encodes_once_per_codec_and_writes_once_per_subscriber() -> None:
    hub = hub_with_feeds()
    codec, other = CountingCodec(), CountingCodec()
    subs = [Recorder(codec) for _ in range(50)] + [Recorder(other)]
    for sub in subs:
        hub.hub.subscribe(A, sub)
        hub.hub.subscribe(B, sub)
    hub.ingest.publish_many([update(A, 1, 10), update(B, 2, 10)])
    hub.ingest.publish(update(A, 3, 20))
    await asyncio.sleep(0)  # the pass runs on the next loop iteration
    assert codec.encoded == 2 and other.encoded == 2  # only A's newest price is encoded
    for sub in subs:
        assert sub.writes == [b"a3;b2;"]  # one write, the newest A in A's place
    assert hub.hub.latest[A].price == 3 and hub.hub.latest[A].seq == 2


async def test_older_or_repeated_updates_are_dropped_and_never_delivered() -> None:
    hub = hub_with_feeds()
    sub = Recorder(CountingCodec())
    hub.hub.subscribe(A, sub)
    hub.ingest.publish(update(A, 1, 100))
    hub.ingest.run_pass()
    hub.ingest.publish_many([update(A, 2, 100), update(A, 3, 50), update(A, 4, 101)])
    hub.ingest.run_pass()
    assert sub.writes == [b"a1;", b"a4;"]
    assert hub.ingest.dropped_not_newer == 2
    assert [hub.hub.latest[A].price, hub.hub.latest[A].seq] == [4, 2]


async def test_updates_for_unregistered_feeds_are_dropped() -> None:
    hub = hub_with_feeds()
    hub.ingest.publish(update("c" * 64, 1, 1))
    hub.ingest.run_pass()
    assert "c" * 64 not in hub.hub.latest and hub.ingest.dropped_unknown_feed == 1


async def test_a_feed_is_stale_after_silence_and_a_repeat_keeps_it_fresh() -> None:
    clock = [0.0]
    hub = hub_with_feeds(clock)
    assert hub.hub.is_stale(A)  # never seen
    hub.ingest.publish(update(A, 1, 100))
    hub.ingest.run_pass()
    clock[0] = 4.0
    hub.ingest.publish(update(A, 1, 100))  # same publish time: not delivered, but the feed is alive
    hub.ingest.run_pass()
    clock[0] = 8.0
    assert not hub.hub.is_stale(A)
    clock[0] = 9.5
    assert hub.hub.is_stale(A)


async def test_restored_prices_are_stale_until_a_fresh_update() -> None:
    hub = hub_with_feeds()
    hub.ingest.restore([update(A, 7, 100)])
    assert hub.hub.latest[A].price == 7 and hub.hub.is_stale(A)
    hub.ingest.publish(update(A, 8, 200))
    hub.ingest.run_pass()
    assert not hub.hub.is_stale(A)


async def test_unsubscribed_connections_get_nothing_more() -> None:
    hub = hub_with_feeds()
    sub = Recorder(CountingCodec())
    hub.hub.subscribe(A, sub)
    assert not hub.hub.subscribe(A, sub)  # already subscribed
    hub.hub.unsubscribe(A, sub)
    hub.ingest.publish(update(A, 1, 1))
    hub.ingest.run_pass()
    assert sub.writes == [] and hub.hub.subscription_count() == 0


async def test_a_failing_subscriber_does_not_stop_the_pass() -> None:
    hub = hub_with_feeds()

    class Broken(Recorder):
        def deliver(self, frames: dict[FeedId, bytes]) -> None:
            raise ConnectionError("gone")

    good, broken = Recorder(CountingCodec()), Broken(CountingCodec())
    hub.hub.subscribe(A, broken)
    hub.hub.subscribe(A, good)
    hub.ingest.publish(update(A, 1, 1))
    hub.ingest.run_pass()
    assert good.writes == [b"a1;"]


async def test_a_later_slot_in_the_same_second_is_new_only_if_the_price_changed() -> None:
    hub = hub_with_feeds()
    sub = Recorder(CountingCodec())
    hub.hub.subscribe(A, sub)

    def at_slot(price: int, slot: int) -> PriceUpdate:
        u = update(A, price, 1_714_748_301_000_000)
        u.slot = slot
        return u

    for u in [at_slot(1, 10), at_slot(1, 11), at_slot(2, 12), at_slot(3, 11), at_slot(2, 12)]:
        hub.ingest.publish(u)
        hub.ingest.run_pass()
    assert sub.writes == [b"a1;", b"a2;"]
    assert hub.ingest.dropped_not_newer == 3


class TextCodec:
    face = "test"

    def encode(self, topic: str, item: object) -> bytes:
        return f"{topic}={item};".encode()


async def test_a_derived_topic_published_with_every_loses_no_item_and_keeps_their_order() -> None:
    hub = hub_with_feeds().hub
    sub = Recorder(TextCodec())
    for topic in ("bars", "latest"):
        hub.subscribe(topic, sub)
    for item in (1, 2, 3):
        hub.publish_event("bars", item, every=True)
        hub.publish_event("latest", item)
    # A new subscriber's snapshot is what goes out next, never ahead of the items still to come.
    assert hub.latest_events == {"bars": 1, "latest": 3}
    for _ in range(5):
        await asyncio.sleep(0)
    # One item per topic per pass: the three bars in three passes, of the plain topic only its newest.
    assert sub.writes == [b"bars=1;latest=3;", b"bars=2;", b"bars=3;"]
    assert hub.latest_events == {"bars": 3, "latest": 3}
