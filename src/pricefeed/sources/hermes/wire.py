"""Hermes' wire format: price events, feed metadata, its error answers, and the address of a server.

Everything here is pure: it reads what Hermes sends (``rest/v2/sse.rs``,
``price_feeds_metadata.rs``; see ``reference/hermes.md`` §1) and never does I/O.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import orjson

from ...catalog import KNOWN_FEEDS
from ...model import Feed, FeedId, PriceUpdate, Status, parse_feed_id
from ..http import redact_url

STREAM_PATH = "/v2/updates/price/stream"
METADATA_PATH = "/v2/price_feeds"
PROVISIONAL_EXPO = -8
"""Metadata carries no exponent; until a feed's first price says otherwise, assume Pyth's usual -8."""
DAILY_LIMIT_TEXT = "Connection timeout reached"
"""The start of the ``event:error`` Hermes sends when a stream reaches its 24 h limit."""
SERVER_CLOSES = ("Slow consumer", DAILY_LIMIT_TEXT)
"""``event:error`` texts after which Hermes ends the stream (sse.rs); other error events leave it open."""
API_KEY_NEEDED = "Hermes requires an API key: pass --pyth-api-key"
API_KEY_REFUSED = "Hermes refused the API key: check --pyth-api-key"

_I64 = 2**63
MAX_EXPO = 30
LAST_SECOND = 253402300800
"""Year 10000 in unix seconds."""
_U64 = 2**64
_HEX_ID = re.compile(r"0x([0-9a-fA-F]{64})")


class HermesProtocolError(ValueError):
    """Hermes sent something that is not what its wire format says."""


@dataclasses.dataclass(slots=True)
class DecodedEvent:
    """The prices of one SSE data event, and a note for each item that could not be read."""

    updates: list[PriceUpdate]
    problems: list[str]


def decode_price_event(data: str | bytes, source: str = "hermes") -> DecodedEvent:
    """Read a ``/v2/updates/price/stream`` event; ``HermesProtocolError`` if it is not a JSON object.

    A malformed item is skipped and noted, so one bad feed does not cost the others their price.
    """
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise HermesProtocolError(f"malformed JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise HermesProtocolError(f"expected a JSON object, got {type(payload).__name__}")
    parsed = payload.get("parsed")
    if parsed is None:  # a stream opened with parsed=false
        return DecodedEvent([], [])
    if not isinstance(parsed, list):
        raise HermesProtocolError("'parsed' is not a list")
    event = DecodedEvent([], [])
    for item in parsed:
        try:
            event.updates.append(parse_price_item(item, source))
        except (HermesProtocolError, ValueError) as exc:
            event.problems.append(str(exc))
    return event


def parse_price_item(item: object, source: str = "hermes") -> PriceUpdate:
    """One ``parsed[]`` entry as a :class:`PriceUpdate`, mantissas read exactly from their strings."""
    if not isinstance(item, dict):
        raise HermesProtocolError("price item is not an object")
    feed_id = parse_feed_id(item.get("id"))
    price, ema = _object(item, "price"), _object(item, "ema_price")
    metadata = item.get("metadata")
    if metadata is None:
        metadata = {}
    elif not isinstance(metadata, dict):
        raise HermesProtocolError(f"{feed_id}: metadata is not an object")
    publish_time = _time(price, "publish_time", feed_id)
    has_prev = metadata.get("prev_publish_time") is not None
    prev_publish_time = _time(metadata, "prev_publish_time", feed_id) if has_prev else None
    return PriceUpdate(
        feed_id=feed_id,
        price=_mantissa(price, "price", feed_id, signed=True),
        conf=_mantissa(price, "conf", feed_id, signed=False),
        expo=_expo(price, feed_id),
        publish_time_us=publish_time * 1_000_000,
        ema_price=_mantissa(ema, "price", feed_id, signed=True),
        ema_conf=_mantissa(ema, "conf", feed_id, signed=False),
        status=Status.TRADING,
        prev_publish_time_us=None if prev_publish_time is None else prev_publish_time * 1_000_000,
        slot=_optional_integer(metadata, "slot", feed_id),
        source=source,
    )


def _object(item: dict[str, Any], key: str) -> dict[str, Any]:
    value = item.get(key)
    if not isinstance(value, dict):
        raise HermesProtocolError(f"{item.get('id')}: '{key}' is not an object")
    return value


def _mantissa(obj: dict[str, Any], key: str, feed_id: str, *, signed: bool) -> int:
    """An i64/u64 sent as a JSON string of ASCII digits: read exactly, never through a float."""
    text = obj.get(key)
    if not isinstance(text, str):
        raise HermesProtocolError(f"{feed_id}: '{key}' must be a string of digits, got {text!r}")
    digits = text[1:] if signed and text.startswith("-") else text
    if not (digits.isascii() and digits.isdigit()):
        raise HermesProtocolError(f"{feed_id}: '{key}' is not an integer: {text!r}")
    value = int(text)
    if not (-_I64 <= value < _I64 if signed else 0 <= value < _U64):
        raise HermesProtocolError(f"{feed_id}: '{key}' out of range: {text}")
    return value


def _integer(obj: dict[str, Any], key: str, feed_id: str) -> int:
    value = obj.get(key)
    if type(value) is not int:  # excludes bool and float
        raise HermesProtocolError(f"{feed_id}: '{key}' must be an integer, got {value!r}")
    return value


def _expo(obj: dict[str, Any], feed_id: str) -> int:
    """Pyth's exponent: an i32 on the wire, within ±30 in fact; more would make a price no face can render."""
    expo = _integer(obj, "expo", feed_id)
    if not -MAX_EXPO <= expo <= MAX_EXPO:
        raise HermesProtocolError(f"{feed_id}: 'expo' out of range: {expo}")
    return expo


