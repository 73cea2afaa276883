"""Lazer's client requests (reference/lazer.md sections 3 and 4), parsed and checked as the Rust server does.

Type errors read like serde's, the checks after them are ``api.rs``'s
messages verbatim, and what pricefeed cannot serve (signed formats, binary
delivery) is refused plainly instead of being faked. Once the subscription
id is known an error is the subscription's (``subscriptionError``); before,
it is the connection's (``error``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from ...client.requests import CHANNELS, PROPERTIES
from ..json_types import describe, json_type

CHANNEL_IDS = {1: "real_time", 2: "fixed_rate@50ms", 3: "fixed_rate@200ms", 4: "fixed_rate@1000ms"}
FORMATS = ("evm", "solana", "leEcdsa", "leUnsigned")
U32_MAX, U64_MAX = 2**32 - 1, 2**64 - 1

NO_SIGNED_FORMATS = ("signed formats are not available: pricefeed holds no Lazer signing key and never fabricates "
                     "signatures; subscribe with \"formats\": [] and read \"parsed\"")
NO_BINARY = "binary delivery is not available: pricefeed serves Lazer's parsed JSON (\"deliveryFormat\": \"json\")"
PARSED_ONLY = "\"parsed\": false leaves nothing to send: pricefeed serves only the parsed JSON payload"


class RequestError(ValueError):
    """A request refused; ``subscription_id`` is None when the request's id could not be read."""

    def __init__(self, message: str, subscription_id: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.subscription_id = subscription_id


@dataclass(frozen=True, slots=True)
class Subscribe:
    subscription_id: int
    price_feed_ids: tuple[int, ...] | None
    symbols: tuple[str, ...] | None
    properties: tuple[str, ...]
    channel: str
    ignore_invalid_feeds: bool
    since_seq: dict[int, int] | None = None
    """A pricefeed addition: per price feed id, the last seq the client saw (each entry then carries ``seq``)."""


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    subscription_id: int


def _variants(names: tuple[str, ...]) -> str:
    return "expected one of " + ", ".join(f"`{n}`" for n in names)


def _invalid(value: object, expected: str) -> str:
    shown = f" {describe(value)}" if isinstance(value, str | int | float) and not isinstance(value, bool) else ""
    return f"invalid type: {json_type(value)}{shown}, expected {expected}"


def _integer(value: object, maximum: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(_invalid(value, what))
    if not 0 <= value <= maximum:
        raise ValueError(f"invalid value: integer `{value}`, expected {what}")
    return value


def _list(value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(_invalid(value, f"a sequence of {what}"))
    return value


def _unique(values: list[Any]) -> bool:
    return len(set(values)) == len(values)


def parse_channel(value: object) -> str:
    """A channel by name, or by id (1 to 4) as a number or a string, as ``parse_channel`` in api.rs."""
    if isinstance(value, str) and value in CHANNELS:
        return value
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value in CHANNEL_IDS:
        return CHANNEL_IDS[value]
    if isinstance(value, str):
        return _fail(f"unknown channel: {describe(value)}, {_variants(CHANNELS)} (or a channel id 1 to 4)")
    return _fail(_invalid(value, "a channel name or id"))


def _fail(message: str) -> str:
    raise ValueError(message)


def parse_request(text: str | bytes) -> Subscribe | Unsubscribe:
    try:
        request = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise RequestError(f"failed to parse request: {exc}") from None
    if not isinstance(request, dict):
        raise RequestError(_invalid(request, "internally tagged enum WsRequest"))
    kind = request.get("type")
    if kind not in ("subscribe", "unsubscribe"):
        raise RequestError("missing field `type`" if kind is None else
                           f"unknown variant {describe(kind)}, expected `subscribe` or `unsubscribe`")
    if "subscriptionId" not in request:
        raise RequestError("missing field `subscriptionId`")
    try:
        subscription_id = _integer(request["subscriptionId"], U64_MAX, "u64")
    except ValueError as exc:
        raise RequestError(str(exc)) from None
    if kind == "unsubscribe":
        return Unsubscribe(subscription_id)
    try:
        return _subscribe(subscription_id, request)
    except ValueError as exc:
        raise RequestError(str(exc), subscription_id) from None


def _subscribe(subscription_id: int, request: dict[str, Any]) -> Subscribe:
    # serde first: each present field's type, then the missing ones; then api.rs's checks.
    ids = request.get("priceFeedIds")
    symbols = request.get("symbols")
    if ids is not None:
        ids = [_integer(i, U32_MAX, "u32") for i in _list(ids, "u32")]
    if symbols is not None:
        symbols = _list(symbols, "strings")
        if not all(isinstance(s, str) for s in symbols):
            raise ValueError(_invalid(next(s for s in symbols if not isinstance(s, str)), "a string"))
    properties = request.get("properties")
    if properties is not None:
        for name in _list(properties, "properties"):
            if name not in PROPERTIES:
                raise ValueError(f"unknown variant {describe(name)}, {_variants(PROPERTIES)}")
    formats = request["formats"] if "formats" in request else request.get("chains")
    if formats is not None:
        for name in _list(formats, "formats"):
            if name not in FORMATS:
                raise ValueError(f"unknown variant {describe(name)}, {_variants(FORMATS)}")
    delivery = request.get("deliveryFormat", "json")
    if delivery not in ("json", "binary"):
        raise ValueError(f"unknown variant {describe(delivery)}, expected `json` or `binary`")
    encoding = request.get("jsonBinaryEncoding", "base64")
    if encoding not in ("base64", "hex"):
        raise ValueError(f"unknown variant {describe(encoding)}, expected `base64` or `hex`")
    since_seq = _since_seq(request.get("sinceSeq"))
    parsed = request.get("parsed", True)
    ignore = request.get("ignoreInvalidFeeds", request.get("ignoreInvalidFeedIds", False))
    for value in (parsed, ignore):
        if not isinstance(value, bool):
            raise ValueError(_invalid(value, "a boolean"))
    channel = parse_channel(request["channel"]) if "channel" in request else None
    for field, value in (("properties", properties), ("formats", formats), ("channel", channel)):
        if value is None:
            raise ValueError(f"missing field `{field}`")
    assert properties is not None and formats is not None and channel is not None
    if ids is None and symbols is None:
        raise ValueError("either price feed ids or symbols must be specified")
    if ids is not None and symbols is not None:
        raise ValueError("either price feed ids or symbols must be specified, not both")
    if ids is not None and not ids:
        raise ValueError("no price feed ids specified")
    if ids is not None and not _unique(ids):
        raise ValueError("duplicate price feed ids specified")
    if symbols is not None and not symbols:
        raise ValueError("no symbols specified")
    if symbols is not None and not _unique(symbols):
        raise ValueError("duplicate symbols specified")
    if not properties:
        raise ValueError("no properties specified")
    if not _unique(properties):
        raise ValueError("duplicate properties specified")
    if not _unique(formats):
        raise ValueError("duplicate formats or chains specified")
    if formats:
        raise ValueError(NO_SIGNED_FORMATS)
    if delivery == "binary":
        raise ValueError(NO_BINARY)
    if not parsed:
        raise ValueError(PARSED_ONLY)
    return Subscribe(subscription_id, None if ids is None else tuple(ids), None if symbols is None else tuple(symbols),
                     tuple(properties), channel, ignore, since_seq)


def _since_seq(value: object) -> dict[int, int] | None:
    """``{"<price feed id>": <last seq seen>, ...}``; an empty object asks for ``seq`` in the entries only."""
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
            key.isascii() and key.isdigit() and len(key) <= 10 and type(seq) is int and seq >= 0
            for key, seq in value.items()):
        raise ValueError(f"invalid sinceSeq {describe(value)}: expected an object of price feed id to the last seq "
                         'received, e.g. {"1": 42}')
    return {int(key): seq for key, seq in value.items()}
