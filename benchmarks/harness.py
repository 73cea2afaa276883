"""The bench harness: start a server (pricefeed or a baseline) and load-client processes, measure, stop.

Every measurement ("step") is a fresh server process at one rate, pinned to the server CPU, plus
load-client processes pinned to the other CPU. The server's simulated market updates every one of
``feeds`` feeds once per slot; the rate is slots per second. Offered deliveries per second are
``subscriptions x rate``.
"""

from __future__ import annotations

import contextlib
import os
import resource
import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from .common import feed_ids, free_port, lower_priority, merge_histograms, percentiles, pin, rss_bytes

SYSTEMS = ("pricefeed", "streams", "ceiling", "naive")
BASELINES = ("ceiling", "naive")
FACE_SYSTEMS = {"streams": "/ws/stream"}
"""Other faces of the same pricefeed server, measured as systems of their own in the fanout scenario only, and
compared with the seed-000 face ("pricefeed"): seed 004's /ws/stream, within 20 % of its deliveries per
CPU-second."""
FACE_TARGET = 0.8
SCENARIOS = ("fanout", "latency", "idle", "slow")
SATURATED_BELOW = 0.9
"""A step is saturated when it delivers less than this share of the offered deliveries."""


@dataclass(frozen=True)
class Profile:
    """Sizes and durations of one kind of run (full, quick or smoke)."""

    name: str
    feeds: int = 100
    per_client: int = 10
    fanout_clients: int = 1000
    fanout_rates: tuple[float, ...] = (2, 5, 10, 20, 30, 40, 50, 60, 80, 100, 130)
    """Slots per second tried in turn (each feed updates once per slot)."""
    refine: bool = True
    """After the p99 limit is crossed, try the rate half-way between the last pass and the first failure."""
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


PROFILES = {
    "full": Profile("full"),
    "quick": Profile("quick", fanout_clients=100, fanout_rates=(50, 200), refine=False, idle_connections=1000,
                     slow_clients=20, slow_rate=50.0, slow_settle_s=1.0, slow_measure_s=None, warmup_s=0.5,
                     measure_s=1.5, sample_every=5),
    "smoke": Profile("smoke", fanout_clients=10, fanout_rates=(20,), refine=False, idle_connections=50,
                     slow_clients=5, slow_rate=20.0, slow_settle_s=0.3, slow_measure_s=None, warmup_s=0.2,
                     measure_s=0.5, sample_every=2),
}


@dataclass
class Env:
    """Where processes run and how progress is shown."""

    server_cpus: set[int] | None
    client_cpus: set[int] | None
    workdir: Path
    progress: Callable[[str], None]
    started: float = field(default_factory=time.monotonic)

    def say(self, message: str) -> None:
        self.progress(f"[{time.monotonic() - self.started:6.1f}s] {message}")


def default_cpus() -> tuple[set[int] | None, set[int] | None]:
    """Server on the first CPU we may use, clients on the others; no pinning on a single CPU."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None, None
    if len(cpus) < 2:
        return None, None
    return {cpus[0]}, set(cpus[1:])


def raise_fd_limit() -> int:
    """Raise the soft open-files limit to the hard one (children inherit it); the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# -- processes ------------------------------------------------------------------------------------


