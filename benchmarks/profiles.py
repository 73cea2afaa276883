"""What a bench run measures: the systems, the scenarios, and the sizes and durations of each kind of run."""

from __future__ import annotations

from dataclasses import dataclass

FACES = ("pricefeed", "hermes-ws", "hermes-sse", "streams")
"""pricefeed's faces, each a system: its seed-000 WebSocket (port 8765), Hermes' ``/ws`` and SSE stream on its
API port (8080), and seed 004's ``/ws/stream`` on its stream service (8081). "pricefeed" alone means the
seed-000 face, as it always has."""
BASELINES = ("ceiling", "naive")
SYSTEMS = (*FACES, *BASELINES)
FANOUT_ONLY = ("hermes-ws", "hermes-sse", "streams")
"""Systems measured by the fanout scenario only (the others measure the seed-000 face and the baselines)."""
POLICY_SYSTEM = "pricefeed-policy"
"""pricefeed's seed-000 face with an API key, its limits and allowed origins on (the policy scenario only)."""
WORKERS_SYSTEM = "pricefeed-workers2"
"""pricefeed with ``--workers 2``: one ingest process and two edges sharing the ports (the scaling scenario)."""
REDIS_SYSTEM = "pricefeed-redis"
"""One pricefeed process on the Redis bus (``--bus redis``, its own redis-server; the scaling scenario)."""
PRICEFEED_VARIANTS = {POLICY_SYSTEM: (), WORKERS_SYSTEM: ("--workers", "2"), REDIS_SYSTEM: ("--bus", "redis")}
"""pricefeed's seed-000 face run another way, and the options that make it so (the policy's are added apart)."""
LOAD_CLIENT_FACE = {"pricefeed": "seed000", "hermes-ws": "hermes-ws", "hermes-sse": "hermes-sse",
                    "streams": "streams", "ceiling": "seed000", "naive": "seed000",
                    **{variant: "seed000" for variant in PRICEFEED_VARIANTS}}
"""The protocol the load clients speak to each system (``loadclient.FACES``)."""
SCENARIOS = ("fanout", "latency", "idle", "slow")


@dataclass(frozen=True)
class FaceTarget:
    """A share of the seed-000 face's peak deliveries per server CPU-second that other faces are to reach."""

    key: str
    """Where the verdict is in the fanout scenario's results (and its line in the table)."""
    faces: tuple[str, ...]
    share: float
    what: str


FACE_TARGETS = (
    FaceTarget("faces_target", ("hermes-ws", "hermes-sse"), 0.5, "every Hermes face"),
    # Issue 13: /ws/stream within 20 % of the seed-000 face's deliveries per CPU-second.
    FaceTarget("streams_target", ("streams",), 0.8, "/ws/stream (seed 004)"),
)


@dataclass(frozen=True)
class Profile:
    """Sizes and durations of one kind of run (full, quick or smoke)."""

    name: str
    feeds: int = 100
    per_client: int = 10
    fanout_clients: int = 1000
    fanout_rates: tuple[float, ...] = (2, 5, 10, 20, 30, 40, 50, 60, 80, 100, 130)
    """Slots per second tried in turn (each feed updates once per slot), until the server saturates."""
    refine: bool = True
    """After the p99 limit is crossed, try the rate half-way between the last pass and the first failure."""
    retry: bool = True
    """Measure a step again before it ends the climb (a first p99 failure, or saturation): one noisy step on a
    busy machine should not stop the sweep."""
    p99_limit_ms: float = 20.0
    latency_target_ms: float = 10.0
    idle_connections: int = 10_000
    idle_rate: float = 1.0
    slow_clients: int = 100
    slow_rate: float = 50.0
    slow_settle_s: float = 5.0
    """Time between opening the never-reading client and measuring again (its buffers fill meanwhile)."""
    slow_measure_s: float | None = 15.0
    """Each window of the slow scenario (None: ``measure_s``); long enough that pricefeed's 10 s slow-client
    timeout closes the stuck client inside the second window."""
    warmup_s: float = 2.0
    measure_s: float = 5.0
    sample_every: int = 10
    client_procs: int = 1
    seed: int = 1
    policy_rate: float = 20.0
    """Slots per second of the policy scenario (below saturation, so CPU per delivery is what differs)."""
    policy_rounds: int = 3
    """Pairs of windows (policy off and on) of the policy scenario's end-to-end part."""
    policy_path_rounds: int = 40
    """Pairs of windows of its in-process part (the fan-out path alone, a few milliseconds each)."""
    scaling_rounds: int = 3
    """Rounds of the scaling scenario (one window of each system per round, in alternating order)."""


PROFILES = {
    "full": Profile("full"),
    # A smoke run of about a minute for CI: one fan-out step per system, not retried.
    "quick": Profile("quick", fanout_clients=100, fanout_rates=(200,), refine=False, retry=False,
                     idle_connections=1000, slow_clients=20, slow_rate=50.0, slow_settle_s=1.0, slow_measure_s=None,
                     warmup_s=0.5, measure_s=1.5, sample_every=5, policy_rate=50.0, policy_rounds=2, scaling_rounds=1),
    "smoke": Profile("smoke", fanout_clients=10, fanout_rates=(20,), refine=False, idle_connections=50,
                     slow_clients=5, slow_rate=20.0, slow_settle_s=0.3, slow_measure_s=None, warmup_s=0.2,
                     measure_s=0.5, sample_every=2, policy_rounds=1, policy_path_rounds=4, scaling_rounds=1),
}
