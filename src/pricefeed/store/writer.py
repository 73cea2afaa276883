"""Write-behind: the hub never waits on the disk; the latest prices are saved once per interval."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ..ingest import Ingest
from ..model import FeedId, PriceUpdate
from .base import Store

log = logging.getLogger(__name__)


class StoreWriter:
    def __init__(self, ingest: Ingest, store: Store, interval_s: float = 1.0) -> None:
        self.ingest = ingest
        self.store = store
        self.interval_s = interval_s
        self._dirty: dict[FeedId, PriceUpdate] = {}
        self._saved_feeds: dict[FeedId, object] = {}
        self._task: asyncio.Task[None] | None = None
        self.flushes = 0
        self.last_flush_at: float | None = None
        self.last_error: str | None = None
        """Why the last flush failed; None once one succeeds (the store is reachable again)."""
        ingest.add_listener(self._on_batch)

    def _on_batch(self, updates: list[PriceUpdate]) -> None:
        for update in updates:
            self._dirty[update.feed_id] = update

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="store-writer")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.flush()
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                if self.last_error is None:  # once per outage, not every interval
                    log.warning("store flush failed (%s); serving from memory, saving when it is back", error)
                self.last_error = error
            else:
                if self.last_error is not None:
                    log.info("store is back: saved what was pending")
                self.last_error = None

    async def flush(self) -> None:
        """Save new or changed feed metadata, then every price that changed since the last flush."""
        changed_feeds = [f for f in self.ingest.feeds.values() if self._saved_feeds.get(f.id) is not f]
        if changed_feeds:
            await self.store.save_feeds(changed_feeds)
            self._saved_feeds.update((f.id, f) for f in changed_feeds)
        if self._dirty:
            dirty, self._dirty = self._dirty, {}
            try:
                await self.store.save_latest(dirty.values())
            except BaseException:
                # Keep what failed unless something newer arrived meanwhile.
                self._dirty = dirty | self._dirty
                raise
        self.flushes += 1
        self.last_flush_at = time.monotonic()

    async def stop(self) -> None:
        """Stop the timer and save what is left."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush()

    def status(self) -> dict[str, Any]:
        age = None if self.last_flush_at is None else round(time.monotonic() - self.last_flush_at, 3)
        return {"flushes": self.flushes, "last_flush_age_s": age, "pending": len(self._dirty),
                "last_error": self.last_error}
