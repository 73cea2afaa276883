"""``GET /v1/symbols``: every feed with its Lazer id, in the shape of Lazer's metadata service.

Rows carry ``pyth_lazer_id``, ``name``, ``symbol``, ``description``,
``asset_type``, ``exponent``, ``min_channel`` and ``state`` as Lazer's do
(reference/lazer.md section 1), and ``hermes_id``, so a client can move
between the two ids. ``query`` filters by a case-insensitive substring of the
symbol, name or description, ``asset_type`` by asset type.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from ...model import Feed, asset_type_key
from . import LazerFace


def symbol_row(feed: Feed, lazer_id: int) -> dict[str, Any]:
    attributes = feed.attributes
    return {
        "pyth_lazer_id": lazer_id,
        "name": attributes.get("generic_symbol") or feed.display_symbol.replace("/", ""),
        "symbol": feed.symbol,
        "description": attributes.get("description", feed.symbol),
        "asset_type": feed.asset_type_key,
        "exponent": feed.expo,
        "cmc_id": None,
        "funding_rate_interval": None,
        "min_publishers": 1,
        "min_channel": "real_time",
        "state": "stable",
        "schedule": attributes.get("schedule", ""),
        "hermes_id": feed.id,
    }


def create_lazer_router(face: LazerFace) -> APIRouter:
    router = APIRouter(tags=["Lazer"])

    @router.get("/v1/symbols", summary="Every feed with its Lazer id (as Lazer's metadata service lists them)")
    async def symbols(
        query: str | None = Query(None, description="Case-insensitive substring of the symbol, name or description"),
        asset_type: str | None = Query(None, description="Asset type, e.g. crypto, fx, equity"),
    ) -> list[dict[str, Any]]:
        rows = []
        for feed in face.hub.feeds.values():
            lazer_id = face.ids.lazer_id(feed.id)
            if lazer_id is None or (asset_type is not None and feed.asset_type_key != asset_type_key(asset_type)):
                continue
            row = symbol_row(feed, lazer_id)
            if query is not None and not any(query.lower() in str(row[key]).lower()
                                             for key in ("symbol", "name", "description")):
                continue
            rows.append(row)
        return sorted(rows, key=lambda row: row["pyth_lazer_id"])

    return router
