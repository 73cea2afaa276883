"""The local oracle's products: specs from the products file, their price accounts, and why a quote is refused.

Both the oracle (a source: it publishes each product's aggregates) and the
pythd face (publishers quote through it) use these; :class:`Oracle` is what
the face sees of the oracle, so no face imports a source.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .accounts import local_price_account, parse_key
from .aggregation import MAX_LATENCY_SLOTS, PriceAccount
from .model import Feed, Status
from .schedule import MarketSchedule, publish_interval_of, schedule_of
from .slots import SlotClock

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

    @field_validator("attributes")
    @classmethod
    def _agent_attributes(cls, value: dict[str, str]) -> dict[str, str]:
        schedule_of(value)  # a ValueError says what is wrong with the market hours
        publish_interval_of(value)
        return value

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


@dataclass(slots=True)
class LocalProduct:
    """A product of the local oracle: its keys, the feed it is in the hub, and its price account."""

    spec: ProductSpec
    price_account: str
    product_account: str
    feed: Feed
    state: PriceAccount
    schedule: MarketSchedule
    publish_interval_s: float | None
    """Fewest seconds between two quotes of a publisher that go on the account (None: no limit)."""
    published_at: dict[str, float] = field(default_factory=dict)
    """When each publisher's last quote went on the account (unix seconds)."""

    @property
    def attr_dict(self) -> dict[str, str]:
        return {"symbol": self.spec.symbol, **{k: v for k, v in self.spec.attributes.items() if k != "symbol"}}


class UnknownAccount(LookupError):
    """No local product has this price account."""


class NotPermitted(PermissionError):
    """The publisher may not quote this price account."""


class Outcome(enum.StrEnum):
    """What became of an accepted quote (pyth-agent answers 0 to each and publishes only the first)."""

    PUBLISHED = "published"
    MARKET_CLOSED = "market_closed"
    """Outside the product's market hours: not published."""
    TOO_SOON = "too_soon"
    """Within ``publish_interval`` of the publisher's last published quote: dropped."""


AggregateListener = Callable[[LocalProduct], None]


ORACLE_SOURCE = "publishers"
"""The source name of the local oracle's feeds."""


class Oracle(Protocol):
    """What the pythd face needs of the local oracle."""

    name: str
    slot_clock: SlotClock

    @property
    def products(self) -> Mapping[str, LocalProduct]:
        """The local products by price account."""

    def quote(self, publisher: str, account: str, price: int, conf: int, status: Status) -> Outcome:
        """Put a publisher's quote on a product's account; raises :class:`UnknownAccount`, :class:`NotPermitted`
        or ``QuoteRejected`` when refused."""

    def add_aggregate_listener(self, listener: AggregateListener) -> None:
        """Call ``listener`` with each product whose account aggregated."""
