"""The policy scenario: what the access policy costs on the hot path.

The seed-000 face is measured with the policy off (no key, no limit, any origin) and on (every client
presents an API key that has every limit: connections, subscriptions, messages and bytes per second,
never reached; allowed origins set), in alternating windows of the same run at the same rate (off then
on, then on then off, ...), so both see the same machine. Each system's figure is the median of its
windows. The figure is fan-out deliveries per server CPU-second; the target is a cost
within 5 %.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict
from typing import Any

from .harness import measure_step
from .processes import Env
from .profiles import POLICY_SYSTEM, Profile

SCENARIO = "policy"
TARGET_COST_PCT = 5.0
SYSTEMS = ("pricefeed", POLICY_SYSTEM)


def run_policy(profile: Profile, env: Env) -> dict[str, Any]:
    rate, clients = profile.policy_rate, profile.fanout_clients
    steps: dict[str, list[dict[str, Any]]] = {system: [] for system in SYSTEMS}
    for round_ in range(1, profile.policy_rounds + 1):
        for system in SYSTEMS if round_ % 2 else reversed(SYSTEMS):  # alternate which goes first: drift cancels
            step = measure_step(system, env, profile, clients, rate, f"policy {round_}/{profile.policy_rounds}")
            steps[system].append(asdict(step))
    per_cpu = {system: [s["deliveries_per_cpu_s"] for s in runs if s["deliveries_per_cpu_s"]]
               for system, runs in steps.items()}
    off, on = (statistics.median(per_cpu[s]) if per_cpu[s] else None for s in SYSTEMS)
    cost = None if not off or on is None else round(100.0 * (off - on) / off, 1)
    spread = {system: _spread_pct(values) for system, values in per_cpu.items()}
    figure = {"clients": clients, "rate_slots_per_s": rate, "rounds": profile.policy_rounds,
              "deliveries_per_cpu_s_off": off, "deliveries_per_cpu_s_on": on, "cost_pct": cost,
              "spread_pct": spread, "per_window": per_cpu}
    met = cost is not None and cost <= TARGET_COST_PCT
    env.say(f"policy: {off} deliveries per server CPU-second off, {on} on: cost {cost}% "
            f"(windows spread {spread})")
    return {"figure": figure, "steps": steps,
            "target": {"met": met, "text": f"policy on costs <= {TARGET_COST_PCT:g}% of deliveries per server "
                                           f"CPU-second (got {cost}%)"}}


def _spread_pct(values: list[float]) -> float | None:
    """How far apart a system's windows were: (max - min) / median, in %."""
    if len(values) < 2:
        return None
    return round(100.0 * (max(values) - min(values)) / statistics.median(values), 1)


def table(result: dict[str, Any]) -> str:
    f = result["figure"]
    return "\n".join([
        f"== policy (seed-000 face, {f['clients']} clients at {f['rate_slots_per_s']:g} slots/s, "
        f"{f['rounds']} rounds)",
        f"  deliveries per server CPU-second: off {f['deliveries_per_cpu_s_off']}, on {f['deliveries_per_cpu_s_on']} "
        f"(windows: off {f['per_window']['pricefeed']}, on {f['per_window'][POLICY_SYSTEM]})",
        f"  cost {f['cost_pct']}%; target: {result['target']['text']} -> "
        f"{'met' if result['target']['met'] else 'NOT met'}", ""])
