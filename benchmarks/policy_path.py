"""The policy's cost on the fan-out path alone, in one process: no sockets, no kernel, no other process.

Two hubs, each with the same connections of the seed-000 face subscribed to the same feeds; one
group's connections were let in with no key (the policy off), the other's with an API key that has
every limit (a byte budget charged at each sweep, subscriptions claimed). Each window runs the sweep's
budget check once, far more often than the service's once a second. The same passes are fanned out
to each in turn, round after round, and each group's deliveries per CPU-second (``time.process_time``)
compared. What differs between the two is exactly what the policy adds per write.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from pricefeed.contracts import Handshake
from pricefeed.faces.simple_ws import SimpleWsCodec, SimpleWsSession
from pricefeed.metrics import Metrics
from pricefeed.model import Feed, PriceUpdate
from pricefeed.pipeline import local_pipeline
from pricefeed.policy import OPEN, AccessPolicy, Admission, ApiKey, KeyLimits, KeyRing
from pricefeed.transport.connection import Connection
from pricefeed.transport.limits import ConnectionLimits
from pricefeed.transport.listener import Listener
from pricefeed.transport.wsframe import FramedCodec, frame

from .common import feed_ids

KEY = ApiKey("bench", "bench-secret", limits=KeyLimits(connections=10**9, subscriptions=10**12,
                                                       messages_per_second=1000.0, bytes_per_second=1e15))


class NullConnection(Connection):
    """A connection whose socket takes every write at once (counted, not kept)."""

    def frame(self, payload: bytes) -> bytes:
        return frame(payload)

    def buffered_bytes(self) -> int:
        return 0

    def _close_transport(self, code: int, reason: str, abort: bool) -> None:
        raise AssertionError(f"closed: {code} {reason}")  # the limits are never reached here


class Group:
    """A hub and its connections, all let in the same way."""

    def __init__(self, feeds: list[str], clients: int, per_client: int, with_key: bool) -> None:
        metrics = Metrics()
        self.hub = local_pipeline(metrics).hub
        self.hub.add_feeds([Feed(f, f"Crypto.F{i}/USD", -8, "bench") for i, f in enumerate(feeds)])
        policy = AccessPolicy(KeyRing())
        policy.keys._static[KEY.secret] = KEY  # the one key, without a keys file
        listener = Listener("seed000", SimpleWsCodec(), lambda conn: SimpleWsSession(self.hub, conn, conn.client_id),
                            ConnectionLimits(), metrics, wrap=FramedCodec)
        listener.access = policy
        self.connections: list[Connection] = []
        for n in range(clients):
            admission: Admission = OPEN
            if with_key:
                admitted = policy.admit("seed000", {"authorization": f"Bearer {KEY.secret}"}, {}, "127.0.0.1")
                assert isinstance(admitted, Admission)
                admission = admitted
            conn = NullConnection(listener, Handshake(), admission=admission)
            conn.attach(lambda data: None, "-")
            for k in range(per_client):
                conn.receive_message(b'{"type":"subscribe","feed_id":"%s"}' % feeds[(n + k) % len(feeds)].encode(),
                                     True)
            self.connections.append(conn)
        assert self.hub.subscription_count() == clients * per_client

    def delivered(self) -> int:
        return sum(conn.messages_sent for conn in self.connections)


def run_path(clients: int, per_client: int, feeds: int, rounds: int, passes: int) -> dict[str, Any]:
    return asyncio.run(_run(clients, per_client, feeds, rounds, passes))


async def _run(clients: int, per_client: int, feeds: int, rounds: int, passes: int) -> dict[str, Any]:
    ids = feed_ids(feeds)
    groups = {"off": Group(ids, clients, per_client, False), "on": Group(ids, clients, per_client, True)}
    per_cpu: dict[str, list[float]] = {name: [] for name in groups}
    publish_us = time.time_ns() // 1000
    for round_ in range(rounds):
        order = ("off", "on") if round_ % 2 == 0 else ("on", "off")  # alternate which goes first
        for name in order:
            group = groups[name]
            before, started = group.delivered(), time.process_time()
            for p in range(passes):
                at = publish_us + round_ * passes + p
                updates = [PriceUpdate(f, 100_000 + p, 10, -8, at, 100_000, 10, seq=round_ * passes + p + 1)
                           for f in ids]
                group.hub.receive(updates, ids)
            for conn in group.connections:  # the listener's sweep, once a second in the service: once a window here
                conn.check_byte_budget()
            cpu = time.process_time() - started
            per_cpu[name].append(round((group.delivered() - before) / cpu))
    return {"clients": clients, "per_client": per_client, "feeds": feeds, "rounds": rounds, "passes": passes,
            **paired_cost(per_cpu["off"], per_cpu["on"])}


def paired_cost(off: list[float], on: list[float]) -> dict[str, Any]:
    """The cost of the policy from windows taken in pairs (off and on back to back): the median of each pair's
    ratio, which the machine's slower and faster moments (shared with other work) move far less than either
    system's own figures. Also the spread of the pairs' ratios (interquartile, in % points)."""
    ratios = sorted(b / a for a, b in zip(off, on, strict=True) if a)
    median = statistics.median(ratios)
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) >= 2 else [median, median, median]
    return {"deliveries_per_cpu_s_off": statistics.median(off), "deliveries_per_cpu_s_on": statistics.median(on),
            "cost_pct": round(100.0 * (1.0 - median), 1),
            "pair_ratio_iqr_pct": round(100.0 * (quartiles[2] - quartiles[0]), 1),
            "per_window": {"off": off, "on": on}}
