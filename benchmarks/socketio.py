"""The ``socketio`` scenario: idle Socket.IO connections on ``crypto-prices``, memory and broadcast time.

N connections (10 000 in the full run) subscribe to ``crypto-prices`` and then only
listen. Measured: the server's resident memory per connection, and how long one
broadcast takes to reach every connection, from the prices' publish time to a
client having parsed the array (p50 and p99 over every delivery, and the median
of each broadcast's slowest delivery: the time to reach them all). The same run
measures pricefeed's face (one encoding, the same packet queued to every
connection) and a baseline: python-socketio's own ``emit(..., room=...)`` on the
same ASGI server and settings, broadcasting the same array once per second.

    python -m benchmarks.socketio baseline --port P     # the baseline server
    python -m benchmarks.socketio clients --url U ...   # a load-client process (driven over stdin/stdout)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .common import HIST_SCALE, cpu_seconds, free_port, iso_time, parse_iso_time, percentiles, pin, rss_bytes

SYSTEMS = ("pricefeed", "python-socketio")
SUBSCRIBE = b'42["subscribe",{"channel":"crypto-prices"}]'
EVENT_PREFIX = b'42["crypto-prices",'


@dataclass(frozen=True)
class Size:
    connections: int
    broadcasts: int
    interval_s: float
    """Seconds between broadcasts (the simulated market's tick; the baseline's loop). The seed refreshes every 10 s;
    at 10 000 connections one broadcast costs the server most of a second, so the full run leaves it 5 s."""


SIZES = {"full": Size(10_000, 8, 5.0), "quick": Size(500, 5, 1.0), "smoke": Size(50, 2, 1.0)}


# -- the scenario, run by ``pricefeed bench`` ---------------------------------------------------------


def run_socketio(profile_name: str, env: Any, connections: int | None = None) -> dict[str, Any]:
    """Both systems at the profile's size; ``env`` is the harness' Env (cpus, workdir, progress)."""
    size = SIZES.get(profile_name, SIZES["full"])
    n = connections or size.connections
    per_system = {system: _measure(system, env, n, size) for system in SYSTEMS}
    ours, theirs = per_system["pricefeed"]["figure"], per_system["python-socketio"]["figure"]
    return {
        "pricefeed": per_system["pricefeed"],
        "baselines": {"python-socketio": per_system["python-socketio"]},
        "vs_python_socketio": {key: _ratio(ours.get(key), theirs.get(key))
                               for key in ("kib_per_connection", "p50_ms", "p99_ms", "all_p50_ms")},
    }


def _measure(system: str, env: Any, n: int, size: Size) -> dict[str, Any]:
    interval = size.interval_s
    env.say(f"socketio: {system}, {n:,} idle Socket.IO connections on crypto-prices ...")
    port = free_port()
    root = Path(__file__).resolve().parents[1]
    log_path = env.workdir / f"socketio-{system}-{port}.log"
    if system == "pricefeed":
        cmd = [sys.executable, "-m", "pricefeed", "serve", "--source", "sim", "--sim-interval", str(interval),
               "--host", "127.0.0.1", "--port", str(free_port()), "--api-host", "127.0.0.1",
               "--api-port", str(free_port()), "--rpc", "false", "--crypto", "true", "--crypto-host", "127.0.0.1",
               "--crypto-port", str(port), "--db", str(env.workdir / f"socketio-{port}.db"), "--log-level", "WARNING"]
    else:
        cmd = [sys.executable, "-m", "benchmarks.socketio", "baseline", "--port", str(port),
               "--interval", str(interval)]
    with log_path.open("wb") as log:
        server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    clients: subprocess.Popen[bytes] | None = None
    try:
        pin(server.pid, env.server_cpus)
        _wait_listening(server, port, log_path)
        time.sleep(2.0)  # start-up allocations settle before the baseline memory reading
        rss_before = rss_bytes(server.pid)
        clients = subprocess.Popen([sys.executable, "-m", "benchmarks.socketio", "clients", "--url",
                                    f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket",
                                    "--connections", str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=root)
        pin(clients.pid, env.client_cpus)
        ready = _read_line(clients, 600)
        time.sleep(2.0)
        rss_after = rss_bytes(server.pid)
        cpu_before = cpu_seconds(server.pid)
        assert clients.stdin is not None
        clients.stdin.write(orjson.dumps({"seconds": (size.broadcasts + 1) * interval + 0.5}) + b"\n")
        clients.stdin.flush()
        measured = _read_line(clients, size.broadcasts * interval + 120)
        cpu = cpu_seconds(server.pid) - cpu_before
    finally:
        for proc in (clients, server):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(10)
                if proc.poll() is None:
                    proc.kill()
    hist = {int(k): v for k, v in measured["hist"].items()}
    figure = {
        "connections": n, "connected": ready["connected"], "setup_s": ready["setup_s"],
        "server_rss_before_bytes": rss_before, "server_rss_after_bytes": rss_after,
        "kib_per_connection": round((rss_after - rss_before) / n / 1024, 2),
        "broadcasts": len(measured["slowest_ms"]), "deliveries": sum(hist.values()),
        "complete_broadcasts": measured["complete"],
        **{f"{k}_ms": v for k, v in percentiles(hist, (50.0, 99.0)).items()},
        "all_p50_ms": _median(measured["slowest_ms"]), "all_max_ms": max(measured["slowest_ms"], default=None),
        "server_cpu_s_per_s": round(cpu / measured["elapsed_s"], 3), "interval_s": interval,
    }
    env.say(f"socketio: {system} -> {figure['kib_per_connection']} KiB per connection; broadcast to all "
            f"p50 {figure['p50_ms']} ms, p99 {figure['p99_ms']} ms, slowest delivery median {figure['all_p50_ms']} ms "
            f"({figure['complete_broadcasts']}/{figure['broadcasts']} broadcasts reached all {n})")
    return {"figure": figure}


def table(result: dict[str, Any]) -> str:
    rows = [["system", "connections", "KiB/conn", "p50 ms", "p99 ms", "all (median) ms", "complete", "server cpu"]]
    for name, run in (("pricefeed", result["pricefeed"]), *result["baselines"].items()):
        f = run["figure"]
        rows.append([name, str(f["connected"]), str(f["kib_per_connection"]), str(f["p50_ms"]), str(f["p99_ms"]),
                     str(f["all_p50_ms"]), f"{f['complete_broadcasts']}/{f['broadcasts']}",
                     str(f["server_cpu_s_per_s"])])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    interval = result["pricefeed"]["figure"]["interval_s"]
    lines = [f"== socketio (idle connections on crypto-prices, one broadcast every {interval:g} s)"]
    lines += ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
              for row in rows]
    ratios = ", ".join(f"{k} {v}" for k, v in result["vs_python_socketio"].items())
    return "\n".join([*lines, f"  vs_python_socketio: {ratios}", ""])


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log_path: Path, timeout_s: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"server not listening after {timeout_s}s")


def _read_line(proc: subprocess.Popen[bytes], timeout_s: float) -> dict[str, Any]:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
    line = proc.stdout.readline() if ready else b""
    if not line:
        raise RuntimeError(f"load client {proc.pid} gave no answer (exit {proc.poll()})")
    reply: dict[str, Any] = orjson.loads(line)
    return reply


def _median(values: list[float]) -> float | None:
    ordered = sorted(values)
    return None if not ordered else round(ordered[len(ordered) // 2], 3)


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    return None if not ours or not theirs else round(ours / theirs, 3)


# -- the load client: raw Engine.IO v4 over picows ----------------------------------------------------


class _Recorder:
    def __init__(self) -> None:
        self.measuring = False
        self.latencies: dict[str, list[float]] = {}
        """Broadcast (its newest lastUpdated) -> each delivery's latency in ms."""
        self.produced: dict[str, float] = {}
        self.subscribed = 0
        self.all_subscribed = asyncio.Event()
        self.expected = 0

    def on_prices(self, payload: bytes, listener: Any) -> None:
        if not listener.subscribed:
            listener.subscribed = True  # the snapshot that answers the subscription
            self.subscribed += 1
            if self.subscribed == self.expected:
                self.all_subscribed.set()
            return
        if not self.measuring:
            return
        now = time.time()
        coins = orjson.loads(payload[2:])[1]
        stamp = max(coin["lastUpdated"] for coin in coins)
        latencies = self.latencies.get(stamp)
        if latencies is None:  # parse each broadcast's time once, not once per connection
            latencies = self.latencies[stamp] = []
            self.produced[stamp] = parse_iso_time(stamp)
        latencies.append((now - self.produced[stamp]) * 1000.0)


