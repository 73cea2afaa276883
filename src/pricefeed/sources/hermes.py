"""Pyth Hermes as an upstream: feed metadata over REST, prices over redundant Server-Sent Event streams.

The wanted feeds (configured ones plus whatever clients subscribe to) are split
into shards of at most ``max_ids_per_stream`` ids; each shard is streamed by
``connections`` redundant SSE connections spread over the endpoints. Every
connection reconnects on its own with jittered exponential backoff, and one
:class:`~pricefeed.resilience.FreshnessFilter` lets each update through once and
in order. A change of shards, and the daily roll-over that pre-empts Hermes'
24 h limit, opens the new stream before closing the old one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import httpx
import orjson
from httpx_sse import SSEError, aconnect_sse
from pydantic import SecretStr

from ..bus.base import Sink
from ..catalog import KNOWN_FEEDS
from ..model import Feed, FeedId, PriceUpdate, Status, parse_feed_id
from ..resilience import Backoff, Freshness, FreshnessFilter
from .base import Source, SourceState
from .http import describe_error, parse_retry_after, read_error_body, redact_url

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from httpx_sse import ServerSentEvent

    from ..config import Settings

log = logging.getLogger(__name__)

STREAM_PATH = "/v2/updates/price/stream"
METADATA_PATH = "/v2/price_feeds"
DEFAULT_FEEDS: tuple[FeedId, ...] = tuple(f.id for f in KNOWN_FEEDS if f.asset_type == "Crypto")
"""The major crypto feeds, streamed when ``--feeds`` is not given."""
PROVISIONAL_EXPO = -8
"""Metadata carries no exponent; until a feed's first price says otherwise, assume Pyth's usual -8."""

_I64 = 2**63
_U64 = 2**64
_HEX_ID = re.compile(r"0x([0-9a-fA-F]{64})")
_SERVER_CLOSES = ("Slow consumer", "Connection timeout reached")
"""``event:error`` texts after which Hermes ends the stream (sse.rs); other error events leave it open."""


# -- wire format ---------------------------------------------------------------


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
    publish_time = _integer(price, "publish_time", feed_id)
    prev_publish_time = _optional_integer(metadata, "prev_publish_time", feed_id)
    return PriceUpdate(
        feed_id=feed_id,
        price=_mantissa(price, "price", feed_id, signed=True),
        conf=_mantissa(price, "conf", feed_id, signed=False),
        expo=_integer(price, "expo", feed_id),
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


def plan_shards(current: Sequence[frozenset[FeedId]], wanted: Set[FeedId], max_size: int) -> list[frozenset[FeedId]]:
    """Split ``wanted`` into streams of at most ``max_size`` ids, changing as few current streams as possible.

    Each changed shard means one stream reopened, so removals only touch the
    shards that lose ids, and new ids fill the emptiest shard before opening a
    new one.
    """
    shards = [set(shard & wanted) for shard in current]
    shards = [shard for shard in shards if shard]
    placed: set[FeedId] = set().union(*shards)
    new_ids = sorted(wanted - placed)
    while new_ids:
        room = [shard for shard in shards if len(shard) < max_size]
        target = min(room, key=len) if room else set()
        if not room:
            shards.append(target)
        take = max_size - len(target)
        target.update(new_ids[:take])
        new_ids = new_ids[take:]
    return [frozenset(shard) for shard in shards]


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



# -- one stream ----------------------------------------------------------------


class StreamState(enum.StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    BACKOFF = "backoff"
    REJECTED = "rejected"
    """Hermes answered 404 for some ids; the source reopens the shard without them."""
    STOPPED = "stopped"


class _Reopen(Exception):
    """The stream must be reopened; ``delay_s`` overrides the backoff (0 = at once)."""

    def __init__(self, reason: str, delay_s: float | None = None) -> None:
        super().__init__(reason)
        self.delay_s = delay_s


class _UnknownIds(Exception):
    def __init__(self, ids: set[FeedId], body: str) -> None:
        super().__init__(body)
        self.ids = ids


class _WatchedStream(httpx.AsyncByteStream):
    """The response body, calling ``on_bytes`` for every chunk: keep-alive comments never reach the SSE parser."""

    def __init__(self, inner: httpx.AsyncByteStream, on_bytes: Callable[[], None]) -> None:
        self._inner = inner
        self._on_bytes = on_bytes

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            self._on_bytes()
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


EventHandler = Callable[["HermesStream", str], None]


class HermesStream:
    """One SSE connection for one shard of ids, reconnecting with backoff until stopped."""

    def __init__(self, *, endpoint: Endpoint, ids: frozenset[FeedId], replica: int, client: httpx.AsyncClient,
                 backoff: Backoff, silence_timeout_s: float, on_prices: EventHandler,
                 on_change: Callable[[HermesStream], None], on_alive: Callable[[], None],
                 rollover_after_s: float) -> None:
        self.endpoint = endpoint
        self.ids = ids
        self.replica = replica
        self.rollover_after_s = rollover_after_s
        self._client = client
        self._backoff = backoff
        self._silence_timeout_s = silence_timeout_s
        self._on_prices = on_prices
        self._on_change = on_change
        self._on_alive = on_alive
        self._task: asyncio.Task[None] | None = None
        self.state = StreamState.CONNECTING
        self.connected_at: float | None = None
        self.connected_since: float | None = None
        """Wall-clock time of the current connection, for people; ``connected_at`` is monotonic."""
        self.last_event_at: float | None = None
        self.last_bytes_at: float | None = None
        self.events = 0
        self.keepalive_or_partial_reads = 0
        self.duplicates = 0
        self.out_of_order = 0
        self.malformed = 0
        self.error_events = 0
        self.reconnects = 0
        self.last_error: str | None = None
        self.unknown_ids: set[FeedId] = set()

    # -- lifecycle

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"hermes-stream-{self.replica}-{self.endpoint.display}")

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._set_state(StreamState.STOPPED)

    async def wait_closed(self) -> None:
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    @property
    def done(self) -> bool:
        return self._task is not None and self._task.done()

    def connected_for(self, now: float | None = None) -> float:
        if self.state != StreamState.CONNECTED or self.connected_at is None:
            return 0.0
        return (time.monotonic() if now is None else now) - self.connected_at

    # -- the connection loop

    async def _run(self) -> None:
        while True:
            self._set_state(StreamState.CONNECTING)
            delay: float | None = None
            try:
                await self._stream_once()
                reason = "stream ended by the server"
            except _UnknownIds as exc:
                self.unknown_ids = exc.ids
                self._fail(f"HTTP 404: {exc}")
                self._set_state(StreamState.REJECTED)
                return
            except _Reopen as exc:
                reason, delay = str(exc), exc.delay_s
            except TimeoutError:
                reason = f"silent for {self._silence_timeout_s:g} s (no event, no keep-alive)"
            except (httpx.HTTPError, SSEError, OSError) as exc:
                reason = describe_error(exc)
            except Exception as exc:  # a bug must cost one connection a reconnect, not the feed forever
                log.exception("hermes stream %s#%d: unexpected error", self.endpoint.display, self.replica)
                reason = describe_error(exc)
            self._fail(reason)
            if self.connected_at is not None:
                self._backoff.connection_ended(time.monotonic() - self.connected_at)
            self.connected_at = self.connected_since = None
            backoff_delay = self._backoff.next_delay()
            delay = backoff_delay if delay is None else delay
            log.info("hermes stream %s#%d: %s; reconnecting in %.2f s", self.endpoint.display, self.replica,
                     reason, delay)
            self._set_state(StreamState.BACKOFF)
            await asyncio.sleep(delay)
            self.reconnects += 1

    async def _stream_once(self) -> None:
        loop = asyncio.get_running_loop()
        params = [*self.endpoint.params, *(("ids[]", feed_id) for feed_id in sorted(self.ids)), ("parsed", "true")]
        # One deadline covers connecting, the response head and every gap between bytes: a hung connection
        # and a silent one are the same failure.
        async with asyncio.timeout(self._silence_timeout_s) as silence:

            def alive() -> None:
                silence.reschedule(loop.time() + self._silence_timeout_s)
                self.last_bytes_at = time.monotonic()
                self._on_alive()

            async with aconnect_sse(self._client, "GET", self.endpoint.stream_url, params=params) as source:
                response = source.response
                if response.status_code != 200:
                    await self._reject(response)
                content_type = response.headers.get("content-type", "")
                if not content_type.startswith("text/event-stream"):  # e.g. a proxy's HTML page
                    raise _Reopen(f"not an event stream: content-type {content_type!r}")
                assert isinstance(response.stream, httpx.AsyncByteStream)
                response.stream = _WatchedStream(response.stream, alive)
                alive()
                self._connected()
                async for event in source.aiter_sse():
                    self._on_event(event)

    async def _reject(self, response: httpx.Response) -> None:
        """Turn a non-200 answer into the right next step: drop unknown ids, wait as asked, or back off."""
        body = await read_error_body(response)
        status = response.status_code
        if status == 404:
            unknown = parse_not_found_ids(body) & self.ids
            if unknown:
                raise _UnknownIds(unknown, body)
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            if retry_after is not None:
                raise _Reopen(f"HTTP 429 (Retry-After {retry_after:g} s)", retry_after)
            raise _Reopen("HTTP 429 without Retry-After")
        raise _Reopen(f"HTTP {status}: {body[:200]}")

    def _connected(self) -> None:
        self.connected_at = time.monotonic()
        self.connected_since = time.time()
        log.info("hermes stream %s#%d connected (%d feeds)", self.endpoint.display, self.replica, len(self.ids))
        self._set_state(StreamState.CONNECTED)

    def _on_event(self, event: ServerSentEvent) -> None:
        self.last_event_at = time.monotonic()
        if event.event == "error":
            self.error_events += 1
            self.last_error = f"event:error {event.data}"
            if event.data.startswith(_SERVER_CLOSES):
                # The 24 h limit is routine (we should have rolled over first): reopen at once, no backoff.
                immediate = event.data.startswith("Connection timeout reached")
                raise _Reopen(f"Hermes closed the stream: {event.data}", 0.0 if immediate else None)
            log.warning("hermes stream %s#%d: %s", self.endpoint.display, self.replica, event.data)
            return
        if event.event not in ("", "message"):
            return
        self.events += 1
        self._on_prices(self, event.data)

    def _fail(self, reason: str) -> None:
        self.last_error = reason

    def _set_state(self, state: StreamState) -> None:
        if state != self.state:
            self.state = state
            self._on_change(self)

    def status(self, now: float | None = None) -> dict[str, Any]:
        now = time.monotonic() if now is None else now
        since = None if self.connected_since is None else datetime.fromtimestamp(self.connected_since, UTC)
        return {
            "endpoint": self.endpoint.display,
            "replica": self.replica,
            "feeds": len(self.ids),
            "state": str(self.state),
            "connected_since": None if since is None else since.isoformat(timespec="milliseconds"),
            "last_event_age_s": _age(self.last_event_at, now),
            "last_message_age_s": _age(self.last_bytes_at, now),
            "events": self.events,
            "duplicates_dropped": self.duplicates,
            "out_of_order_dropped": self.out_of_order,
            "malformed_events": self.malformed,
            "error_events": self.error_events,
            "reconnects": self.reconnects,
            "last_error": self.last_error,
        }


def _age(at: float | None, now: float) -> float | None:
    return None if at is None else round(now - at, 3)


# -- the source ----------------------------------------------------------------


class HermesSource(Source):
    """Prices from Pyth Hermes for the configured feeds and every feed clients ask for."""

    name = "hermes"

    def __init__(self, sink: Sink, *, endpoints: Sequence[str] = ("https://hermes.pyth.network",),
                 feeds: Sequence[str] = (), connections: int = 2, api_key: SecretStr | str | None = None,
                 silence_timeout_s: float = 30.0, metadata_refresh_s: float = 600.0, demand_poll_s: float = 1.0,
                 max_ids_per_stream: int = 100, rollover_after_s: float = 23 * 3600.0,
                 backoff: Callable[[], Backoff] = Backoff, connect_timeout_s: float = 10.0,
                 follow_subscriptions: bool = True, rng: random.Random | None = None) -> None:
        super().__init__(sink)
        if not endpoints:
            raise ValueError("at least one Hermes endpoint is needed")
        if connections < 1 or max_ids_per_stream < 1:
            raise ValueError("connections and max_ids_per_stream must be at least 1")
        self.endpoints = [Endpoint.from_url(url) for url in endpoints]
        self.configured = list(feeds) or list(DEFAULT_FEEDS)
        self.connections = connections
        self.silence_timeout_s = silence_timeout_s
        self.metadata_refresh_s = metadata_refresh_s
        self.demand_poll_s = demand_poll_s
        self.max_ids_per_stream = max_ids_per_stream
        self.rollover_after_s = rollover_after_s
        self.connect_timeout_s = connect_timeout_s
        self.follow_subscriptions = follow_subscriptions
        self._new_backoff = backoff
        self._rng = rng or random.Random()
        self._api_key = SecretStr(api_key) if isinstance(api_key, str) else api_key
        self._client: httpx.AsyncClient | None = None
        self._wake = asyncio.Event()
        self._freshness: FreshnessFilter[FeedId] = FreshnessFilter()
        self._shards: list[frozenset[FeedId]] = []
        self._slots: dict[tuple[frozenset[FeedId], int], HermesStream] = {}
        self._retiring: list[HermesStream] = []
        self._closing: list[HermesStream] = []
        self._extra_wanted: set[FeedId] = set()
        self._configured_ids: set[FeedId] = set()
        self.wanted: set[FeedId] = set()
        self.invalid: dict[FeedId, str] = {}
        """Ids Hermes answered 404 for; dropped from every stream until metadata lists them."""
        self.unresolved: list[str] = []
        """Configured symbols no known feed matches (yet)."""
        self._hermes_ids: set[FeedId] = set()
        self.metadata_feeds = 0
        self.metadata_refreshed_at: float | None = None
        self.metadata_error: str | None = None

    @classmethod
    def from_settings(cls, sink: Sink, settings: Settings, **overrides: Any) -> HermesSource:
        options: dict[str, Any] = {
            "endpoints": settings.pyth_sse_url,
            "feeds": settings.feeds,
            "connections": settings.upstream_connections,
            "api_key": settings.pyth_api_key,
            "silence_timeout_s": settings.hermes_silence_timeout,
        }
        options.update(overrides)
        return cls(sink, **options)

    # -- public API

    async def start(self) -> None:
        headers = {"User-Agent": "pricefeed"}
        if self._api_key is not None:
            headers["Authorization"] = f"Bearer {self._api_key.get_secret_value()}"
        timeout = httpx.Timeout(self.connect_timeout_s, read=None)
        # No pool limit: each stream holds a connection for hours, and the pool must not make one wait for another.
        self._client = httpx.AsyncClient(headers=headers, timeout=timeout,
                                         limits=httpx.Limits(max_connections=None, max_keepalive_connections=4))
        self._hermes_ids = {f.id for f in self.sink.feeds.values() if f.source == self.name}
        self._resolve_configured()
        self._reconcile()
        self.spawn(self._metadata_loop(), "hermes-metadata")
        self.spawn(self._supervise(), "hermes-supervisor")

    async def stop(self) -> None:
        await super().stop()  # the metadata and supervisor tasks first, so nothing reopens a stream
        streams = [*self._slots.values(), *self._retiring, *self._closing]
        for stream in streams:
            stream.cancel()
        await asyncio.gather(*(stream.wait_closed() for stream in streams))
        self._slots.clear()
        self._retiring.clear()
        self._closing.clear()
        if self._client is not None:
            await self._client.aclose()

    def want(self, feed_ids: Iterable[str]) -> None:
        """Stream these feeds too (besides ``--feeds`` and hub subscriptions); replaces the previous call's set."""
        self._extra_wanted = {parse_feed_id(feed_id) for feed_id in feed_ids}
        self.demand_changed()

    def demand_changed(self) -> None:
        """Re-plan the streams now rather than at the next poll."""
        self._wake.set()

    @property
    def streams(self) -> list[HermesStream]:
        return list(self._slots.values())

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        status = super().status()
        status.update(
            endpoints=[endpoint.display for endpoint in self.endpoints],
            connections=self.connections,
            feeds_wanted=len(self.wanted),
            feeds_covered=len(self._covered()),
            invalid_feeds=sorted(self.invalid),
            unresolved_feeds=self.unresolved,
            metadata={"feeds": self.metadata_feeds, "last_refresh_age_s": _age(self.metadata_refreshed_at, now),
                      "last_error": self.metadata_error},
            streams=[stream.status(now) for stream in [*self._slots.values(), *self._retiring]],
        )
        return status

    # -- demand and stream planning

    def _resolve_configured(self) -> None:
        index = symbol_index(self.sink.feeds.values())
        for known in KNOWN_FEEDS:
            index.setdefault(known.symbol.lower(), known.id)
            index.setdefault(known.display_symbol.lower(), known.id)
        self._configured_ids = set()
        self.unresolved = []
        for text in self.configured:
            try:
                feed_id = parse_feed_id(text)
            except ValueError:
                found = index.get(text.strip().lower())
                if found is None:
                    self.unresolved.append(text)
                    continue
                feed_id = found
            self._configured_ids.add(feed_id)
            if feed_id not in self.sink.feeds and (feed := catalog_feed(feed_id, self.name)) is not None:
                self.sink.add_feeds([feed])
        if self.unresolved:
            log.warning("hermes: no feed matches %s (yet)", ", ".join(self.unresolved))

    def _compute_wanted(self) -> set[FeedId]:
        demanded = set(self._extra_wanted)
        if self.follow_subscriptions:
            demanded |= self.sink.demand()
        demanded &= self._hermes_ids  # a client may subscribe to feeds another source makes
        return (self._configured_ids | demanded) - self.invalid.keys()

    def _reconcile(self) -> None:
        """Open, roll over and retire streams so every wanted id is streamed ``connections`` times."""
        if self._client is None:
            return
        self.wanted = wanted = self._compute_wanted()
        self._shards = plan_shards(self._shards, wanted, self.max_ids_per_stream)
        desired = {(shard, replica) for shard in self._shards for replica in range(self.connections)}
        now = time.monotonic()
        for key, stream in list(self._slots.items()):
            if key not in desired or stream.state == StreamState.REJECTED:
                del self._slots[key]
                self._retiring.append(stream)
            elif stream.connected_for(now) > stream.rollover_after_s:
                log.info("hermes stream %s#%d: rolling over before Hermes' 24 h limit", stream.endpoint.display,
                         stream.replica)
                self._retiring.append(stream)
                self._slots[key] = self._open(*key)
        for key in sorted(desired - self._slots.keys(), key=lambda k: (sorted(k[0]), k[1])):
            self._slots[key] = self._open(*key)
        self._retire_covered(wanted)
        self._update_state(wanted)

    def _open(self, ids: frozenset[FeedId], replica: int) -> HermesStream:
        assert self._client is not None
        # Replicas of a shard go to different endpoints, so one endpoint failing never takes a shard down.
        endpoint = self.endpoints[replica % len(self.endpoints)]
        # Stagger roll-overs of streams opened together by up to 5 %, so they never all reopen at once.
        rollover = self.rollover_after_s * (1 - 0.05 * self._rng.random())
        stream = HermesStream(endpoint=endpoint, ids=ids, replica=replica, client=self._client,
                              backoff=self._new_backoff(), silence_timeout_s=self.silence_timeout_s,
                              on_prices=self._on_prices, on_change=self._on_stream_change,
                              on_alive=self.mark_message, rollover_after_s=rollover)
        stream.start()
        return stream

    def _covered(self, replica: int | None = None) -> set[FeedId]:
        """Ids carried by connected streams (of one replica lane, if given)."""
        covered: set[FeedId] = set()
        for (_, lane), stream in self._slots.items():
            if stream.state == StreamState.CONNECTED and replica in (None, lane):
                covered |= stream.ids
        return covered

    def _retire_covered(self, wanted: set[FeedId]) -> None:
        """Close a replaced stream once its successors in the same lane are connected (make before break).

        A replaced stream that still works is kept as long as its successors do
        not: if a new stream cannot connect, the old one goes on delivering.
        """
        if not self._retiring:
            return
        covered = {replica: self._covered(replica) for replica in range(self.connections)}
        keep = []
        for stream in self._retiring:
            taken_over = (stream.ids & wanted) <= covered.get(stream.replica, set())
            if stream.done or stream.state != StreamState.CONNECTED or taken_over:
                stream.cancel()
                self._closing.append(stream)
            else:
                keep.append(stream)
        self._retiring = keep
        self._closing = [stream for stream in self._closing if not stream.done]

    def _update_state(self, wanted: set[FeedId]) -> None:
        covered = self._covered()
        if wanted <= covered:
            self.set_state(SourceState.CONNECTED)
        elif covered:
            self.set_state(SourceState.RECONNECTING)
        elif any(stream.last_error for stream in self._slots.values()):
            self.set_state(SourceState.DOWN)

    async def _supervise(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.demand_poll_s):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                self._reconcile()
            except Exception:  # keep supervising: the next pass may well succeed
                log.exception("hermes: planning streams failed")

    def _on_stream_change(self, stream: HermesStream) -> None:
        if stream.state == StreamState.BACKOFF:
            self.reconnects += 1
            self.last_error = f"{stream.endpoint.display}#{stream.replica}: {stream.last_error}"
        elif stream.state == StreamState.REJECTED:
            for feed_id in stream.unknown_ids:
                self.invalid[feed_id] = stream.last_error or "unknown to Hermes"
            log.warning("hermes: dropping feeds unknown to %s: %s", stream.endpoint.display,
                        ", ".join(sorted(stream.unknown_ids)))
        self._wake.set()

    # -- prices

    def _on_prices(self, stream: HermesStream, data: str) -> None:
        try:
            event = decode_price_event(data, self.name)
        except HermesProtocolError as exc:
            stream.malformed += 1
            stream.last_error = str(exc)
            log.warning("hermes stream %s#%d: skipping event: %s", stream.endpoint.display, stream.replica, exc)
            return
        if event.problems:
            stream.malformed += 1
            stream.last_error = "; ".join(event.problems)[:300]
        fresh: list[PriceUpdate] = []
        check = self._freshness.check
        for update in event.updates:
            verdict = check(update.feed_id, (update.publish_time_us, update.slot or 0))
            if verdict is Freshness.FRESH:
                self._ensure_feed(update)
                fresh.append(update)
            elif verdict is Freshness.DUPLICATE:
                stream.duplicates += 1
            else:
                stream.out_of_order += 1
        if fresh:
            self.updates.add(len(fresh))
            self.sink.publish_many(fresh)

    def _ensure_feed(self, update: PriceUpdate) -> None:
        """Register a feed before its first price reaches the hub, and correct a provisional exponent."""
        feed = self.sink.feeds.get(update.feed_id)
        if feed is None:
            feed = catalog_feed(update.feed_id, self.name) or Feed(update.feed_id, update.feed_id, update.expo,
                                                                   self.name)
        elif feed.expo == update.expo or feed.source != self.name:
            return
        self.sink.add_feeds([dataclasses.replace(feed, expo=update.expo)])

    # -- metadata

    async def _metadata_loop(self) -> None:
        backoff = self._new_backoff()
        while True:
            try:
                await self.refresh_metadata()
                backoff.reset()
                delay = self.metadata_refresh_s
            except _Reopen as exc:  # 429 with Retry-After
                self.metadata_error = str(exc)
                delay = max(exc.delay_s or 0.0, backoff.next_delay())
            except Exception as exc:  # whatever went wrong, the feeds we know stay and we try again
                self.metadata_error = describe_error(exc)
                delay = min(self.metadata_refresh_s, backoff.next_delay())
                log.warning("hermes metadata: %s; retrying in %.1f s", self.metadata_error, delay)
            await asyncio.sleep(delay)

    async def refresh_metadata(self) -> None:
        """Fetch ``/v2/price_feeds`` (first endpoint that answers) and register every feed with the hub."""
        assert self._client is not None
        error: Exception | None = None
        for endpoint in self.endpoints:
            try:
                response = await self._client.get(endpoint.metadata_url, params=list(endpoint.params),
                                                  timeout=max(self.connect_timeout_s, 30.0))
                if response.status_code == 429:
                    retry_after = parse_retry_after(response.headers.get("retry-after"))
                    raise _Reopen(f"{endpoint.display}: HTTP 429", retry_after)
                response.raise_for_status()
                feeds = feeds_from_metadata(orjson.loads(response.content), self.sink.feeds, self.name)
            except (httpx.HTTPError, HermesProtocolError, orjson.JSONDecodeError, _Reopen) as exc:
                error = exc
                continue
            self._apply_metadata(feeds)
            return
        assert error is not None
        raise error

    def _apply_metadata(self, feeds: list[Feed]) -> None:
        changed = [feed for feed in feeds if self.sink.feeds.get(feed.id) != feed]
        self.sink.add_feeds(changed)  # the store's writer saves them, so a restart offline still knows them
        self._hermes_ids = {feed.id for feed in feeds}
        for feed_id in self._hermes_ids & self.invalid.keys():
            del self.invalid[feed_id]  # listed again: give it another chance
        self.metadata_feeds = len(feeds)
        self.metadata_refreshed_at = time.monotonic()
        self.metadata_error = None
        log.info("hermes metadata: %d feeds (%d new or changed)", len(feeds), len(changed))
        self._resolve_configured()
        self._wake.set()
