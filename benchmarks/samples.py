"""Latency samples of one load-client process: a histogram in 0.01 ms bins, and the clock that dates Hermes' messages.

Latency is the wall clock after a client has parsed a message minus the update's ``publish_time``, the
moment the source produced it. The seed-000 face carries that time in milliseconds. Hermes' faces carry
it in whole seconds only (``"publish_time": 1714748301``), which would make every sample up to a second
high; so the sampler also holds one seed-000 connection to the same server (the ``PublishClock``), learns
there when each update was published, and dates each Hermes delivery by the same update seen on it.
An update is recognised by its feed id, price and confidence mantissas (the confidence is drawn afresh
every slot, so two slots of one feed practically never share the pair).
"""

from __future__ import annotations

import time
from itertools import islice
from typing import Any

import orjson

from .common import HIST_SCALE, parse_iso_time

hist: dict[int, int] = {}
"""This process's latency histogram: bin (0.01 ms) -> count, cleared at the start of each window."""

_time_cache: dict[str, float] = {}

UpdateKey = tuple[str, str, str]
"""(feed id without 0x, price mantissa, conf mantissa), as both Hermes and seed-000 messages give them."""


def record(latency_s: float) -> None:
    key = int(latency_s * 1000.0 * HIST_SCALE)
    if key < 0:
        key = 0
    hist[key] = hist.get(key, 0) + 1


def produced_at(stamp: str) -> float:
    """Unix seconds of a seed-000 ``publish_time``; every feed of a slot shares one, so it is parsed once."""
    produced = _time_cache.get(stamp)
    if produced is None:
        if len(_time_cache) > 10_000:
            _time_cache.clear()
        produced = _time_cache[stamp] = parse_iso_time(stamp)
    return produced


def sample_seed000(payload: bytes) -> None:
    """Record the latency of a seed-000 ``price_update``; other messages are ignored."""
    message = orjson.loads(payload)
    now = time.time()
    data = message.get("data")
    if data is not None:
        record(now - produced_at(data["publish_time"]))


def seed000_key(data: dict[str, Any]) -> UpdateKey:
    """The key of a seed-000 ``data`` object, whose price and conf are decimals (exact floats of the mantissas)."""
    scale = 10.0 ** -data["expo"]
    feed_id = data["id"].lower().removeprefix("0x")
    return feed_id, str(round(data["price"] * scale)), str(round(data["conf"] * scale))


class PublishClock:
    """When each update was published, learnt from a seed-000 connection, for dating Hermes deliveries.

    A Hermes delivery may arrive before the same update reaches the seed-000 connection; it then waits
    here, with its receive time, until the update is learnt.
    """

    KEEP = 50_000
    """Updates remembered (about 500 slots of 100 feeds); older ones are forgotten in halves."""

    def __init__(self) -> None:
        self.published: dict[UpdateKey, float] = {}
        self.waiting: dict[UpdateKey, list[float]] = {}
        self.unmatched = 0
        """Deliveries of this window that could not be dated (their update never reached the clock)."""

    def learn(self, payload: bytes) -> None:
        """A frame of the clock's seed-000 connection."""
        message = orjson.loads(payload)
        data = message.get("data")
        if message.get("type") != "price_update" or data is None:
            return
        key = seed000_key(data)
        produced = self.published[key] = produced_at(data["publish_time"])
        received = self.waiting.pop(key, None)
        if received is not None:
            for now in received:
                record(now - produced)
        if len(self.published) > self.KEEP:
            for old in list(islice(self.published, self.KEEP // 2)):
                del self.published[old]

    def received(self, key: UpdateKey, now: float) -> None:
        """A Hermes delivery of the update ``key`` at ``now``."""
        produced = self.published.get(key)
        if produced is not None:
            record(now - produced)
            return
        self.waiting.setdefault(key, []).append(now)
        if len(self.waiting) > self.KEEP:
            self.unmatched += sum(len(times) for times in self.waiting.values())
            self.waiting.clear()

    def new_window(self) -> None:
        self.waiting.clear()
        self.unmatched = 0

    def end_window(self) -> int:
        """Deliveries of the window that were never dated."""
        return self.unmatched + sum(len(times) for times in self.waiting.values())
