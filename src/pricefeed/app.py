"""The service: builds the pipeline (sources -> ingest -> bus -> hub -> faces) and runs it.

Components start in order (store, restored state, ingest's write-behind,
sources, listeners) and stop in reverse; faces see only :class:`Services`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
from decimal import Decimal
from typing import Any

from .alerts import AlertBook
from .analytics import Analytics
from .analytics.analysis import AnalysisBook
from .analytics.candles import CandleBook, parse_interval
from .analytics.days import DayClock
from .analytics.market import MarketDays
from .analytics.writer import AnalyticsWriter
from .components import Assembly, Component, Task
from .config import Settings
from .faces import Listening, build_listeners
from .faces.services import Services
from .history import PriceHistory
from .metrics import Metrics
from .model import PriceUpdate
from .pipeline import local_pipeline
from .policy import AccessPolicy, AnonymousLimits, KeyRing
from .portfolio import PortfolioBook
from .resume import RecentUpdates
from .slots import SlotClock
from .sources import Source, create_source
from .sources.publishers import LocalOracle
from .store import AnalyticsStore, Store, StoreWriter, create_store
from .store.alert_state import AlertStore, AlertWriter
from .store.oracle_state import OracleStateStore
from .store.portfolio_state import PortfolioStore, PortfolioWriter
from .store.recent_state import RecentLog, RecentStore
from .transport.connection import Connection
from .transport.limits import ConnectionLimits

log = logging.getLogger(__name__)


def access_policy(settings: Settings) -> AccessPolicy:
    """The service's one access policy: its keys and the limits of clients without one."""
    keys = KeyRing([key.get_secret_value() for key in settings.api_key], settings.keys)
    anonymous = AnonymousLimits(connections_per_ip=settings.ip_connections,
                                handshakes_per_second_per_ip=settings.ip_handshakes_per_second,
                                handshake_burst=max(1, int(2 * (settings.ip_handshakes_per_second or 1))))
    return AccessPolicy(keys, anonymous)


