"""Seed 004: the multi-endpoint stream service (``/ws/stream``, ``/ws/analysis``, ``/ws/alerts``,
``/ws/portfolio``, ``/health``, ``/connections``, ``/test``) on a port of its own (8081)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ...policy import OriginPolicy
from ...transport.connection import Connection, SessionFactory
from ...transport.http import ApiServer, KeyGuard
from ...transport.listener import Listener
from ...transport.sansio_ws import sweep_pings
from ...transport.wsframe import FramedCodec
from ..services import Services
from .codecs import StreamCodecs
from .endpoints import ENDPOINTS, Endpoint
from .http import create_streams_app
from .messages import now_iso
from .session import StreamContext, StreamSession
from .symbols import SymbolIndex

if TYPE_CHECKING:
    from ...config import Settings

__all__ = ["create_streams_server"]


def create_streams_server(services: Services, settings: Settings) -> tuple[ApiServer, list[Listener]]:
    """The service's server and its four WebSocket listeners (one per endpoint, sharing one context)."""
    symbols = SymbolIndex(services.hub.feeds)
    codecs = StreamCodecs(symbols, services.analytics, services.divergence)
    context = StreamContext(services.hub, symbols, codecs, services.analytics, settings.max_subscriptions,
                            services.alerts, services.portfolio, services.divergence, services.recent)
    origins = OriginPolicy.of(settings.cors_origins)
    # A connection is pinged every half of the idle timeout; one that sent nothing since the last ping is closed.
    limits = dataclasses.replace(services.limits, ping_interval_s=settings.streams_idle_timeout / 2,
                                 pong_timeout_s=settings.streams_idle_timeout / 2)
    listeners: list[tuple[Endpoint, Listener]] = []
    for endpoint in ENDPOINTS:
        listener = Listener(endpoint.face, codecs.data, _session_factory(endpoint, context), limits,
                            services.metrics, wrap=FramedCodec, origin_policy=origins)
        listener.on_sweep = sweep_pings
        listeners.append((endpoint, listener))
    app = KeyGuard(create_streams_app(services, listeners, origins, now_iso, symbols), services.access,
                   services.metrics, lambda path: "streams_http")
    server = ApiServer(app, settings.streams_host,
                       settings.streams_port, websockets={e.path: listener for e, listener in listeners},
                       streams=[], header_timeout_s=limits.idle_timeout_s, tls=settings.tls,
                       description="stream service (seed 004: /ws/stream, /ws/analysis, /ws/alerts, "
                                   "/ws/portfolio, /health, /connections, /test)", reuse_port=settings.reuse_port)
    return server, [listener for _, listener in listeners]


def _session_factory(endpoint: Endpoint, context: StreamContext) -> SessionFactory:
    def create(peer: Connection) -> StreamSession:
        return StreamSession(endpoint, context, peer)

    return create
