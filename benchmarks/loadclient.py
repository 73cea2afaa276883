"""A load client process: many connections on uvloop, driven by the harness over stdin/stdout.

Of ``--clients`` numbered clients, every ``--sample-every``-th is a *sampling* client and the rest
are *counting* clients. A process plays one role (``--role``): the sampler opens every sampling
client; a counter opens its ``--part`` of the counting clients. The harness runs the counters at a
lower CPU priority than the sampler, so that a sample's latency is the time the server took to get
the frame to a client that was ready to read it, not the time this load generator, which plays a
thousand clients on one core, took to get round to that socket.

``--face`` is the protocol the clients speak (``FACES``): the seed-000 WebSocket (pricefeed's port
8765 and the baselines), Hermes' ``/ws`` or Hermes' SSE stream (pricefeed's API port; see
``hermes_clients``), or seed 004's ``/ws/stream`` (its stream service; see ``streams_client``). Each
client subscribes to its feeds and the process waits until every one is confirmed (seed 000: every
``subscription_confirmed``; ``/ws``: the ``response``; SSE: the first event; ``/ws/stream``: a
``subscription`` per feed), then prints ``{"event": "ready"}``. The harness then sends one JSON command
per line:

- ``{"cmd": "measure", "seconds": S}``: count deliveries for S seconds and reply with the counts, a
  latency histogram, and the server's CPU and memory over the same window;
- ``{"cmd": "slow", "feeds": [...]}``: open one more (seed-000) connection that subscribes and then never reads;
- ``{"cmd": "quit"}``.

Every delivery is counted (a Python attribute increment per frame, or per SSE event, nothing else). A
sampling client also parses each message with orjson and records its latency: the wall clock after
parsing minus the update's ``publish_time`` (the moment the source produced it; millisecond resolution,
truncated, so each sample over-states latency by 0 to 1 ms; ``/ws/stream`` carries the same time as its
``data`` message's ``timestamp``). Hermes' messages date it to the second only, so a Hermes sampler dates
them by a seed-000 connection to the same server (``samples.PublishClock``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from . import samples
from .common import core_busy, cpu_jiffies, cpu_seconds, feed_ids, rss_bytes, subscriptions, tcp_established
from .hermes_clients import (
    HERMES_WS_CONFIRMATION,
    HERMES_WS_REFUSAL,
    SseStream,
    hermes_ws_sampler,
    hermes_ws_subscribe,
    sse_sampler,
    stream_request,
)
from .streams_client import STREAMS_CONFIRMATION, STREAMS_REFUSAL, sample_streams, streams_subscribe

TEXT = WSMsgType.TEXT
CONNECT_BATCH = 100
FACES = ("seed000", "hermes-ws", "hermes-sse", "streams")
CLOCKED_FACES = ("hermes-ws", "hermes-sse")
"""Faces whose messages date an update to the second only: their samplers need a seed-000 clock."""

_pending_confirmations = 0
_all_confirmed: asyncio.Event | None = None
_setup_failure: str | None = None
closed_connections = 0


def _confirmed() -> None:
    global _pending_confirmations
    _pending_confirmations -= 1
    if _pending_confirmations == 0 and _all_confirmed is not None:
        _all_confirmed.set()


def _refused(reason: str) -> None:
    """A subscription was refused: the set-up fails at once, with the server's reason."""
    global _setup_failure
    if _setup_failure is None:
        _setup_failure = reason
    if _all_confirmed is not None:
        _all_confirmed.set()


def _disconnected() -> None:
    global closed_connections
    closed_connections += 1


@dataclass(frozen=True)
class WsFace:
    """How a WebSocket face is subscribed to and confirms: the subscribe messages and the confirmations they earn."""

    subscribe: Callable[[list[str]], tuple[list[bytes], int]]
    confirmation: bytes
    refusal: bytes


SEED000 = WsFace(lambda feeds: ([orjson.dumps({"type": "subscribe_multiple",
                                               "subscriptions": [{"feed_id": f} for f in feeds]})], len(feeds)),
                 b'"subscription_confirmed"', b'"type":"error"')
HERMES_WS = WsFace(lambda feeds: ([hermes_ws_subscribe(feeds)], 1), HERMES_WS_CONFIRMATION, HERMES_WS_REFUSAL)
STREAMS = WsFace(lambda feeds: (streams_subscribe(feeds), len(feeds)), STREAMS_CONFIRMATION, STREAMS_REFUSAL)


