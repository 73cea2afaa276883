"""The processes of a bench step: the server under test (pricefeed or a baseline) and the load clients.

Every step is a fresh server process pinned to the server CPU, plus load-client processes pinned to the
other CPU(s); they talk to the harness over stdin/stdout (see ``loadclient``).
"""

from __future__ import annotations

import contextlib
import os
import resource
import select
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .common import free_port, lower_priority, merge_histograms, pin, rss_bytes
from .profiles import FACES, LOAD_CLIENT_FACE, POLICY_SYSTEM, PRICEFEED_VARIANTS, REDIS_SYSTEM, Profile


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


POLICY_KEY = "bench-secret"
POLICY_KEYS = f"""
[[keys]]
name = "bench"
key = "{POLICY_KEY}"
limits = {{ connections = 1000000, subscriptions = 100000000, messages_per_second = 1000, bytes_per_second = 1e12 }}
"""
"""Every limit a key can have, on and never reached: the policy scenario measures their checks, not refusals."""


class Server:
    """pricefeed (``python -m pricefeed serve --source sim``) or a baseline, in a subprocess.

    pricefeed serves every face of ``FACES``: the seed-000 WebSocket on ``port``, Hermes' ``/ws`` and SSE
    stream on ``api_port``, ``/ws/stream`` on ``streams_port``; ``url`` is the one the system under test names.
    Every listener is on a free loopback port (none on its default, which another run may hold).
    """

    def __init__(self, system: str, env: Env, profile: Profile, rate: float) -> None:
        self.system = system
        self.port = free_port()
        self.api_port: int | None = None
        self.streams_port: int | None = None
        interval = f"{1.0 / rate:.6g}"
        self.log_path = env.workdir / f"{system}-{self.port}.log"
        self.redis: subprocess.Popen[bytes] | None = None
        if system in FACES or system in PRICEFEED_VARIANTS:
            self.api_port, self.streams_port = free_port(), free_port()
            self.cmd = [sys.executable, "-m", "pricefeed", "serve", "--source", "sim", "--host", "127.0.0.1",
                        "--port", str(self.port), "--api-host", "127.0.0.1", "--api-port", str(self.api_port),
                        "--streams-host", "127.0.0.1", "--streams-port", str(self.streams_port),
                        "--db", str(env.workdir / f"db-{self.port}.sqlite"), "--sim-feeds", str(profile.feeds),
                        "--sim-interval", interval, "--seed", str(profile.seed), "--log-level", "WARNING",
                        "--rpc", "false", "--crypto", "false"]
            self.cmd += PRICEFEED_VARIANTS.get(system, ())
            if system == POLICY_SYSTEM:
                keys = env.workdir / "bench-keys.toml"
                keys.write_text(POLICY_KEYS)
                self.cmd += ["--keys", str(keys), "--cors-origins", "http://bench.example"]
            if system == REDIS_SYSTEM:
                self.redis_port = free_port()
                self.cmd += ["--redis-url", f"redis://127.0.0.1:{self.redis_port}/0"]
        else:
            self.cmd = [sys.executable, "-m", "benchmarks.baselines", system, "--port", str(self.port),
                        "--feeds", str(profile.feeds), "--interval", interval, "--seed", str(profile.seed)]
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def seed000_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    @property
    def url(self) -> str:
        if self.system == POLICY_SYSTEM:
            return f"{self.seed000_url}?token={POLICY_KEY}"
        face = LOAD_CLIENT_FACE[self.system]
        if face == "hermes-ws":
            return f"ws://127.0.0.1:{self.api_port}/ws"
        if face == "hermes-sse":
            return f"http://127.0.0.1:{self.api_port}"
        if face == "streams":
            return f"ws://127.0.0.1:{self.streams_port}/ws/stream"
        return self.seed000_url

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout_s: float = 30.0) -> None:
        if self.system == REDIS_SYSTEM:
            self._start_redis(timeout_s)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT, cwd=project_root())
        pin(self.proc.pid, self.env.server_cpus)
        deadline = time.monotonic() + timeout_s
        waiting = [port for port in (self.port, self.api_port, self.streams_port) if port is not None]
        while waiting and time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.system} server exited with {self.proc.returncode}:\n{self.log_tail()}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", waiting[0])) == 0:
                    waiting.pop(0)
                    continue
            time.sleep(0.05)
        if waiting:
            raise TimeoutError(f"{self.system} server not listening after {timeout_s}s:\n{self.log_tail()}")

    def _start_redis(self, timeout_s: float) -> None:
        """A redis-server of this step's own, pinned with the server (its work is the Redis bus's cost)."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found: the Redis bus cannot be measured")
        self.redis = subprocess.Popen([binary, "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
                                       "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        pin(self.redis.pid, self.env.server_cpus)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.redis_port)) == 0:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"redis-server not listening after {timeout_s}s")

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def pid_args(self) -> list[str]:
        """``--server-pid`` of each process the server's work runs in (its redis-server too)."""
        pids = [self.pid] + ([self.redis.pid] if self.redis is not None else [])
        return [arg for pid in pids for arg in ("--server-pid", str(pid))]

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        for proc in (self.proc, self.redis):
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class LoadClients:
    """Load-client processes (``benchmarks.loadclient``), each holding a share of the connections."""

    def __init__(self, server: Server, env: Env, profile: Profile, connections: int, *, idle: bool = False) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self._buffers: dict[int, bytes] = {}
        sample_every = 0 if idle else profile.sample_every  # idle connections are not sampled
        counters = max(1, min(profile.client_procs, connections - (connections // sample_every if sample_every else 0)))
        roles = [("counter", part) for part in range(counters)] + ([] if idle else [("sampler", 0)])
        for role, part in roles:
            cmd = [sys.executable, "-m", "benchmarks.loadclient", "--url", server.url,
                   "--face", LOAD_CLIENT_FACE[server.system], "--clock-url", server.seed000_url,
                   "--clients", str(connections), "--role", role, "--part", str(part), "--parts", str(counters),
                   "--feeds", str(profile.feeds), "--per-client", str(profile.per_client), "--seed", str(profile.seed),
                   "--sample-every", str(sample_every), *server.pid_args(),
                   *(["--idle"] if idle else [])]
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=project_root())
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
            "undated_samples": sum(r["undated_samples"] for r in replies),
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


def project_root() -> Path:
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
