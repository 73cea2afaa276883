"""The API port: uvicorn serves REST, and hands WebSocket upgrades and event streams to our transport.

Hermes keeps REST, SSE and ``/ws`` on one base URL, so they share one port.
uvicorn parses every request; WebSocket upgrades go to ``sansio_ws.py`` (its
``ws`` protocol class) and an event stream, once its face has validated the
request, takes the socket over (:class:`TakeOver`), so both get the same
outbox, limits and one-write-per-pass fan-out as the picows ports. A
connection that does not finish its request head in time is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..metrics import Metrics
from ..policy import OPEN_PATHS, AccessPolicy, OriginPolicy, Refusal, log_refusal
from .listener import Listener
from .ports import shared_socket
from .sansio_ws import upgrade_protocol
from .tls import Tls, certfile, keyfile, scheme

log = logging.getLogger(__name__)

TAKE_OVER = "pricefeed.take_over"
"""The ASGI scope extension through which a response takes the connection over."""

ProtocolFactory = Callable[[], asyncio.Protocol]


class ApiHttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol, with a deadline for the request head and a way for a stream to take over."""

    header_timeout_s = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._disarm_head_timer()
        super().on_headers_complete()
        extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
        extensions[TAKE_OVER] = self._take_over

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def _take_over(self, make: ProtocolFactory) -> None:
        """Give the socket to ``make()``; uvicorn then considers the request answered and forgets it."""
        cycle = self.cycle
        cycle.response_started = cycle.response_complete = True
        self.connections.discard(self)
        self._unset_keepalive_if_required()
        self._disarm_head_timer()
        protocol = make()
        self.transport.set_protocol(protocol)
        protocol.connection_made(self.transport)


class TakeOver(Response):
    """A response that hands the connection to one of our streams instead of answering through ASGI."""

    def __init__(self, make: ProtocolFactory) -> None:
        super().__init__()
        self.make = make

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        take_over = scope.get("extensions", {}).get(TAKE_OVER)
        if take_over is None:  # served by another server (e.g. a test client): it cannot stream
            await Response("streams are served by pricefeed's own HTTP server\n", status_code=501,
                           media_type="text/plain")(scope, receive, send)
            return
        take_over(self.make)


class OriginGuard:
    """ASGI middleware: an HTTP request from a browser origin the policy refuses gets 403 (WebSocket upgrades
    are checked by our upgrade protocol, before the app), counted per face when given ``refused``."""

    def __init__(self, app: ASGIApp, policy: OriginPolicy,
                 refused: Callable[[str], None] | None = None) -> None:
        self.app = app
        self.policy = policy
        self.refused = refused
        """Told the request's path when one is refused."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.policy.allows_any:
            headers = {k: v.decode("latin-1") for k, v in scope["headers"] if k in (b"origin", b"host")}
            refusal = self.policy.refusal(headers.get(b"origin"), headers.get(b"host"))
            if refusal is not None:
                if self.refused is not None:
                    self.refused(scope["path"])
                await PlainTextResponse(refusal, status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class KeyGuard:
    """ASGI middleware: when keys are configured, an HTTP request without a valid key for its face gets 401 or
    403 (``WWW-Authenticate: Bearer``), counted by reason and logged once; probes (``/health``) stay open.
    WebSocket upgrades are checked by our upgrade protocol, before the app."""

    def __init__(self, app: ASGIApp, policy: AccessPolicy, metrics: Metrics, face_of: Callable[[str], str]) -> None:
        self.app = app
        self.policy = policy
        self.face_of = face_of
        self._refusals = metrics.refusals
        self._warned: set[tuple[str, str, str]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.policy.keys_required and scope["path"] not in OPEN_PATHS \
                and scope["method"] != "OPTIONS":  # a CORS preflight carries no credentials
            face = self.face_of(scope["path"])
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
                       if k in (b"authorization", b"sec-websocket-protocol")}
            values = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            query = {k: v[-1] for k, v in values.items()}
            checked = self.policy.check(face, headers, query)
            if not isinstance(checked, Refusal) and checked is not None:  # its request rate, the feeds it asks for
                checked = self.policy.request_refusal(face, checked) or \
                    self.policy.feed_refusal(checked, [*values.get("ids[]", ()), *values.get("ids", ())]) or checked
            if isinstance(checked, Refusal):
                client = scope.get("client")
                refusal = dataclasses.replace(checked, who=str(client[0]) if client else "-") \
                    if checked.who == "-" else checked
                self._refusals.labels(face, refusal.reason).inc()
                log_refusal(face, refusal, self._warned)
                extra = {"WWW-Authenticate": "Bearer"} if refusal.status == 401 else \
                    {"Retry-After": "1"} if refusal.status == 429 else None
                await JSONResponse({"error": refusal.message.strip()}, status_code=refusal.status,
                                   headers=extra)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _Embedded(uvicorn.Server):
    """uvicorn inside our loop: the app, not uvicorn, owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ApiServer:
    """The API port: an ASGI app for requests, our listeners for WebSockets (by path) and streams."""

    def __init__(self, app: Any, host: str, port: int, websockets: Mapping[str, Listener],
                 streams: list[Listener], header_timeout_s: float = 10.0,
                 description: str = "REST API (docs at /docs, metrics at /metrics)", tls: Tls | None = None,
                 reuse_port: bool = False) -> None:
        self.description = description
        self.reuse_port = reuse_port
        self.websockets = dict(websockets)
        self.listeners = [*dict.fromkeys([*self.websockets.values(), *streams])]
        http = type("PricefeedHttpProtocol", (ApiHttpProtocol,), {"header_timeout_s": header_timeout_s})
        self._server = _Embedded(uvicorn.Config(
            app, host=host, port=port, lifespan="off", access_log=False, log_config=None,
            http=http, ws=upgrade_protocol(self.websockets), timeout_graceful_shutdown=2,
            ssl_certfile=certfile(tls), ssl_keyfile=keyfile(tls)))
        self.scheme = scheme(tls, "http")
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        config = self._server.config
        sockets = [shared_socket(config.host, config.port)] if self.reuse_port else None
        self._task = asyncio.create_task(self._server.serve(sockets), name=f"http-server-{id(self):x}")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # re-raises why it failed (e.g. port in use)
                raise RuntimeError("the API server stopped during start-up")
            await asyncio.sleep(0.01)
        log.info("%s on %s://%s:%d", self.description, self.scheme, config.host, self.port)

    @property
    def port(self) -> int:
        return int(self._server.servers[0].sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Close our WebSockets (1001) and end our streams, then let uvicorn finish its requests."""
        await asyncio.gather(*(listener.close_all() for listener in self.listeners))
        self._server.should_exit = True
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
