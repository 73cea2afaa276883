"""One process's pipeline on the local bus: ingest -> bus -> hub."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .bus.local import LocalBus
from .hub import Hub
from .ingest import Ingest
from .metrics import Metrics


@dataclass(frozen=True, slots=True)
class Pipeline:
    ingest: Ingest
    bus: LocalBus
    hub: Hub


def local_pipeline(metrics: Metrics | None = None, stale_after_s: float = 30.0,
                   clock: Callable[[], float] = time.monotonic) -> Pipeline:
    """Ingest and a hub in one process: what sources publish reaches this process's clients."""
    metrics = metrics if metrics is not None else Metrics()
    bus = LocalBus()
    hub = Hub(metrics, stale_after_s=stale_after_s, clock=clock)
    bus.attach(hub)
    return Pipeline(Ingest(bus, metrics), bus, hub)