class Counting(WSListener):
    """Counts text frames; until its subscriptions are confirmed it also looks for the confirmations.

    A sampling one also hands every later frame to ``sample``, which parses it and records its latency.
    """

    def __init__(self, face: WsFace, sample: Callable[[bytes], None] | None) -> None:
        self.frames = 0
        self.expect = 0
        self.face = face
        self.sample = sample

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type != TEXT:
            return
        self.frames += 1
        if self.expect:
            self._setup(frame)
        elif self.sample is not None:
            self.sample(frame.get_payload_as_bytes())

    def _setup(self, frame: WSFrame) -> None:
        payload = frame.get_payload_as_bytes()
        if self.face.confirmation in payload:
            self.expect -= 1
            _confirmed()
        elif self.face.refusal in payload:
            _refused(payload.decode(errors="replace")[:300])

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        _disconnected()


class Slow(WSListener):
    """A connection that never reads (its reading is paused right after the handshake)."""


class Client(Protocol):
    frames: int

    def close(self) -> None: ...


class WsClient:
    """A WebSocket connection and its counting listener, closed the same way as an SSE stream."""

    def __init__(self, transport: WSTransport, listener: Counting) -> None:
        self.transport = transport
        self.listener = listener

    @property
    def frames(self) -> int:
        return self.listener.frames

    def close(self) -> None:
        self.transport.disconnect()


def _small_buffer_socket_factory(rcvbuf: int) -> Any:
    async def factory(parsed_url: Any) -> socket.socket:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (parsed_url.host, parsed_url.port))
        return sock

    return factory


def _emit(event: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(event) + b"\n")
    sys.stdout.buffer.flush()


async def open_ws(url: str, face: WsFace, feeds: list[str], sample: Callable[[bytes], None] | None,
                  idle: bool = False) -> tuple[WSTransport, Counting]:
    """A WebSocket client, subscribed (unless it has no feeds); its confirmations are awaited by the caller."""
    transport, listener = await ws_connect(lambda: Counting(face, sample), url,
                                           read_buffer_init_size=1024 if idle else 16384,
                                           websocket_handshake_timeout=30)
    assert isinstance(listener, Counting)
    if feeds:
        messages, listener.expect = face.subscribe(feeds)
        for message in messages:
            transport.send(TEXT, message)
    return transport, listener


async def open_sse(url: str, feeds: list[str], sample: Callable[[bytes], None] | None) -> SseStream:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80

    def on_ready(failure: str | None) -> None:
        if failure is None:
            _confirmed()
        else:
            _refused(failure)

    _, stream = await asyncio.get_running_loop().create_connection(
        lambda: SseStream(stream_request(host, port, feeds), on_ready, sample, _disconnected), host, port)
    return stream


async def main(args: argparse.Namespace) -> None:
    global _pending_confirmations, _all_confirmed
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    started = time.monotonic()
    mine = my_clients(args.clients, args.sample_every, args.role, args.part, args.parts)
    sampling = args.role == "sampler"
    all_subs = [] if args.idle else subscriptions(feed_ids(args.feeds), 0, args.clients, args.per_client, args.seed)
    _all_confirmed = asyncio.Event()
    clock = samples.PublishClock() if sampling and args.face in CLOCKED_FACES else None
    if clock is not None:  # one more seed-000 connection, on every feed, to date Hermes deliveries
        _pending_confirmations += args.feeds
        await open_ws(args.clock_url, SEED000, feed_ids(args.feeds), clock.learn)
    opener = _opener(args, clock if sampling else None)
    per_feed = args.face in ("seed000", "streams")  # a confirmation per feed, else one per client
    _pending_confirmations += sum(len(all_subs[i]) if per_feed else 1 for i in mine) if all_subs else 0
    if _pending_confirmations == 0:
        _all_confirmed.set()
    clients: list[Client] = []
    for begin in range(0, len(mine), CONNECT_BATCH):
        batch = mine[begin:begin + CONNECT_BATCH]
        clients.extend(await asyncio.gather(*(opener(all_subs[i] if all_subs else []) for i in batch)))
    await asyncio.wait_for(_all_confirmed.wait(), timeout=args.setup_timeout)
    if _setup_failure is not None:
        sys.exit(f"load client: a subscription was refused: {_setup_failure}")
    _emit({"event": "ready", "connections": len(clients), "setup_s": round(time.monotonic() - started, 3)})

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
            for message in SEED000.subscribe(command["feeds"])[0]:
                transport.send(TEXT, message)
            slow.append(transport)
            _emit({"event": "slow_opened"})
        elif command["cmd"] == "measure":
            _emit({**await _measure(clients, float(command["seconds"]), args.server_pid, clock),
                   "slow_open": sum(1 for transport in slow if _established(transport))})
    for client in clients:
        client.close()
    for transport in slow:
        transport.disconnect(graceful=False)


