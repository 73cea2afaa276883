"""Hermes' JSON and query conventions, without I/O (reference/hermes.md sections 0 to 4).

Ids go out as lowercase hex without ``0x``; ``price`` and ``conf`` are strings;
``expo`` and times are numbers; absent things are omitted, never null.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson

from ..model import Feed, FeedId, PriceUpdate, parse_feed_id

ASSET_TYPES = ("crypto", "fx", "equity", "metal", "rates", "crypto_redemption_rate", "commodities", "crypto_index",
               "crypto_nav", "eco", "kalshi")
EMITTER_CHAIN_PYTHNET = 26
_HEX = set("0123456789abcdefABCDEF")
_I64_TEXT = re.compile(r"[+-]?[0-9]+", re.ASCII)


class QueryError(ValueError):
    """A request Hermes would refuse with 400; the message is Hermes' text."""


def query_error(detail: str) -> QueryError:
    return QueryError(f"Failed to deserialize query string. Error: {detail}")


def hex_id_error(text: str) -> str | None:
    """Hermes' (``hex`` crate) complaint about a malformed id, or None if it is a well-formed id."""
    body = text[2:] if text[:2] in ("0x", "0X") else text
    for position, char in enumerate(body):
        if char not in _HEX:
            return f"Invalid character {char!r} at position {position}"
    if len(body) % 2:
        return "Odd number of digits"
    if len(body) != 64:
        return "Invalid string length"
    return None


def parse_id(text: str) -> FeedId:
    error = hex_id_error(text)
    if error is not None:
        raise query_error(error)
    return parse_feed_id(text)


def parse_ids(items: Iterable[tuple[str, str]], *, required: bool = True) -> list[FeedId]:
    """``ids[]=a&ids[]=b`` (or ``ids[0]=a``), in order, without repeats; plain ``ids=`` is refused as Hermes does."""
    ids: list[FeedId] = []
    found = False
    for key, value in items:
        if key == "ids":
            raise query_error(f'invalid type: string "{value}", expected a sequence')
        if key == "ids[]" or (key.startswith("ids[") and key.endswith("]") and key[4:-1].isdigit()):
            found = True
            feed_id = parse_id(value)
            if feed_id not in ids:
                ids.append(feed_id)
    if required and not found:
        raise query_error("missing field `ids`")
    return ids


def parse_i64(text: str) -> int | None:
    """``text`` as Rust's ``i64::from_str`` reads it (ASCII digits, an optional sign, within i64), else None.
    Python's ``int`` would also take ``1_000``, spaces and other scripts' digits."""
    if not _I64_TEXT.fullmatch(text):
        return None
    value = int(text)
    return value if -(2**63) <= value < 2**63 else None


def parse_bool(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    if value in ("true", "false"):
        return value == "true"
    raise query_error("provided string was not `true` or `false`")


def parse_encoding(value: str | None) -> str:
    if value is None:
        return "hex"
    if value in ("hex", "base64"):
        return value
    raise query_error(f"unknown variant `{value}`, expected `hex` or `base64`")


def parse_asset_type(value: str | None) -> str | None:
    if value is None or value in ASSET_TYPES:
        return value
    expected = ", ".join(f"`{t}`" for t in ASSET_TYPES)
    raise query_error(f"unknown variant `{value}`, expected one of {expected}")


def not_found(ids: Iterable[FeedId]) -> str:
    return "Price ids not found: " + ", ".join("0x" + i for i in ids)


# -- rendering ---------------------------------------------------------------


def rpc_price(mantissa: int, conf: int, expo: int, publish_time: int) -> dict[str, Any]:
    return {"price": str(mantissa), "conf": str(conf), "expo": expo, "publish_time": publish_time}


def prices(update: PriceUpdate) -> tuple[dict[str, Any], dict[str, Any]]:
    t = update.publish_time
    return (rpc_price(update.price, update.conf, update.expo, t),
            rpc_price(update.ema_price, update.ema_conf, update.expo, t))


def prev_publish_time(update: PriceUpdate) -> int:
    prev = update.prev_publish_time_us
    return update.publish_time if prev is None else prev // 1_000_000


def parsed_update(update: PriceUpdate) -> dict[str, Any]:
    """One ``parsed[]`` item of the v2 API."""
    price, ema = prices(update)
    return {"id": update.feed_id, "price": price, "ema_price": ema,
            "metadata": {"slot": update.slot, "proof_available_time": update.publish_time,
                         "prev_publish_time": prev_publish_time(update)}}


def price_feed(update: PriceUpdate, *, verbose: bool) -> dict[str, Any]:
    """A legacy ``PriceFeed`` (``/api/latest_price_feeds`` and the WebSocket)."""
    price, ema = prices(update)
    feed: dict[str, Any] = {"id": update.feed_id, "price": price, "ema_price": ema}
    if verbose:
        metadata: dict[str, Any] = {}
        if update.slot is not None:  # price-service-client throws on null, so absent rather than null
            metadata["slot"] = update.slot
        metadata.update(emitter_chain=EMITTER_CHAIN_PYTHNET, price_service_receive_time=update.publish_time,
                        prev_publish_time=prev_publish_time(update))
        feed["metadata"] = metadata
    return feed


def binary(encoding: str) -> dict[str, Any]:
    """Signed update data: none, because no source here carries Wormhole-signed proofs (we never fabricate them)."""
    return {"encoding": encoding, "data": []}


def price_update_body(updates: list[PriceUpdate], *, encoding: str, parsed: bool) -> bytes:
    body: dict[str, Any] = {"binary": binary(encoding)}
    if parsed:
        body["parsed"] = [parsed_update(u) for u in updates]
    return orjson.dumps(body)


def feed_metadata(feed: Feed) -> dict[str, Any]:
    return {"id": feed.id, "attributes": dict(sorted(feed.attributes.items()))}
