"""The REST face: health, feeds, status and metrics, with OpenAPI docs at ``/docs``, and Hermes' routes."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from .. import __version__
from ..assets import parse_asset
from ..model import Feed, asset_type_key, parse_feed_id, scaled
from ..transport.listener import Listener
from .dashboard import create_dashboard_router
from .hermes_rest import create_hermes_router
from .lazer import LazerFace
from .lazer.symbols import create_lazer_router
from .services import Services
from .simple_ws import iso_time


class FeedOut(BaseModel):
    id: str
    symbol: str
    display_symbol: str
    asset_type: str
    source: str
    simulated: bool
    expo: int
    price: float | None
    conf: float | None
    ema_price: float | None
    ema_conf: float | None
    status: str
    stale: bool
    publish_time: str | None
    seq: int | None
    attributes: dict[str, str]


class AssetSourceOut(BaseModel):
    price: float
    age_s: float
    """Seconds since the source's publish time."""
    status: str
    """The source's status: trading, halted, ..., or stale (older than --divergence-max-age)."""
    feed_id: str


class AssetOut(BaseModel):
    asset: str
    median: float | None
    """The median of the usable sources' prices (trading, not stale)."""
    spread_bps: float | None
    """(highest - lowest) / median of the usable prices, in basis points; null with fewer than two."""
    threshold_bps: float
    clear_bps: float
    diverging: bool
    since: str | None
    """While diverging: when the divergence began."""
    sources: dict[str, AssetSourceOut]


class AssetSummary(BaseModel):
    asset: str
    sources: list[str]
    spread_bps: float | None
    diverging: bool


class ErrorOut(BaseModel):
    error: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "A bad request, and what is wrong with it"},
    404: {"model": ErrorOut, "description": "No such thing"}}
"""What every route may answer besides its result (validation errors are 400s here, not FastAPI's 422s)."""


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def create_rest_app(app: Services, hermes_streams: Listener, lazer: LazerFace | None = None) -> FastAPI:
    api = FastAPI(title="pricefeed", version=__version__,
                  description="Real-time market prices: status and feeds, and a Hermes-compatible API "
                              "(`/v2/...`, `/api/...`, and the WebSocket `/ws`) that Pyth's own clients can use "
                              "unchanged. Prometheus metrics at `/metrics`.", responses=ERRORS)
    # Hermes allows every origin, so browser apps using hermes-client work from any page (unless --cors-origins).
    allowed = ["*"] if app.origins.allowed is None else sorted(app.origins.allowed)
    api.add_middleware(CORSMiddleware, allow_origins=allowed, allow_methods=["GET", "HEAD", "OPTIONS", "POST"],
                       allow_headers=["*"])

    @api.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @api.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = f"no such endpoint: {request.url.path}" if exc.status_code == 404 else str(exc.detail)
        return JSONResponse({"error": message}, status_code=exc.status_code)

    @api.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = " ".join(str(part) for part in first["loc"])
        return JSONResponse({"error": f"invalid {where}: {first['msg']}"}, status_code=400)

    def feed_out(feed: Feed) -> FeedOut:
        latest = app.hub.latest.get(feed.id)
        status = app.hub.status_of(feed.id)
        return FeedOut(
            id=feed.id, symbol=feed.symbol, display_symbol=feed.display_symbol, asset_type=feed.asset_type,
            source=feed.source, simulated=feed.simulated, expo=feed.expo if latest is None else latest.expo,
            price=None if latest is None else scaled(latest.price, latest.expo),
            conf=None if latest is None else scaled(latest.conf, latest.expo),
            ema_price=None if latest is None else scaled(latest.ema_price, latest.expo),
            ema_conf=None if latest is None else scaled(latest.ema_conf, latest.expo),
            status=status, stale=status == "stale",  # a feed with no price yet is "unknown", not stale
            publish_time=None if latest is None else iso_time(latest.publish_time_us),
            seq=None if latest is None else latest.seq, attributes=dict(feed.attributes))

    @api.get("/health", summary="Whether the service is serving, and why it is degraded")
    async def health() -> JSONResponse:
        body = app.health()
        return JSONResponse(body, status_code=503 if body["status"] == "stopping" else 200)

    @api.get("/feeds", response_model=list[FeedOut], summary="Feeds with their latest price")
    async def feeds(
        symbol: str | None = Query(None, description="Case-insensitive substring of the symbol, e.g. btc"),
        asset_type: str | None = Query(None, description="Asset type, e.g. crypto, fx, equity (any case)"),
    ) -> list[FeedOut]:
        selected = list(app.hub.feeds.values())
        if asset_type is not None:
            wanted = asset_type_key(asset_type)
            known = sorted({f.asset_type_key for f in selected})
            if wanted not in known:
                raise ApiError(400, f"unknown asset_type {asset_type!r}: known types are {', '.join(known)}")
            selected = [f for f in selected if f.asset_type_key == wanted]
        if symbol is not None:
            needle = symbol.lower()
            selected = [f for f in selected if needle in f.symbol.lower()]
        return [feed_out(f) for f in sorted(selected, key=lambda f: f.symbol)]

    @api.get("/feeds/{feed_id}", response_model=FeedOut, summary="One feed with its latest price")
    async def feed(feed_id: str) -> FeedOut:
        try:
            normalised = parse_feed_id(feed_id)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        found = app.hub.feeds.get(normalised)
        if found is None:
            raise ApiError(404, f"unknown feed_id {normalised}")
        return feed_out(found)

    @api.get("/status", summary="Uptime, connections, subscriptions, and the state of every source")
    async def status() -> dict[str, Any]:
        return app.status()

    @api.get("/assets", response_model=list[AssetSummary],
             summary="Assets that two or more sources carry, with their spread and whether they diverge")
    async def assets() -> list[AssetSummary]:
        watch = app.divergence
        if watch is None:
            return []
        return [AssetSummary(asset=w.asset, sources=sorted(w.latest), spread_bps=w.spread_bps, diverging=w.flagged)
                for w in watch.shared()]

    @api.get("/assets/{symbol:path}", response_model=AssetOut,
             summary="One asset across sources: each source's price, age and status, the median and the spread")
    async def asset(symbol: str) -> AssetOut:
        key = parse_asset(symbol)
        view = None if app.divergence is None else app.divergence.view(key)
        if view is None:
            known = [] if app.divergence is None else sorted(app.divergence.assets)
            shown = ", ".join(known[:40]) + (f" and {len(known) - 40} more" if len(known) > 40 else "")
            raise ApiError(404, f"unknown asset {symbol!r}: expected BASE/QUOTE, e.g. BTC/USD; known assets are "
                                f"{shown or 'none yet'}")
        return AssetOut.model_validate(view)

    @api.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics() -> Response:
        return Response(app.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    api.include_router(create_dashboard_router(app))
    api.include_router(create_hermes_router(app, hermes_streams))
    if lazer is not None:
        api.include_router(create_lazer_router(lazer))
    return api
