"""``--workers N``: one ingest process and N edge processes that share the listening ports, run together.

One process serves one core. Here the parent only supervises: it starts the
ingest (sources, publishing on the Redis bus; no client port) and N edges
(the faces, each binding every port with ``SO_REUSEPORT`` so the kernel spreads
connections over them), starts again a child that dies, and on SIGTERM or
SIGINT stops them all cleanly before it exits (0 when every child did).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType

from .bus.socket import default_socket_path
from .config import Settings

log = logging.getLogger(__name__)

RESTART_DELAY_S = 1.0
STOP_TIMEOUT_S = 15.0


def worker_count(workers: int | str) -> int:
    return (os.cpu_count() or 1) if workers == "auto" else int(workers)


def why_not(settings: Settings) -> str | None:
    """What keeps ``--workers`` from running with these settings, if anything."""
    if settings.role == "ingest":
        return "--workers runs edge processes: it cannot go with --role ingest"
    return None


@dataclass
class Child:
    name: str
    command: list[str]
    proc: subprocess.Popen[bytes] | None = None
    died_at: float | None = None
    restarts: int = field(default=0)

    def start(self) -> None:
        self.proc = subprocess.Popen(self.command)
        self.died_at = None
        log.info("workers: %s started (pid %d)", self.name, self.proc.pid)


def children(settings: Settings, argv: Sequence[str]) -> list[Child]:
    base = [sys.executable, "-m", "pricefeed", "serve", *argv, "--workers", "1"]
    if settings.bus != "redis":  # no Redis: the ingest process serves the edges on a Unix socket
        base += ["--bus", "socket", "--bus-socket", str(settings.bus_socket or default_socket_path())]
    count = worker_count(settings.workers)
    edge = [*base, "--role", "edge", "--reuse-port", "true"]
    if settings.products is not None:  # the pythd port belongs to the ingest, whose local oracle prices them
        edge += ["--rpc", "false"]
    made = [Child(f"edge {n}", edge) for n in range(1, count + 1)]
    if settings.role == "all":  # with --role edge, the ingest runs elsewhere
        rpc = "true" if settings.products is not None and settings.rpc else "false"
        made.insert(0, Child("ingest", [*base, "--role", "ingest", "--api", "false", "--rpc", rpc]))
    return made


def run_workers(settings: Settings, argv: Sequence[str]) -> int:
    """Run the children until SIGTERM or SIGINT; 0 if all of them stopped cleanly."""
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    kids = children(settings, argv)
    try:
        for child in kids:
            child.start()
        while not stopping:
            time.sleep(0.2)
            now = time.monotonic()
            for child in kids:
                assert child.proc is not None
                if child.proc.poll() is None:
                    continue
                if child.died_at is None:
                    child.died_at = now
                    log.warning("workers: %s exited with %s; starting it again", child.name, child.proc.returncode)
                elif now - child.died_at >= RESTART_DELAY_S and not stopping:
                    child.restarts += 1
                    child.start()
    finally:
        codes = _stop_all(kids)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0 if all(code == 0 for code in codes) else 1


def _stop_all(kids: list[Child]) -> list[int]:
    """SIGTERM to every child (edges first, so clients go before their feed), then wait; kill what hangs."""
    running = [c for c in reversed(kids) if c.proc is not None and c.proc.poll() is None]
    for child in running:
        assert child.proc is not None
        child.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    codes = []
    for child in running:
        assert child.proc is not None
        try:
            codes.append(child.proc.wait(max(0.1, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            log.error("workers: %s did not stop in %.0f s: killed", child.name, STOP_TIMEOUT_S)
            child.proc.kill()
            codes.append(child.proc.wait())
    return codes
