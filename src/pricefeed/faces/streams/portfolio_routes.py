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
from ...portfolio import PortfolioBook, decimal_of, money
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


class NewTrade(BaseModel):
    owner: str = Field(description="The client-chosen id the position belongs to")
    symbol: str = Field(description="The symbol, e.g. RELIANCE or BTC/USD")
    quantity: str | float = Field(description="Units traded: positive buys, negative sells (fractional allowed)")
    price: str | float | None = Field(None, description="Price per unit (the latest price if omitted)")
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
                "total": book.totals(owner), "base_total": book.base_total(owner), "timestamp": now_iso()}

    def currency_of(feed_id: str, given: str | None) -> str:
        feed = book.hub.feeds.get(feed_id)
        currency = given or (None if feed is None else quote_currency(feed.symbol))
        if currency is None:
            raise ValueError("\"currency\" is needed: the symbol names no quote currency")
        return currency

    @api.get("/portfolio", tags=["portfolio"], summary="An owner's positions marked to market, and totals")
    async def get_portfolio(owner: str = Query(description="The positions' owner")) -> Response:
        return _json(portfolio(owner_of(owner)))

    @api.put("/portfolio", tags=["portfolio"], summary="Set (or with quantity 0, close) a position")
    async def set_position(body: NewPosition) -> Response:
        owner = owner_of(body.owner)
        feed_id = symbols.resolve(body.symbol)
        if feed_id is None:
            raise HTTPException(404, f"unknown symbol {body.symbol!r}")
        try:
            book.set(owner, feed_id, decimal_of(body.quantity, "quantity"),
                     decimal_of(body.average_cost, "average_cost"), currency_of(feed_id, body.currency))
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        return _json(portfolio(owner))

    @api.post("/portfolio/trades", tags=["portfolio"],
              summary="Buy or sell (average-cost method: a sale realises PnL); the portfolio after it")
    async def trade(body: NewTrade) -> Response:
        owner = owner_of(body.owner)
        feed_id = symbols.resolve(body.symbol)
        if feed_id is None:
            raise HTTPException(404, f"unknown symbol {body.symbol!r}")
        try:
            price = None if body.price is None else decimal_of(body.price, "price")
            _, realised = book.trade(owner, feed_id, decimal_of(body.quantity, "quantity"), price,
                                     currency_of(feed_id, body.currency))
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        return _json({**portfolio(owner), "realised_pnl": money(realised)})
