"""A private redis-server for a test: a free port, a temporary directory, no persistence; stopped and restarted
at will (to see what pricefeed does while Redis is down)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from .orphans import die_with_parent
from .service import free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
MISSING_REASON = "needs redis-server (scripts/test installs Debian's redis-server when run as root)"


def redis_available() -> bool:
    return Path(REDIS_SERVER).exists()


def require_redis() -> None:
    """Skip without redis-server; in CI (where scripts/test installs it) its absence is a failure instead."""
    if not redis_available():
        if os.environ.get("CI"):
            pytest.fail(MISSING_REASON)
        pytest.skip(MISSING_REASON)


class RedisServer:
    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> RedisServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / f"redis-{self.port}.log").open("ab")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
             "--save", "", "--appendonly", "no", "--protected-mode", "yes"],
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:  # start-up, not data: polling the port is the honest wait
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.02)
        raise TimeoutError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
