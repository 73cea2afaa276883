"""The stream service's HTTP endpoints: ``/health``, ``/connections``, the ``/test`` page, ``/alerts`` and
``/portfolio``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from ... import __version__
from ...policy import OriginPolicy
from ...transport.http import OriginGuard
from ...transport.listener import Listener
from ..services import Services
from ..simple_ws import iso_time
from .alert_routes import add_alert_routes
from .endpoints import Endpoint
from .portfolio_routes import add_portfolio_routes
from .session import StreamSession
from .symbols import SymbolIndex


class ErrorOut(BaseModel):
    error: str
    timestamp: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "A bad request, and what is wrong with it"},
    404: {"model": ErrorOut, "description": "No such thing"}}
"""What every route may answer besides its result."""


def connection_rows(listeners: Sequence[tuple[Endpoint, Listener]]) -> list[dict[str, Any]]:
    rows = []
    for endpoint, listener in listeners:
        for conn in sorted(listener.connections, key=lambda c: c.connected_at):
            session = conn.session
            subscriptions = ([s.symbol for s in session.subscriptions.values()]
                             if isinstance(session, StreamSession) else [])
            rows.append({"endpoint": endpoint.path, "client_id": conn.client_id, "client": conn.remote,
                         "connected_at": iso_time(int(conn.connected_at * 1_000_000)),
                         "subscriptions": subscriptions, "messages_sent": conn.messages_sent})
    return rows


def create_streams_app(services: Services, listeners: Sequence[tuple[Endpoint, Listener]],
                       origins: OriginPolicy, now: Callable[[], str], symbols: SymbolIndex | None = None) -> Any:
    with_alerts = symbols is not None and (services.alerts is not None or services.portfolio is not None)
    api = FastAPI(title="pricefeed stream service", version=__version__, redoc_url=None,
                  docs_url="/docs" if with_alerts else None, openapi_url="/openapi.json" if with_alerts else None,
                  responses=ERRORS)
    allowed = ["*"] if origins.allowed is None else sorted(origins.allowed)
    api.add_middleware(CORSMiddleware, allow_origins=allowed, allow_headers=["*"],
                       allow_methods=["GET", "HEAD", "OPTIONS", "POST", "PUT", "DELETE"])
    if services.alerts is not None and symbols is not None:
        add_alert_routes(api, services.alerts, symbols)
    if services.portfolio is not None and symbols is not None:
        add_portfolio_routes(api, services.portfolio, symbols)

    @api.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = f"no such endpoint: {request.url.path}" if exc.status_code == 404 else str(exc.detail)
        return JSONResponse({"error": message, "timestamp": now()}, status_code=exc.status_code)

    @api.get("/health")
    async def health() -> JSONResponse:
        body = services.health()
        counts = {endpoint.path: len(listener.connections) for endpoint, listener in listeners}
        body = {"status": body["status"], "service": "pricefeed stream service", "timestamp": now(),
                "connections": sum(counts.values()), "endpoints": counts, "reasons": body["reasons"],
                "sources": body["sources"]}
        if services.analytics is not None:  # /ws/analysis: series computed, and bars analysed (once per series)
            body["analysis"] = services.analytics.analysis.status()
        return JSONResponse(body, status_code=503 if body["status"] == "stopping" else 200)

    @api.get("/connections")
    async def connections() -> dict[str, Any]:
        rows = connection_rows(listeners)
        by_endpoint = {endpoint.path: len(listener.connections) for endpoint, listener in listeners}
        return {"total": len(rows), "by_endpoint": by_endpoint, "connections": rows, "timestamp": now()}

    page = resources.files(__package__).joinpath("test_page.html").read_text(encoding="utf-8")

    @api.get("/test", response_class=HTMLResponse)
    async def test_page() -> HTMLResponse:
        return HTMLResponse(page)

    return OriginGuard(api, origins)