class App:
    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.started_at = time.monotonic()
        self.stopping = False
        self.metrics = Metrics()
        pipeline = local_pipeline(self.metrics, stale_after_s=settings.stale_after)
        self.ingest, self.hub = pipeline.ingest, pipeline.hub
        self.history = PriceHistory()
        self.hub.add_listener(self.history.add)
        self.recent = RecentUpdates(keep_s=settings.history_depth)
        self.hub.add_listener(self.recent.add)
        self.store: Store = store if store is not None else create_store(settings)
        self.writer = StoreWriter(self.ingest, self.store, settings.store_flush_interval)
        self.analytics = self._analytics(settings)
        self.alerts = AlertBook(self.hub, self.analytics.candles)  # after the candles: it reads their bars
        self.hub.add_listener(self.alerts.add_updates)
        self.portfolio = PortfolioBook(self.hub, self._day_change)
        self.hub.add_listener(self.portfolio.add_updates)
        self.sources: list[Source] = [create_source(name, self.ingest, settings) for name in settings.source]
        # The local oracle is a source only when there are local products for publishers to price.
        self.oracle: LocalOracle | None = None
        slot_clock = SlotClock(settings.slot_interval)  # the one clock of every feed's slots in the pythd API
        if settings.products is not None:
            self.oracle = LocalOracle(self.ingest, products_file=settings.products, slot_clock=slot_clock,
                                      reload_interval_s=settings.products_reload_interval,
                                      state_store=OracleStateStore(settings.db),
                                      save_interval_s=settings.store_flush_interval)
            self.sources.append(self.oracle)
        self.metrics.watch_sources(lambda: self.sources)
        self.services = Services(
            hub=self.hub, history=self.history, metrics=self.metrics,
            limits=ConnectionLimits(max_message_bytes=settings.max_message_bytes,
                                    max_messages_per_second=settings.max_messages_per_second,
                                    outbox_limit_bytes=settings.outbox_limit_bytes,
                                    slow_client_timeout_s=settings.slow_client_timeout,
                                    idle_timeout_s=settings.handshake_timeout),
            health=self.health, status=self.status, stopping=lambda: self.stopping, analytics=self.analytics,
            alerts=self.alerts, portfolio=self.portfolio, access=access_policy(settings), recent=self.recent)
        self.listeners: Listening = build_listeners(self.services, settings, self.oracle, slot_clock)
        self.assembly = Assembly([
            Task("store", self._open_store, self.store.close),
            Task("store writer", self._start_writer, self.writer.stop, self.writer.status),
            RecentLog(self.recent, RecentStore(settings.db), self.hub.latest),  # saved after the sources stop
            *self._analytics_writer(),
            AlertWriter(self.alerts, AlertStore(settings.db), settings.store_flush_interval),
            PortfolioWriter(self.portfolio, PortfolioStore(settings.db), settings.store_flush_interval),
            *self.sources,
            *self.listeners.components(),
        ])
        self._stop = asyncio.Event()

    def _analytics(self, settings: Settings) -> Analytics:
        """Market days and candles, computed once per feed by hub listeners (before any face reads them)."""
        clock = DayClock(self.hub.feeds)
        days = MarketDays(self.hub, clock)
        candles = CandleBook(self.hub, [parse_interval(i) for i in settings.candle_intervals],
                             history=settings.candle_history, grace_s=settings.candle_grace, day_of=clock.day_of)
        self.hub.add_listener(days.add)
        self.hub.add_listener(candles.add)
        return Analytics(clock, days, candles, AnalysisBook(self.hub, candles))

    def _day_change(self, update: PriceUpdate) -> Decimal | None:
        """The price's change since the previous session's close (the day's PnL per unit held)."""
        found = self.analytics.days.change(update)
        return None if found is None else Decimal(found[0]).scaleb(update.expo)

    def _analytics_writer(self) -> list[Component]:
        """Restores candles and days before sources start, and saves them behind (a store that can)."""
        if not isinstance(self.store, AnalyticsStore):
            log.warning("the store keeps no candles: they start afresh at each start")
            return [Task("analytics", self._start_candles, self._stop_candles)]
        return [AnalyticsWriter(self.store, self.analytics.days, self.analytics.candles,
                                self.settings.store_flush_interval)]

    async def _start_candles(self) -> None:
        self.analytics.candles.start()

    async def _stop_candles(self) -> None:
        self.analytics.candles.stop()

    # -- life cycle ------------------------------------------------------------------

    async def _open_store(self) -> None:
        """Open the store and restore the last known state (prices of sources that run now only)."""
        await self.store.open()
        self.ingest.add_feeds(await self.store.load_feeds())
        running = {source.name for source in self.sources}
        stored = await self.store.load_latest()
        restored = self.ingest.restore(u for u in stored if u.source in running)
        if restored:
            log.info("restored %d last known prices (stale until fresh updates arrive)", len(restored))
        if len(restored) < len(stored):
            log.info("not serving %d stored prices of sources that are not running", len(stored) - len(restored))

    async def _start_writer(self) -> None:
        self.writer.start()

    async def start(self) -> None:
        """Restore the last known state, then start sources, the store writer and the listeners."""
        await self.assembly.start()
        # What start-up built (modules, the app, restored state) lives as long as the process: keep it out of
        # the collector's full passes, which would otherwise walk it and stall the fan-out for tens of ms.
        gc.freeze()

    async def stop(self) -> None:
        """Stop accepting, close clients with 1001, stop sources, flush the store."""
        if self.stopping:
            return
        self.stopping = True
        log.info("shutting down")
        await self.assembly.stop()
        log.info("stopped")

    async def run(self) -> None:
        """Start, serve until SIGINT or SIGTERM, then stop."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self._stop.set)
        try:
            await self.start()
            await self._stop.wait()
        finally:
            await self.stop()

    # -- ports, health and status ----------------------------------------------------------

    @property
    def api_port(self) -> int:
        return self.listeners.port("api")

    @property
    def ws_port(self) -> int:
        return self.listeners.port("seed000")

    @property
    def streams_port(self) -> int:
        return self.listeners.port("streams")

    @property
    def crypto_port(self) -> int:
        return self.listeners.port("crypto")

    def components(self) -> list[Component]:
        return self.assembly.components

    def connections(self) -> list[Connection]:
        return [conn for listener in self.listeners.listeners for conn in listener.connections]

    def health(self) -> dict[str, Any]:
        reasons = [f"source {s.name} is {s.state}" + (f": {s.last_error}" if s.last_error else "")
                   for s in self.sources if not s.is_up]
        priced = len(self.hub.latest)
        stale = self.hub.stale_count()
        if not priced and self.hub.feeds:
            reasons.append(f"no prices yet for any of the {len(self.hub.feeds)} feeds")
        elif priced and stale == priced:
            reasons.append(f"all {stale} feeds are stale")
        if self.writer.last_error is not None:
            reasons.append(f"store unavailable, serving from memory: {self.writer.last_error}")
        status = "stopping" if self.stopping else ("degraded" if reasons else "ok")
        return {"status": status, "reasons": reasons, "uptime_s": round(time.monotonic() - self.started_at, 3),
                "sources": {s.name: str(s.state) for s in self.sources}}

    def status(self) -> dict[str, Any]:
        hub, metrics = self.hub, self.metrics
        return {
            "uptime_s": round(time.monotonic() - self.started_at, 3),
            "simulated": any(s.simulated for s in self.sources),
            "connections": int(metrics.total("pricefeed_connections")),
            "connections_by_face": self.listeners.connections_by_face(),
            "subscriptions": hub.subscription_count(),
            "feeds": len(hub.feeds),
            "stale_feeds": hub.stale_count(),
            "hub": {
                "updates_per_second": round(self.ingest.accepted.per_second(), 2),
                "updates_total": int(metrics.total("pricefeed_updates_accepted_total")),
                "deliveries_per_second": round(hub.deliveries.per_second(), 2),
                "deliveries_total": int(metrics.total("pricefeed_deliveries_total")),
                "dropped_not_newer": int(metrics.total("pricefeed_updates_dropped_total", reason="not_newer")),
                "dropped_unknown_feed": int(metrics.total("pricefeed_updates_dropped_total", reason="unknown_feed")),
                "queued_bytes": int(metrics.total("pricefeed_queued_bytes")),
                "slow_client_closes": int(metrics.total("pricefeed_slow_client_closes_total")),
                "history_updates": self.history.size(),
            },
            "sources": [s.status() for s in self.sources],
            "store": self.writer.status(),
            **({"pythd": self.listeners.pythd.status()} if self.listeners.pythd is not None else {}),
            **({"crypto": self.listeners.crypto.status()} if self.listeners.crypto is not None else {}),
            "candles": self.analytics.candles.status(),
        }
