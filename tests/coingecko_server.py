"""A local fake of CoinGecko's v3 API: recorded answers byte for byte, scripted faults, every request counted.

``GET /coins/markets`` answers the recorded entries of the requested ids
(``tests/data/coingecko``) joined into CoinGecko's one-line JSON array, with
its headers; ``GET /simple/price`` and ``GET /ping`` answer their recordings.
Tests script what the next requests get: a 429 with ``Retry-After`` in seconds
or as an HTTP date, a 500, a hang (the client's timeout), a malformed body.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections import deque
from email.utils import formatdate
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import orjson

DATA = Path(__file__).resolve().parent / "data" / "coingecko"
SEED_IDS = ("bitcoin", "ethereum", "binancecoin", "cardano", "solana", "polkadot", "tether", "usd-coin", "ripple",
            "polygon-ecosystem-token")


def recorded_entries() -> dict[str, bytes]:
    """CoinGecko id -> its recorded ``/coins/markets`` entry, as the bytes CoinGecko sent."""
    entries = {}
    for line in (DATA / "coins_markets.jsonl").read_bytes().splitlines():
        if line.strip():
            entries[orjson.loads(line)["id"]] = line.strip()
    return entries


@dataclasses.dataclass
class Respond:
    """Answer with this status, body and headers."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"


@dataclasses.dataclass
class Hang:
    """Read the request and never answer."""


Script = Respond | Hang

RATE_LIMIT_BODY = (b'{"status":{"error_code":429,"error_message":"You\'ve exceeded the Rate Limit. Please visit '
                   b'https://www.coingecko.com/en/api/pricing to subscribe to our API plans for higher rate limits."}}')
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests",
            500: "Internal Server Error", 503: "Service Unavailable"}


@dataclasses.dataclass
class Request:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float
    """Loop time when the request head was read."""


class CoinGeckoServer:
    """CoinGecko on 127.0.0.1 and a free port, in this event loop."""

    def __init__(self) -> None:
        self.entries = recorded_entries()
        self.requests: list[Request] = []
        self.script: deque[Script] = deque()
        """What the next ``/coins/markets`` requests get, in order; the recording once empty."""
        self.answered = 0
        self._answered_event = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        """The API root, as ``--coingecko-url`` takes it."""
        return f"http://127.0.0.1:{self.port}/api/v3"

    def markets_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path == "/api/v3/coins/markets"]

    def markets_body(self, ids: list[str]) -> bytes:
        return b"[" + b",".join(self.entries[i] for i in ids if i in self.entries) + b"]"

    async def start(self, port: int = 0) -> CoinGeckoServer:
        """Listen on ``port`` (a free one by default; the same one again to restart a stopped server)."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Stop listening and drop open connections: CoinGecko is unreachable until :meth:`start` again."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def wait_answered(self, count: int, timeout: float = 10.0) -> None:
        """Wait until ``count`` ``/coins/markets`` requests have been answered (or failed by script) in all."""
        async with asyncio.timeout(timeout):
            while self.answered < count:
                self._answered_event.clear()
                await self._answered_event.wait()

    def _done(self) -> None:
        self.answered += 1
        self._answered_event.set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while True:  # HTTP/1.1 keep-alive, as httpx uses it
                request = await self._read_request(reader)
                if request is None:
                    return
                self.requests.append(request)
                if request.path == "/api/v3/coins/markets":
                    action = self.script.popleft() if self.script else None
                    if isinstance(action, Hang):
                        self._done()
                        await reader.read()  # until the client gives up and closes
                        return
                    if action is None:
                        ids = [i for i in request.query.get("ids", "").split(",") if i]
                        action = Respond(200, self.markets_body(ids))
                    self._respond(writer, action)
                    await writer.drain()
                    self._done()
                elif request.path == "/api/v3/simple/price":
                    self._respond(writer, Respond(200, (DATA / "simple_price.json").read_bytes()))
                elif request.path == "/api/v3/ping":
                    self._respond(writer, Respond(200, b'{"gecko_says":"(V3) To the Moon!"}'))
                else:
                    self._respond(writer, Respond(404, b'{"error":"Not Found"}'))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._handlers.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _read_request(self, reader: asyncio.StreamReader) -> Request | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        lines = head.decode("latin-1").split("\r\n")
        _method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        parts = urlsplit(target)
        return Request(parts.path, dict(parse_qsl(parts.query, keep_blank_values=True)), headers,
                       asyncio.get_running_loop().time())

    @staticmethod
    def _respond(writer: asyncio.StreamWriter, action: Respond) -> None:
        head = [f"HTTP/1.1 {action.status} {_REASONS.get(action.status, 'Status')}",
                f"content-type: {action.content_type}", f"content-length: {len(action.body)}",
                "cache-control: max-age=30, public, must-revalidate, s-maxage=60",
                "access-control-allow-origin: *", f"date: {formatdate(usegmt=True)}", "server: cloudflare"]
        head += [f"{name}: {value}" for name, value in action.headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + action.body)
