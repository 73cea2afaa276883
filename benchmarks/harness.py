"""The bench harness: the measurements ("steps") and the scenarios made of them.

Every step is a fresh server process at one rate, pinned to the server CPU, plus load-client processes
pinned to the other CPU (``processes``). The server's simulated market updates every one of ``feeds``
feeds once per slot; the rate is slots per second. Offered deliveries per second are
``subscriptions x rate``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from .common import feed_ids, percentiles
from .processes import Env, running
from .profiles import BASELINES, FACE_TARGETS, FACES, FANOUT_ONLY, FaceTarget, Profile

SATURATED_BELOW = 0.9
"""A step is saturated when it delivers less than this share of the offered deliveries."""


# -- steps and scenarios ----------------------------------------------------------------------------


@dataclass
class Step:
    """One measurement window: a system at a rate with some clients."""

    system: str
    clients: int
    rate_slots_per_s: float
    offered_deliveries_per_s: float
    deliveries_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    p99_9_ms: float | None
    max_ms: float | None
    latency_samples: int
    server_cpu: float
    """Cores used by the server process over the window (1.0 = one core busy)."""
    deliveries_per_cpu_s: float | None
    client_cpu: float
    server_core_busy: float | None
    """Share of time the server's CPU was busy, including kernel softirq work done there (loopback TCP)."""
    client_core_busy: float | None
    server_rss_bytes: int
    closed_connections: int
    saturated: bool
    undated_samples: int = 0
    """Hermes deliveries a sampler received but could not date (their update never reached its clock)."""
    retried: bool = False
    """Measured a second time because the first measurement would have ended the climb (it is kept apart)."""
    error: str | None = None
    """Why the step could not be measured (e.g. the clients could not all subscribe in time)."""

    def passes(self, p99_limit_ms: float) -> bool:
        return self.p99_ms is not None and self.p99_ms <= p99_limit_ms and not self.saturated


def _busy(m: dict[str, Any], cpus: set[int] | None) -> float | None:
    values = [m["core_busy"][cpu] for cpu in cpus or () if cpu in m.get("core_busy", {})]
    return round(sum(values) / len(values), 3) if values else None


def to_step(system: str, env: Env, clients: int, rate: float, subscriptions: int, m: dict[str, Any]) -> Step:
    elapsed = m["elapsed_s"]
    delivered = m["frames"] / elapsed
    offered = subscriptions * rate
    lat = percentiles(m["hist"])
    cpu = m["server_cpu_s"] / elapsed
    return Step(system=system, clients=clients, rate_slots_per_s=rate, offered_deliveries_per_s=round(offered),
                deliveries_per_s=round(delivered), p50_ms=lat["p50"], p99_ms=lat["p99"], p99_9_ms=lat["p99.9"],
                max_ms=lat["max"], latency_samples=sum(m["hist"].values()), server_cpu=round(cpu, 3),
                deliveries_per_cpu_s=round(delivered / cpu) if cpu > 0 else None,
                client_cpu=round(m["client_cpu_s"] / elapsed, 3), server_core_busy=_busy(m, env.server_cpus),
                client_core_busy=_busy(m, env.client_cpus), server_rss_bytes=m["server_rss"],
                closed_connections=m["closed_connections"], saturated=delivered < SATURATED_BELOW * offered,
                undated_samples=m.get("undated_samples", 0))


def describe(step: Step) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    return (f"{step.deliveries_per_s:>9,} deliv/s of {step.offered_deliveries_per_s:>9,} offered, "
            f"p50/p99/p99.9 {ms(step.p50_ms)}/{ms(step.p99_ms)}/{ms(step.p99_9_ms)} ms, "
            f"server cpu {step.server_cpu:.2f} (core busy {_pct(step.server_core_busy)}), "
            f"client cpu {step.client_cpu:.2f} (core busy {_pct(step.client_core_busy)})"
            + (" SATURATED" if step.saturated else "")
            + (f" ({step.undated_samples:,} Hermes samples undated)" if step.undated_samples else ""))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def measure_step(system: str, env: Env, profile: Profile, clients: int, rate: float, label: str) -> Step:
    subscriptions = clients * min(profile.per_client, profile.feeds)
    env.say(f"{label}: {system}, {clients} clients, {rate:g} slots/s "
            f"({subscriptions * rate:,.0f} deliveries/s offered) ...")
    try:
        with running(system, env, profile, rate, clients) as (_server, load, info):
            time.sleep(profile.warmup_s)
            step = to_step(system, env, clients, rate, subscriptions, load.measure(profile.measure_s))
    except (TimeoutError, RuntimeError) as exc:
        # Typically: an overloaded server never confirms every subscription. Count it as saturated.
        env.say(f"{label}: {system} FAILED: {str(exc).splitlines()[0]}")
        return failed_step(system, clients, rate, subscriptions, str(exc).splitlines()[0])
    env.say(f"{label}: {system} -> {describe(step)} (setup {info['setup_s']:.1f}s)")
    return step


