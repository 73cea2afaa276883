"""The dashboard: ``GET /`` on the API port, one self-contained live page of feeds, sources and connections.

The page is ``static/dashboard.html`` with its stylesheet and script inlined,
so it is a single response: nothing to fetch from elsewhere, and no asset
request that would need the API key again when keys are configured. Its
Content-Security-Policy allows exactly that script and style (by hash) and
requests to this origin only. The script reads ``/feeds`` and ``/status``, starts
its sparklines from ``/dashboard/sparklines`` (the price history, sampled) and
follows prices over Hermes' ``/ws`` (see ``static/dashboard.js``).
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from ...history import PriceHistory
from ...model import FeedId, scaled
from ..services import Services

STATIC = Path(__file__).resolve().parent / "static"
STYLE_MARK = '<link rel="stylesheet" href="dashboard.css">'
SCRIPT_MARK = '<script src="dashboard.js"></script>'


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@cache
def dashboard_page() -> tuple[str, str]:
    """The page with its style and script inlined, and the Content-Security-Policy that allows just those."""
    html = (STATIC / "dashboard.html").read_text()
    style = (STATIC / "dashboard.css").read_text()
    script = (STATIC / "dashboard.js").read_text()
    if STYLE_MARK not in html or SCRIPT_MARK not in html:
        raise RuntimeError("dashboard.html must link dashboard.css and dashboard.js as the marks say")
    page = html.replace(STYLE_MARK, f"<style>{style}</style>").replace(SCRIPT_MARK, f"<script>{script}</script>")
    policy = (f"default-src 'none'; script-src {_sha256(script)}; style-src {_sha256(style)}; "
              "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'")
    return page, policy


Points = list[list[float]]
"""``[publish time (s), price]`` pairs, oldest first."""


def sparklines(history: PriceHistory, feeds: Iterable[FeedId], since_s: int, step_s: int) -> dict[str, Points]:
    """Each feed's kept prices from ``since_s`` on, the first of every ``step_s`` seconds, as ``[time, price]``."""
    lines: dict[str, Points] = {}
    for feed_id in feeds:
        points: Points = []
        bucket = -1
        for update in history.since(feed_id, since_s):
            if update.publish_time // step_s != bucket:
                bucket = update.publish_time // step_s
                points.append([update.publish_time, scaled(update.price, update.expo)])
        lines[feed_id] = points
    return lines


def create_dashboard_router(services: Services) -> APIRouter:
    router = APIRouter()

    @router.get("/", include_in_schema=False)
    async def dashboard() -> HTMLResponse:
        page, policy = dashboard_page()
        return HTMLResponse(page, headers={"Content-Security-Policy": policy, "Cache-Control": "no-cache"})

    @router.get("/dashboard/sparklines", summary="Every feed's recent prices, sampled, for the dashboard's sparklines",
                tags=["dashboard"])
    async def recent_prices(
        seconds: int = Query(300, ge=1, le=600, description="How far back (the history keeps 10 minutes)"),
        step: int = Query(5, ge=1, le=60, description="One point per this many seconds"),
    ) -> Response:
        since = int(time.time()) - seconds
        lines = sparklines(services.history, services.hub.feeds, since, step)
        return Response(orjson.dumps({"seconds": seconds, "step": step, "feeds": lines}),
                        media_type="application/json")

    return router


__all__ = ["create_dashboard_router", "dashboard_page"]
