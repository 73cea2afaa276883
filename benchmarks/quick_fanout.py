"""A quick fan-out figure: deliveries per second from `pricefeed serve --source sim` to N picows clients.

    .venv/bin/python -m benchmarks.quick_fanout --clients 100 --feeds 100 --per-client 10 --interval 0.01

The full harness (baselines, latency percentiles, plots) is `pricefeed bench`, a later piece of work;
this one only counts frames, so the client is not the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect


class Counter(WSListener):
    frames = 0

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT:
            Counter.frames += 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(args: argparse.Namespace) -> dict[str, float]:
    ws_port, api_port = free_port(), free_port()
    db = Path(tempfile.mkdtemp()) / "bench.db"
    server = subprocess.Popen([sys.executable, "-m", "pricefeed", "serve", "--source", "sim", "--host", "127.0.0.1",
                               "--port", str(ws_port), "--api-host", "127.0.0.1", "--api-port", str(api_port),
                               "--db", str(db), "--sim-feeds", str(args.feeds), "--sim-interval", str(args.interval),
                               "--log-level", "WARNING", "--max-messages-per-second", "1000", "--rpc", "false"])
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                try:
                    feeds = (await http.get(f"http://127.0.0.1:{api_port}/feeds")).json()
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
        ids = [f["id"] for f in feeds]
        rng = random.Random(1)
        for _ in range(args.clients):
            transport, _listener = await ws_connect(Counter, f"ws://127.0.0.1:{ws_port}/")
            chosen = rng.sample(ids, args.per_client)
            transport.send(WSMsgType.TEXT, json.dumps(
                {"type": "subscribe_multiple", "subscriptions": [{"feed_id": i} for i in chosen]}).encode())
        await asyncio.sleep(args.warmup)
        start_frames, start_cpu, started = Counter.frames, cpu_seconds(server.pid), time.monotonic()
        await asyncio.sleep(args.seconds)
        elapsed = time.monotonic() - started
        deliveries = (Counter.frames - start_frames) / elapsed
        server_cpu = (cpu_seconds(server.pid) - start_cpu) / elapsed
        offered = args.clients * args.per_client / args.interval
        return {"offered_deliveries_per_s": offered, "deliveries_per_s": round(deliveries),
                "sim_updates_per_s": args.feeds / args.interval, "server_cpu": round(server_cpu, 2)}
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--feeds", type=int, default=100)
    parser.add_argument("--per-client", type=int, default=10)
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    args = parser.parse_args()
    import uvloop

    print(json.dumps(uvloop.run(run(args))))


if __name__ == "__main__":
    main()
