"""/ws/portfolio: an owner's positions over the seed-004 protocol (the owner: see :mod:`.owned`).

``set_position`` (``symbol``, ``quantity``, ``average_cost``, optional ``currency``: the feed's quote
currency by default; a zero quantity closes it), ``trade`` (``symbol``, signed ``quantity``: positive buys,
negative sells; optional ``price``: the latest by default; realises PnL when it reduces the position, by the
average-cost method) and ``get_portfolio`` manage the owner's positions;
``subscribe`` to a symbol brings the position's valuation at once (when the owner holds it and a price is
known), then one on each tick.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...model import FeedId, now_us
from ...portfolio import PortfolioBook, Position, decimal_of, money, portfolio_topic
from .codecs import PortfolioCodec
from .owned import Host, OwnedChannel
from .subscription import Subscription


def quote_currency(symbol: str) -> str | None:
    """``INR`` of ``Equity.NSE.RELIANCE/INR``, ``USD`` of ``Crypto.BTC/USD``."""
    return symbol.rsplit("/", 1)[1] if "/" in symbol else None


def position_fields(book: PortfolioBook, owner: str, symbol_of: Callable[[FeedId], str]) -> list[dict[str, Any]]:
    """The owner's positions, each with its latest valuation where a price is known."""
    rows = []
    for position in book.of(owner):
        valuation = book.valuation(owner, position.feed_id, now_us())
        fields = valuation.position if valuation is not None else position_row(position)
        rows.append({"symbol": symbol_of(position.feed_id), **fields})
    return rows


def position_row(position: Position, pnl: bool = True) -> dict[str, Any]:
    """A position as it stands: quantity, average cost, currency and (with ``pnl``) the PnL it realised so far."""
    row = {"quantity": position.quantity, "average_cost": position.average_cost, "currency": position.currency}
    return {**row, "realised_pnl": money(position.realised_pnl)} if pnl else row


def currency_code(currency: object) -> str:
    if not isinstance(currency, str):
        raise ValueError(f"\"currency\" must be a currency code such as INR or USD, got {currency!r}")
    return currency


class PortfolioChannel(OwnedChannel):
    def __init__(self, session: Host, book: PortfolioBook, codec: PortfolioCodec) -> None:
        super().__init__(session)
        self.book = book
        self.codec = codec

    def handlers(self) -> dict[str, Callable[[dict[str, Any]], None]]:
        return {"set_position": self._set, "trade": self._trade, "get_portfolio": self._get}

    def start(self, subscription: Subscription) -> None:
        owner = self.owner
        if owner is None:
            return
        topic = portfolio_topic(owner, subscription.feed_id)
        valuation = self.book.valuation(owner, subscription.feed_id, now_us())
        if valuation is not None:
            self.session.peer.send_price(topic, self.codec.encode(topic, valuation))
        lane = self.session.lane(self.codec)
        subscription.topics.append((topic, lane))
        self.session.hub.subscribe(topic, lane)

    def _target(self, message: dict[str, Any], command: str) -> tuple[str, FeedId, str, object] | None:
        """The owner, feed, symbol and currency (the feed's quote currency unless given) a change is for."""
        owner = self.owner_or_error(message, command)
        if owner is None:
            return None
        feed_id, symbol = self.session.resolve(message, command)
        if feed_id is None:
            return None
        feed = self.session.hub.feeds.get(feed_id)
        currency = message.get("currency") or (None if feed is None else quote_currency(feed.symbol))
        return owner, feed_id, symbol, currency

    def _set(self, message: dict[str, Any]) -> None:
        target = self._target(message, "set_position")
        if target is None:
            return
        owner, feed_id, symbol, currency = target
        try:
            quantity = decimal_of(message.get("quantity"), "quantity")
            cost = decimal_of(message.get("average_cost", 0), "average_cost")
            position = self.book.set(owner, feed_id, quantity, cost, currency_code(currency))
        except ValueError as exc:
            self.session.error(str(exc))
            return
        self.reply({"type": "position_set", "owner": owner, "symbol": symbol, **position_row(position, pnl=False)})

    def _trade(self, message: dict[str, Any]) -> None:
        target = self._target(message, "trade")
        if target is None:
            return
        owner, feed_id, symbol, currency = target
        try:
            quantity = decimal_of(message.get("quantity"), "quantity")
            price = None if message.get("price") is None else decimal_of(message["price"], "price")
            position, realised = self.book.trade(owner, feed_id, quantity, price, currency_code(currency))
        except ValueError as exc:
            self.session.error(str(exc))
            return
        self.reply({"type": "trade_done", "owner": owner, "symbol": symbol, "quantity": quantity,
                    "realised_pnl": money(realised), "position": position_row(position)})

    def _get(self, message: dict[str, Any]) -> None:
        owner = self.owner_or_error(message, "get_portfolio")
        if owner is None:
            return
        symbol_of = self.session.symbol_of
        self.reply({"type": "portfolio", "owner": owner, "positions": position_fields(self.book, owner, symbol_of),
                    "total": self.book.totals(owner), "base_total": self.book.base_total(owner)})
