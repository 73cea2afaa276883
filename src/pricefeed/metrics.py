"""One Prometheus registry for the whole service: ``/metrics`` exposes it and ``/status`` reads it.

Counters on the hot path are bound to their labels once (``child``) and
incremented once per pass, never per delivery. State that components already
keep (a source's reconnects, a face's queued bytes) is read at scrape time.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds from an update's publish time to its send: sub-millisecond locally, seconds behind a slow upstream."""


class Metrics:
    """The service's metrics, on a registry of its own (so several services can live in one test process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.updates_accepted = Counter("pricefeed_updates_accepted", "Updates accepted by ingest, per source",
                                        ["source"], registry=r)
        self.updates_dropped = Counter("pricefeed_updates_dropped", "Updates dropped by ingest, per source and reason",
                                       ["source", "reason"], registry=r)
        self.deliveries = Counter("pricefeed_deliveries", "Messages handed to connections, per face", ["face"],
                                  registry=r)
        self.connections = Gauge("pricefeed_connections", "Open client connections, per face", ["face"], registry=r)
        self.queued_bytes = Gauge("pricefeed_queued_bytes", "Bytes waiting in connections' outboxes and socket "
                                  "buffers, per face", ["face"], registry=r)
        self.slow_closes = Counter("pricefeed_slow_client_closes", "Connections closed for not reading, per face",
                                   ["face"], registry=r)
        self.refusals = Counter("pricefeed_refusals", "Connections or messages refused, per face and reason",
                                ["face", "reason"], registry=r)
        self.latency = LatencyHistogram("pricefeed_publish_to_send_latency_seconds",
                                        "From an update's publish time to its fan-out, per face", LATENCY_BUCKETS)
        r.register(self.latency)

    def watch_sources(self, sources: Callable[[], Iterable[Any]]) -> None:
        """Expose each source's state and reconnects, read from the sources at scrape time."""
        self.registry.register(_SourceCollector(sources))

    def total(self, name: str, **labels: str) -> float:
        """The current value of a sample (a counter's ``_total``), summed over the labels not given."""
        found = 0.0
        for metric in self.registry.collect():
            for sample in metric.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    found += sample.value
        return found

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class LatencyHistogram(Collector):
    """A histogram per face, observed on the hot path once per topic and wire format (about 0.3 us, where
    ``prometheus_client``'s labelled ``Histogram`` takes about 3), and exposed as a Prometheus histogram."""

    def __init__(self, name: str, documentation: str, buckets: tuple[float, ...]) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = buckets
        self._faces: dict[str, list[float]] = {}
        """Per face: a count per bucket (the last for +Inf), then the sum of the observations."""

    def observe(self, face: str, seconds: float) -> None:
        counts = self._faces.get(face)
        if counts is None:
            counts = self._faces[face] = [0.0] * (len(self.bounds) + 2)
        counts[bisect.bisect_left(self.bounds, seconds)] += 1
        counts[-1] += seconds if seconds > 0 else 0.0  # a publisher clock ahead of ours: count as 0

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=["face"])
        for face, counts in self._faces.items():
            cumulative, buckets = 0.0, []
            for bound, count in zip((*map(str, self.bounds), "+Inf"), counts[:-1], strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            family.add_metric([face], buckets, counts[-1])
        yield family


class _SourceCollector(Collector):
    def __init__(self, sources: Callable[[], Iterable[Any]]) -> None:
        self._sources = sources

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("pricefeed_source_up", "1 when the source is connected", labels=["source"])
        reconnects = CounterMetricFamily("pricefeed_source_reconnects", "Reconnections, per source",
                                         labels=["source"])
        for source in self._sources():
            up.add_metric([source.name], 1.0 if source.is_up else 0.0)
            reconnects.add_metric([source.name], float(source.reconnects))
        yield up
        yield reconnects