async def _clients(url: str, connections: int) -> None:
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    recorder = _Recorder()
    recorder.expected = connections

    class EngineIO(WSListener):
        def __init__(self) -> None:
            self.subscribed = False

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type != WSMsgType.TEXT:
                return
            payload = frame.get_payload_as_bytes()
            if payload == b"2":
                transport.send(WSMsgType.TEXT, b"3")  # the server's heartbeat
            elif payload.startswith(EVENT_PREFIX):
                recorder.on_prices(payload, self)
            elif payload.startswith(b"0{"):
                transport.send(WSMsgType.TEXT, b"40")  # Engine.IO open -> Socket.IO connect
            elif payload.startswith(b"40"):
                transport.send(WSMsgType.TEXT, SUBSCRIBE)

    started = time.monotonic()
    transports = []
    for begin in range(0, connections, 100):
        batch = min(100, connections - begin)
        opened = await asyncio.gather(*(ws_connect(EngineIO, url, read_buffer_init_size=2048,
                                                   websocket_handshake_timeout=600) for _ in range(batch)))
        transports += [transport for transport, _ in opened]
    await asyncio.wait_for(recorder.all_subscribed.wait(), 300)
    _emit({"connected": len(transports), "setup_s": round(time.monotonic() - started, 2)})
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    command = orjson.loads(await reader.readline())
    recorder.measuring = True
    began = time.monotonic()
    await asyncio.sleep(float(command["seconds"]))
    recorder.measuring = False
    # The first and last broadcasts may straddle the window: keep only those that began inside it whole.
    stamps = sorted(recorder.latencies)[1:-1] if len(recorder.latencies) > 2 else sorted(recorder.latencies)
    hist: dict[int, int] = {}
    for stamp in stamps:
        for ms in recorder.latencies[stamp]:
            key = max(0, int(ms * HIST_SCALE))
            hist[key] = hist.get(key, 0) + 1
    _emit({"elapsed_s": round(time.monotonic() - began, 3), "hist": hist,
           "slowest_ms": [round(max(recorder.latencies[s]), 3) for s in stamps],
           "complete": sum(1 for s in stamps if len(recorder.latencies[s]) == connections)})
    for transport in transports:
        transport.disconnect()


