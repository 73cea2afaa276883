"""The client bench: ``pricefeed.client``'s de-duplicated throughput beside a bare ``websockets`` loop.

A local Lazer-shaped server (picows, pinned to the server CPU) sends every
connection that subscribes the same ``messages`` ``streamUpdated`` frames (3
feeds each, distinct ``timestampUs``) as fast as the connection takes them.
Then, each in a fresh process pinned to one client CPU:

- ``client``: pricefeed's resilient client with 4 connections, so it receives
  4 copies of every message and delivers each once, typed, with exact
  decimals; the figure is de-duplicated messages per second;
- ``bare``: Pyth's own Python consumer's loop (``apps/hip-3-pusher``): one
  ``websockets`` connection, ``json.loads`` of each frame, no de-duplication.

    python -m benchmarks.client --messages 20000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from .common import free_port, pin

SCENARIO = "client"
MESSAGES = {"full": 100_000, "quick": 20_000, "smoke": 3_000}
CONNECTIONS = 4
BATCH = 256
HIGH_WATER = 1 << 20


def frames(count: int) -> list[bytes]:
    """``count`` distinct ``streamUpdated`` messages, as a Lazer router would serialize them."""
    start = 1_796_000_000_000_000
    out = []
    for i in range(count):
        tick = start + i * 50
        out.append(orjson.dumps({"type": "streamUpdated", "subscriptionId": 1, "parsed": {
            "timestampUs": str(tick), "priceFeeds": [
                {"priceFeedId": feed, "price": str(base + i), "exponent": -8, "confidence": 1000 + i % 97,
                 "feedUpdateTimestamp": tick} for feed, base in ((1, 9_500_000_000_000), (2, 330_000_000_000),
                                                                 (6, 18_000_000_000))]}}))
    return out


# -- the server -------------------------------------------------------------------------------------------


async def serve(port: int, count: int) -> None:
    import logging

    logging.getLogger("picows").setLevel(logging.ERROR)  # it warns at every write-buffer high-water mark
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, ws_create_server

    payloads = frames(count)

    class Blaster(WSListener):
        def on_ws_connected(self, transport: WSTransport) -> None:
            self.transport = transport
            self.task: asyncio.Task[None] | None = None

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type == WSMsgType.TEXT and self.task is None:  # the subscribe request
                transport.send(WSMsgType.TEXT, b'{"type":"subscribed","subscriptionId":1}')
                self.task = asyncio.get_running_loop().create_task(self.blast())
            elif frame.msg_type == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()

        async def blast(self) -> None:
            sent = 0
            underlying = self.transport.underlying_transport
            while sent < count and not underlying.is_closing():
                if underlying.get_write_buffer_size() > HIGH_WATER:
                    await asyncio.sleep(0.0005)
                    continue
                for payload in payloads[sent:sent + BATCH]:
                    self.transport.send(WSMsgType.TEXT, payload)
                sent += BATCH
                await asyncio.sleep(0)

        def on_ws_disconnected(self, transport: WSTransport) -> None:
            if self.task is not None:
                self.task.cancel()

    def listener(request: WSUpgradeRequest) -> WSListener:
        return Blaster()

    server = await ws_create_server(listener, "127.0.0.1", port)
    print("ready", flush=True)
    await server.serve_forever()


# -- the two consumers --------------------------------------------------------------------------------


async def measure_client(url: str, count: int) -> dict[str, Any]:
    from pricefeed.client import ClientBuilder, LazerSubscription, StreamUpdated

    client = ClientBuilder("bench").with_endpoints([url]).with_num_connections(CONNECTIONS).build()
    received = 0
    first = 0.0
    async with client:
        await client.subscribe(LazerSubscription(1, price_feed_ids=[1, 2, 6]))
        cpu = time.process_time()
        async for message in client:
            if isinstance(message, StreamUpdated):
                if received == 0:
                    first, cpu = time.perf_counter(), time.process_time()
                received += 1
                if received == count:
                    break
        elapsed, cpu = time.perf_counter() - first, time.process_time() - cpu
        stats = client.stats()
    frames_in = sum(s.messages for s in stats)
    return {"messages": received, "seconds": round(elapsed, 3), "cpu_s": round(cpu, 3),
            "messages_per_s": round((received - 1) / elapsed), "frames_received": frames_in,
            "frames_per_s": round(frames_in / elapsed), "duplicates_dropped": sum(s.duplicates for s in stats),
            "connections": CONNECTIONS}


async def measure_bare(url: str, count: int) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    received = 0
    first = 0.0
    async with connect(url, max_size=None, compression=None) as ws:
        await ws.send(json.dumps({"type": "subscribe", "subscriptionId": 1, "priceFeedIds": [1, 2, 6],
                                  "properties": ["price"], "formats": [], "deliveryFormat": "json",
                                  "channel": "fixed_rate@200ms", "parsed": True}))
        cpu = time.process_time()
        async for frame in ws:
            data = json.loads(frame)
            if data["type"] == "streamUpdated":
                if received == 0:
                    first, cpu = time.perf_counter(), time.process_time()
                received += 1
                if received == count:
                    break
        elapsed, cpu = time.perf_counter() - first, time.process_time() - cpu
    return {"messages": received, "seconds": round(elapsed, 3), "cpu_s": round(cpu, 3),
            "messages_per_s": round((received - 1) / elapsed), "connections": 1}


# -- the harness ---------------------------------------------------------------------------------------


def _cpu(cpus: set[int] | None) -> set[int] | None:
    return {min(cpus)} if cpus else None


def run(profile: str, server_cpus: set[int] | None, client_cpus: set[int] | None, workdir: Path,
        say: Any = print) -> dict[str, Any]:
    """Both consumers against one server; every process pinned (the consumer to a single CPU)."""
    count = MESSAGES.get(profile, MESSAGES["full"])
    port = free_port()
    root = Path(__file__).resolve().parents[1]
    server = subprocess.Popen([sys.executable, "-m", "benchmarks.client", "serve", "--port", str(port),
                               "--messages", str(count)], stdout=subprocess.PIPE, cwd=root)
    pin(server.pid, server_cpus)
    results: dict[str, Any] = {"messages": count, "feeds_per_message": 3}
    try:
        assert server.stdout is not None
        server.stdout.readline()  # "ready"
        for mode in ("client", "bare"):
            say(f"client bench: {mode}, {count} messages")
            proc = subprocess.run([sys.executable, "-m", "benchmarks.client", "measure", mode,
                                   "--url", f"ws://127.0.0.1:{port}/v1/stream", "--messages", str(count),
                                   "--cpus", ",".join(map(str, sorted(_cpu(client_cpus) or [])))],
                                  capture_output=True, cwd=root, timeout=600, check=False)
            if proc.returncode != 0:
                results[mode] = {"error": proc.stderr.decode(errors="replace")[-2000:]}
                continue
            results[mode] = json.loads(proc.stdout)
    finally:
        server.terminate()
        server.wait(10)
    ours, bare = results.get("client", {}), results.get("bare", {})
    if "messages_per_s" in ours and "messages_per_s" in bare:
        results["client_vs_bare"] = round(ours["messages_per_s"] / bare["messages_per_s"], 3)
    results["method"] = ("unique streamUpdated messages per second after the first, in a process pinned to one CPU; "
                         "the client gets every message on 4 connections and delivers it once (typed, exact "
                         "decimals), the bare loop json.loads every frame of 1 connection")
    return results


def table(results: dict[str, Any]) -> str:
    lines = [f"client bench ({results['messages']} messages of {results['feeds_per_message']} feeds, one CPU):"]
    for mode, label in (("client", "pricefeed.client, 4 connections, de-duplicated"),
                        ("bare", "bare websockets loop, 1 connection")):
        row = results.get(mode, {})
        if "error" in row or not row:
            lines.append(f"  {label}: failed {row.get('error', '')[-300:]}")
            continue
        extra = f", {row['frames_per_s']:,} frames/s in, {row['duplicates_dropped']:,} duplicates dropped" \
            if mode == "client" else ""
        lines.append(f"  {label}: {row['messages_per_s']:,} messages/s (cpu {row['cpu_s']} s for "
                     f"{row['seconds']} s){extra}")
    if "client_vs_bare" in results:
        lines.append(f"  client / bare: {results['client_vs_bare']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.client", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    serve_parser = sub.add_parser("serve")
    serve_parser.add_argument("--port", type=int, required=True)
    serve_parser.add_argument("--messages", type=int, required=True)
    measure = sub.add_parser("measure")
    measure.add_argument("mode", choices=("client", "bare"))
    measure.add_argument("--url", required=True)
    measure.add_argument("--messages", type=int, required=True)
    measure.add_argument("--cpus", default="")
    parser.add_argument("--messages", type=int, default=None, help="messages per consumer (default: the full run's)")
    args = parser.parse_args(argv)
    if args.command == "serve":
        asyncio.run(serve(args.port, args.messages))
        return 0
    if args.command == "measure":
        if args.cpus:
            pin(os.getpid(), {int(c) for c in args.cpus.split(",")})
        measure_fn = measure_client if args.mode == "client" else measure_bare
        print(json.dumps(asyncio.run(measure_fn(args.url, args.messages))))
        return 0
    from .processes import default_cpus

    server_cpus, client_cpus = default_cpus()
    if args.messages:
        MESSAGES["full"] = args.messages
    with __import__("tempfile").TemporaryDirectory() as workdir:
        results = run("full", server_cpus, client_cpus, Path(workdir))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
