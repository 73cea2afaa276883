"""The cross-source divergence watch: where sources carry the same asset, how far apart their prices are.

A hub listener keeps, per asset (:func:`~pricefeed.assets.asset_key`) and per
source, the source's latest accepted update: a dict lookup and a store per
update. Assets that two or more sources carry are then evaluated at the end of
the pass (those it touched, each at most every :data:`EVALUATE_EVERY_S`) and on
a ticker (so a hold ends and a source ages out when no price comes): the spread is
``(highest - lowest) / median`` in basis points over the sources whose price is
trading and younger than ``max_age_s``.

An asset is flagged once its spread stayed above ``threshold_bps`` for
``hold_s`` seconds, and cleared once it stayed below ``clear_bps`` (lower: the
hysteresis band, so a spread hovering at the threshold does not flap) or could
no longer be measured (fewer than two usable sources) for ``hold_s`` seconds.
Each raise and each clear is published once on the derived topic
``divergence:<asset>`` as a :class:`DivergenceAlert`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .assets import asset_key
from .hub import Hub
from .model import Feed, FeedId, PriceUpdate, Status, scaled
from .topics import Topic, derived_topic

log = logging.getLogger(__name__)

DIVERGENCE = "divergence"
RAISED = "raised"
CLEARED = "cleared"
STALE = "stale"
EVALUATE_EVERY_S = 0.05
"""A busy shared asset is evaluated at most this often by the listener (the hold is seconds long)."""
TICK_MAX_S = 1.0
"""The ticker runs at least this often (a quarter of the hold when that is shorter)."""


def divergence_topic(asset: str) -> Topic:
    return derived_topic(DIVERGENCE, asset)


def iso_time_us(time_us: int) -> str:
    """ISO 8601 UTC with milliseconds and ``Z``, e.g. ``2026-01-01T12:00:00.000Z``."""
    return datetime.fromtimestamp(time_us / 1_000_000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class SourcePrice:
    """One source's latest price of an asset, as the watch saw it at an evaluation."""

    feed_id: FeedId
    price: float
    age_s: float
    status: str
    """The update's status (``trading``, ``halted``, ...), or ``stale`` when older than the watch's max age."""

    def view(self) -> dict[str, Any]:
        return {"price": self.price, "age_s": round(self.age_s, 3), "status": self.status}


@dataclass(frozen=True, slots=True)
class DivergenceAlert:
    """A raise or a clear of an asset's flag, as published on ``divergence:<asset>``."""

    asset: str
    state: str
    """``raised`` or ``cleared``."""
    time_us: int
    spread_bps: float | None
    """The spread at the raise or clear; None when it could no longer be measured."""
    threshold_bps: float
    since_us: int
    """When the divergence began (the start of the hold that raised it)."""
    sources: dict[str, SourcePrice]

    def view(self) -> dict[str, Any]:
        return {"asset": self.asset, "state": self.state, "spread_bps": _rounded(self.spread_bps),
                "threshold_bps": self.threshold_bps, "since": iso_time_us(self.since_us),
                "at": iso_time_us(self.time_us), "sources": {s: p.view() for s, p in self.sources.items()}}


def _rounded(spread: float | None) -> float | None:
    return None if spread is None else round(spread, 4)


class AssetWatch:
    """One asset: each source's latest update and the flag's state."""

    __slots__ = ("asset", "evaluated_at", "flagged", "latest", "pending_since", "since", "spread_bps")

    def __init__(self, asset: str) -> None:
        self.asset = asset
        self.latest: dict[str, PriceUpdate] = {}
        """Source name -> its latest accepted update of this asset."""
        self.flagged = False
        self.since: float | None = None
        """While flagged: when the divergence began."""
        self.pending_since: float | None = None
        """When the condition that would flip the flag (over the threshold, or back under the band) began."""
        self.spread_bps: float | None = None
        """At the last evaluation."""
        self.evaluated_at = -math.inf


