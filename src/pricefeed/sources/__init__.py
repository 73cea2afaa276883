"""Upstream sources, chosen by name with ``--source``."""

from __future__ import annotations

from ..bus.base import Sink
from ..config import Settings
from .base import Source, SourceState
from .simulated import SimulatedMarket

__all__ = ["SimulatedMarket", "Source", "SourceState", "create_source"]


def create_source(name: str, sink: Sink, settings: Settings) -> Source:
    if name == "sim":
        return SimulatedMarket(sink, interval_s=settings.sim_interval, feed_count=settings.sim_feeds,
                               seed=settings.seed, equities=settings.sim_equities,
                               market_hours=settings.sim_market_hours)
    if name == "hermes":
        from .hermes import HermesSource

        return HermesSource.from_settings(sink, settings)
    if name == "kite":
        from .kite.source import KiteSource

        return KiteSource.from_settings(sink, settings)
    if name == "lazer":
        from .lazer import LazerSource

        return LazerSource.from_settings(sink, settings)
    if name == "coingecko":
        from .coingecko import CoinGeckoSource

        return CoinGeckoSource.from_settings(sink, settings)
    raise ValueError(f"unknown source {name!r}")
