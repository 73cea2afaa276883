"""The service: builds the pipeline (sources -> ingest -> bus -> hub -> faces) and runs it.

Components start in order (store, restored state, ingest's write-behind,
sources, listeners) and stop in reverse; faces see only :class:`Services`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import time
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from .alerts import AlertBook
from .analytics import Analytics
from .analytics.analysis import AnalysisBook
from .analytics.candles import CandleBook, parse_interval
from .analytics.days import DayClock
from .analytics.market import MarketDays
from .analytics.risk import RiskBook
from .analytics.writer import AnalyticsWriter
from .bus.local import LocalBus
from .components import Assembly, Component, Task
from .config import Settings
from .divergence import DivergenceCollector, DivergenceWatch
from .faces import Listening, build_listeners
from .faces.services import Services
from .fx import FxRates
from .history import PriceHistory
from .hub import Hub
from .ingest import Ingest
from .metrics import Metrics
from .model import PriceUpdate
from .pipeline import local_pipeline
from .policy import AccessPolicy, AnonymousLimits, KeyRing, OriginPolicy
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

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from .bus.redis import RedisBus
    from .bus.socket import SocketBusClient, SocketBusServer
    from .leadership import Leadership

log = logging.getLogger(__name__)

PROCESS = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
"""This process among those sharing a Redis: its demand key and its claim to the ingest lease."""


def redis_client_of(settings: Settings) -> Redis:
    from .bus.redis import redis_client

    return redis_client(settings.redis_url.get_secret_value() if settings.redis_url else None,
                        host=settings.redis_host, port=settings.redis_port, username=settings.redis_username,
                        password=settings.redis_password.get_secret_value() if settings.redis_password else None,
                        timeout_s=3.0)


async def _nothing() -> None:
    pass


def access_policy(settings: Settings) -> AccessPolicy:
    """The service's one access policy: its keys and the limits of clients without one."""
    keys = KeyRing([key.get_secret_value() for key in settings.api_key], settings.keys)
    anonymous = AnonymousLimits(connections_per_ip=settings.ip_connections,
                                handshakes_per_second_per_ip=settings.ip_handshakes_per_second,
                                handshake_burst=max(1, int(2 * (settings.ip_handshakes_per_second or 1))),
                                bytes_per_second_per_ip=settings.ip_bytes_per_second)
    return AccessPolicy(keys, anonymous)


