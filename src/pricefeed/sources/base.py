"""What every upstream source is: something that feeds the hub and reports its state."""

from __future__ import annotations

import abc
import asyncio
import enum
import logging
import time
from collections.abc import Coroutine
from typing import Any

from ..bus.base import Sink
from ..rate import RateMeter

log = logging.getLogger(__name__)

LATENCY_SMOOTHING = 0.2
"""The weight of the newest message in the upstream latency (an exponential moving average)."""


class SourceState(enum.StrEnum):
    STARTING = "starting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DOWN = "down"
    STOPPED = "stopped"


class Source(abc.ABC):
    """An upstream. Subclasses register their feeds with the hub and publish updates to it."""

    name: str = "source"
    simulated: bool = False

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.state = SourceState.STARTING
        self.last_error: str | None = None
        self.reconnects = 0
        self.updates = RateMeter()
        self._last_message_at: float | None = None
        self._latency_ms: float | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @abc.abstractmethod
    async def start(self) -> None:
        """Begin feeding the hub; returns once running (work continues in tasks)."""

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``work`` in a task that :meth:`stop` cancels."""
        self._tasks.append(asyncio.create_task(work, name=name))

    async def stop(self) -> None:
        """Stop all work (the tasks started with :meth:`spawn`)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self.set_state(SourceState.STOPPED)

    def set_state(self, state: SourceState, error: str | None = None) -> None:
        if error is not None:
            self.last_error = error
        if state != self.state:
            log.info("source %s: %s -> %s%s", self.name, self.state, state, f" ({error})" if error else "")
            self.state = state

    def mark_message(self, updates: int = 0) -> None:
        """Note that the upstream spoke (a keep-alive counts), and how many updates it carried."""
        self._last_message_at = time.monotonic()
        if updates:
            self.updates.add(updates)

    def mark_published(self, publish_time_us: int) -> None:
        """Note the publish time of the newest price a message carried: how old it was on arrival is the upstream
        latency (smoothed, so one late message does not hide the rest)."""
        latency_ms = (time.time_ns() // 1000 - publish_time_us) / 1000
        previous = self._latency_ms
        self._latency_ms = latency_ms if previous is None else previous + LATENCY_SMOOTHING * (latency_ms - previous)

    @property
    def is_up(self) -> bool:
        return self.state == SourceState.CONNECTED

    def status(self) -> dict[str, Any]:
        age = None if self._last_message_at is None else round(time.monotonic() - self._last_message_at, 3)
        return {
            "name": self.name,
            "state": str(self.state),
            "simulated": self.simulated,
            "last_message_age_s": age,
            "upstream_latency_ms": None if self._latency_ms is None else round(self._latency_ms, 1),
            "reconnects": self.reconnects,
            "updates_per_second": round(self.updates.per_second(), 2),
            "updates_total": self.updates.total,
            "last_error": self.last_error,
        }
