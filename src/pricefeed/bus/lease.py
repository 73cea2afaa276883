"""One leader among the ingest processes: a lease in Redis (``SET NX PX``), renewed while the leader lives.

The leader renews every third of the lease; a standby polls. A standby takes
the lease only after seeing it absent for a whole lease period: a leader that
merely lost Redis for a while (a restart that forgot every key) renews within a
third of a period of its return, so it keeps the lead instead of racing the
standby, and ``seq`` has one owner. After the leader dies, its lease expires
and a standby leads within about two lease periods.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ..resilience import describe_error

log = logging.getLogger(__name__)

_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] or not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
"""Extend the lease if it is ours, or take it back if it vanished (Redis restarted); 0 if another holds it."""


class Lease:
    def __init__(self, client: Redis, key: str, holder: str, period_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.redis = client
        self.key = key
        self.holder = holder
        self.period_ms = int(period_s * 1000)
        self.period_s = period_s
        self._clock = clock
        self._renew = client.register_script(_RENEW)
        self.leading = False
        self.leader: str | None = None
        """Who holds the lease, as last seen."""
        self.error: str | None = None
        self._absent_since: float | None = None
        self._first_try = True

    async def run(self, lead: Callable[[], Awaitable[None]], step_down: Callable[[], Awaitable[None]]) -> None:
        """Hold the lead whenever possible: ``lead()`` when taking it, ``step_down()`` when another has it."""
        while True:
            try:
                if self.leading:
                    if not await self._renew(keys=[self.key], args=[self.holder, self.period_ms]):
                        self.leading = False
                        self.leader = await self._holder()
                        log.warning("ingest: %s took the lead; standing by", self.leader)
                        await step_down()
                elif await self._take():
                    self.leading = True
                    self.leader = self.holder
                    log.info("ingest: leading (%s)", self.holder)
                    try:
                        await lead()
                    except BaseException:
                        self.leading = False  # tried again next round (the lease is still ours then)
                        raise
                self.error = None
            except (RedisError, OSError) as exc:
                self.error = describe_error(exc)  # a leader goes on leading: it cannot tell whether it still is
            await asyncio.sleep(self.period_s / 3)

    async def _take(self) -> bool:
        """Take the lease if free: at once on the first try, else once it has been free for a whole period."""
        holder = await self._holder()
        self.leader = holder
        now = self._clock()
        if holder == self.holder:  # ours from an attempt to lead that failed half-way
            return bool(await self._renew(keys=[self.key], args=[self.holder, self.period_ms]))
        if holder is not None:
            self._absent_since = None
            self._first_try = False
            return False
        if not self._first_try:
            if self._absent_since is None:
                self._absent_since = now
            if now - self._absent_since < self.period_s:
                return False
        self._first_try = False
        return bool(await self.redis.set(self.key, self.holder, nx=True, px=self.period_ms))

    async def _holder(self) -> str | None:
        value = await self.redis.get(self.key)
        return None if value is None else (value.decode() if isinstance(value, bytes) else str(value))

    async def release(self) -> None:
        """Give the lease up (a clean stop), so a standby need not wait for it to expire."""
        if self.leading:
            self.leading = False
            try:
                await self.redis.eval(
                    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
                    1, self.key, self.holder)
            except (RedisError, OSError) as exc:
                log.warning("ingest: could not release the lease: %s", describe_error(exc))

    def status(self) -> dict[str, Any]:
        return {"leading": self.leading, "leader": self.leader, "holder": self.holder, "error": self.error}