class App:
    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.started_at = time.monotonic()
        self.stopping = False
        self.metrics = Metrics()
        self.bus: RedisBus | SocketBusServer | SocketBusClient | None = None
        if settings.bus == "socket":
            self.bus = self._socket_bus(settings)
        elif settings.bus == "redis":
            from .bus.redis import RedisBus  # Redis's client only where it is used

            self.bus = RedisBus(redis_client_of(settings), prefix=settings.redis_prefix, process=PROCESS,
                                shards=settings.bus_shards, history_s=settings.history_depth)
            self.hub = Hub(self.metrics, stale_after_s=settings.stale_after)
            self.ingest = Ingest(self.bus, self.metrics)
            if settings.role != "ingest":
                self.bus.attach(self.hub)
                self.bus.add_backfill(self._backfill)
        else:
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
        rates = FxRates(self.hub.feeds, self.hub.latest, self.hub.is_stale, settings.fx_rate)
        self.portfolio = PortfolioBook(self.hub, self._day_change, settings.base_currency, rates)
        self.hub.add_listener(self.portfolio.add_updates)
        self.divergence = DivergenceWatch(self.hub, settings.divergence_bps, settings.divergence_hold,
                                          settings.divergence_clear_bps, settings.divergence_max_age)
        self.hub.add_listener(self.divergence.add_updates)
        self.metrics.registry.register(DivergenceCollector(self.divergence))
        runs_sources = settings.role != "edge"
        self.sources: list[Source] = [create_source(name, self.ingest, settings)
                                      for name in (settings.source if runs_sources else [])]
        # The local oracle is a source only when there are local products for publishers to price.
        self.oracle: LocalOracle | None = None
        slot_clock = SlotClock(settings.slot_interval)  # the one clock of every feed's slots in the pythd API
        if settings.products is not None and runs_sources:
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
            alerts=self.alerts, portfolio=self.portfolio, access=access_policy(settings), divergence=self.divergence,
            recent=self.recent, origins=OriginPolicy.of(settings.cors_origins))
        self.services.access.feed_names = self._feed_names
        # An ingest process serves no client face: only /health, /status and /metrics (and pythd publishers).
        faces = settings.model_copy(update={"ws": False, "streams": False, "crypto": False, "lazer_stream": False})
        self.listeners: Listening = build_listeners(
            self.services, faces if settings.role == "ingest" else settings, self.oracle, slot_clock)
        self.leadership: Leadership | None = None
        self.assembly = Assembly(self._local_components() if self.bus is None else
                                 self._socket_components(cast("SocketBusServer | SocketBusClient", self.bus))
                                 if settings.bus == "socket" else
                                 self._bus_components(cast("RedisBus", self.bus)))
        self._stop = asyncio.Event()

    def _socket_bus(self, settings: Settings) -> SocketBusServer | SocketBusClient:
        """The bus of ``--workers`` without Redis: ingest serves a Unix socket that every edge reads."""
        from .bus.socket import SocketBusClient, SocketBusServer

        assert settings.bus_socket is not None
        self.hub = Hub(self.metrics, stale_after_s=settings.stale_after)
        if settings.role == "ingest":
            server = SocketBusServer(settings.bus_socket, settings.history_depth)
            self.ingest = Ingest(server, self.metrics)
            return server
        client = SocketBusClient(settings.bus_socket)
        client.attach(self.hub)
        client.add_backfill(self._backfill)
        self.ingest = Ingest(LocalBus(), self.metrics)  # nothing publishes into an edge's ingest
        return client

    def _local_components(self) -> list[Component]:
        return [
            *self._store_components(),
            RecentLog(self.recent, RecentStore(self.settings.db), self.hub.latest),  # saved after the sources stop
            *self._analytics_writer(),
            *self._derived_components(),
            *self.sources,
            *self.listeners.components(),
        ]

    def _bus_components(self, bus: RedisBus) -> list[Component]:
        """On the Redis bus: ingest publishes while it leads; an edge catches up from Redis, then reads on."""
        from .bus.lease import Lease
        from .leadership import Leadership

        settings, role = self.settings, self.settings.role
        ingest: list[Component] = []
        if role != "edge":
            lease = Lease(bus.redis, settings.redis_prefix + "ingest:leader", PROCESS, settings.ingest_lease)
            self.leadership = Leadership(lease, bus, self.ingest, self.sources)
            ingest = [*self._store_components(),
                      Task("bus publisher", bus.start_publishing, bus.stop_publishing, bus.status)]
        return [
            Task("redis bus", _nothing, bus.close),
            *ingest,
            *self._analytics_writer(),
            *self._derived_components(),
            *([Task("bus reader", bus.start_edges, bus.stop_edges)] if role != "ingest" else []),
            *([self.leadership] if self.leadership is not None else []),
            *self.listeners.components(),
        ]

    def _socket_components(self, bus: SocketBusServer | SocketBusClient) -> list[Component]:
        settings = self.settings
        # The edges share one --db: only the ingest keeps the store; an edge's candles start from the bus.
        stored: list[Component] = [Task("analytics", self._start_candles, self._stop_candles)]
        if settings.role == "ingest":
            stored = [*self._store_components(),
                      *self._analytics_writer()]
        return [
            *stored,
            *self._derived_components(),
            Task("socket bus", bus.start, bus.stop, bus.status),
            *self.sources,
            *self.listeners.components(),
        ]

    def _store_components(self) -> list[Component]:
        """The store (opened with the last known state restored) and ingest's write-behind to it."""
        return [Task("store", self._open_store, self.store.close),
                Task("store writer", self._start_writer, self.writer.stop, self.writer.status)]

    def _derived_components(self) -> list[Component]:
        """What every process that runs a hub computes from its prices: alerts, portfolios, divergences."""
        settings = self.settings
        return [
            AlertWriter(self.alerts, AlertStore(settings.db), settings.store_flush_interval),
            PortfolioWriter(self.portfolio, PortfolioStore(settings.db), settings.store_flush_interval),
            Task("divergence watch", self.divergence.start, self.divergence.stop, self.divergence.status),
        ]

    def _backfill(self, updates: list[PriceUpdate]) -> None:
        """What the Redis stream still holds, at an edge's start: resume and time queries reach back as far."""
        self.recent.add(updates)
        self.history.add(updates)

    def _analytics(self, settings: Settings) -> Analytics:
        """Market days and candles, computed once per feed by hub listeners (before any face reads them)."""
        clock = DayClock(self.hub.feeds)
        days = MarketDays(self.hub, clock)
        candles = CandleBook(self.hub, [parse_interval(i) for i in settings.candle_intervals],
                             history=settings.candle_history, grace_s=settings.candle_grace, day_of=clock.day_of)
        self.hub.add_listener(days.add)
        self.hub.add_listener(candles.add)
        risk = RiskBook(candles, clock.schedule, self.hub.feeds, settings.risk_window, settings.risk_benchmark)
        return Analytics(clock, days, candles, AnalysisBook(self.hub, candles, risk))

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

    def _feed_names(self, feed_id: str) -> tuple[str, ...]:
        """The names an API key's ``feeds`` may give a feed: its id (bare or 0x), symbol and display symbol."""
        feed = self.hub.feeds.get(feed_id)
        bare = ("0x" + feed_id,)
        return bare if feed is None else (*bare, feed.symbol, feed.display_symbol)

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
        standby = self.leadership is not None and not self.leadership.lease.leading
        reasons = [] if standby else [f"source {s.name} is {s.state}" + (f": {s.last_error}" if s.last_error else "")
                                      for s in self.sources if not s.is_up]
        if self.bus is not None:
            reasons += self.bus.problems()
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
                "sources": {s.name: str(s.state) for s in self.sources}, "role": self.settings.role,
                **({"ingest": "standby" if standby else "leading"} if self.leadership is not None else {})}

    def status(self) -> dict[str, Any]:
        hub, metrics = self.hub, self.metrics
        return {
            "uptime_s": round(time.monotonic() - self.started_at, 3),
            "process": PROCESS,
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
            "divergences": self.divergence.flagged(),
            **({"bus": self.bus.status()} if self.bus is not None else {}),
            **({"leadership": self.leadership.status()} if self.leadership is not None else {}),
            "analysis": self.analytics.analysis.status(),
        }
