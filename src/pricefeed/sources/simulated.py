"""The simulated market: real Pyth feed ids walking at random, so everything runs offline.

Every feed it makes says so (``simulated`` in its metadata, the source in
``/status``), so nobody mistakes a simulated price for a real one. Equities
trade in their market hours only (their ``schedule``, as pyth-agent reads it):
outside them they keep their last price, as Hermes shows a closed market.
With the NSE equities comes ``FX.USD/INR`` (its real Pyth id), the rate a
portfolio of rupee and dollar positions is totalled with.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..bus.base import Sink
from ..catalog import FX_USD_INR, KNOWN_FEEDS, KnownFeed
from ..model import Feed, PriceUpdate, Status, now_us
from ..schedule import MarketSchedule, schedule_of
from ..slots import SlotClock
from .base import Source, SourceState
from .equities import SimulatedEquities

SECONDS_PER_YEAR = 365.25 * 24 * 3600
EMA_WINDOW_S = 3600.0
"""Pyth's EMA spans about an hour of slots."""


@dataclass(slots=True)
class _Walker:
    feed: Feed
    price: float
    volatility: float
    ema_price: float
    ema_conf: float
    anchor: float
    """Stablecoins are pulled back towards this level."""
    schedule: MarketSchedule | None = None
    """An equity's market hours."""
    last_publish_us: int | None = None


def synthetic_feed(index: int) -> KnownFeed:
    """A made-up feed for load tests; its id is derived from its index, so stable across runs."""
    feed_id = hashlib.sha256(f"pricefeed-sim-{index}".encode()).hexdigest()
    return KnownFeed(feed_id, f"Crypto.SIM{index}/USD", f"SIMULATED ASSET {index} / US DOLLAR", -8,
                     10.0 + index % 1000, 0.8)


def simulated_feeds(count: int) -> list[KnownFeed]:
    """The real catalog first, then synthetic feeds up to ``count``."""
    known = list(KNOWN_FEEDS[:count])
    return known + [synthetic_feed(i) for i in range(len(known), count)]


class SimulatedMarket(Source):
    name = "sim"
    simulated = True

    def __init__(self, sink: Sink, *, interval_s: float = 0.4, feed_count: int = len(KNOWN_FEEDS),
                 seed: int | None = None, equities: bool = False, market_hours: bool = True) -> None:
        super().__init__(sink)
        self.interval_s = interval_s
        self._rng = random.Random(seed)
        self._walkers = [self._walker(known) for known in simulated_feeds(feed_count)]
        self._slot_clock = SlotClock()
        self._slot = 0
        self.equities = SimulatedEquities(self.name, interval_s=interval_s, market_hours=market_hours,
                                          seed=seed) if equities else None
        """Seed 004's NSE stocks, in their session only."""
        if equities:  # the rupee's rate to the dollar, for portfolios that hold both
            self._walkers.append(self._walker(FX_USD_INR))

    def _walker(self, known: KnownFeed) -> _Walker:
        attributes = known.attributes()
        attributes["description"] = "SIMULATED " + attributes["description"]
        attributes["simulated"] = "true"
        feed = Feed(known.id, known.symbol, known.expo, self.name, dict(sorted(attributes.items())), simulated=True)
        return _Walker(feed, known.price, known.volatility, known.price, known.price * 0.0005,
                       known.price if known.volatility < 0.05 else 0.0,
                       schedule_of(attributes) if feed.asset_type == "Equity" else None)

    @property
    def feeds(self) -> list[Feed]:
        return [w.feed for w in self._walkers] + ([] if self.equities is None else self.equities.feeds)

    async def start(self) -> None:
        self.sink.add_feeds(self.feeds)
        self._resume_from_hub()
        if self.equities is not None:
            self.sink.publish_many(self.equities.resume(self.sink.latest, datetime.now(UTC)))
        self.spawn(self._run(), "sim-market")
        self.set_state(SourceState.CONNECTED)

    def _resume_from_hub(self) -> None:
        """Continue each walk from the last known price, so a restart does not jump."""
        for walker in self._walkers:
            last = self.sink.latest.get(walker.feed.id)
            if last is not None and last.expo == walker.feed.expo and last.price > 0:
                scale = 10.0 ** walker.feed.expo
                walker.price = last.price * scale
                walker.ema_price = last.ema_price * scale
                walker.ema_conf = last.ema_conf * scale

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time() + self.interval_s
        first = True  # every feed gets a price at once; a closed market's is its last close
        while True:
            await asyncio.sleep(max(0.0, next_tick - loop.time()))
            # Catch up by skipping ticks, never by bursting: a real market does not replay missed slots.
            next_tick = max(next_tick + self.interval_s, loop.time())
            now = datetime.now(UTC)
            updates = self.tick(None if first else now)
            first = False
            if self.equities is not None:
                updates += self.equities.tick(now, updates[0].publish_time_us if updates else now_us())
            self.mark_message(len(updates))
            if updates:
                self.mark_published(updates[-1].publish_time_us)
            self.sink.publish_many(updates)

    def tick(self, at: datetime | None = None) -> list[PriceUpdate]:
        """Advance every walk by one interval and return the new prices (one slot's worth).

        With ``at``, a feed whose market is closed then is left out (its walk goes on, so it opens with a gap).
        """
        self._slot = max(self._slot + 1, self._slot_clock.now())
        publish_time = now_us()
        dt_years = self.interval_s / SECONDS_PER_YEAR
        alpha = min(1.0, self.interval_s / EMA_WINDOW_S)
        rng = self._rng
        updates = []
        for w in self._walkers:
            shock = rng.gauss(0.0, w.volatility * math.sqrt(dt_years))
            if w.anchor:
                w.price += (w.anchor - w.price) * 0.05
            w.price *= math.exp(shock)
            conf = w.price * (0.0002 + 0.0003 * rng.random())
            w.ema_price += alpha * (w.price - w.ema_price)
            w.ema_conf += alpha * (conf - w.ema_conf)
            if at is not None and w.schedule is not None and not w.schedule.is_open(at):
                continue
            scale = 10 ** -w.feed.expo
            updates.append(PriceUpdate(
                feed_id=w.feed.id, price=round(w.price * scale), conf=max(1, round(conf * scale)),
                expo=w.feed.expo, publish_time_us=publish_time, ema_price=round(w.ema_price * scale),
                ema_conf=max(1, round(w.ema_conf * scale)), status=Status.TRADING,
                prev_publish_time_us=w.last_publish_us, slot=self._slot, source=self.name))
            w.last_publish_us = publish_time
        return updates

    def status(self) -> dict[str, Any]:
        status = super().status()
        status.update(feeds=len(self.feeds), interval_s=self.interval_s)
        if self.equities is not None:
            status["nse_market"] = "open" if self.equities.is_open(datetime.now(UTC)) else "closed"
        return status
