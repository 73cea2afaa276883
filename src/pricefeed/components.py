"""The assembly: components started in order and stopped in reverse.

A component is anything with a life cycle (the store, ingest's write-behind,
a source, a listener). The application lists them once; starting stops again
whatever had started if one fails, and stopping goes on past a failure.
"""

from __future__ import annotations

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