def _opener(args: argparse.Namespace, clock: samples.PublishClock | None) -> Callable[[list[str]], Any]:
    """How this process opens one of its clients on its feeds (a coroutine function)."""
    if args.face == "hermes-sse":
        sample = sse_sampler(clock) if clock is not None else None
        return lambda feeds: open_sse(args.url, feeds, sample)
    sampling = args.role == "sampler"
    face, sample = {
        "hermes-ws": (HERMES_WS, hermes_ws_sampler(clock) if clock is not None else None),
        "streams": (STREAMS, sample_streams if sampling else None),
        "seed000": (SEED000, samples.sample_seed000 if sampling else None),
    }[args.face]

    async def open_one(feeds: list[str]) -> WsClient:
        return WsClient(*await open_ws(args.url, face, feeds, sample, args.idle))

    return open_one


def _established(transport: WSTransport) -> bool:
    """Whether the server still holds this connection open (its reading is paused, so ask the kernel)."""
    sock = transport.underlying_transport.get_extra_info("socket")
    return sock is not None and tcp_established(sock)


def _cpu_seconds(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


async def _measure(clients: list[Client], seconds: float, server_pids: list[int],
                   clock: samples.PublishClock | None) -> dict[str, Any]:
    closed_before = closed_connections
    frames_before = sum(client.frames for client in clients)
    samples.hist.clear()
    if clock is not None:
        clock.new_window()
    cpu_before, own_before, cores_before = _cpu_seconds(server_pids), os.times(), cpu_jiffies()
    started = time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - started
    cpu_after, own_after, cores_after = _cpu_seconds(server_pids), os.times(), cpu_jiffies()
    frames = sum(client.frames for client in clients) - frames_before
    hist = dict(samples.hist)
    return {
        "event": "measured",
        "elapsed_s": elapsed,
        "frames": frames,
        "hist": {str(k): v for k, v in hist.items()},
        "undated_samples": clock.end_window() if clock is not None else 0,
        "server_cpu_s": cpu_after - cpu_before,
        "server_rss": sum(rss_bytes(pid) for pid in server_pids),
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
    parser.add_argument("--url", required=True, help="the face: ws://host:port/ (seed 000), ws://host:port/ws "
                                                     "(Hermes), http://host:port (Hermes SSE) or "
                                                     "ws://host:port/ws/stream (seed 004)")
    parser.add_argument("--face", choices=FACES, default="seed000")
    parser.add_argument("--clock-url", help="a seed-000 WebSocket of the same server, to date Hermes deliveries "
                                            "(required to sample a Hermes face)")
    parser.add_argument("--clients", type=int, required=True, help="clients in all processes")
    parser.add_argument("--role", choices=("sampler", "counter"), required=True)
    parser.add_argument("--part", type=int, default=0, help="which share of the counting clients (a counter)")
    parser.add_argument("--parts", type=int, default=1, help="counter processes in all")
    parser.add_argument("--feeds", type=int, default=100)
    parser.add_argument("--per-client", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sample-every", type=int, default=10, help="0: no client samples")
    parser.add_argument("--idle", action="store_true")
    parser.add_argument("--server-pid", type=int, action="append", required=True,
                        help="a process of the server under test (repeatable: its CPU and memory are summed)")
    parser.add_argument("--setup-timeout", type=float, default=30.0,
                        help="seconds to wait for every subscription to be confirmed")
    args = parser.parse_args(argv)
    if args.face in CLOCKED_FACES and args.role == "sampler" and args.sample_every > 0 and not args.clock_url:
        parser.error(f"--face {args.face} needs --clock-url to sample latency")
    return args


if __name__ == "__main__":
    import uvloop

    uvloop.run(main(parse_args()))
