"""The crypto-prices listener (``--crypto-host:--crypto-port``, 0.0.0.0:5000 as the seed's service):
Socket.IO at ``/socket.io/``, ``GET /health``, the ``GET /test-websocket`` page and its socket.io client."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import socketio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ...coins import Coin
from ...hub import Hub
from ...transport.ports import shared_socket
from ...transport.tls import Tls, certfile, keyfile
from .access import SocketIoAccess
from .channels import CryptoChannels
from .hub_link import HubLink
from .recovery import RecoveryLog

STATIC = Path(__file__).resolve().parent / "static"
CLIENT_JS = "socket.io.min.js"


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn inside our loop: the app, not uvicorn, owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class CryptoService:
    """Seed 002's service as one component: ``start``, ``stop``, ``status``."""

    name = "crypto"

    def __init__(self, hub: Hub, coins: Sequence[Coin], *, host: str = "0.0.0.0", port: int = 5000,
                 health: Callable[[], dict[str, Any]] = dict, cors_origins: Sequence[str] = ("*",),
                 max_message_bytes: int = 64 * 1024, access: SocketIoAccess | None = None,
                 tls: Tls | None = None, reuse_port: bool = False, recovery: bool = False) -> None:
        self.link = HubLink(hub)
        self.channels = CryptoChannels(self.link, coins, cors_origins=cors_origins,
                                       max_message_bytes=max_message_bytes, access=access,
                                       recovery=RecoveryLog() if recovery else None)
        self.host = host
        self.reuse_port = reuse_port
        self._health = health
        routes = [Route("/health", self._health_endpoint), Route("/test-websocket", self._page),
                  Route(f"/static/{CLIENT_JS}", self._client_js), Route("/", self._index)]
        self.app = socketio.ASGIApp(self.channels.sio, other_asgi_app=Starlette(routes=routes))
        self.server = _EmbeddedUvicorn(uvicorn.Config(
            self.app, host=host, port=port, lifespan="off", access_log=False, log_config=None,
            timeout_graceful_shutdown=2, ws="websockets-sansio", ssl_certfile=certfile(tls), ssl_keyfile=keyfile(tls)))
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    async def start(self) -> None:
        self.channels.start()
        config = self.server.config
        sockets = [shared_socket(config.host, config.port)] if self.reuse_port else None  # --workers
        self._task = asyncio.create_task(self.server.serve(sockets), name="crypto-prices")
        while not self.server.started:
            if self._task.done():
                self._task.result()  # re-raises why it failed (e.g. port in use)
                raise RuntimeError("crypto-prices server stopped during start-up")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Close every connection (clients see a transport close and reconnect), then stop listening."""
        await self.channels.stop()
        self.server.should_exit = True
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    def status(self) -> dict[str, Any]:
        return {"listening": self.server.started, **self.channels.status()}

    def cache(self) -> dict[str, Any]:
        """What ``crypto-prices`` serves now: how many coins have a price, how many are stale, and how old."""
        objects = self.channels.snapshot.objects()
        resolved = self.channels.coins.resolve(self.link.feeds())
        ages = [age for symbol in (o["symbol"] for o in objects)
                if (age := self.link.age_s(resolved[symbol])) is not None]
        newest = max((o["lastUpdated"] for o in objects), default=None)
        return {"coins": len(self.channels.coins.coins), "priced": len(objects),
                "stale": sum(1 for o in objects if o["stale"]),
                "age_s": None if not ages else round(min(ages), 3),
                "oldest_age_s": None if not ages else round(max(ages), 3),
                "last_updated": newest}

    # -- HTTP

    async def _health_endpoint(self, request: Request) -> Response:
        body = {**self._health(), "service": "crypto-prices", "cache": self.cache(),
                "connections": len(self.channels.sio.eio.sockets), "time": time.time()}
        return JSONResponse(body, status_code=503 if body.get("status") == "stopping" else 200)

    async def _page(self, request: Request) -> Response:
        return FileResponse(STATIC / "test-websocket.html", media_type="text/html; charset=utf-8")

    async def _client_js(self, request: Request) -> Response:
        return FileResponse(STATIC / CLIENT_JS, media_type="text/javascript; charset=utf-8")

    async def _index(self, request: Request) -> Response:
        return RedirectResponse("/test-websocket")
