"""Topic keys: what the hub fans out.

A price topic is the feed id itself (the hot path hashes one short string);
a derived topic is ``kind:part:...``, e.g. ``candles:<feed id>:1m`` or
``alerts:<owner>``. A feed id never contains ``:``, so the two never collide.
"""

from __future__ import annotations

from .model import FeedId

Topic = str

PRICE = "price"


def price_topic(feed_id: FeedId) -> Topic:
    return feed_id


def derived_topic(kind: str, *parts: str) -> Topic:
    """A topic that a listener computes from prices and publishes back to the hub."""
    if not kind or kind == PRICE or any(":" in part for part in (kind, *parts)):
        raise ValueError(f"invalid derived topic {kind!r} {parts!r}")
    return ":".join((kind, *parts))


def topic_kind(topic: Topic) -> str:
    """``price`` for a price topic, else the derived topic's kind."""
    kind, sep, _ = topic.partition(":")
    return kind if sep else PRICE
