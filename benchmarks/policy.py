"""The policy scenario: what the access policy costs on the hot path, measured two ways.

- The path (``policy_path``): the fan-out path alone, in this process, 1000 connections with the policy off
  and 1000 with it on, in alternating windows of a few milliseconds; the figure for the target (cost within
  5 % of fan-out deliveries per CPU-second), since it is what the machine's other work disturbs least.
- End to end: the seed-000 face served by its own process, measured with the policy off (no key, no limit,
  any origin) and on (every client presents an API key that has every limit: connections, subscriptions,
  messages and bytes per second, never reached; allowed origins set), in alternating windows of the same
  run at the same rate (off then on, then on then off, ...), so both see the same machine.

Both costs are the median of the ratios of windows taken in pairs (``policy_path.paired_cost``).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from .harness import measure_step
from .policy_path import paired_cost, run_path
from .processes import Env
from .profiles import POLICY_SYSTEM, Profile

SCENARIO = "policy"
TARGET_COST_PCT = 5.0
SYSTEMS = ("pricefeed", POLICY_SYSTEM)
PATH_CLIENTS, PATH_PER_CLIENT, PATH_PASSES = 1000, 10, 5


def run_policy(profile: Profile, env: Env) -> dict[str, Any]:
    env.say(f"policy: the fan-out path in this process, {PATH_CLIENTS} connections each way, "
            f"{profile.policy_path_rounds} rounds ...")
    path = run_path(PATH_CLIENTS, PATH_PER_CLIENT, profile.feeds, profile.policy_path_rounds, PATH_PASSES)
    env.say(f"policy: path -> {path['deliveries_per_cpu_s_off']:,.0f} deliveries per CPU-second off, "
            f"{path['deliveries_per_cpu_s_on']:,.0f} on: cost {path['cost_pct']}% "
            f"(pairs' interquartile range {path['pair_ratio_iqr_pct']} points)")
    rate, clients = profile.policy_rate, profile.fanout_clients
    steps: dict[str, list[dict[str, Any]]] = {system: [] for system in SYSTEMS}
    for round_ in range(1, profile.policy_rounds + 1):
        for system in SYSTEMS if round_ % 2 else reversed(SYSTEMS):  # alternate which goes first: drift cancels
            step = measure_step(system, env, profile, clients, rate, f"policy {round_}/{profile.policy_rounds}")
            steps[system].append(asdict(step))
    windows = [(off["deliveries_per_cpu_s"], on["deliveries_per_cpu_s"])
               for off, on in zip(steps["pricefeed"], steps[POLICY_SYSTEM], strict=True)
               if off["deliveries_per_cpu_s"] and on["deliveries_per_cpu_s"]]
    end_to_end = {"clients": clients, "rate_slots_per_s": rate, "rounds": profile.policy_rounds,
                  **(paired_cost([w[0] for w in windows], [w[1] for w in windows]) if windows else {})}
    env.say(f"policy: end to end -> cost {end_to_end.get('cost_pct')}% "
            f"(pairs' interquartile range {end_to_end.get('pair_ratio_iqr_pct')} points)")
    cost = path["cost_pct"]
    return {"figure": {"path": path, "end_to_end": end_to_end}, "steps": steps,
            "target": {"met": cost <= TARGET_COST_PCT,
                       "text": f"the policy on costs <= {TARGET_COST_PCT:g}% of fan-out deliveries per CPU-second "
                               f"on the path (got {cost}%; end to end {end_to_end.get('cost_pct')}%)"}}


def table(result: dict[str, Any]) -> str:
    path, e2e = result["figure"]["path"], result["figure"]["end_to_end"]

    def line(name: str, f: dict[str, Any]) -> str:
        if "cost_pct" not in f:
            return f"  {name}: not measured"
        return (f"  {name}: deliveries per CPU-second off {f['deliveries_per_cpu_s_off']:,.0f}, on "
                f"{f['deliveries_per_cpu_s_on']:,.0f}; cost {f['cost_pct']}% (pairs' IQR {f['pair_ratio_iqr_pct']} "
                "points)")

    return "\n".join([
        "== policy (keys, limits and origins on against off)",
        line(f"path ({path['clients']} connections x {path['per_client']} feeds, {path['rounds']} rounds)", path),
        line(f"end to end ({e2e['clients']} clients at {e2e['rate_slots_per_s']:g} slots/s, {e2e['rounds']} rounds)",
             e2e),
        f"  target: {result['target']['text']} -> {'met' if result['target']['met'] else 'NOT met'}", ""])