def _emit(event: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(event, option=orjson.OPT_NON_STR_KEYS) + b"\n")
    sys.stdout.buffer.flush()


# -- the baseline: python-socketio's own emit to a room ---------------------------------------------


COINS = (("BTC", "Bitcoin", 95000.12345678), ("ETH", "Ethereum", 3300.5), ("BNB", "Binance Coin", 650.25),
         ("ADA", "Cardano", 0.9012), ("SOL", "Solana", 180.75), ("DOT", "Polkadot", 6.123),
         ("USDT", "Tether", 1.0001), ("USDC", "USD Coin", 0.9999), ("XRP", "Ripple", 2.2), ("MATIC", "Polygon", 0.45))


def _baseline_array() -> list[dict[str, Any]]:
    """The same objects pricefeed sends from the simulated market (no 24 h figures), stamped now."""
    stamp = iso_time(time.time_ns() // 1000)
    return [{"symbol": s, "name": name, "price": price, "change24h": None, "changePercent24h": None,
             "volume24h": None, "marketCap": None, "lastUpdated": stamp, "stale": False} for s, name, price in COINS]


async def _baseline(port: int, interval_s: float) -> None:
    import socketio
    import uvicorn

    sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*", ping_interval=10, ping_timeout=20)

    @sio.on("subscribe")  # type: ignore[untyped-decorator]
    async def subscribe(sid: str, data: Any) -> None:
        await sio.enter_room(sid, "crypto-prices")
        await sio.emit("crypto-prices", _baseline_array(), to=sid)

    async def broadcaster() -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time() + interval_s
        while True:
            await asyncio.sleep(max(0.0, next_tick - loop.time()))
            next_tick = max(next_tick + interval_s, loop.time())
            await sio.emit("crypto-prices", _baseline_array(), room="crypto-prices")

    server = uvicorn.Server(uvicorn.Config(socketio.ASGIApp(sio), host="127.0.0.1", port=port, lifespan="off",
                                           access_log=False, log_level="warning", ws="websockets-sansio"))
    task = asyncio.create_task(broadcaster())
    await server.serve()
    task.cancel()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.socketio", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    baseline = commands.add_parser("baseline", help="python-socketio emitting to a room every --interval seconds")
    baseline.add_argument("--port", type=int, required=True)
    baseline.add_argument("--interval", type=float, default=1.0, help="seconds between broadcasts")
    clients = commands.add_parser("clients", help="idle Socket.IO connections that time each broadcast")
    clients.add_argument("--url", required=True)
    clients.add_argument("--connections", type=int, required=True)
    args = parser.parse_args(argv)
    import uvloop

    if args.command == "baseline":
        uvloop.run(_baseline(args.port, args.interval))
    else:
        import resource

        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        uvloop.run(_clients(args.url, args.connections))
    return 0


if __name__ == "__main__":
    os._exit(main())
