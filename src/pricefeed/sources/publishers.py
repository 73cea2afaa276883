"""The local oracle: publishers push quotes, Pyth's aggregation combines them, the hub serves the result.

Products (symbol, attributes, exponent, permitted publishers, ``min_pub``) come
from a products file in the spirit of pythd's mapping and can be added while
running: the file is re-read when it changes. Each product has one price
account (a :class:`~pricefeed.aggregation.PriceAccount`) whose aggregates
become a feed in the hub, so every face streams them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..accounts import DEFAULT_PUBLISHER, feed_id_of, local_price_account, parse_key, product_account_of
from ..aggregation import MAX_LATENCY_SLOTS, PriceAccount, QuoteRejected
from ..bus.base import Sink
from ..model import Feed, PriceUpdate, Status, now_us
from .base import Source, SourceState

log = logging.getLogger(__name__)

SLOT_INTERVAL_S = 0.4
"""Solana's slot time, which pythd and the oracle program count in."""


class SlotClock:
    """Slots of ``interval_s`` counted from the unix epoch: the same slot numbers across restarts.

    Never goes back, even if the wall clock does, since quotes must not move to an older slot.
    """

    def __init__(self, interval_s: float = SLOT_INTERVAL_S, clock: Callable[[], float] = time.time) -> None:
        if interval_s <= 0:
            raise ValueError("slot interval must be positive")
        self.interval_s = interval_s
        self._clock = clock
        self._last = 0

    def now(self) -> int:
        self._last = max(self._last, int(self._clock() / self.interval_s))
        return self._last


# -- the products file ----------------------------------------------------------


def _check_key(value: str) -> str:
    parse_key(value)
    return value


class ProductSpec(BaseModel):
    """One product of the products file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    symbol: str = Field(min_length=1, description="Pyth-style symbol, e.g. Crypto.DEMO/USD")
    exponent: int = Field(ge=-18, le=18, description="Decimal exponent of price and conf")
    publishers: tuple[str, ...] = Field(description="Keys of the publishers permitted to quote it")
    min_pub: int = Field(1, ge=1, le=64, description="Fewest fresh quotes for a trading aggregate")
    attributes: dict[str, str] = Field(default_factory=dict, description="pythd attr_dict entries")
    price_account: str | None = Field(None, description="Base58 key; derived from the symbol if absent")
    max_latency: int = Field(MAX_LATENCY_SLOTS, ge=1, description="Slots after which a quote stops voting")

    @field_validator("publishers")
    @classmethod
    def _publisher_keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_check_key(key) for key in value)

    @field_validator("price_account")
    @classmethod
    def _price_key(cls, value: str | None) -> str | None:
        return None if value is None else _check_key(value)

    @property
    def account(self) -> str:
        return self.price_account or local_price_account(self.symbol)


class ProductsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    products: list[ProductSpec]


class ProductsFileError(ValueError):
    """The products file cannot be used; the message names the file and the problem."""


def load_products(path: Path) -> list[ProductSpec]:
    """The products of a JSON products file: ``{"products": [...]}`` or a bare list."""
    try:
        raw = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise ProductsFileError(f"products file {path}: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError as exc:
        raise ProductsFileError(f"products file {path}: not valid JSON: {exc}") from None
    try:
        products = ProductsFile.model_validate({"products": raw} if isinstance(raw, list) else raw).products
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "top level"
        raise ProductsFileError(f"products file {path}: {where}: {error['msg']}") from None
    accounts = [p.account for p in products]
    duplicates = {a for a in accounts if accounts.count(a) > 1}
    if duplicates:
        raise ProductsFileError(f"products file {path}: price account used twice: {', '.join(sorted(duplicates))}")
    return products


# -- the oracle -------------------------------------------------------------------


@dataclass(slots=True)
class LocalProduct:
    """A product of the local oracle: its keys, the feed it is in the hub, and its price account."""

    spec: ProductSpec
    price_account: str
    product_account: str
    feed: Feed
    state: PriceAccount

    @property
    def attr_dict(self) -> dict[str, str]:
        return {"symbol": self.spec.symbol, **{k: v for k, v in self.spec.attributes.items() if k != "symbol"}}


class UnknownAccount(LookupError):
    """No local product has this price account."""


class NotPermitted(PermissionError):
    """The publisher may not quote this price account."""


AggregateListener = Callable[[LocalProduct], None]


class LocalOracle(Source):
    """Publishers' quotes in, Pyth aggregates out: each aggregate is published to the hub as a price."""

    name = "publishers"

    def __init__(self, sink: Sink, *, products_file: Path | None = None, products: Iterable[ProductSpec] = (),
                 slot_clock: SlotClock | None = None, reload_interval_s: float = 2.0) -> None:
        super().__init__(sink)
        self.products_file = products_file
        self.slot_clock = slot_clock or SlotClock()
        self.reload_interval_s = reload_interval_s
        self.products: dict[str, LocalProduct] = {}
        """By price account."""
        self.refused = 0
        self._listeners: list[AggregateListener] = []
        self._warned: set[tuple[str, str]] = set()
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
            if product is None:
                state = PriceAccount(expo=spec.exponent)
                product = self.products[account] = LocalProduct(spec, account, product_account_of(account), feed, state)
                log.info("products: added %s (price account %s)", spec.symbol, account)
            product.spec, product.feed = spec, feed
            product.state.min_pub, product.state.max_latency = spec.min_pub, spec.max_latency
            product.state.permit(spec.publishers)
            changed.append(product)
        self.sink.add_feeds(p.feed for p in changed)
        return changed

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
        return True

    # -- quotes ---------------------------------------------------------

    def add_aggregate_listener(self, listener: AggregateListener) -> None:
        """Call ``listener`` after every aggregation of a product (trading or not)."""
        self._listeners.append(listener)

    def quote(self, publisher: str, account: str, price: int, conf: int, status: Status) -> None:
        """Store a publisher's quote, aggregating first if it is the first update of a new slot.

        :class:`UnknownAccount`, :class:`NotPermitted` or :class:`QuoteRejected` when refused.
        """
        product = self.products.get(account)
        if product is None:
            raise UnknownAccount(f"no local product has price account {account}")
        if publisher not in product.state.components:
            self._refuse(publisher, product)
        slot = self.slot_clock.now()
        timestamp = now_us()
        if product.state.update(publisher, price, conf, status, slot, slot, timestamp):
            self._aggregated(product)
        self.mark_message(1)

    def _refuse(self, publisher: str, product: LocalProduct) -> None:
        self.refused += 1
        first = (publisher, product.price_account) not in self._warned
        self._warned.add((publisher, product.price_account))
        log.log(logging.WARNING if first else logging.DEBUG,
                "refused a quote of publisher %s for %s (price account %s): not a permitted publisher",
                publisher, product.spec.symbol, product.price_account)
        raise NotPermitted(f"publisher {publisher} is not permitted to publish to price account "
                           f"{product.price_account} ({product.spec.symbol})")

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

    # -- life cycle -----------------------------------------------------

    async def start(self) -> None:
        self.reload()
        self.sink.add_feeds(p.feed for p in self.products.values())
        if self.products_file is not None:
            self.spawn(self._watch(), "products-file")
        self.set_state(SourceState.CONNECTED)

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
                      products_file=None if self.products_file is None else str(self.products_file))
        return status


__all__ = ["DEFAULT_PUBLISHER", "LocalOracle", "LocalProduct", "NotPermitted", "ProductSpec", "ProductsFileError",
           "QuoteRejected", "SlotClock", "UnknownAccount", "load_products"]