def failed_step(system: str, clients: int, rate: float, subscriptions: int, error: str) -> Step:
    return Step(system=system, clients=clients, rate_slots_per_s=rate,
                offered_deliveries_per_s=round(subscriptions * rate),
                deliveries_per_s=0, p50_ms=None, p99_ms=None, p99_9_ms=None, max_ms=None, latency_samples=0,
                server_cpu=0.0, deliveries_per_cpu_s=None, client_cpu=0.0, server_core_busy=None,
                client_core_busy=None, server_rss_bytes=0, closed_connections=0, saturated=True, error=error)


def fanout_sweep(system: str, env: Env, profile: Profile) -> dict[str, Any]:
    """Climb the rates until the server saturates; two figures come out of the climb.

    - The p99 figure: the last rate whose p99 is within the limit, before the first that is not (refined
      half-way between the two). A system that never passes gets its highest delivered rate, flagged
      ``p99_target_met: false``.
    - The efficiency figure: the peak deliveries per server CPU-second over every step. It does not hang
      on one step's tail latency, so it moves little between runs, even on a busy machine.

    A step that would end something (the first p99 failure after a pass, a failed refinement, saturation)
    is measured once more, and the second measurement decides (unless it could not be set up); the other
    is kept under ``retried``. A step that could not be set up is measured again only if it is the first.
    The peaks are taken over every window measured, both attempts included.
    """
    steps: list[Step] = []
    retried: list[Step] = []
    limit = profile.p99_limit_ms

    def measure(rate: float, label: str, decisive: Callable[[Step], bool]) -> Step:
        step = measure_step(system, env, profile, profile.fanout_clients, rate, label)
        # A step that could not be set up is past saturation, and costs up to a minute and a half of
        # time-outs: it is measured again only when it is the system's first, which would leave no figure.
        if profile.retry and decisive(step) and (step.error is None or all(s.error for s in steps)):
            env.say(f"{label}: {system} measuring {rate:g} slots/s again before taking it as the limit")
            again = measure_step(system, env, profile, profile.fanout_clients, rate, label + " (retry)")
            if again.error is None:  # else the first measurement stands
                step, again = again, step
            retried.append(again)
            step = replace(step, retried=True)
        steps.append(step)
        return step

    last_pass: Step | None = None
    first_fail: Step | None = None

    def ends_climb(step: Step) -> bool:
        return step.saturated or (last_pass is not None and first_fail is None and not step.passes(limit))

    for rate in profile.fanout_rates:
        step = measure(rate, "fanout", ends_climb)
        if first_fail is None and step.passes(limit):
            last_pass = step
        elif first_fail is None and last_pass is not None:
            first_fail = step
        if step.saturated:
            break
    if profile.refine and last_pass is not None and first_fail is not None:
        mid = round((last_pass.rate_slots_per_s + first_fail.rate_slots_per_s) / 2, 1)
        if mid not in (last_pass.rate_slots_per_s, first_fail.rate_slots_per_s):
            step = measure(mid, "fanout (refine)", lambda s: not s.passes(limit))
            if step.passes(limit):
                last_pass = step
    steps.sort(key=lambda s: s.rate_slots_per_s)
    if last_pass is not None:
        chosen, met = last_pass, True
    else:
        chosen, met = max(steps, key=lambda s: s.deliveries_per_s), False
    windows = steps + retried
    efficient = max((s for s in windows if s.deliveries_per_cpu_s), key=lambda s: s.deliveries_per_cpu_s or 0,
                    default=None)
    figure = {**asdict(chosen), "p99_target_met": met,
              "peak_deliveries_per_s": max(s.deliveries_per_s for s in windows),
              "peak_deliveries_per_cpu_s": efficient.deliveries_per_cpu_s if efficient else None,
              "peak_cpu_at_rate_slots_per_s": efficient.rate_slots_per_s if efficient else None,
              "retried_steps": len(retried)}
    env.say(f"fanout: {system} -> {figure['deliveries_per_s']:,} deliveries/s at p99 "
            f"{'<=' if met else 'never <='} {limit:g} ms; peak {figure['peak_deliveries_per_s']:,} deliveries/s, "
            f"{figure['peak_deliveries_per_cpu_s'] or 0:,} deliveries per server CPU-second")
    return {"figure": figure, "steps": [asdict(s) for s in steps], "retried": [asdict(s) for s in retried]}


def latency_run(system: str, env: Env, profile: Profile, rate: float) -> dict[str, Any]:
    step = measure_step(system, env, profile, profile.fanout_clients, rate, "latency")
    return {"figure": asdict(step)}


