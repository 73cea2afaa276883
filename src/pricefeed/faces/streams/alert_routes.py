"""REST ``/alerts`` on the stream service: the same alerts as /ws/alerts' ``create_alert``, ``list_alerts`` and
``delete_alert``, documented in the service's OpenAPI (``/openapi.json``, ``/docs``)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from ...alerts import AlertBook, alert_view, check_owner
from ...model import FeedId, now_us
from .codecs import alert_json
from .messages import now_iso
from .symbols import SymbolIndex


class NewAlert(BaseModel):
    owner: str = Field(description="The client-chosen id the alert belongs to")
    symbol: str = Field(description="The symbol, e.g. RELIANCE or BTC/USD")
    rule: dict[str, Any] = Field(
        description="The rule: {\"type\": price_above | price_below | price_crossing (\"level\", \"hysteresis\"), "
                    "percent_move (\"percent\", \"window_s\", \"direction\": up|down|any, \"hysteresis\"), "
                    "volume_spike (\"multiple\", \"period\", \"interval\"), breakout_high | breakout_low "
                    "(\"bars\", \"interval\", \"hysteresis\")}",
        examples=[{"type": "price_above", "level": 2500, "hysteresis": 2.5}])


def add_alert_routes(api: FastAPI, book: AlertBook, symbols: SymbolIndex) -> None:
    def owner_of(raw: str) -> str:
        try:
            return check_owner(raw)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None

    def feed_of(symbol: str) -> FeedId:
        feed_id = symbols.resolve(symbol)
        if feed_id is None:
            raise HTTPException(404, f"unknown symbol {symbol!r}")
        return feed_id

    @api.get("/alerts", tags=["alerts"], summary="An owner's alerts (of one symbol, if given)")
    async def list_alerts(owner: str = Query(description="The alerts' owner"),
                          symbol: str | None = Query(None, description="Only this symbol's")) -> dict[str, Any]:
        feed_id = None if symbol is None else feed_of(symbol)
        alerts = [alert_json(alert_view(a), symbols.symbol_of(a.feed_id)) for a in book.of(owner_of(owner), feed_id)]
        return {"owner": owner, "alerts": alerts, "timestamp": now_iso()}

    @api.post("/alerts", tags=["alerts"], status_code=201, summary="Create an alert")
    async def create_alert(body: NewAlert) -> JSONResponse:
        owner, feed_id = owner_of(body.owner), feed_of(body.symbol)
        try:
            alert = book.create(owner, feed_id, body.rule, now_us())
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        return JSONResponse({"owner": owner, "alert": alert_json(alert_view(alert), symbols.symbol_of(feed_id)),
                             "timestamp": now_iso()}, status_code=201)

    @api.delete("/alerts/{alert_id}", tags=["alerts"], summary="Delete one of an owner's alerts")
    async def delete_alert(alert_id: str, owner: str = Query(description="The alert's owner")) -> dict[str, Any]:
        if book.delete(owner_of(owner), alert_id) is None:
            raise HTTPException(404, f"owner {owner!r} has no alert {alert_id!r}")
        return {"owner": owner, "alert_id": alert_id, "deleted": True, "timestamp": now_iso()}
