"""Faces: the protocols clients speak, and the registry of listeners that serve them.

Each listener is found by name, can be turned off by its setting, and is a
component of the assembly; a face sees only :class:`~.services.Services`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..coins import parse_coins
from ..components import Component, Task
from ..transport.http import ApiServer, KeyGuard, OriginGuard
from ..transport.listener import Listener
from ..transport.picows import PicowsServer
from ..transport.sansio_ws import sweep_pings
from ..transport.sse import sweep_streams
from ..transport.wsframe import FramedCodec
from .crypto import CryptoService
from .crypto.access import SocketIoAccess
from .hermes_sse import ALL_UPDATES
from .hermes_ws import MAX_MESSAGE_BYTES, PLAIN, HermesWsSession
from .jsonrpc import RPC_LIMITS, PythdApi, create_rpc_server, parse_publishers
from .lazer import AUTH_SUBPROTOCOL, PING_INTERVAL_S, LazerFace
from .rest import create_rest_app
from .services import Services
from .simple_ws import Limits, SimpleWsCodec, SimpleWsSession
from .streams import create_streams_server

if TYPE_CHECKING:
    from ..config import Settings
    from ..products import Oracle
    from ..slots import SlotClock


def _no_session(peer: Any) -> Any:
    raise TypeError("event streams get their session from the request that opened them")


@dataclass
class Listening:
    """The listeners of one process, by name, with their ports and connection counts."""

    components_by_name: dict[str, Component]
    ports: dict[str, Callable[[], int]]
    listeners: list[Listener]
    pythd: PythdApi | None
    crypto: CryptoService | None

    def components(self) -> list[Component]:
        return list(self.components_by_name.values())

    def port(self, name: str) -> int:
        return self.ports[name]()

    def connections_by_face(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for listener in self.listeners:
            counts[listener.face] = counts.get(listener.face, 0) + len(listener.connections)
        return counts


def build_listeners(services: Services, settings: Settings, oracle: Oracle | None,
                    slot_clock: SlotClock) -> Listening:
    components: dict[str, Component] = {}
    ports: dict[str, Callable[[], int]] = {}
    listeners: list[Listener] = []
    limits = services.limits
    tls = settings.tls
    tls_context = None if tls is None else tls.context()

    def picows(name: str, server: PicowsServer, host: str, port: int) -> None:
        server.tls = tls_context

        async def start() -> None:
            await server.start(host, port, settings.reuse_port)

        components[name] = Task(name, start, server.close, lambda: {"connections": len(server.connections)})
        ports[name] = lambda: server.port
        listeners.append(server)

    if settings.ws:
        session_limits = Limits(max_subscriptions=settings.max_subscriptions)
        seed000 = PicowsServer(
            "seed000", SimpleWsCodec(),
            lambda conn: SimpleWsSession(services.hub, conn, conn.client_id, session_limits,
                                         services.recent), limits, services.metrics)
        picows("seed000", seed000, settings.host, settings.port)

    pythd = None
    if settings.rpc:
        api = pythd = PythdApi.create(services.hub, oracle, parse_publishers(settings.rpc_publisher),
                                      settings.publish_interval, settings.rpc_origins, slot_clock)
        rpc = create_rpc_server(api, services.metrics, dataclasses.replace(
            RPC_LIMITS, max_message_bytes=limits.max_message_bytes, outbox_limit_bytes=limits.outbox_limit_bytes,
            slow_client_timeout_s=limits.slow_client_timeout_s))
        picows("pythd", rpc, settings.rpc_host, settings.rpc_port)
        components["pythd notifier"] = Task("pythd notifier", _nothing, _closing(api.notifier.close))

    if settings.streams:
        streams, stream_listeners = create_streams_server(services, settings)
        components["streams"] = Task("streams", streams.start, streams.close)
        ports["streams"] = lambda: streams.port
        listeners += stream_listeners

    crypto = None
    if settings.crypto:
        crypto = CryptoService(services.hub, parse_coins(settings.coingecko_coins), host=settings.crypto_host,
                               port=settings.crypto_port, health=services.health,
                               cors_origins=crypto_origins(settings), max_message_bytes=limits.max_message_bytes,
                               access=SocketIoAccess(services.access, services.metrics), tls=tls,
                               reuse_port=settings.reuse_port, recovery=settings.crypto_recovery)
        components["crypto"] = crypto
        ports["crypto"] = lambda: crypto.port

    # The API port last: once its /health answers, every other listener is up.
    if settings.api:
        hermes_ws = Listener("hermes_ws", PLAIN, lambda conn: HermesWsSession(services.hub, conn),
                             dataclasses.replace(limits, max_message_bytes=MAX_MESSAGE_BYTES), services.metrics,
                             wrap=FramedCodec)
        hermes_ws.on_sweep = sweep_pings
        hermes_sse = Listener("hermes_sse", ALL_UPDATES, _no_session, limits, services.metrics)
        hermes_sse.on_sweep = sweep_streams
        websockets = {"/ws": hermes_ws}
        lazer_face = None
        if settings.lazer_stream:
            lazer_face = LazerFace(services.hub, max_feeds=settings.max_subscriptions, recent=services.recent)
            lazer = Listener("lazer", lazer_face.default_codec, lazer_face.session,
                             dataclasses.replace(limits, ping_interval_s=PING_INTERVAL_S), services.metrics)
            lazer.on_sweep = sweep_pings
            lazer.subprotocol = AUTH_SUBPROTOCOL
            websockets["/v1/stream"] = lazer
            components["lazer clock"] = lazer_face.clock
            listeners.append(lazer)
        refusals = services.metrics.refusals
        rest_app = OriginGuard(KeyGuard(create_rest_app(services, hermes_sse, lazer_face), services.access,
                                        services.metrics, api_face_of), services.origins,
                               lambda path: refusals.labels(api_face_of(path), "origin").inc())
        server = ApiServer(rest_app, settings.api_host, settings.api_port,
                           websockets=websockets, streams=[hermes_sse], header_timeout_s=limits.idle_timeout_s, tls=tls,
                           reuse_port=settings.reuse_port)
        components["api"] = Task("api", server.start, server.close)
        ports["api"] = lambda: server.port
        listeners += [hermes_ws, hermes_sse]

    for listener in listeners:
        if listener.face != "pythd":  # publishers' keys and --rpc-origins guard the pythd face
            listener.access = services.access
            listener.origin_policy = services.origins
    return Listening(components, ports, listeners, pythd, crypto)


def crypto_origins(settings: Settings) -> list[str]:
    """Socket.IO's allowed origins: ``--crypto-cors-origins`` when set, else ``--cors-origins`` (else any)."""
    if "crypto_cors_origins" in settings.model_fields_set:
        return settings.crypto_cors_origins
    return settings.cors_origins or ["*"]


def api_face_of(path: str) -> str:
    """The face an HTTP request on the API port uses, as keys name it."""
    if path.startswith("/v2/updates/") and path.rstrip("/").endswith("/stream"):
        return "hermes_sse"
    if path.startswith(("/v2/", "/api/")):
        return "hermes_rest"
    if path.startswith("/v1/"):
        return "lazer"
    return "rest"


async def _nothing() -> None:
    return None


def _closing(close: Callable[[], None]) -> Callable[[], Any]:
    async def stop() -> None:
        close()

    return stop