def idle_run(system: str, env: Env, profile: Profile) -> dict[str, Any]:
    """Resident memory the server adds per idle, unsubscribed connection."""
    n = profile.idle_connections
    env.say(f"idle: {system}, {n:,} idle connections ...")
    with running(system, env, profile, profile.idle_rate, n, idle=True) as (server, load, info):
        time.sleep(max(0.5, profile.warmup_s))
        m = load.measure(min(1.0, profile.measure_s))
        rss_after = server.rss()
    before = info["rss_before_clients"]
    per_conn = (rss_after - before) / n
    figure = {"connections": n, "connected": n - m["closed_connections"], "server_rss_before_bytes": before,
              "server_rss_after_bytes": rss_after, "bytes_per_connection": round(per_conn),
              "kib_per_connection": round(per_conn / 1024, 2), "setup_s": info["setup_s"],
              "server_cpu_idle": round(m["server_cpu_s"] / m["elapsed_s"], 3)}
    env.say(f"idle: {system} -> {figure['kib_per_connection']} KiB per connection "
            f"(RSS {before / 2**20:.1f} -> {rss_after / 2**20:.1f} MiB, connect {info['setup_s']:.1f}s)")
    return {"figure": figure}


def slow_run(system: str, env: Env, profile: Profile) -> dict[str, Any]:
    """Others' latency and the server's memory without, then with, one client that never reads."""
    n, rate = profile.slow_clients, profile.slow_rate
    window = profile.slow_measure_s or profile.measure_s
    subscriptions = n * min(profile.per_client, profile.feeds)
    env.say(f"slow: {system}, {n} clients at {rate:g} slots/s, first without the slow client ...")
    with running(system, env, profile, rate, n) as (server, load, _info):
        time.sleep(profile.warmup_s)
        without = to_step(system, env, n, rate, subscriptions, load.measure(window))
        rss_without = server.rss()
        env.say(f"slow: {system} without -> {describe(without)}; opening a client that never reads ...")
        load.open_slow(feed_ids(profile.feeds))
        time.sleep(profile.slow_settle_s)
        measured = load.measure(window)
        with_slow = to_step(system, env, n, rate, subscriptions, measured)
        rss_with = server.rss()
    env.say(f"slow: {system} with -> {describe(with_slow)}")
    change = None
    if without.p99_ms and with_slow.p99_ms is not None:
        change = round(100.0 * (with_slow.p99_ms - without.p99_ms) / without.p99_ms, 1)
    figure = {"clients": n, "rate_slots_per_s": rate,
              "p99_without_ms": without.p99_ms, "p99_with_ms": with_slow.p99_ms, "p99_change_pct": change,
              "p50_without_ms": without.p50_ms, "p50_with_ms": with_slow.p50_ms,
              "deliveries_per_s_without": without.deliveries_per_s, "deliveries_per_s_with": with_slow.deliveries_per_s,
              "server_rss_without_bytes": rss_without, "server_rss_with_bytes": rss_with,
              "server_rss_growth_bytes": rss_with - rss_without,
              "slow_client_closed_by_server": measured["slow_open"] == 0}
    return {"figure": figure, "steps": [asdict(without), asdict(with_slow)]}


# -- a whole run ---------------------------------------------------------------------------------------


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return round(numerator / denominator, 3)


RATIO_KEYS = {
    "fanout": ("deliveries_per_s", "p99_ms", "peak_deliveries_per_s", "peak_deliveries_per_cpu_s"),
    "latency": ("p50_ms", "p99_ms", "deliveries_per_s"),
    "idle": ("bytes_per_connection",),
    "slow": ("p99_with_ms", "server_rss_growth_bytes"),
}


def ratios(scenario: str, ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, float | None]:
    """A face's figure divided by another system's, for each headline figure of the scenario."""
    return {key: ratio(ours.get(key), theirs.get(key)) for key in RATIO_KEYS[scenario]}


