"""Start the real service for a test: as a subprocess (the way users run it) or in-process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from pricefeed.app import App
from pricefeed.config import load_settings

from .orphans import die_with_parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PortTaken(RuntimeError):
    """Another process bound a port we had chosen."""


class ServiceProcess:
    """``python -m pricefeed serve`` on free ports, with a private database (and the simulated market without
    its NSE equities unless ``--sim-equities`` is given)."""

    def __init__(self, db: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.db = db
        self.args = args
        self.env = env or {}
        self.ws_port = free_port()
        self.api_port = free_port()
        self.streams_port = free_port()
        self.crypto_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = db.with_suffix(f".{self.ws_port}.log")

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def streams_url(self) -> str:
        """The stream service of seed 004 (``/ws/stream`` and the rest), as ``ws://host:port``."""
        return f"ws://127.0.0.1:{self.streams_port}"

    @property
    def crypto_url(self) -> str:
        """The Socket.IO crypto-prices listener (seed 002)."""
        return f"http://127.0.0.1:{self.crypto_port}"

    async def start(self, timeout_s: float = 20.0, attempts: int = 3) -> ServiceProcess:
        """Start on free ports; a port taken between choosing and binding it means another try on new ones."""
        for attempt in range(attempts):
            try:
                await self._start_once(timeout_s)
                return self
            except PortTaken:
                if attempt == attempts - 1:
                    raise
                self.ws_port, self.api_port = free_port(), free_port()
                self.streams_port, self.crypto_port = free_port(), free_port()
        return self

    async def _start_once(self, timeout_s: float) -> None:
        rpc = [] if "--rpc-port" in self.args else ["--rpc-port", str(free_port())]
        rpc += ["--streams-host", "127.0.0.1", "--streams-port", str(self.streams_port)]
        rpc += ["--crypto-host", "127.0.0.1", "--crypto-port", str(self.crypto_port)]
        if "--sim-equities" not in self.args:  # the 13 Pyth feeds only, unless a test asks for the NSE equities
            rpc += ["--sim-equities", "false"]
        cmd = [sys.executable, "-m", "pricefeed", "serve", "--host", "127.0.0.1", "--port", str(self.ws_port),
               "--api-host", "127.0.0.1", "--api-port", str(self.api_port), "--db", str(self.db),
               "--log-level", "DEBUG", *rpc, *self.args]
        env = {**os.environ, **self.env}
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=die_with_parent)
        try:
            await self.wait_ready(timeout_s)
        except BaseException:  # not ready (a busy machine): leave no service behind, whatever the test does next
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            raise

    async def wait_ready(self, timeout_s: float) -> None:
        """Poll /health until the service answers (start-up, not data, so polling is the honest wait)."""
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    log = self.log()
                    if "address already in use" in log:
                        raise PortTaken(log)
                    raise RuntimeError(f"service exited with {self.proc.returncode}:\n{log}")
                try:
                    if (await client.get(self.api_url + "/health", timeout=1.0)).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise TimeoutError(f"service not ready after {timeout_s}s:\n{self.log()}")

    async def wait_for_prices(self, timeout_s: float = 10.0) -> None:
        """Wait until every feed has a price (the simulated market's first tick)."""
        deadline = time.monotonic() + timeout_s
        while any(f["price"] is None for f in (await self.get("/feeds")).json()):
            if time.monotonic() > deadline:
                raise TimeoutError("feeds still without prices")
            await asyncio.sleep(0.02)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def get(self, path: str, **params: Any) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.api_url) as client:
            return await client.get(path, params=params, timeout=5.0)

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    async def wait_exit(self, timeout_s: float = 10.0) -> int:
        assert self.proc is not None
        return await asyncio.wait_for(asyncio.to_thread(self.proc.wait), timeout_s)

    def kill(self) -> None:
        """``kill -9``: the process dies at once, with no clean stop."""
        self.signal(signal.SIGKILL)
        assert self.proc is not None
        self.proc.wait()
    async def restart(self, timeout_s: float = 20.0) -> None:
        """SIGTERM, wait for the clean exit, start again on the same ports with the same database."""
        await self.stop()
        await self._start_once(timeout_s)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await self.wait_exit()
            except TimeoutError:
                self.proc.kill()
                self.proc.wait()


def cluster_process(db: Path, role: str, redis_url: str, *args: str) -> ServiceProcess:
    """One process of a cluster on one Redis: ``--role ingest`` (the simulated market, publishing) or ``edge``."""
    return ServiceProcess(db, "--role", role, "--bus", "redis", "--redis-url", redis_url, "--source", "sim", *args)


@contextlib.asynccontextmanager
async def in_process(tmp_path: Path, **settings: Any) -> AsyncIterator[App]:
    """The service in this process on free ports (loopback only), with the simulated market (without its NSE
    equities unless asked) and a private database; ``settings`` override the defaults."""
    values: dict[str, Any] = {"source": ["sim"], "host": "127.0.0.1", "port": 0, "api_host": "127.0.0.1",
                              "api_port": 0, "db": str(tmp_path / "db"), "rpc": False,
                              "streams_host": "127.0.0.1", "streams_port": 0, "sim_equities": False,
                              "crypto_host": "127.0.0.1", "crypto_port": 0}
    values.update(settings)
    service = App(load_settings(values))
    await service.start()
    try:
        yield service
    finally:
        await service.stop()
