"""The service's parts built in-process, without listening: for the REST faces' ASGI apps and the stream
service's sessions. Two feeds with a price each (one a second for the last 10 s, for Hermes' time queries)
and one feed without."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import FastAPI

from pricefeed.app import App
from pricefeed.catalog import KNOWN_FEEDS
from pricefeed.config import Settings
from pricefeed.faces.lazer import LazerFace
from pricefeed.faces.rest import create_rest_app
from pricefeed.model import Feed, PriceUpdate

BTC, ETH, SOL = (KNOWN_FEEDS[i].id for i in range(3))
PRICED = (BTC, ETH)
START_S = 1_764_000_000
"""The first second with prices; the last is START_S + 9."""


def built(directory: Path) -> App:
    app = App(Settings(source=["sim"], db=directory / "pricefeed.db", seed=7, _env_file=None))  # type: ignore[call-arg]
    app.ingest.add_feeds([Feed(k.id, k.symbol, k.expo, "hermes", k.attributes()) for k in KNOWN_FEEDS[:3]])

    async def publish() -> None:
        for second in range(10):
            for index, feed_id in enumerate(PRICED):
                price = 6_000_000_000_000 // (index + 1) + second
                app.ingest.publish(PriceUpdate(feed_id, price, 1000, -8, (START_S + second) * 1_000_000, price,
                                               1000, slot=100 + second))
            for _ in range(3):
                await asyncio.sleep(0)

    asyncio.run(publish())
    return app


def rest_app(app: App) -> FastAPI:
    """The API port's REST app (without the KeyGuard, which needs no fuzzing here: no keys are configured)."""
    (hermes_sse,) = [listener for listener in app.listeners.listeners if listener.face == "hermes_sse"]
    return create_rest_app(app.services, hermes_sse, LazerFace(app.hub))