def targets(scenario: str, result: dict[str, Any], profile: Profile) -> dict[str, Any]:
    """Whether pricefeed reached the issue's target for the scenario (at this profile's sizes)."""
    ours = result["pricefeed"]["figure"] if "pricefeed" in result else None
    if ours is None:
        return {"met": None, "text": "pricefeed not measured"}
    vs_c, vs_n = result.get("vs_ceiling", {}), result.get("vs_naive", {})
    if scenario == "fanout":
        rc, rn = vs_c.get("deliveries_per_s"), vs_n.get("deliveries_per_s")
        met = bool(ours["p99_target_met"]) and rc is not None and rc >= 3 and rn is not None and rn >= 10
        return {"met": met, "text": f">= 3x ceiling (got {rc}x) and >= 10x naive (got {rn}x) deliveries/s "
                                    f"at p99 <= {profile.p99_limit_ms:g} ms (p99 met: {ours['p99_target_met']})"}
    if scenario == "latency":
        p99 = ours["p99_ms"]
        return {"met": p99 is not None and p99 <= profile.latency_target_ms,
                "text": f"p99 <= {profile.latency_target_ms:g} ms at {ours['clients']} clients (got {p99} ms)"}
    if scenario == "idle":
        kib = ours["kib_per_connection"]
        return {"met": kib <= 20, "text": f"<= 20 KiB per idle connection (got {kib} KiB)"}
    change = ours["p99_change_pct"]
    return {"met": change is not None and change <= 20.0,
            "text": f"others' p99 within 20% of the run without the slow client (got {change}%); "
                    f"server RSS growth {ours['server_rss_growth_bytes'] / 2**20:.2f} MiB"}


def face_target(result: dict[str, Any], target: FaceTarget) -> dict[str, Any] | None:
    """Whether the target's faces reach its share of the seed-000 face's peak deliveries per server CPU-second
    (None when none of them was measured)."""
    runs = {name: result["faces"][name] for name in target.faces if name in result.get("faces", {})}
    if not runs:
        return None
    shares = {name: run["vs_pricefeed"]["peak_deliveries_per_cpu_s"] for name, run in runs.items()}
    met = all(share is not None and share >= target.share for share in shares.values())
    shown = ", ".join(f"{name} {share}x" for name, share in shares.items())
    return {"met": met, "share": target.share, "faces": shares,
            "text": f"{target.what} >= {target.share:g}x the seed-000 face's peak deliveries per server "
                    f"CPU-second (got {shown})"}


def run_scenarios(profile: Profile, scenarios: list[str], systems: list[str], env: Env,
                  latency_rate: float | None = None) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for scenario in scenarios:
        per_system: dict[str, Any] = {}
        measured = [s for s in systems if scenario == "fanout" or s not in FANOUT_ONLY]
        if scenario == "fanout":
            for system in measured:
                per_system[system] = fanout_sweep(system, env, profile)
        elif scenario == "latency":
            rate = latency_rate if latency_rate is not None else _half_load_rate(results, env, profile)
            for system in measured:
                per_system[system] = latency_run(system, env, profile, rate)
        elif scenario == "idle":
            for system in measured:
                per_system[system] = idle_run(system, env, profile)
        else:
            for system in measured:
                per_system[system] = slow_run(system, env, profile)
        results[scenario] = assemble(scenario, per_system, profile)
    return results


def assemble(scenario: str, per_system: dict[str, Any], profile: Profile) -> dict[str, Any]:
    """One scenario's results: ``pricefeed`` (the seed-000 face), its other ``faces``, the ``baselines``.

    Each face's run carries its ratios to each baseline (``vs_ceiling``, ``vs_naive``) and, for another
    face, to the seed-000 face (``vs_pricefeed``). The seed-000 face's ratios are also at the top, with the
    target, as they have always been; each of ``FACE_TARGETS`` whose faces were measured is beside it.
    """
    for face in FACES:
        run = per_system.get(face)
        if run is None:
            continue
        for other in (*BASELINES, "pricefeed"):
            if other != face and other in per_system:
                run[f"vs_{other}"] = ratios(scenario, run["figure"], per_system[other]["figure"])
    result: dict[str, Any] = {}
    if "pricefeed" in per_system:
        result["pricefeed"] = per_system["pricefeed"]
    faces = {name: per_system[name] for name in FANOUT_ONLY if name in per_system}
    if faces:
        result["faces"] = faces
    result["baselines"] = {name: per_system[name] for name in BASELINES if name in per_system}
    if "pricefeed" in per_system:
        for name in BASELINES:
            if name in per_system:
                result[f"vs_{name}"] = per_system["pricefeed"][f"vs_{name}"]
        result["target"] = targets(scenario, result, profile)
        for target in FACE_TARGETS:
            verdict = face_target(result, target)
            if verdict is not None:
                result[target.key] = verdict
    result["ratio_note"] = "a face / another system: above 1 is better for deliveries, below 1 for latency and memory"
    return result


def _half_load_rate(results: dict[str, Any], env: Env, profile: Profile) -> float:
    """Half of the rate at which pricefeed's fan-out p99 reached the limit (sweeping first if needed)."""
    fanout = results.get("fanout", {}).get("pricefeed")
    if fanout is None:
        env.say("latency: finding pricefeed's fan-out point first (use --latency-rate to skip)")
        fanout = fanout_sweep("pricefeed", env, replace(profile, refine=False))
    return round(float(fanout["figure"]["rate_slots_per_s"]) / 2, 2)
