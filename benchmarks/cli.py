"""``pricefeed bench``: measure deliveries per second, latency and memory against two baselines.

    pricefeed bench --quick                 # about a minute, for CI smoke use
    pricefeed bench --json bench.json       # the full run (several minutes)
    pricefeed bench --scenario idle         # one scenario
    pricefeed bench --scenario analysis     # 200 clients on /ws/analysis over 50 symbols (--quick: 40 over 10)
    python -m benchmarks --quick            # the same without the pricefeed entry point
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from . import analysis, policy, report, scaling, socketio
from . import client as client_bench
from .common import core_busy, cpu_jiffies
from .harness import run_scenarios
from .processes import Env, default_cpus, raise_fd_limit
from .profiles import FANOUT_ONLY, PROFILES, SCENARIOS, SYSTEMS

ALL_SCENARIOS = (*SCENARIOS, "socketio", analysis.SCENARIO, policy.SCENARIO, client_bench.SCENARIO, scaling.SCENARIO)
ON_REQUEST = (scaling.SCENARIO,)
"""Scenarios run only when named (``--scenario``): they start a redis-server and a process per worker."""


def _cpus(text: str | None) -> set[int] | None:
    if text is None or text.lower() == "none":
        return None
    return {int(part) for part in text.split(",") if part.strip()}


def _rates(text: str) -> tuple[float, ...]:
    return tuple(float(part) for part in text.split(",") if part.strip())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", action="append", choices=ALL_SCENARIOS, metavar="NAME",
                        help=f"run only this scenario (repeatable; one of {', '.join(ALL_SCENARIOS)}; default: all but "
                             f"{', '.join(ON_REQUEST)})")
    parser.add_argument("--quick", action="store_true",
                        help="a reduced run, about a minute (CI smoke; asserts nothing)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default=None,
                        help="sizes and durations: full (default), quick (= --quick) or smoke (a few seconds)")
    parser.add_argument("--system", action="append", choices=SYSTEMS, metavar="NAME",
                        help=f"measure only this system (repeatable; {', '.join(SYSTEMS)}; default: all). "
                             "pricefeed is its seed-000 WebSocket; hermes-ws and hermes-sse are its Hermes /ws and "
                             "SSE faces on the API port, streams its seed-004 /ws/stream on the stream service "
                             f"({', '.join(FANOUT_ONLY)}: fanout scenario only)")
    parser.add_argument("--json", type=Path, default=Path("bench-results.json"), metavar="FILE",
                        help="write the results here (default: bench-results.json)")
    parser.add_argument("--plot", type=Path, default=None, metavar="FILE",
                        help="PNG of latency against delivered load (default: the --json path with .png)")
    parser.add_argument("--clients", type=int, default=None, help="clients of the fanout and latency scenarios")
    parser.add_argument("--rates", type=_rates, default=None, metavar="R,R,...",
                        help="slots per second tried by the fanout sweep (every feed updates once per slot)")
    parser.add_argument("--latency-rate", type=float, default=None, metavar="R",
                        help="slots per second of the latency scenario (default: half of pricefeed's fanout point)")
    parser.add_argument("--idle-connections", type=int, default=None)
    parser.add_argument("--policy-rounds", type=int, default=None, metavar="N",
                        help="pairs of windows (policy off and on) of the policy scenario")
    parser.add_argument("--measure-seconds", type=float, default=None, metavar="S")
    parser.add_argument("--warmup-seconds", type=float, default=None, metavar="S")
    parser.add_argument("--client-procs", type=int, default=None,
                        help="counting load-client processes (default 1), besides the one that samples latency")
    parser.add_argument("--server-cpus", default="auto", metavar="LIST",
                        help="CPUs for the server, e.g. 0 (default: the first CPU; 'none' to not pin)")
    parser.add_argument("--client-cpus", default="auto", metavar="LIST",
                        help="CPUs for the load clients, e.g. 1 (default: the other CPUs; 'none' to not pin)")


def run(args: argparse.Namespace) -> int:
    profile = PROFILES[args.profile or ("quick" if args.quick else "full")]
    overrides = {"fanout_clients": args.clients, "fanout_rates": args.rates, "idle_connections": args.idle_connections,
                 "measure_s": args.measure_seconds, "warmup_s": args.warmup_seconds,
                 "client_procs": args.client_procs, "policy_rounds": args.policy_rounds}
    profile = dataclasses.replace(profile, **{k: v for k, v in overrides.items() if v is not None})
    if args.measure_seconds is not None:  # one window length for every scenario
        profile = dataclasses.replace(profile, slow_measure_s=None)
    scenarios = [s for s in ALL_SCENARIOS if s in (args.scenario or set(ALL_SCENARIOS) - set(ON_REQUEST))]
    systems = [s for s in SYSTEMS if s in (args.system or SYSTEMS)]
    server_cpus, client_cpus = default_cpus()
    if args.server_cpus != "auto":
        server_cpus = _cpus(args.server_cpus)
    if args.client_cpus != "auto":
        client_cpus = _cpus(args.client_cpus)
    fd_limit = raise_fd_limit()
    if "idle" in scenarios and fd_limit < profile.idle_connections + 100:
        print(f"pricefeed bench: the open-files limit is {fd_limit}; the idle scenario needs "
              f"{profile.idle_connections + 100} (raise the hard limit or use --idle-connections)", file=sys.stderr)
        return 2

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    background = _background_load()
    if max(background.values(), default=0.0) > 0.1:
        progress(f"warning: the machine is already busy before the bench starts (per-CPU busy share {background}); "
                 "other processes will distort the figures")
    started_at = datetime.now(UTC)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pricefeed-bench-") as workdir:
        env = Env(server_cpus, client_cpus, Path(workdir), progress)
        env.say(f"profile {profile.name}: scenarios {', '.join(scenarios)}; systems {', '.join(systems)}; "
                f"server cpus {sorted(server_cpus) if server_cpus else 'any'}, "
                f"client cpus {sorted(client_cpus) if client_cpus else 'any'}")
        try:
            scenario_results = run_scenarios(profile, [s for s in scenarios if s in SCENARIOS], systems, env,
                                             args.latency_rate)
            if "socketio" in scenarios:
                scenario_results["socketio"] = socketio.run_socketio(profile.name, env, args.idle_connections)
            if analysis.SCENARIO in scenarios:
                scenario_results[analysis.SCENARIO] = analysis.run_analysis(profile.name, env)
            if policy.SCENARIO in scenarios:
                scenario_results[policy.SCENARIO] = policy.run_policy(profile, env)
            if scaling.SCENARIO in scenarios:
                scenario_results[scaling.SCENARIO] = scaling.run_scaling(profile, env)
            client_results = client_bench.run(profile.name, server_cpus, client_cpus, Path(workdir), env.say) \
                if client_bench.SCENARIO in scenarios else None
        except KeyboardInterrupt:
            print("pricefeed bench: interrupted", file=sys.stderr)
            return 130
    results = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - started, 1),
        "profile": dataclasses.asdict(profile),
        "environment": {**report.environment((server_cpus, client_cpus), fd_limit),
                        "background_core_busy_before_run": background},
        "method": {
            "latency": "client wall clock after parsing (orjson) minus the message's publish_time, the wall-clock "
                       "time the source produced the update. publish_time has millisecond resolution (truncated), "
                       "so each sample over-states latency by 0 to 1 ms (0.5 ms on average), the same for every "
                       "system. Every sample_every-th client samples; the sampling clients live in their own "
                       "process, and the counting clients run at a lower CPU priority (nice 10) on the same core, "
                       "so a sample is not delayed by the load generator reading hundreds of other sockets first.",
            "hermes_latency": "Hermes' messages give publish_time in whole seconds, so the sampling process also "
                              "holds one seed-000 connection to the same server and dates each Hermes delivery "
                              "by the millisecond publish_time of the same update (feed id, price and conf "
                              "mantissas) seen there; undated_samples counts deliveries it never saw",
            "streams_latency": "/ws/stream's data messages carry the publish_time of their price as timestamp "
                               "(milliseconds), and are dated by it as seed-000 messages are",
            "deliveries": "every price message received by every client during the measurement window: a text "
                          "frame on the seed-000 face, Hermes /ws and /ws/stream (one per feed per pass), a parsed "
                          "item of an SSE event on Hermes' stream (one event per pass carries every feed that moved)",
            "server_cpu": "server process user+system CPU seconds (/proc/PID/stat) per second of the window "
                          "(1.0 = one core)",
            "fanout_figure": "the rates are climbed until the server saturates (delivers < 90% of the offered "
                             "load). deliveries_per_s is the highest rate whose p99 is within the limit before "
                             "the first that is not; a system that never is gets its peak delivered rate, "
                             "p99_target_met false. peak_deliveries_per_cpu_s is the most deliveries per server "
                             "CPU-second of any step, the figure that moves least between runs. A step that "
                             "would end the climb or declare the limit is measured once more and the second "
                             "measurement decides (the first is kept under retried)",
            "ratios": "vs_ceiling, vs_naive (and vs_pricefeed for another face) are a face's figure divided by "
                      "that system's; the top-level ones are the seed-000 face's. faces_target (Hermes faces, "
                      ">= 0.5x) and streams_target (/ws/stream, >= 0.8x) compare peak deliveries per server "
                      "CPU-second with the seed-000 face's",
            "analysis": "N clients on /ws/analysis (1s bars, default periods) spread over M simulated feeds each "
                        "updated every 0.05 s; server_cpu_us_per_tick is the server's CPU over the accepted ticks; "
                        "analyses_per_tick counts the bars the server analysed (forming and closed, its /health "
                        "counter) per accepted tick, risk_measures_per_closed_bar the risk metrics it measured per "
                        "distinct closed bar the clients received; the _if_per_client figures are what they would "
                        "be were each client's computed for it (times clients per symbol)",
        },
        "scenarios": scenario_results,
    }
    if client_results is not None:
        results["client"] = client_results
    report.write_json(results, args.json)
    own_tables = ("socketio", analysis.SCENARIO, policy.SCENARIO, scaling.SCENARIO)
    harness_only = {**results, "scenarios": {k: v for k, v in scenario_results.items() if k not in own_tables}}
    print(report.table(harness_only))
    if "socketio" in scenario_results:
        print(socketio.table(scenario_results["socketio"]))
    if analysis.SCENARIO in scenario_results:
        print(analysis.table(scenario_results[analysis.SCENARIO]))
    if policy.SCENARIO in scenario_results:
        print(policy.table(scenario_results[policy.SCENARIO]))
    if scaling.SCENARIO in scenario_results:
        print(scaling.table(scenario_results[scaling.SCENARIO]))
    if client_results is not None:
        print(client_bench.table(client_results))
    plot_path = args.plot or args.json.with_suffix(".png")
    plotted = report.plot(harness_only, plot_path)
    print(f"results: {args.json}" + (f", plot: {plot_path}" if plotted else " (no plot: matplotlib missing or no "
                                                                             "latency data)"))
    return 0


def _background_load(seconds: float = 1.0) -> dict[int, float]:
    """How busy each CPU is before the bench starts anything (other work on the machine distorts figures)."""
    before = cpu_jiffies()
    time.sleep(seconds)
    return core_busy(before, cpu_jiffies())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pricefeed bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))
