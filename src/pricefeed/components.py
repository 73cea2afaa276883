"""The assembly: components started in order and stopped in reverse.

A component is anything with a life cycle (the store, ingest's write-behind,
a source, a listener). The application lists them once; starting stops again
whatever had started if one fails, and stopping goes on past a failure.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)


class Component(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def status(self) -> dict[str, Any]: ...


@dataclass
class Task:
    """A component made of two callables, for steps that need no class of their own."""

    name: str
    on_start: Callable[[], Awaitable[None]]
    on_stop: Callable[[], Awaitable[None]]
    describe: Callable[[], dict[str, Any]] = field(default=lambda: {})

    async def start(self) -> None:
        await self.on_start()

    async def stop(self) -> None:
        await self.on_stop()

    def status(self) -> dict[str, Any]:
        return self.describe()


class Assembly:
    def __init__(self, components: Sequence[Component]) -> None:
        self.components = list(components)
        self._started: list[Component] = []

    async def start(self) -> None:
        try:
            for component in self.components:
                await component.start()
                self._started.append(component)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        while self._started:
            component = self._started.pop()
            try:
                await component.stop()
            except Exception:
                log.exception("%s did not stop cleanly", component.name)


class WriteBehind(abc.ABC):
    """State saved behind the hot path: :meth:`flush` every ``interval_s`` and once more when stopping.

    A failed flush keeps what it could not save (the subclass's business), is logged, and is tried again.
    """

    what = "state"
    """Named in the log line of a failed save."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.flushes = 0
        self._task: asyncio.Task[None] | None = None

    @abc.abstractmethod
    async def flush(self) -> None:
        """Save what changed since the last flush."""

    def start_timer(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self.what} writer")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.flush()
            except Exception:
                log.exception("saving %s failed; will retry", self.what)

    async def stop_timer_and_flush(self) -> None:
        """Stop the timer and save what is left."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush()
