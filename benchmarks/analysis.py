"""The ``analysis`` scenario: N clients on /ws/analysis over M symbols at the simulated market's full rate.

Reports the server's CPU per tick and per delivered message, and counts what it computed: bars analysed
(the forming bar's indicators on each tick, a closed bar's indicators and patterns on each close) per
accepted tick, and risk metrics measured per distinct closed bar the clients received. Computed once per
symbol, those are about 1 however many clients watch a symbol; were they computed per client they would be
``clients / symbols`` times that (``if_per_client``). The counts and the ticks come from one answer of the
API port's ``/status`` (``analysis``, ``hub.updates_total``).

    pricefeed bench --scenario analysis [--quick]
    python -m benchmarks.analysis --clients 200 --symbols 50 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import connect

from .common import cpu_seconds, free_port, pin

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = "analysis"
INTERVAL = "1s"
"""The candles the clients analyse: one-second bars, so a window of seconds sees every symbol close bars (their
patterns and risk metrics) as well as the forming bar's indicators on every tick."""


@dataclass(frozen=True)
class Size:
    clients: int
    symbols: int
    measure_s: float
    warmup_s: float
    sim_interval_s: float = 0.05
    """Seconds between the simulated market's updates of each feed (its full rate in the benches)."""


SIZES = {"full": Size(200, 50, 15.0, 2.0), "quick": Size(40, 10, 3.0, 1.0), "smoke": Size(8, 4, 1.0, 0.5)}


class _Counts:
    """What the clients received: messages, and the distinct closed bars (symbol, bar start) among them."""

    def __init__(self) -> None:
        self.messages = 0
        self.closed: set[tuple[str, str]] = set()


async def _client(url: str, feed_id: str, counts: _Counts, ready: asyncio.Event) -> None:
    async with connect(url, max_size=2**22) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "subscribe", "symbol": feed_id, "interval": INTERVAL}))
        ready.set()
        async for frame in ws:
            counts.messages += 1
            message = orjson.loads(frame)
            data = message.get("data")
            if isinstance(data, dict) and data.get("final"):
                counts.closed.add((message["symbol"], data["bar"]["start"]))


async def _snapshot(http: httpx.AsyncClient, api: str, pid: int) -> tuple[float, float, float, float]:
    """CPU seconds, bars analysed, risk measures and accepted ticks; the counts from one ``/status`` answer, so
    they are of the same instant however late a busy server answers."""
    status = (await http.get(f"{api}/status")).json()
    analysis = status["analysis"]
    return (cpu_seconds(pid), float(analysis["computations"]), float(analysis["risk"]["computations"]),
            float(status["hub"]["updates_total"]))


