"""The scaling scenario: one process against ``--workers 2``, and the local bus against the Redis bus.

Each system serves the seed-000 face to the fanout load (``fanout_clients`` clients, ``per_client`` feeds
each) at one rate (``policy_rate``, below one process's saturation, so what differs is the CPU each
delivery costs and the latency), in alternating windows of one run (as the policy scenario does), so
all see the same machine:

- ``pricefeed``: one process, the local bus (``--workers 1``, the default);
- ``pricefeed-workers2``: a supervisor, one ingest process and two edges sharing the ports over a Unix
  socket (``--workers 2``);
- ``pricefeed-redis``: one process whose updates go through its own redis-server (``--bus redis``).

The server's CPU is its whole process tree's, redis-server's included for the Redis bus, all pinned to the
server CPU: on a 2-core machine the load clients need the other core, so this measures what the extra
processes and hops cost per delivery, not what more cores would bring (see the README's Performance).
"""

from __future__ import annotations

import statistics
from dataclasses import asdict
from typing import Any

from .harness import measure_step
from .processes import Env
from .profiles import REDIS_SYSTEM, WORKERS_SYSTEM, Profile

SCENARIO = "scaling"
SYSTEMS = ("pricefeed", WORKERS_SYSTEM, REDIS_SYSTEM)


def run_scaling(profile: Profile, env: Env) -> dict[str, Any]:
    rate, clients = profile.policy_rate, profile.fanout_clients
    steps: dict[str, list[dict[str, Any]]] = {system: [] for system in SYSTEMS}
    for round_ in range(1, profile.scaling_rounds + 1):
        order = SYSTEMS if round_ % 2 else tuple(reversed(SYSTEMS))  # alternate which goes first: drift cancels
        for system in order:
            step = measure_step(system, env, profile, clients, rate, f"scaling {round_}/{profile.scaling_rounds}")
            steps[system].append(asdict(step))
    figure = {system: _summary(runs) for system, runs in steps.items()}
    one = figure["pricefeed"]["deliveries_per_cpu_s"]
    for system in SYSTEMS[1:]:
        other = figure[system]["deliveries_per_cpu_s"]
        figure[system]["vs_one_process"] = round(other / one, 3) if one and other else None
    return {"clients": clients, "rate_slots_per_s": rate, "rounds": profile.scaling_rounds, "figure": figure,
            "steps": steps}


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median window of a system: deliveries per server CPU-second, p99, the server's cores and memory."""
    measured = [run for run in runs if run["error"] is None and run["deliveries_per_cpu_s"]]
    if not measured:
        return {"deliveries_per_cpu_s": None, "p99_ms": None, "errors": [run["error"] for run in runs]}

    def median(key: str) -> float | None:
        values = [run[key] for run in measured if run[key] is not None]
        return round(statistics.median(values), 3) if values else None

    return {"deliveries_per_cpu_s": median("deliveries_per_cpu_s"), "deliveries_per_s": median("deliveries_per_s"),
            "p99_ms": median("p99_ms"), "server_cpu": median("server_cpu"),
            "server_rss_mb": round(statistics.median(run["server_rss_bytes"] for run in measured) / 2**20, 1),
            "windows": len(measured)}


def table(result: dict[str, Any]) -> str:
    lines = [f"== scaling ({result['clients']} clients at {result['rate_slots_per_s']:g} slots/s, "
             f"{result['rounds']} rounds; medians)"]
    for system, f in result["figure"].items():
        if f["deliveries_per_cpu_s"] is None:
            lines.append(f"  {system}: not measured ({'; '.join(str(e) for e in f['errors'])})")
            continue
        ratio = f.get("vs_one_process")
        lines.append(f"  {system}: {f['deliveries_per_cpu_s']:,.0f} deliveries per CPU-second, p99 {f['p99_ms']} ms, "
                     f"{f['server_cpu']} cores, {f['server_rss_mb']} MB"
                     + (f" ({ratio}x one process)" if ratio is not None else ""))
    return "\n".join([*lines, ""])
