"""The service: wires sources, hub, store and faces together, and owns start and stop."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import signal
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

from .config import Settings
from .faces.crypto import CryptoService
from .faces.jsonrpc import RPC_LIMITS, PythdApi, create_rpc_server, parse_publishers
from .faces.rest import create_rest_app
from .faces.simple_ws import Limits, SimpleWsCodec, SimpleWsSession
from .history import PriceHistory
from .hub import Hub
from .sources import Source, create_source
from .sources.coingecko_wire import parse_coins
from .sources.publishers import LocalOracle, SlotClock
from .store import Store, StoreWriter, create_store
from .websocket import Connection, ConnectionLimits, WebSocketServer

log = logging.getLogger(__name__)


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn inside our loop: the app, not uvicorn, owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class App:
    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.started_at = time.monotonic()
        self.stopping = False
        self.hub = Hub(stale_after_s=settings.stale_after)
        self.history = PriceHistory()
        self.hub.add_listener(self.history.add)
        self.store: Store = store if store is not None else create_store(settings)
        self.writer = StoreWriter(self.hub, self.store, settings.store_flush_interval)
        self.sources: list[Source] = [create_source(name, self.hub, settings) for name in settings.source]
        # The local oracle is a source only when there are local products for publishers to price.
        self.oracle: LocalOracle | None = None
        if settings.products is not None:
            self.oracle = LocalOracle(self.hub, products_file=settings.products,
                                      slot_clock=SlotClock(settings.slot_interval),
                                      reload_interval_s=settings.products_reload_interval)
            self.sources.append(self.oracle)
        self.pythd = PythdApi.create(self.hub, self.oracle, parse_publishers(settings.rpc_publisher),
                                     settings.publish_interval)
        self.rpc = create_rpc_server(self.pythd, dataclasses.replace(
            RPC_LIMITS, max_message_bytes=settings.max_message_bytes,
            outbox_limit_bytes=settings.outbox_limit_bytes,
            slow_client_timeout_s=settings.slow_client_timeout)) if settings.rpc else None
        limits = Limits(max_subscriptions=settings.max_subscriptions)
        self.simple_ws = WebSocketServer(
            "seed-000 WebSocket", SimpleWsCodec(),
            lambda conn: SimpleWsSession(self.hub, conn, conn.client_id, limits),
            ConnectionLimits(max_message_bytes=settings.max_message_bytes,
                             max_messages_per_second=settings.max_messages_per_second,
                             outbox_limit_bytes=settings.outbox_limit_bytes,
                             slow_client_timeout_s=settings.slow_client_timeout))
        self.rest = _EmbeddedUvicorn(uvicorn.Config(
            create_rest_app(self), host=settings.api_host, port=settings.api_port, lifespan="off",
            access_log=False, log_config=None, timeout_graceful_shutdown=2))
        self._rest_task: asyncio.Task[None] | None = None
        self.crypto = CryptoService(
            self.hub, parse_coins(settings.coingecko_coins), host=settings.crypto_host, port=settings.crypto_port,
            health=self.health, cors_origins=settings.crypto_cors_origins,
            max_message_bytes=settings.max_message_bytes) if settings.crypto else None
        self._stop = asyncio.Event()

    # -- life cycle -------------------------------------------------------

    async def start(self) -> None:
        """Restore the last known state, then start sources, the store writer and the listeners."""
        await self.store.open()
        self.hub.add_feeds(await self.store.load_feeds())
        restored = await self.store.load_latest()
        self.hub.restore(restored)
        if restored:
            log.info("restored %d last known prices (stale until fresh updates arrive)", len(restored))
        for source in self.sources:
            await source.start()
        self.writer.start()
        await self.simple_ws.start(self.settings.host, self.settings.port)
        if self.rpc is not None:
            await self.rpc.start(self.settings.rpc_host, self.settings.rpc_port)
        self._rest_task = asyncio.create_task(self.rest.serve(), name="rest")
        while not self.rest.started:
            if self._rest_task.done():
                self._rest_task.result()  # re-raises why it failed (e.g. port in use)
                raise RuntimeError("REST server stopped during start-up")
            await asyncio.sleep(0.01)
        log.info("REST API on http://%s:%d (docs at /docs)", self.settings.api_host, self.api_port)
        if self.crypto is not None:
            await self.crypto.start()
            log.info("Socket.IO crypto-prices on http://%s:%d (test page at /test-websocket)",
                     self.settings.crypto_host, self.crypto.port)
        # What start-up built (modules, the app, restored state) lives as long as the process: keep it out of
        # the collector's full passes, which would otherwise walk it and stall the fan-out for tens of ms.
        gc.freeze()

    async def stop(self) -> None:
        """Stop accepting, close clients with 1001, stop sources, flush the store."""
        if self.stopping:
            return
        self.stopping = True
        log.info("shutting down")
        await self.simple_ws.close()
        if self.crypto is not None:
            await self.crypto.stop()
        if self.rpc is not None:
            await self.rpc.close()
        self.pythd.notifier.close()
        self.rest.should_exit = True
        for source in self.sources:
            try:
                await source.stop()
            except Exception:
                log.exception("source %s did not stop cleanly", source.name)
        await self.writer.stop()
        await self.store.close()
        if self._rest_task is not None:
            await asyncio.gather(self._rest_task, return_exceptions=True)
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

    # -- what the REST face reports -------------------------------------------

    @property
    def api_port(self) -> int:
        return int(self.rest.servers[0].sockets[0].getsockname()[1])

    @property
    def ws_port(self) -> int:
        return self.simple_ws.port

    def connections(self) -> list[Connection]:
        rpc = [] if self.rpc is None else list(self.rpc.connections)
        return list(self.simple_ws.connections) + rpc

    def health(self) -> dict[str, Any]:
        reasons = [f"source {s.name} is {s.state}" + (f": {s.last_error}" if s.last_error else "")
                   for s in self.sources if not s.is_up]
        feeds = self.hub.feeds
        stale = self.hub.stale_count()
        if feeds and stale == len(feeds):
            reasons.append(f"all {stale} feeds are stale")
        if self.writer.last_error is not None:
            reasons.append(f"store unavailable, serving from memory: {self.writer.last_error}")
        status = "stopping" if self.stopping else ("degraded" if reasons else "ok")
        return {"status": status, "reasons": reasons, "uptime_s": round(time.monotonic() - self.started_at, 3),
                "sources": {s.name: str(s.state) for s in self.sources}}

    def status(self) -> dict[str, Any]:
        hub = self.hub
        connections = self.connections()
        return {
            "uptime_s": round(time.monotonic() - self.started_at, 3),
            "simulated": any(s.simulated for s in self.sources),
            "connections": len(connections),
            "subscriptions": hub.subscription_count(),
            "feeds": len(hub.feeds),
            "stale_feeds": hub.stale_count(),
            "hub": {
                "updates_per_second": round(hub.accepted.per_second(), 2),
                "updates_total": hub.accepted.total,
                "deliveries_per_second": round(hub.deliveries.per_second(), 2),
                "deliveries_total": hub.deliveries.total,
                "dropped_not_newer": hub.dropped_not_newer,
                "dropped_unknown_feed": hub.dropped_unknown_feed,
                "queued_bytes": sum(conn.queued_bytes for conn in connections),
                "history_updates": self.history.size(),
            },
            "sources": [s.status() for s in self.sources],
            "store": self.writer.status(),
            **({"crypto": self.crypto.status()} if self.crypto is not None else {}),
        }