async def _wait_healthy(http: httpx.AsyncClient, url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if (await http.get(url)).status_code == 200:
                return
        await asyncio.sleep(0.1)
    raise RuntimeError("the server did not become healthy in 30 s")


async def measure(size: Size, workdir: Path, server_cpus: set[int] | None = None,
                  say: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    api_port, streams_port, port = free_port(), free_port(), free_port()
    cmd = [sys.executable, "-m", "pricefeed", "serve", "--source", "sim", "--host", "127.0.0.1", "--port", str(port),
           "--api-host", "127.0.0.1", "--api-port", str(api_port), "--streams-host", "127.0.0.1",
           "--streams-port", str(streams_port), "--db", str(workdir / f"analysis-{port}.db"),
           "--sim-feeds", str(size.symbols), "--sim-equities", "false", "--sim-interval", str(size.sim_interval_s),
           "--log-level", "WARNING", "--rpc", "false", "--crypto", "false"]
    with (workdir / f"analysis-{port}.log").open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    pin(proc.pid, server_cpus)
    tasks: list[asyncio.Task[None]] = []
    try:
        streams, api = f"http://127.0.0.1:{streams_port}", f"http://127.0.0.1:{api_port}"
        async with httpx.AsyncClient() as http:
            await _wait_healthy(http, f"{streams}/health", proc)
            ids = (await http.get(f"{api}/api/price_feed_ids")).json()[:size.symbols]
            counts = _Counts()
            events = [asyncio.Event() for _ in range(size.clients)]
            url = f"ws://127.0.0.1:{streams_port}/ws/analysis"
            say(f"analysis: {size.clients} clients on /ws/analysis over {len(ids)} symbols ({INTERVAL} bars), "
                f"each feed updated every {size.sim_interval_s:g} s ...")
            tasks = [asyncio.create_task(_client(url, "0x" + ids[i % len(ids)], counts, events[i]))
                     for i in range(size.clients)]
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 60)
            await asyncio.sleep(size.warmup_s)  # past the subscribe snapshots
            cpu0, analysed0, risk0, ticks0 = await _snapshot(http, api, proc.pid)
            sent0, closed0, start = counts.messages, set(counts.closed), time.monotonic()
            await asyncio.sleep(size.measure_s)
            cpu1, analysed1, risk1, ticks1 = await _snapshot(http, api, proc.pid)
            sent1, elapsed = counts.messages, time.monotonic() - start
            closed = len(counts.closed - closed0)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        proc.terminate()
        proc.wait(30)
    ticks, cpu, analysed, risk, sent = ticks1 - ticks0, cpu1 - cpu0, analysed1 - analysed0, risk1 - risk0, sent1 - sent0
    per_symbol = size.clients / len(ids)
    per_tick = analysed / ticks if ticks else None
    per_bar = risk / closed if closed else None
    return {
        "clients": size.clients, "symbols": len(ids), "clients_per_symbol": round(per_symbol, 2),
        "interval": INTERVAL, "sim_interval_s": size.sim_interval_s, "seconds": round(elapsed, 2),
        "ticks": int(ticks), "ticks_per_s": round(ticks / elapsed, 1), "messages_per_s": round(sent / elapsed, 1),
        "server_cpu_share": round(cpu / elapsed, 3),
        "server_cpu_us_per_tick": round(cpu * 1e6 / ticks, 1) if ticks else None,
        "server_cpu_us_per_message": round(cpu * 1e6 / sent, 2) if sent else None,
        "analyses": int(analysed),
        "analyses_per_tick": None if per_tick is None else round(per_tick, 3),
        "analyses_per_tick_if_per_client": None if per_tick is None else round(per_tick * per_symbol, 3),
        "closed_bars": closed, "risk_measures": int(risk),
        "risk_measures_per_closed_bar": None if per_bar is None else round(per_bar, 3),
        "risk_measures_per_closed_bar_if_per_client": None if per_bar is None else round(per_bar * per_symbol, 3),
    }


def run_analysis(profile_name: str, env: Any) -> dict[str, Any]:
    """The scenario at the profile's size; ``env`` is the harness' Env (cpus, workdir, progress). The clients run
    in this process, on the client CPUs while they do."""
    size = SIZES.get(profile_name, SIZES["full"])
    before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    pin(os.getpid(), env.client_cpus)
    try:
        result = asyncio.run(measure(size, env.workdir, env.server_cpus, env.say))
    finally:
        if before is not None:
            os.sched_setaffinity(0, before)
    env.say(f"analysis: {result['server_cpu_us_per_tick']} us server CPU per tick, {result['analyses_per_tick']} "
            f"analyses per tick ({result['analyses_per_tick_if_per_client']} if per client)")
    return result


def table(result: dict[str, Any]) -> str:
    r = result
    return "\n".join([
        f"== analysis ({r['clients']} clients on /ws/analysis over {r['symbols']} symbols, {r['interval']} bars, each "
        f"feed every {r['sim_interval_s']:g} s, {r['seconds']} s)",
        f"  ticks/s {r['ticks_per_s']}, messages/s {r['messages_per_s']}, server cpu {r['server_cpu_share']} "
        f"({r['server_cpu_us_per_tick']} us per tick, {r['server_cpu_us_per_message']} us per message)",
        f"  analyses per tick {r['analyses_per_tick']} (per client it would be "
        f"{r['analyses_per_tick_if_per_client']}); risk measures per closed bar "
        f"{r['risk_measures_per_closed_bar']} over {r['closed_bars']} bars (per client "
        f"{r['risk_measures_per_closed_bar_if_per_client']})", ""])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--sim-interval", type=float, default=0.05,
                        help="seconds between updates of each simulated feed (the market's rate)")
    args = parser.parse_args(argv)
    size = Size(args.clients, args.symbols, args.seconds, 2.0, args.sim_interval)
    with tempfile.TemporaryDirectory() as workdir:
        print(json.dumps(asyncio.run(measure(size, Path(workdir))), indent=2))


if __name__ == "__main__":
    main()
