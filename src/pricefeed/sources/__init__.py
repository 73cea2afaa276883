"""Upstream sources, chosen by name with ``--source``."""

from __future__ import annotations

from ..config import Settings
from ..hub import Hub
from .base import Source, SourceState
from .simulated import SimulatedMarket

__all__ = ["SimulatedMarket", "Source", "SourceState", "create_source"]


def create_source(name: str, hub: Hub, settings: Settings) -> Source:
    if name == "sim":
        return SimulatedMarket(hub, interval_s=settings.sim_interval, feed_count=settings.sim_feeds,
                               seed=settings.seed)
    if name == "hermes":
        from .hermes import HermesSource

        return HermesSource.from_settings(hub, settings)
    raise ValueError(f"unknown source {name!r}")
