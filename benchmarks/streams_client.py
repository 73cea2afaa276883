"""What a load client needs to speak seed 004's ``/ws/stream``: the subscribe messages, the replies, the sampler.

Built on the wire protocol only (README, "The stream service"). On connect the server sends a
``{"type":"connection",...}`` welcome. A client sends one ``{"type":"subscribe","symbol":...}`` per feed
(a feed id is a symbol the service accepts) and is answered, for each, ``{"type":"subscription",
"status":"subscribed",...}`` or an ``error``; then it gets one ``{"type":"data","symbol":...,"timestamp":...,
"data":{...}}`` message per feed per pass, each one delivery.

A ``data`` message's ``timestamp`` is the publish time of the price it carries (ISO 8601 UTC, milliseconds,
``Z``: the codec formats the update's ``publish_time_us``, encoded once per pass for every client), the
same clock and resolution as the seed-000 face's ``publish_time``, so a sample is dated by it directly. Every
other message's ``timestamp`` is the time it was made, and is not a sample.
"""

from __future__ import annotations

import time

import orjson

from .samples import produced_at, record

STREAMS_CONFIRMATION = b'"status":"subscribed"'
STREAMS_REFUSAL = b'"type":"error"'


def streams_subscribe(feeds: list[str]) -> list[bytes]:
    """One ``subscribe`` message per feed, each naming the feed by its id."""
    return [orjson.dumps({"type": "subscribe", "symbol": feed}) for feed in feeds]


def sample_streams(payload: bytes) -> None:
    """Record the latency of a ``data`` message by its ``timestamp``; other messages are ignored."""
    message = orjson.loads(payload)
    now = time.time()
    if message.get("type") == "data":
        record(now - produced_at(message["timestamp"]))
