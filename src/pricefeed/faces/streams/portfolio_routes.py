"""REST ``/portfolio`` on the stream service: the same positions as /ws/portfolio's ``set_position`` and
``get_portfolio``, documented in the service's OpenAPI."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from ...alerts import check_owner
from ...portfolio import PortfolioBook, decimal_of
from .codecs import decimal_number
from .messages import now_iso
from .portfolio_channel import position_fields, quote_currency
from .symbols import SymbolIndex


class NewPosition(BaseModel):
    owner: str = Field(description="The client-chosen id the position belongs to")
    symbol: str = Field(description="The symbol, e.g. RELIANCE or BTC/USD")
    quantity: str | float = Field(description="Quantity held (fractional allowed; 0 closes the position)")
    average_cost: str | float = Field(0, description="Average cost per unit, in the position's currency")
    currency: str | None = Field(None, description="The position's currency (the feed's quote currency if omitted)")


def _json(body: dict[str, Any], status_code: int = 200) -> Response:
    return Response(orjson.dumps(body, default=decimal_number), status_code=status_code,
                    media_type="application/json")


def add_portfolio_routes(api: FastAPI, book: PortfolioBook, symbols: SymbolIndex) -> None:
    def owner_of(raw: str) -> str:
        try:
            return check_owner(raw)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None

    def portfolio(owner: str) -> dict[str, Any]:
        return {"owner": owner, "positions": position_fields(book, owner, symbols.symbol_of),
                "total": book.totals(owner), "timestamp": now_iso()}

    @api.get("/portfolio", tags=["portfolio"], summary="An owner's positions marked to market, and totals")
    async def get_portfolio(owner: str = Query(description="The positions' owner")) -> Response:
        return _json(portfolio(owner_of(owner)))

    @api.put("/portfolio", tags=["portfolio"], summary="Set (or with quantity 0, close) a position")
    async def set_position(body: NewPosition) -> Response:
        owner = owner_of(body.owner)
        feed_id = symbols.resolve(body.symbol)
        if feed_id is None:
            raise HTTPException(404, f"unknown symbol {body.symbol!r}")
        feed = book.hub.feeds.get(feed_id)
        currency = body.currency or (None if feed is None else quote_currency(feed.symbol))
        try:
            if currency is None:
                raise ValueError("\"currency\" is needed: the symbol names no quote currency")
            book.set(owner, feed_id, decimal_of(body.quantity, "quantity"),
                     decimal_of(body.average_cost, "average_cost"), currency)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        return _json(portfolio(owner))