class DivergenceWatch:
    """Every asset that sources share, its spread and its flag (a hub listener plus a ticker)."""

    def __init__(self, hub: Hub, threshold_bps: float = 50.0, hold_s: float = 5.0, clear_bps: float | None = None,
                 max_age_s: float = 120.0, clock: Callable[[], float] = time.time) -> None:
        if clear_bps is not None and clear_bps > threshold_bps:
            raise ValueError(f"the clear level ({clear_bps} bps) must not be above the threshold ({threshold_bps} bps)")
        self.hub = hub
        self.threshold_bps = threshold_bps
        self.clear_bps = threshold_bps * 0.8 if clear_bps is None else clear_bps
        self.hold_s = hold_s
        self.max_age_s = max_age_s
        self.clock = clock
        """Wall-clock unix seconds: ages are measured against publish times."""
        self.assets: dict[str, AssetWatch] = {}
        self._keys: dict[FeedId, tuple[Feed | None, AssetWatch | None]] = {}
        """Feed id -> the feed it was keyed from and its asset (None: not comparable), refreshed if the feed
        is replaced (new metadata)."""
        self.alerts_published = {RAISED: 0, CLEARED: 0}
        self._task: asyncio.Task[None] | None = None

    # -- the hub listener: one lookup per update, an evaluation per touched shared asset --------

    def add_updates(self, updates: list[PriceUpdate]) -> None:
        keys, feeds = self._keys, self.hub.feeds
        touched: set[AssetWatch] = set()
        for update in updates:
            feed_id = update.feed_id
            cached = keys.get(feed_id)
            if cached is None or cached[0] is not feeds.get(feed_id):
                cached = self._key(feed_id)
            watch = cached[1]
            if watch is not None:
                latest = watch.latest
                latest[update.source] = update
                if len(latest) > 1:
                    touched.add(watch)
        if touched:
            now = self.clock()
            for watch in touched:
                if now - watch.evaluated_at >= EVALUATE_EVERY_S:
                    self._evaluate(watch, now)

    def _key(self, feed_id: FeedId) -> tuple[Feed | None, AssetWatch | None]:
        feed = self.hub.feeds.get(feed_id)
        key = None if feed is None else asset_key(feed)
        watch = None
        if key is not None:
            watch = self.assets.get(key)
            if watch is None:
                watch = self.assets[key] = AssetWatch(key)
        cached = self._keys[feed_id] = (feed, watch)
        return cached

    def tick(self) -> None:
        """Evaluate every shared asset (holds end and sources age out even when no price comes)."""
        now = self.clock()
        for watch in self.assets.values():
            if len(watch.latest) > 1:
                self._evaluate(watch, now)

    # -- the evaluation -----------------------------------------------------------------------------

    def _spread(self, watch: AssetWatch, now_us: int) -> float | None:
        """The spread over the usable sources (trading, younger than the max age); None if fewer than two."""
        oldest = now_us - int(self.max_age_s * 1_000_000)
        usable = sorted(scaled(u.price, u.expo) for u in watch.latest.values()
                        if u.status is Status.TRADING and u.publish_time_us >= oldest and u.price > 0)
        count = len(usable)
        if count < 2:
            return None
        middle = count // 2
        median = usable[middle] if count % 2 else (usable[middle - 1] + usable[middle]) / 2
        return (usable[-1] - usable[0]) / median * 10_000

    def _describe(self, watch: AssetWatch, now_us: int) -> dict[str, SourcePrice]:
        """Each source's price, age and status (``stale`` past the max age), by source name."""
        sources = {}
        for source, update in sorted(watch.latest.items()):
            age = max(0.0, (now_us - update.publish_time_us) / 1_000_000)
            status = STALE if age > self.max_age_s else str(update.status)
            sources[source] = SourcePrice(update.feed_id, scaled(update.price, update.expo), age, status)
        return sources

    def _evaluate(self, watch: AssetWatch, now: float) -> None:
        now_us = int(now * 1_000_000)
        watch.evaluated_at = now
        spread = watch.spread_bps = self._spread(watch, now_us)
        flipping = (spread is None or spread < self.clear_bps) if watch.flagged else (
            spread is not None and spread > self.threshold_bps)
        if not flipping:
            watch.pending_since = None
            return
        if watch.pending_since is None:
            watch.pending_since = now
        if now - watch.pending_since < self.hold_s:
            return
        if watch.flagged:
            since = watch.since if watch.since is not None else watch.pending_since
            watch.flagged, watch.since, watch.pending_since = False, None, None
            self._publish(watch, CLEARED, now_us, int(since * 1_000_000))
        else:
            watch.flagged, watch.since, watch.pending_since = True, watch.pending_since, None
            self._publish(watch, RAISED, now_us, int(watch.since * 1_000_000))

    def _publish(self, watch: AssetWatch, state: str, now_us: int, since_us: int) -> None:
        sources = self._describe(watch, now_us)
        alert = DivergenceAlert(watch.asset, state, now_us, watch.spread_bps, self.threshold_bps, since_us, sources)
        self.alerts_published[state] += 1
        log.log(logging.WARNING if state == RAISED else logging.INFO, "divergence %s on %s: %s bps (%s)", state,
                watch.asset, "-" if watch.spread_bps is None else f"{watch.spread_bps:.1f}",
                ", ".join(f"{s} {p.price} {p.status}" for s, p in sources.items()))
        self.hub.publish_event(divergence_topic(watch.asset), alert)

    # -- what faces and /status read ------------------------------------------------------------------

    def shared(self) -> list[AssetWatch]:
        """The assets that two or more sources carry, by name."""
        return sorted((w for w in self.assets.values() if len(w.latest) > 1), key=lambda w: w.asset)

    def flagged(self) -> list[dict[str, Any]]:
        """``/status``'s ``divergences``: each flagged asset's spread, since when, and every source's price."""
        now_us = int(self.clock() * 1_000_000)
        return [{"asset": w.asset, "spread_bps": _rounded(w.spread_bps),
                 "since": None if w.since is None else iso_time_us(int(w.since * 1_000_000)),
                 "sources": {s: p.view() for s, p in self._describe(w, now_us).items()}}
                for w in self.shared() if w.flagged]

    def asset_of(self, feed_id: FeedId) -> str | None:
        """The asset a feed prices (None: not comparable, or an unknown feed)."""
        cached = self._keys.get(feed_id)
        if cached is None or cached[0] is not self.hub.feeds.get(feed_id):
            cached = self._key(feed_id)
        return None if cached[1] is None else cached[1].asset

    def active(self, asset: str) -> DivergenceAlert | None:
        """The raised alert of a flagged asset (what a new /ws/alerts subscriber is told), else None."""
        watch = self.assets.get(asset)
        if watch is None or not watch.flagged or watch.since is None:
            return None
        now_us = int(self.clock() * 1_000_000)
        return DivergenceAlert(watch.asset, RAISED, now_us, watch.spread_bps, self.threshold_bps,
                               int(watch.since * 1_000_000), self._describe(watch, now_us))

    def view(self, asset: str) -> dict[str, Any] | None:
        """The consolidated view of an asset (evaluated now): every source, the median, the spread, the flag."""
        watch = self.assets.get(asset)
        if watch is None or not watch.latest:
            return None
        now_us = int(self.clock() * 1_000_000)
        sources = self._describe(watch, now_us)
        usable = [p.price for p in sources.values() if p.status == Status.TRADING and p.price > 0]
        return {"asset": watch.asset, "median": statistics.median(usable) if usable else None,
                "spread_bps": _rounded(self._spread(watch, now_us)), "threshold_bps": self.threshold_bps,
                "clear_bps": self.clear_bps, "diverging": watch.flagged,
                "since": None if watch.since is None else iso_time_us(int(watch.since * 1_000_000)),
                "sources": {s: {**p.view(), "feed_id": p.feed_id} for s, p in sources.items()}}

    def status(self) -> dict[str, Any]:
        return {"shared_assets": len(self.shared()), "flagged": sum(1 for w in self.assets.values() if w.flagged),
                "alerts": dict(self.alerts_published)}

    # -- the ticker ----------------------------------------------------------------------------------------

    @property
    def tick_interval_s(self) -> float:
        return min(TICK_MAX_S, self.hold_s / 4) if self.hold_s > 0 else TICK_MAX_S

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="divergence-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval_s)
            try:
                self.tick()
            except Exception:  # the watch must outlive a bad evaluation
                log.exception("divergence watch tick failed")


class DivergenceCollector(Collector):
    """``/metrics``: each shared asset's spread and flag, and the alerts published, read at scrape time."""

    def __init__(self, watch: DivergenceWatch) -> None:
        self.watch = watch

    def collect(self) -> Iterator[Metric]:
        spread = GaugeMetricFamily("pricefeed_divergence_bps", "Spread between sources of an asset, in basis "
                                   "points of their median (absent while fewer than two sources are usable)",
                                   labels=["asset"])
        flagged = GaugeMetricFamily("pricefeed_divergence_flagged", "1 while an asset's sources diverge "
                                    "(past --divergence-bps for --divergence-hold)", labels=["asset"])
        for watch in self.watch.shared():
            if watch.spread_bps is not None:
                spread.add_metric([watch.asset], watch.spread_bps)
            flagged.add_metric([watch.asset], 1.0 if watch.flagged else 0.0)
        alerts = CounterMetricFamily("pricefeed_divergence_alerts", "Divergence alerts published, raised or "
                                     "cleared", labels=["state"])
        for state, count in self.watch.alerts_published.items():
            alerts.add_metric([state], float(count))
        yield spread
        yield flagged
        yield alerts
