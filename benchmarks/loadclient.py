"""A load client process: many picows connections on uvloop, driven by the harness over stdin/stdout.

Of ``--clients`` numbered clients, every ``--sample-every``-th is a *sampling* client and the rest
are *counting* clients. A process plays one role (``--role``): the sampler opens every sampling
client; a counter opens its ``--part`` of the counting clients. The harness runs the counters at a
lower CPU priority than the sampler, so that a sample's latency is the time the server took to get
the frame to a client that was ready to read it, not the time this load generator, which plays a
thousand clients on one core, took to get round to that socket.

It opens its WebSocket connections, subscribes each to its feeds with the seed-000
``subscribe_multiple`` message and waits for every ``subscription_confirmed`` (with ``--protocol streams``:
seed 004's ``subscribe`` per feed and its ``subscription`` replies), then prints ``{"event": "ready"}``.
The harness then sends one JSON command per line:

- ``{"cmd": "measure", "seconds": S}``: count frames for S seconds and reply with the counts, a latency
  histogram, and the server's CPU and memory over the same window;
- ``{"cmd": "slow", "feeds": [...]}``: open one more connection that subscribes and then never reads;
- ``{"cmd": "quit"}``.

Every text frame is counted (a Python attribute increment per frame, nothing else). A sampling client
also parses each frame with orjson and records its latency: the wall clock after parsing minus the
message's ``publish_time`` (the moment the source produced the update; millisecond resolution,
truncated, so each sample over-states latency by 0 to 1 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import sys
import time
from typing import Any

import orjson
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from .common import (
    HIST_SCALE,
    core_busy,
    cpu_jiffies,
    cpu_seconds,
    feed_ids,
    parse_iso_time,
    rss_bytes,
    subscriptions,
    tcp_established,
)

TEXT = WSMsgType.TEXT
CONNECT_BATCH = 100

_hist: dict[int, int] = {}
_time_cache: dict[str, float] = {}
_pending_confirmations = 0
_all_confirmed: asyncio.Event | None = None
_streams = False
"""Seed 004's /ws/stream: a subscribe per feed, and the time of a price in the message's ``timestamp``."""
closed_connections = 0


def _confirmed() -> None:
    global _pending_confirmations
    _pending_confirmations -= 1
    if _pending_confirmations == 0 and _all_confirmed is not None:
        _all_confirmed.set()


class Counting(WSListener):
    """Counts text frames; until its subscriptions are confirmed it also looks for the confirmations.

    A sampling one also parses every price frame and records its end-to-end latency.
    """

    def __init__(self, sampling: bool) -> None:
        self.frames = 0
        self.expect = 0
        self.sampling = sampling

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type != TEXT:
            return
        self.frames += 1
        if self.expect:
            self._setup(frame)
        elif self.sampling:
            _record_latency(frame)

    def _setup(self, frame: WSFrame) -> None:
        marker = b'"status":"subscribed"' if _streams else b'"subscription_confirmed"'
        if marker in frame.get_payload_as_bytes():
            self.expect -= 1
            _confirmed()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        global closed_connections
        closed_connections += 1


def _record_latency(frame: WSFrame) -> None:
    message = orjson.loads(frame.get_payload_as_bytes())
    now = time.time()
    data = message.get("data")
    if data is None:
        return
    stamp = message["timestamp"] if _streams else data["publish_time"]
    produced = _time_cache.get(stamp)
    if produced is None:
        if len(_time_cache) > 10_000:
            _time_cache.clear()
        produced = _time_cache[stamp] = parse_iso_time(stamp)
    key = int((now - produced) * 1000.0 * HIST_SCALE)
    if key < 0:
        key = 0
    _hist[key] = _hist.get(key, 0) + 1


class Slow(WSListener):
    """A connection that never reads (its reading is paused right after the handshake)."""


def _small_buffer_socket_factory(rcvbuf: int) -> Any:
    async def factory(parsed_url: Any) -> socket.socket:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (parsed_url.host, parsed_url.port))
        return sock

    return factory


def _subscribe_message(feeds: list[str]) -> bytes:
    return orjson.dumps({"type": "subscribe_multiple", "subscriptions": [{"feed_id": f} for f in feeds]})


def _subscribe(transport: WSTransport, feeds: list[str]) -> None:
    if _streams:
        for feed in feeds:
            transport.send(TEXT, orjson.dumps({"type": "subscribe", "symbol": feed}))
    else:
        transport.send(TEXT, _subscribe_message(feeds))


def _emit(event: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(event) + b"\n")
    sys.stdout.buffer.flush()


async def _open(url: str, sampling: bool, idle: bool) -> tuple[WSTransport, Counting]:
    transport, listener = await ws_connect(lambda: Counting(sampling), url,
                                           read_buffer_init_size=1024 if idle else 16384,
                                           websocket_handshake_timeout=30)
    assert isinstance(listener, Counting)
    return transport, listener


async def main(args: argparse.Namespace) -> None:
    global _pending_confirmations, _all_confirmed, _streams
    _streams = args.protocol == "streams"
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    started = time.monotonic()
    mine = my_clients(args.clients, args.sample_every, args.role, args.part, args.parts)
    sampling = args.role == "sampler"
    all_subs = [] if args.idle else subscriptions(feed_ids(args.feeds), 0, args.clients, args.per_client, args.seed)
    _all_confirmed = asyncio.Event()
    _pending_confirmations = sum(len(all_subs[i]) for i in mine) if all_subs else 0
    if _pending_confirmations == 0:
        _all_confirmed.set()
    conns: list[tuple[WSTransport, Counting]] = []
    for begin in range(0, len(mine), CONNECT_BATCH):
        batch = mine[begin:begin + CONNECT_BATCH]
        opened = await asyncio.gather(*(_open(args.url, sampling, args.idle) for _ in batch))
        for i, (transport, listener) in zip(batch, opened, strict=True):
            if all_subs:
                listener.expect = len(all_subs[i])
                _subscribe(transport, all_subs[i])
        conns.extend(opened)
    await asyncio.wait_for(_all_confirmed.wait(), timeout=args.setup_timeout)
    _emit({"event": "ready", "connections": len(conns), "setup_s": round(time.monotonic() - started, 3)})

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    slow: list[WSTransport] = []
    while True:
        line = await reader.readline()
        if not line:
            break
        command = orjson.loads(line)
        if command["cmd"] == "quit":
            break
        if command["cmd"] == "slow":
            transport, _ = await ws_connect(Slow, args.url, socket_factory=_small_buffer_socket_factory(4096))
            transport.underlying_transport.pause_reading()
            _subscribe(transport, command["feeds"])
            slow.append(transport)
            _emit({"event": "slow_opened"})
        elif command["cmd"] == "measure":
            _emit({**await _measure(conns, float(command["seconds"]), args.server_pid),
                   "slow_open": sum(1 for transport in slow if _established(transport))})
    for transport, _ in conns:
        transport.disconnect()
    for transport in slow:
        transport.disconnect(graceful=False)


def _established(transport: WSTransport) -> bool:
    """Whether the server still holds this connection open (its reading is paused, so ask the kernel)."""
    sock = transport.underlying_transport.get_extra_info("socket")
    return sock is not None and tcp_established(sock)


async def _measure(conns: list[tuple[WSTransport, Counting]], seconds: float, server_pid: int) -> dict[str, Any]:
    closed_before = closed_connections
    frames_before = sum(listener.frames for _, listener in conns)
    _hist.clear()
    cpu_before, own_before, cores_before = cpu_seconds(server_pid), os.times(), cpu_jiffies()
    started = time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - started
    cpu_after, own_after, cores_after = cpu_seconds(server_pid), os.times(), cpu_jiffies()
    frames = sum(listener.frames for _, listener in conns) - frames_before
    hist = dict(_hist)
    return {
        "event": "measured",
        "elapsed_s": elapsed,
        "frames": frames,
        "hist": {str(k): v for k, v in hist.items()},
        "server_cpu_s": cpu_after - cpu_before,
        "server_rss": rss_bytes(server_pid),
        "client_cpu_s": (own_after.user + own_after.system) - (own_before.user + own_before.system),
        "closed_connections": closed_connections - closed_before,
        "core_busy": {str(cpu): busy for cpu, busy in core_busy(cores_before, cores_after).items()},
    }


def my_clients(clients: int, sample_every: int, role: str, part: int, parts: int) -> list[int]:
    """The numbers of the clients a process plays: every sampling one, or its share of the counting ones."""
    if role == "sampler":
        return list(range(0, clients, sample_every)) if sample_every > 0 else []
    counting = [i for i in range(clients) if sample_every <= 0 or i % sample_every]
    return counting[part::parts]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="pricefeed bench load client (driven by the harness)")
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, required=True, help="clients in all processes")
    parser.add_argument("--role", choices=("sampler", "counter"), required=True)
    parser.add_argument("--part", type=int, default=0, help="which share of the counting clients (a counter)")
    parser.add_argument("--parts", type=int, default=1, help="counter processes in all")
    parser.add_argument("--feeds", type=int, default=100)
    parser.add_argument("--per-client", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sample-every", type=int, default=10, help="0: no client samples")
    parser.add_argument("--idle", action="store_true")
    parser.add_argument("--protocol", choices=("seed000", "streams"), default="seed000",
                        help="the face's protocol: seed 000's WebSocket or seed 004's /ws/stream")
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--setup-timeout", type=float, default=30.0,
                        help="seconds to wait for every subscription to be confirmed")
    return parser.parse_args(argv)


if __name__ == "__main__":
    import uvloop

    uvloop.run(main(parse_args()))
