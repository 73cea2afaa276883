"""The local oracle: publishers push quotes, Pyth's aggregation combines them, the hub serves the result.

Products (symbol, attributes, exponent, permitted publishers, ``min_pub``) come
from a products file in the spirit of pythd's mapping; the file is re-read when
it changes, so products can be added, changed and removed while running. Each
product has one price account (a :class:`~pricefeed.aggregation.PriceAccount`)
whose aggregates become a feed in the hub, so every face streams them.

A quote goes on the account as pyth-agent would publish it: only from a
permitted publisher, only while the product's market is open (its
``schedule`` / ``weekly_schedule`` attribute) and at most once per its
``publish_interval``. The accounts are saved to the store and restored on start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..accounts import DEFAULT_PUBLISHER, feed_id_of, product_account_of
from ..aggregation import PriceAccount, QuoteRejected
from ..bus.base import Sink
from ..model import Feed, PriceUpdate, Status, now_us
from ..products import (
    ORACLE_SOURCE,
    AggregateListener,
    LocalProduct,
    NotPermitted,
    Outcome,
    ProductsFileError,
    ProductSpec,
    UnknownAccount,
    load_products,
)
from ..schedule import publish_interval_of, schedule_of
from ..slots import SLOT_INTERVAL_S, SlotClock
from ..store.oracle_state import OracleStateStore, decode_account
from .base import Source, SourceState

log = logging.getLogger(__name__)


# -- the oracle -------------------------------------------------------------------


class LocalOracle(Source):
    """Publishers' quotes in, Pyth aggregates out: each aggregate is published to the hub as a price."""

    name = ORACLE_SOURCE

    def __init__(self, sink: Sink, *, products_file: Path | None = None, products: Iterable[ProductSpec] = (),
                 slot_clock: SlotClock | None = None, reload_interval_s: float = 2.0,
                 state_store: OracleStateStore | None = None, save_interval_s: float = 1.0) -> None:
        super().__init__(sink)
        self.products_file = products_file
        self.slot_clock = slot_clock or SlotClock()
        self.reload_interval_s = reload_interval_s
        self.state_store = state_store
        self.save_interval_s = save_interval_s
        self.products: dict[str, LocalProduct] = {}
        """By price account."""
        self.refused = 0
        self.closed_market = 0
        self.too_soon = 0
        self._listeners: list[AggregateListener] = []
        self._dirty: set[str] = set()
        self._file_stamp: tuple[float, int] | None = None
        self.add_products(products)

    # -- products -------------------------------------------------------

    def add_products(self, specs: Iterable[ProductSpec]) -> list[LocalProduct]:
        """Add new products and apply changed permissions, ``min_pub`` and attributes to known ones."""
        changed = []
        for spec in specs:
            account = spec.account
            product = self.products.get(account)
            if product is not None and product.spec.exponent != spec.exponent:
                log.error("products: %s keeps exponent %d: its stored quotes are in those units (file says %d)",
                          spec.symbol, product.spec.exponent, spec.exponent)
                spec = spec.model_copy(update={"exponent": product.spec.exponent})
            feed = Feed(feed_id_of(account), spec.symbol, spec.exponent, self.name,
                        dict(sorted({**spec.attributes, "symbol": spec.symbol}.items())))
            schedule, interval = schedule_of(spec.attributes), publish_interval_of(spec.attributes)
            if product is None:
                product = self.products[account] = LocalProduct(spec, account, product_account_of(account), feed,
                                                                PriceAccount(expo=spec.exponent), schedule, interval)
                log.info("products: added %s (price account %s)", spec.symbol, account)
            product.spec, product.feed = spec, feed
            product.schedule, product.publish_interval_s = schedule, interval
            product.state.min_pub, product.state.max_latency = spec.min_pub, spec.max_latency
            product.state.permit(spec.publishers)
            changed.append(product)
        self.sink.add_feeds(p.feed for p in changed)
        return changed

    def remove_products(self, accounts: Iterable[str]) -> None:
        """Take products off the API (their feed stays in the hub's catalogue, stale, for the other faces)."""
        for account in accounts:
            product = self.products.pop(account, None)
            if product is not None:
                log.info("products: removed %s (price account %s): no longer in the products file",
                         product.spec.symbol, account)

    def reload(self) -> bool:
        """Re-read the products file if it changed since the last read; True if it was read."""
        if self.products_file is None:
            return False
        try:
            stat = self.products_file.stat()
        except OSError as exc:
            raise ProductsFileError(f"products file {self.products_file}: {exc.strerror or exc}") from None
        stamp = (stat.st_mtime, stat.st_size)
        if stamp == self._file_stamp:
            return False
        specs = load_products(self.products_file)
        self._file_stamp = stamp
        self.add_products(specs)
        self.remove_products(set(self.products) - {spec.account for spec in specs})
        return True

    # -- quotes ---------------------------------------------------------

    def add_aggregate_listener(self, listener: AggregateListener) -> None:
        """Call ``listener`` after every aggregation of a product (trading or not)."""
        self._listeners.append(listener)

    def quote(self, publisher: str, account: str, price: int, conf: int, status: Status) -> Outcome:
        """Take a publisher's quote as pyth-agent publishes one, aggregating first on the first update of a slot.

        :class:`UnknownAccount`, :class:`NotPermitted` or :class:`QuoteRejected` when refused.
        """
        product = self.products.get(account)
        if product is None:
            raise UnknownAccount(f"no local product has price account {account}")
        if publisher not in product.state.components:
            self.refused += 1
            raise NotPermitted(f"publisher {publisher} is not permitted to publish to price account "
                               f"{product.price_account} ({product.spec.symbol})")
        now = self.slot_clock.clock()
        if not product.schedule.is_open(datetime.fromtimestamp(now, UTC)):
            self.closed_market += 1
            log.debug("%s: market closed, quote of %s not published", product.spec.symbol, publisher)
            return Outcome.MARKET_CLOSED
        last = product.published_at.get(publisher)
        if product.publish_interval_s is not None and last is not None and now < last + product.publish_interval_s:
            self.too_soon += 1
            log.debug("%s: quote of %s within publish_interval, dropped", product.spec.symbol, publisher)
            return Outcome.TOO_SOON
        slot = self.slot_clock.now()
        if product.state.update(publisher, price, conf, status, slot, slot, now_us()):
            self._aggregated(product)
        product.published_at[publisher] = now
        self._dirty.add(account)
        self.mark_message(1)
        return Outcome.PUBLISHED

    def _aggregated(self, product: LocalProduct) -> None:
        update = self.price_update(product)
        if update is not None:
            self.sink.publish(update)
        for listener in self._listeners:
            listener(product)

    def price_update(self, product: LocalProduct) -> PriceUpdate | None:
        """The hub's view of the aggregate: as Pyth's price message, the last trading price while not trading."""
        s = product.state
        if s.status == Status.TRADING:
            return PriceUpdate(product.feed.id, s.price, s.conf, s.expo, s.timestamp_us, s.twap.val, s.twac.val,
                               Status.TRADING, s.prev_timestamp_us or None, s.pub_slot, self.name)
        if not s.prev_timestamp_us:
            return None  # never traded: there is no price to show
        # Same publish time as the last trading price, a later slot and another status: the hub takes it as
        # news (faces with a status show "unknown"), while the price and its time stay Pyth's last good one.
        return PriceUpdate(product.feed.id, s.prev_price, s.prev_conf, s.expo, s.prev_timestamp_us, s.twap.val,
                           s.twac.val, s.status, None, s.pub_slot, self.name)

    # -- the saved accounts ------------------------------------------------

    def restore(self, saved: dict[str, bytes | str]) -> int:
        """Put saved price accounts back on the products that still exist (same exponent); how many."""
        restored = 0
        for account, data in saved.items():
            product = self.products.get(account)
            if product is None:
                continue
            try:
                state = decode_account(data)
            except (ValueError, KeyError, TypeError) as exc:
                log.error("products: the saved state of %s is unreadable (%s); starting it afresh",
                          product.spec.symbol, exc)
                continue
            if state.expo != product.spec.exponent:
                continue
            state.min_pub, state.max_latency = product.state.min_pub, product.state.max_latency
            state.permit(product.state.components)  # publishers no longer permitted lose their quotes
            product.state = state
            restored += 1
        return restored

    async def save(self) -> None:
        """Write the accounts quoted since the last save."""
        if self.state_store is None or not self._dirty:
            return
        dirty, self._dirty = self._dirty, set()
        await self.state_store.save({a: self.products[a].state for a in dirty if a in self.products})

    async def _save_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.save_interval_s)
            try:
                await self.save()
            except Exception:
                log.exception("saving the oracle's accounts failed; will retry")

    # -- life cycle -----------------------------------------------------

    async def start(self) -> None:
        self.reload()
        if self.state_store is not None:
            await self.state_store.open()
            restored = self.restore(await self.state_store.load())
            if restored:
                log.info("products: restored %d price accounts (their quotes vote again once fresh)", restored)
            self.spawn(self._save_periodically(), "oracle-save")
        self.sink.add_feeds(p.feed for p in self.products.values())
        if self.products_file is not None:
            self.spawn(self._watch(), "products-file")
        self.set_state(SourceState.CONNECTED)

    async def stop(self) -> None:
        await super().stop()
        if self.state_store is not None:
            try:
                await self.save()
            finally:
                await self.state_store.close()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.reload_interval_s)
            try:
                self.reload()
            except ProductsFileError as exc:  # keep the products we have; say why the new file was not taken
                if self.last_error != str(exc):
                    log.error("%s (keeping the %d products already loaded)", exc, len(self.products))
                self.last_error = str(exc)

    def status(self) -> dict[str, Any]:
        status = super().status()
        status.update(products=len(self.products), slot=self.slot_clock.now(), refused_quotes=self.refused,
                      closed_market_quotes=self.closed_market, too_soon_quotes=self.too_soon,
                      products_file=None if self.products_file is None else str(self.products_file))
        return status


__all__ = ["DEFAULT_PUBLISHER", "SLOT_INTERVAL_S", "LocalOracle", "LocalProduct", "NotPermitted", "Outcome",
           "ProductSpec", "ProductsFileError", "QuoteRejected", "SlotClock", "UnknownAccount", "load_products"]
