"""The shared store: feeds and the latest price of every feed in Redis, so several processes share one cache.

Each process writes behind its hot path, as with SQLite. A price only replaces
a stored one at least as new (one Lua script, atomic in Redis), so a process
that lags never rolls the shared cache back. Redis being down never stops the
service: loading finds nothing, and the writer keeps what it could not save
until Redis is back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..model import Feed, PriceUpdate
from .records import feed_from_record, feed_record, update_from_record, update_record

log = logging.getLogger(__name__)

_SAVE_NEWER = """
local written = 0
for i = 1, #ARGV, 3 do
  local current = redis.call('HGET', KEYS[2], ARGV[i])
  if not current or tonumber(ARGV[i + 1]) >= tonumber(current) then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
    written = written + 1
  end
end
return written
"""
"""Upsert (feed id, publish time, record) triples, each only over an older or equal stored price."""


class RedisStore:
    def __init__(self, client: Redis, prefix: str = "pricefeed:", shown_as: str = "redis") -> None:
        self.redis = client
        self.shown_as = shown_as
        self.feeds_key = prefix + "feeds"
        self.latest_key = prefix + "latest"
        self.times_key = prefix + "latest:publish_time_us"
        self._save_newer = client.register_script(_SAVE_NEWER)

    @classmethod
    def connect(cls, *, url: str | None = None, host: str | None = None, port: int = 6379,
                username: str | None = None, password: str | None = None, prefix: str = "pricefeed:",
                timeout_s: float = 2.0) -> RedisStore:
        """A store on ``url`` or on host and port; nothing is connected until the first command."""
        options: dict[str, Any] = {"socket_connect_timeout": timeout_s, "socket_timeout": timeout_s,
                                   "retry": Retry(NoBackoff(), 0)}  # the writer retries; a command fails fast
        if url is not None:
            client = Redis.from_url(url, **options)
        else:
            client = Redis(host=host or "localhost", port=port, username=username, password=password, **options)
        kwargs = client.connection_pool.connection_kwargs
        shown = f"redis://{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"
        return cls(client, prefix, shown)

    async def open(self) -> None:
        try:
            await self.redis.ping()
        except RedisError as exc:
            log.warning("%s is unreachable (%s): serving from memory until it is back", self.shown_as, exc)
        else:
            log.info("store: %s", self.shown_as)

    async def load_feeds(self) -> list[Feed]:
        values = await self._load(self.feeds_key)
        return [feed_from_record(orjson.loads(v)) for v in values]

    async def load_latest(self) -> list[PriceUpdate]:
        values = await self._load(self.latest_key)
        return [update_from_record(orjson.loads(v)) for v in values]

    async def _load(self, key: str) -> list[bytes | str]:
        """Every value of a hash; none while Redis is unreachable (start-up goes on from memory)."""
        try:
            values = await self.redis.hvals(key)
        except RedisError as exc:
            log.warning("cannot load %s from %s (%s): starting without it", key, self.shown_as, exc)
            return []
        return list(values)

    async def save_feeds(self, feeds: Iterable[Feed]) -> None:
        mapping: dict[str | bytes, bytes | str] = {feed.id: orjson.dumps(feed_record(feed)) for feed in feeds}
        if mapping:
            await self.redis.hset(self.feeds_key, mapping=mapping)  # type: ignore[arg-type]  # redis-py's narrow Mapping

    async def save_latest(self, updates: Iterable[PriceUpdate]) -> None:
        args: list[str | int | bytes] = []
        for update in updates:
            args += [update.feed_id, update.publish_time_us, orjson.dumps(update_record(update))]
        if args:
            await self._save_newer(keys=[self.latest_key, self.times_key], args=args)

    async def close(self) -> None:
        await self.redis.aclose()
