"""Bench for /ws/analysis: N clients over M symbols at the simulated market's full rate.

Reports the server's CPU per tick and per delivered message, and that each
symbol's indicators are computed once per tick (bars analysed per accepted
tick of a watched feed ~ 1, however many clients watch it), from the stream
service's ``/health`` (``analysis``) and the API port's Prometheus counters.

    python -m benchmarks.analysis --clients 200 --symbols 50 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

from .common import cpu_seconds, free_port

ROOT = Path(__file__).resolve().parent.parent


def _accepted(metrics: str) -> float:
    return sum(float(m[1]) for m in re.finditer(r"^pricefeed_updates_accepted_total\{[^}]*\} (\S+)$", metrics, re.M))


async def _client(url: str, symbol: str, counts: list[int], index: int, ready: asyncio.Event) -> None:
    async with connect(url, max_size=2**22) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "subscribe", "symbol": symbol}))
        ready.set()
        async for _ in ws:
            counts[index] += 1


async def _snapshot(http: httpx.AsyncClient, streams: str, api: str, pid: int) -> tuple[float, float, float]:
    health = (await http.get(f"{streams}/health")).json()
    metrics = (await http.get(f"{api}/metrics")).text
    return cpu_seconds(pid), float(health["analysis"]["computations"]), _accepted(metrics)


async def run(clients: int, symbols: int, seconds: float, interval: float) -> dict[str, Any]:
    api_port, streams_port, port = free_port(), free_port(), free_port()
    with tempfile.TemporaryDirectory() as workdir:
        cmd = [sys.executable, "-m", "pricefeed", "serve", "--source", "sim", "--host", "127.0.0.1", "--port",
               str(port), "--api-host", "127.0.0.1", "--api-port", str(api_port), "--streams-host", "127.0.0.1",
               "--streams-port", str(streams_port), "--db", f"{workdir}/db.sqlite", "--sim-feeds", str(symbols),
               "--sim-equities", "false", "--sim-interval", str(interval), "--log-level", "WARNING", "--rpc", "false"]
        proc = subprocess.Popen(cmd, cwd=ROOT)
        try:
            streams, api = f"http://127.0.0.1:{streams_port}", f"http://127.0.0.1:{api_port}"
            async with httpx.AsyncClient() as http:
                for _ in range(200):
                    try:
                        if (await http.get(f"{streams}/health")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
                ids = (await http.get(f"{api}/api/price_feed_ids")).json()[:symbols]
                counts = [0] * clients
                events = [asyncio.Event() for _ in range(clients)]
                url = f"ws://127.0.0.1:{streams_port}/ws/analysis"
                tasks = [asyncio.create_task(_client(url, "0x" + ids[i % len(ids)], counts, i, events[i]))
                         for i in range(clients)]
                await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 60)
                await asyncio.sleep(2)  # past the subscribe snapshots
                cpu0, computed0, ticks0 = await _snapshot(http, streams, api, proc.pid)
                sent0, start = sum(counts), time.monotonic()
                await asyncio.sleep(seconds)
                cpu1, computed1, ticks1 = await _snapshot(http, streams, api, proc.pid)
                sent1, elapsed = sum(counts), time.monotonic() - start
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            proc.terminate()
            proc.wait(30)
    ticks, cpu, computed, sent = ticks1 - ticks0, cpu1 - cpu0, computed1 - computed0, sent1 - sent0
    return {"clients": clients, "symbols": len(ids), "seconds": round(elapsed, 2),
            "ticks_per_s": round(ticks / elapsed, 1), "messages_per_s": round(sent / elapsed, 1),
            "server_cpu_share": round(cpu / elapsed, 3),
            "server_cpu_us_per_tick": round(cpu * 1e6 / ticks, 1) if ticks else None,
            "server_cpu_us_per_message": round(cpu * 1e6 / sent, 2) if sent else None,
            "analyses_per_tick": round(computed / ticks, 3) if ticks else None}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--sim-interval", type=float, default=0.05,
                        help="seconds between updates of each simulated feed (the market's rate)")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run(args.clients, args.symbols, args.seconds, args.sim_interval)), indent=2))


if __name__ == "__main__":
    main()
