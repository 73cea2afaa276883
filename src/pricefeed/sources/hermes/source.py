"""The Hermes source: feed metadata over REST, prices over redundant SSE streams, every request inside one budget.

The wanted feeds (configured ones plus whatever clients subscribe to) are split
into shards of at most ``max_ids_per_stream`` ids; each shard is streamed by
``connections`` redundant :class:`HermesStream` s spread over the endpoints, and
one :class:`~pricefeed.resilience.FreshnessFilter` lets each update through once
and in order. A change of shards, and the daily roll-over that pre-empts
Hermes' 24 h limit, open the new stream before closing the old one
(:class:`~pricefeed.resilience.Handover`).

Public Hermes allows 10 requests per 10 s per IP and answers 429 for 60 s past
that, so every request of the source, each stream's (re)connect and each
metadata fetch, spends from one :class:`~pricefeed.sources.http.RequestBudget`,
and a 429 on any of them holds all of them back until its ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence, Set
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import SecretStr

from ...bus.base import Sink
from ...catalog import KNOWN_FEEDS
from ...model import Feed, FeedId, PriceUpdate, parse_feed_id
from ...resilience import Backoff, Freshness, FreshnessFilter, Handover
from ..base import Source, SourceState
from ..http import RequestBudget
from .metadata import MetadataPoller
from .stream import HermesStream, StreamState, age_s
from .wire import Endpoint, HermesProtocolError, catalog_feed, decode_price_event, symbol_index

if TYPE_CHECKING:
    from ...config import Settings

log = logging.getLogger(__name__)

DEFAULT_FEEDS: tuple[FeedId, ...] = tuple(f.id for f in KNOWN_FEEDS if f.asset_type == "Crypto")
"""The major crypto feeds, streamed when ``--feeds`` is not given."""
REQUEST_WINDOW_S = 10.0
"""Public Hermes counts requests per 10 s (``core/rate-limits.mdx``)."""


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


class HermesSource(Source):
    """Prices from Pyth Hermes for the configured feeds and every feed clients ask for."""

    name = "hermes"

    def __init__(self, sink: Sink, *, endpoints: Sequence[str] = ("https://hermes.pyth.network",),
                 feeds: Sequence[str] = (), connections: int = 2, api_key: SecretStr | str | None = None,
                 silence_timeout_s: float = 30.0, metadata_refresh_s: float = 600.0, demand_poll_s: float = 1.0,
                 max_ids_per_stream: int = 100, rollover_after_s: float = 23 * 3600.0,
                 backoff: Callable[[], Backoff] = Backoff, connect_timeout_s: float = 10.0,
                 follow_subscriptions: bool = True, rng: random.Random | None = None,
                 request_budget: RequestBudget | None = None) -> None:
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
        self.budget = request_budget or RequestBudget(10, REQUEST_WINDOW_S)
        """Shared by every request of this source, whatever the number of streams."""
        self._new_backoff = backoff
        self._rng = rng or random.Random()
        self._api_key = SecretStr(api_key) if isinstance(api_key, str) else api_key
        self._client: httpx.AsyncClient | None = None
        self._metadata: MetadataPoller | None = None
        self._wake = asyncio.Event()
        self._freshness: FreshnessFilter[FeedId] = FreshnessFilter()
        self._shards: list[frozenset[FeedId]] = []
        self._slots: dict[tuple[frozenset[FeedId], int], HermesStream] = {}
        self._handover: Handover[HermesStream] = Handover()
        self._extra_wanted: set[FeedId] = set()
        self._configured_ids: set[FeedId] = set()
        self.wanted: set[FeedId] = set()
        self.invalid: dict[FeedId, str] = {}
        """Ids Hermes answered 404 for; dropped from every stream until metadata lists them."""
        self.unresolved: list[str] = []
        """Configured symbols no known feed matches (yet)."""
        self._hermes_ids: set[FeedId] = set()

    @classmethod
    def from_settings(cls, sink: Sink, settings: Settings, **overrides: Any) -> HermesSource:
        options: dict[str, Any] = {
            "endpoints": settings.pyth_sse_url,
            "feeds": settings.feeds,
            "connections": settings.upstream_connections,
            "api_key": settings.pyth_api_key,
            "silence_timeout_s": settings.hermes_silence_timeout,
            "request_budget": RequestBudget(settings.hermes_requests_per_10s, REQUEST_WINDOW_S),
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
        self._metadata = MetadataPoller(client=self._client, endpoints=self.endpoints, budget=self.budget,
                                        backoff=self._new_backoff(), every_s=self.metadata_refresh_s,
                                        timeout_s=max(self.connect_timeout_s, 30.0), known=lambda: self.sink.feeds,
                                        on_feeds=self._apply_metadata, has_api_key=self._api_key is not None,
                                        source=self.name)
        self._hermes_ids = {f.id for f in self.sink.feeds.values() if f.source == self.name}
        self._resolve_configured()
        self._reconcile()
        self.spawn(self._metadata.run(), "hermes-metadata")
        self.spawn(self._supervise(), "hermes-supervisor")

    async def stop(self) -> None:
        await super().stop()  # the metadata and supervisor tasks first, so nothing reopens a stream
        for stream in self._slots.values():
            self._handover.retire(stream)
        self._slots.clear()
        await self._handover.close()
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

    @property
    def metadata_feeds(self) -> int:
        return 0 if self._metadata is None else self._metadata.feeds

    @property
    def metadata_error(self) -> str | None:
        return None if self._metadata is None else self._metadata.last_error

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        status = super().status()
        refreshed_at = None if self._metadata is None else self._metadata.refreshed_at
        status.update(
            endpoints=[endpoint.display for endpoint in self.endpoints],
            connections=self.connections,
            feeds_wanted=len(self.wanted),
            feeds_covered=len(self._covered()),
            invalid_feeds=sorted(self.invalid),
            unresolved_feeds=self.unresolved,
            metadata={"feeds": self.metadata_feeds, "last_refresh_age_s": age_s(refreshed_at, now),
                      "last_error": self.metadata_error},
            request_budget=self.budget.status(),
            streams=[stream.status(now) for stream in [*self._slots.values(), *self._handover.retiring]],
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
                self._handover.retire(stream)
            elif stream.connected_for(now) > stream.rollover_after_s:
                log.info("%s: rolling over before Hermes' 24 h limit", stream.name)
                self._handover.retire(stream)
                self._slots[key] = self._open(*key)
        for key in sorted(desired - self._slots.keys(), key=lambda k: (sorted(k[0]), k[1])):
            self._slots[key] = self._open(*key)
        # A replaced stream closes once connected streams of its replica lane carry all its wanted ids.
        covered = {replica: self._covered(replica) for replica in range(self.connections)}
        self._handover.settle(lambda old: (old.ids & wanted) <= covered.get(old.replica, set()))
        self._update_state(wanted)

    def _open(self, ids: frozenset[FeedId], replica: int) -> HermesStream:
        assert self._client is not None
        # Replicas of a shard go to different endpoints, so one endpoint failing never takes a shard down.
        endpoint = self.endpoints[replica % len(self.endpoints)]
        # Stagger roll-overs of streams opened together by up to 5 %, so they never all reopen at once.
        rollover = self.rollover_after_s * (1 - 0.05 * self._rng.random())
        stream = HermesStream(endpoint=endpoint, ids=ids, replica=replica, client=self._client, budget=self.budget,
                              backoff=self._new_backoff(), silence_timeout_s=self.silence_timeout_s,
                              on_prices=self._on_prices, on_change=self._on_stream_change,
                              on_alive=self.mark_message, rollover_after_s=rollover,
                              has_api_key=self._api_key is not None)
        stream.start()
        return stream

    def _covered(self, replica: int | None = None) -> set[FeedId]:
        """Ids carried by connected streams (of one replica lane, if given)."""
        covered: set[FeedId] = set()
        for (_, lane), stream in self._slots.items():
            if stream.state == StreamState.CONNECTED and replica in (None, lane):
                covered |= stream.ids
        return covered

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
            log.warning("%s: skipping event: %s", stream.name, exc)
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
            self.mark_published(max(u.publish_time_us for u in fresh))
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

    def _apply_metadata(self, feeds: list[Feed]) -> None:
        changed = [feed for feed in feeds if self.sink.feeds.get(feed.id) != feed]
        self.sink.add_feeds(changed)  # the store's writer saves them, so a restart offline still knows them
        self._hermes_ids = {feed.id for feed in feeds}
        for feed_id in self._hermes_ids & self.invalid.keys():
            del self.invalid[feed_id]  # listed again: give it another chance
        log.info("hermes metadata: %d feeds (%d new or changed)", len(feeds), len(changed))
        self._resolve_configured()
        self._wake.set()