class Server:
    """pricefeed (``python -m pricefeed serve --source sim``) or a baseline, in a subprocess."""

    def __init__(self, system: str, env: Env, profile: Profile, rate: float) -> None:
        self.system = system
        self.port = free_port()
        interval = f"{1.0 / rate:.6g}"
        self.log_path = env.workdir / f"{system}-{self.port}.log"
        self.path = FACE_SYSTEMS.get(system, "/")
        if system == "pricefeed" or system in FACE_SYSTEMS:
            ports = {"--port": free_port(), "--api-port": free_port(), "--streams-port": free_port()}
            self.port = ports["--streams-port" if system == "streams" else "--port"]
            self.cmd = [sys.executable, "-m", "pricefeed", "serve", "--source", "sim", "--host", "127.0.0.1",
                        "--api-host", "127.0.0.1", "--streams-host", "127.0.0.1",
                        *(str(part) for option, port in ports.items() for part in (option, port)),
                        "--db", str(env.workdir / f"db-{self.port}.sqlite"), "--sim-feeds", str(profile.feeds),
                        "--sim-interval", interval, "--seed", str(profile.seed), "--log-level", "WARNING",
                        "--rpc", "false"]
        else:
            self.cmd = [sys.executable, "-m", "benchmarks.baselines", system, "--port", str(self.port),
                        "--feeds", str(profile.feeds), "--interval", interval, "--seed", str(profile.seed)]
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.path}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout_s: float = 30.0) -> None:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT, cwd=_project_root())
        pin(self.proc.pid, self.env.server_cpus)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.system} server exited with {self.proc.returncode}:\n{self.log_tail()}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"{self.system} server not listening after {timeout_s}s:\n{self.log_tail()}")

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class LoadClients:
    """Load-client processes (``benchmarks.loadclient``), each holding a share of the connections."""

    def __init__(self, server: Server, env: Env, profile: Profile, connections: int, *, idle: bool = False) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self._buffers: dict[int, bytes] = {}
        sample_every = 0 if idle else profile.sample_every  # idle connections are not sampled
        counters = max(1, min(profile.client_procs, connections - (connections // sample_every if sample_every else 0)))
        roles = [("counter", part) for part in range(counters)] + ([] if idle else [("sampler", 0)])
        for role, part in roles:
            cmd = [sys.executable, "-m", "benchmarks.loadclient", "--url", server.url, "--clients", str(connections),
                   "--role", role, "--part", str(part), "--parts", str(counters), "--feeds", str(profile.feeds),
                   "--per-client", str(profile.per_client), "--seed", str(profile.seed),
                   "--sample-every", str(sample_every), "--server-pid", str(server.pid),
                   "--protocol", "streams" if server.system == "streams" else "seed000",
                   *(["--idle"] if idle else [])]
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=_project_root())
            pin(proc.pid, env.client_cpus)
            if role == "counter":
                lower_priority(proc.pid)
            self.procs.append(proc)

    def wait_ready(self, timeout_s: float = 120.0) -> list[dict[str, Any]]:
        return [self._read(proc, timeout_s) for proc in self.procs]

    def command(self, command: dict[str, Any], procs: list[subprocess.Popen[bytes]] | None = None,
                timeout_s: float = 60.0) -> list[dict[str, Any]]:
        targets = self.procs if procs is None else procs
        line = orjson.dumps(command) + b"\n"
        for proc in targets:
            assert proc.stdin is not None
            proc.stdin.write(line)
            proc.stdin.flush()
        return [self._read(proc, timeout_s) for proc in targets]

    def measure(self, seconds: float) -> dict[str, Any]:
        """Count for ``seconds`` in every client process; merged counts, latency and server figures."""
        replies = self.command({"cmd": "measure", "seconds": seconds}, timeout_s=seconds + 60)
        elapsed = max(r["elapsed_s"] for r in replies)
        hist = merge_histograms(r["hist"] for r in replies)
        return {
            "elapsed_s": elapsed,
            "frames": sum(r["frames"] for r in replies),
            "hist": hist,
            "server_cpu_s": replies[0]["server_cpu_s"],
            "server_rss": replies[0]["server_rss"],
            "client_cpu_s": sum(r["client_cpu_s"] for r in replies),
            "closed_connections": sum(r["closed_connections"] for r in replies),
            "slow_open": sum(r.get("slow_open", 0) for r in replies),
            "core_busy": {int(cpu): busy for cpu, busy in replies[0].get("core_busy", {}).items()},
        }

    def open_slow(self, feeds: list[str]) -> None:
        self.command({"cmd": "slow", "feeds": feeds}, procs=self.procs[:1])

    def _read(self, proc: subprocess.Popen[bytes], timeout_s: float) -> dict[str, Any]:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        buffer = self._buffers.get(fd, b"")
        deadline = time.monotonic() + timeout_s
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"load client {proc.pid} did not answer within {timeout_s}s")
            readable, _, _ = select.select([fd], [], [], remaining)
            if readable:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"load client {proc.pid} exited with {proc.wait()}")
                buffer += chunk
        line, _, self._buffers[fd] = buffer.partition(b"\n")
        reply: dict[str, Any] = orjson.loads(line)
        return reply

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(OSError):
                    assert proc.stdin is not None
                    proc.stdin.write(b'{"cmd":"quit"}\n')
                    proc.stdin.close()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _project_root() -> Path:
    return Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def running(system: str, env: Env, profile: Profile, rate: float, connections: int,
            *, idle: bool = False) -> Iterator[tuple[Server, LoadClients, dict[str, Any]]]:
    """A server at ``rate`` with ``connections`` clients connected (and subscribed unless ``idle``)."""
    server = Server(system, env, profile, rate)
    clients: LoadClients | None = None
    try:
        server.start()
        started_rss = server.rss()
        clients = LoadClients(server, env, profile, connections, idle=idle)
        ready = clients.wait_ready()
        yield server, clients, {"rss_before_clients": started_rss,
                                "setup_s": max(r["setup_s"] for r in ready)}
    finally:
        if clients is not None:
            clients.stop()
        server.stop()


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
                closed_connections=m["closed_connections"], saturated=delivered < SATURATED_BELOW * offered)


