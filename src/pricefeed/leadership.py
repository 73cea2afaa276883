"""An ingest process that runs its sources only while it leads (one upstream connection set per cluster).

On taking the lead it first loads the feeds and the newest published update of
each feed from the bus, so every feed's ``seq`` goes on from the last one any
leader published: it never repeats or goes back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from .bus.lease import Lease
from .bus.redis import RedisBus
from .components import Assembly, Component
from .ingest import Ingest

log = logging.getLogger(__name__)


class Leadership:
    name = "ingest leadership"

    def __init__(self, lease: Lease, bus: RedisBus, ingest: Ingest, sources: Sequence[Component]) -> None:
        self.lease = lease
        self.bus = bus
        self.ingest = ingest
        self._sources = sources
        self._running: Assembly | None = None
        self._task: asyncio.Task[None] | None = None
        self.terms = 0
        """How many times this process took the lead."""

    async def start(self) -> None:
        self._task = asyncio.create_task(self.lease.run(self._lead, self._step_down), name="ingest lease")

    async def _lead(self) -> None:
        self.ingest.add_feeds(await self.bus.load_feeds())
        latest = self.ingest.latest
        newer = [u for u in await self.bus.load_latest()
                 if (known := latest.get(u.feed_id)) is None or u.seq > known.seq]
        restored = self.ingest.restore(newer)
        log.info("ingest: going on from the seq of %d feeds published before", len(restored))
        self.terms += 1
        self._running = Assembly(self._sources)
        await self._running.start()

    async def _step_down(self) -> None:
        lost = self.bus.abandon()
        if lost:
            log.warning("ingest: dropped %d updates not yet published (the new leader owns seq now)", lost)
        if self._running is not None:
            await self._running.stop()
            self._running = None

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._running is not None:
            await self._running.stop()
            self._running = None
        await self.lease.release()  # a standby need not wait for the lease to expire

    def status(self) -> dict[str, Any]:
        return {**self.lease.status(), "terms": self.terms}