def _time(obj: dict[str, Any], key: str, feed_id: str) -> int:
    """Unix seconds: an i64 on the wire, but a time past year 9999 (or before 1970) is no time a face can show."""
    value = _integer(obj, key, feed_id)
    if not 0 <= value < LAST_SECOND:
        raise HermesProtocolError(f"{feed_id}: '{key}' out of range: {value}")
    return value


def _optional_integer(obj: dict[str, Any], key: str, feed_id: str) -> int | None:
    return None if obj.get(key) is None else _integer(obj, key, feed_id)


def parse_not_found_ids(body: str) -> set[FeedId]:
    """The ids of a 404 ``Price ids not found: 0x<hex>, 0x<hex>`` body (rest.rs)."""
    return {match.lower() for match in _HEX_ID.findall(body)}


def feeds_from_metadata(payload: object, existing: Mapping[FeedId, Feed], source: str = "hermes") -> list[Feed]:
    """Feeds from a ``/v2/price_feeds`` answer; the exponent is kept from what we knew (metadata lacks it)."""
    if not isinstance(payload, list):
        raise HermesProtocolError("/v2/price_feeds did not return a list")
    catalog_expo = {known.id: known.expo for known in KNOWN_FEEDS}
    feeds = []
    for entry in payload:
        if not isinstance(entry, dict) or not isinstance(entry.get("attributes"), dict):
            continue
        try:
            feed_id = parse_feed_id(entry.get("id"))
        except ValueError:
            continue
        attributes = {str(k): str(v) for k, v in entry["attributes"].items()}
        known = existing.get(feed_id)
        expo = known.expo if known is not None else catalog_expo.get(feed_id, PROVISIONAL_EXPO)
        feeds.append(Feed(feed_id, attributes.get("symbol", feed_id), expo, source, attributes))
    return feeds


def catalog_feed(feed_id: FeedId, source: str = "hermes") -> Feed | None:
    """The feed as our built-in catalog knows it, so defaults have metadata before Hermes answers."""
    for known in KNOWN_FEEDS:
        if known.id == feed_id:
            return Feed(known.id, known.symbol, known.expo, source, known.attributes())
    return None


def symbol_index(feeds: Iterable[Feed]) -> dict[str, FeedId]:
    """Lower-cased full symbols (``crypto.btc/usd``) and display symbols (``btc/usd``, crypto first) to ids."""
    index: dict[str, FeedId] = {}
    ordered = sorted(feeds, key=lambda f: f.asset_type != "Crypto")
    for feed in ordered:
        index[feed.symbol.lower()] = feed.id
    for feed in ordered:
        index.setdefault(feed.display_symbol.lower(), feed.id)
    return index


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoint:
    """A Hermes server: its base URL, query parameters to keep, and a form safe to show."""

    base: str
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        """From ``--pyth-sse-url``: the stream URL (``…/v2/updates/price/stream``) or the base (``https://host/hermes``)."""
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not an http(s) URL: {redact_url(url)!r}")
        path = parts.path.rstrip("/")
        for suffix in (STREAM_PATH, METADATA_PATH):
            path = path.removesuffix(suffix)
        params = tuple((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "ids[]")
        return cls(urlunsplit((parts.scheme, parts.netloc, path, "", "")), params)

    @property
    def stream_url(self) -> str:
        return self.base + STREAM_PATH

    @property
    def metadata_url(self) -> str:
        return self.base + METADATA_PATH

    @property
    def display(self) -> str:
        """The base URL without credentials or query (a token may hide in either)."""
        return redact_url(self.base)


def explain_status(status: int, body: str, *, has_api_key: bool) -> str:
    """One line for a non-200 answer: the status, the start of Hermes' text, and what to do about a 401 or 403."""
    text = f"HTTP {status}: {body[:200]}" if body else f"HTTP {status}"
    if status in (401, 403):
        return f"{text} ({API_KEY_REFUSED if has_api_key else API_KEY_NEEDED})"
    return text