def describe(step: Step) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    return (f"{step.deliveries_per_s:>9,} deliv/s of {step.offered_deliveries_per_s:>9,} offered, "
            f"p50/p99/p99.9 {ms(step.p50_ms)}/{ms(step.p99_ms)}/{ms(step.p99_9_ms)} ms, "
            f"server cpu {step.server_cpu:.2f} (core busy {_pct(step.server_core_busy)}), "
            f"client cpu {step.client_cpu:.2f} (core busy {_pct(step.client_core_busy)})"
            + (" SATURATED" if step.saturated else ""))


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
    """Raise the rate until p99 passes the limit (or the server saturates); the figure is the last pass.

    A system that fails the limit at the lowest rate is swept on until it saturates, and its figure is
    its highest delivered rate, flagged ``p99_target_met: false``.
    """
    steps: list[Step] = []
    last_pass: Step | None = None
    first_fail: Step | None = None
    for rate in profile.fanout_rates:
        step = measure_step(system, env, profile, profile.fanout_clients, rate, "fanout")
        steps.append(step)
        if step.passes(profile.p99_limit_ms):
            last_pass = step
            continue
        if step.saturated or last_pass is not None:
            first_fail = step
            break
    if profile.refine and last_pass is not None and first_fail is not None:
        mid = round((last_pass.rate_slots_per_s + first_fail.rate_slots_per_s) / 2, 1)
        if mid not in (last_pass.rate_slots_per_s, first_fail.rate_slots_per_s):
            step = measure_step(system, env, profile, profile.fanout_clients, mid, "fanout (refine)")
            steps.append(step)
            if step.passes(profile.p99_limit_ms):
                last_pass = step
    steps.sort(key=lambda s: s.rate_slots_per_s)
    if last_pass is not None:
        chosen, met = last_pass, True
    else:
        chosen, met = max(steps, key=lambda s: s.deliveries_per_s), False
    figure = {**asdict(chosen), "p99_target_met": met,
              "peak_deliveries_per_s": max(s.deliveries_per_s for s in steps)}
    return {"figure": figure, "steps": [asdict(s) for s in steps]}


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
    "fanout": ("deliveries_per_s", "deliveries_per_cpu_s", "p99_ms"),
    "latency": ("p50_ms", "p99_ms", "deliveries_per_s"),
    "idle": ("bytes_per_connection",),
    "slow": ("p99_with_ms", "server_rss_growth_bytes"),
}


def ratios(scenario: str, ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, float | None]:
    """pricefeed's figure divided by the baseline's, for each headline figure of the scenario."""
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


def run_scenarios(profile: Profile, scenarios: list[str], systems: list[str], env: Env,
                  latency_rate: float | None = None) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for scenario in scenarios:
        per_system: dict[str, Any] = {}
        if scenario == "fanout":
            for system in systems:
                per_system[system] = fanout_sweep(system, env, profile)
            systems = [s for s in systems if s not in FACE_SYSTEMS]  # other faces: the fanout scenario only
        elif scenario == "latency":
            rate = latency_rate if latency_rate is not None else _half_load_rate(results, env, profile)
            for system in systems:
                per_system[system] = latency_run(system, env, profile, rate)
        elif scenario == "idle":
            for system in systems:
                per_system[system] = idle_run(system, env, profile)
        else:
            for system in systems:
                per_system[system] = slow_run(system, env, profile)
        results[scenario] = assemble(scenario, per_system, profile)
    return results


def assemble(scenario: str, per_system: dict[str, Any], profile: Profile) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if "pricefeed" in per_system:
        result["pricefeed"] = per_system["pricefeed"]
    result["baselines"] = {name: per_system[name] for name in BASELINES if name in per_system}
    if "pricefeed" in per_system:
        ours = per_system["pricefeed"]["figure"]
        for name in BASELINES:
            if name in per_system:
                result[f"vs_{name}"] = ratios(scenario, ours, per_system[name]["figure"])
        result["target"] = targets(scenario, result, profile)
    faces = {name: per_system[name] for name in FACE_SYSTEMS if name in per_system}
    if faces:
        result["faces"] = faces
    if "pricefeed" in per_system:
        seed000 = per_system["pricefeed"]["figure"].get("deliveries_per_cpu_s")
        for name, run in faces.items():
            share = ratio(run["figure"].get("deliveries_per_cpu_s"), seed000)
            result[f"{name}_vs_seed000"] = {
                "deliveries_per_cpu_s": share, "met": share is not None and share >= FACE_TARGET,
                "text": f"{FACE_SYSTEMS[name]} within {100 * (1 - FACE_TARGET):.0f} % of the seed-000 face's "
                        f"deliveries per CPU-second (got {share}x)"}
    result["ratio_note"] = "pricefeed / baseline: above 1 is better for deliveries, below 1 for latency and memory"
    return result


def _half_load_rate(results: dict[str, Any], env: Env, profile: Profile) -> float:
    """Half of the rate at which pricefeed's fan-out p99 reached the limit (sweeping first if needed)."""
    fanout = results.get("fanout", {}).get("pricefeed")
    if fanout is None:
        env.say("latency: finding pricefeed's fan-out point first (use --latency-rate to skip)")
        fanout = fanout_sweep("pricefeed", env, replace(profile, refine=False))
    return round(float(fanout["figure"]["rate_slots_per_s"]) / 2, 2)
