"""A source's upstream latency: how old the newest price of a message was on arrival, smoothed."""

from __future__ import annotations

import pytest

from pricefeed.pipeline import local_pipeline
from pricefeed.sources.base import Source


class Quiet(Source):
    name = "quiet"

    async def start(self) -> None:
        pass


def test_the_latency_is_an_exponential_average_of_the_publish_to_arrival_times(
        monkeypatch: pytest.MonkeyPatch) -> None:
    source = Quiet(local_pipeline().ingest)
    assert source.status()["upstream_latency_ms"] is None
    monkeypatch.setattr("pricefeed.sources.base.time.time_ns", lambda: 1_700_000_000_000_000_000)
    now_us = 1_700_000_000_000_000
    source.mark_published(now_us - 100_000)
    assert source.status()["upstream_latency_ms"] == 100.0
    source.mark_published(now_us - 600_000)  # 100 + 0.2 x (600 - 100)
    assert source.status()["upstream_latency_ms"] == 200.0
    source.mark_published(now_us)  # 200 + 0.2 x (0 - 200)
    assert source.status()["upstream_latency_ms"] == 160.0
