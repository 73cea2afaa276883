"""A local fake of Pyth Hermes that speaks its HTTP and SSE byte for byte, with scripted faults.

It serves ``GET /v2/price_feeds`` and ``GET /v2/updates/price/stream`` the way
Hermes (axum 0.6 on hyper) does: chunked ``text/event-stream``, ``data:<json>``
events with no space, ``:`` keep-alive comments, ``event:error`` named events,
and plain-text 400/404 bodies before a stream starts. Tests drive each stream
connection by hand (send an event, half an event, an error, abort) and script
what the next requests get (an HTTP error, a hang, held headers).

Payloads are the real ones recorded in ``reference/hermes.md`` (§1.2 and §1.4);
:func:`price_item` and :func:`price_event` build more in Hermes' exact shape.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import dataclasses
from collections import deque
from collections.abc import Iterable, Sequence
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from pricefeed.catalog import KNOWN_FEEDS

BTC = "e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43"
ETH = "ff61491a931112ddf1bd8147cd1b641375f79f5825126d665480874634fd0ace"
SOL = "ef0d8b6fda2ceba41da15d4095d1da392a0d2f8ed0c6c7bc0f4cfac8c280b56d"
PYTH = "0bbf28e9a841a1cc788f6a361b17ca072d0ea3098a1e5df1c3922d06719579ff"
"""Crypto.PYTH/USD (hermes.md §6): real, but not in our built-in catalog."""

# §1.4, first event: verbatim except that the reference itself truncates the binary blob ("…").
SSE_EVENT_1 = (
    '{"binary":{"encoding":"hex","data":["504e41550100000003b801000000040d00eabd2d495ed4f262eb6fafb24d8086ee…"]},'
    '"parsed":[{"id":"e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43",'
    '"price":{"price":"6163260000000","conf":"3268548079","expo":-8,"publish_time":1714748300},'
    '"ema_price":{"price":"6130098800000","conf":"3587162000","expo":-8,"publish_time":1714748300},'
    '"metadata":{"slot":138886134,"proof_available_time":1714748302,"prev_publish_time":1714748300}}]}'
).encode()

# §1.4, second event: complete and verbatim.
SSE_EVENT_2 = (
    b'{"binary":{"encoding":"hex","data":["504e41550100000003b801000000040d00c225b810b04721ccc39a0206054caf741eb99e3'
    b"49b22ab29706f2678d17fe4895d4e4aeca6933f82102b6e3aeebd295c5bce268e86700c15922f007fa940e9070102501280da67908dc8a2"
    b"0f7c2ff4503247eb6665818cdb59e589432cc7ce02b8480da408192ab382fe99ebec381bac3a8b044b38272c95177bcc52294a92bee1450"
    b"103ba792f1f72f9649b6de0b5e57c3c9b5241f5bfc6ef7eddef3dc43fef853712244ae0fef85a9a716713f057fc3419c734d87d0559687e"
    b"3afc80c0ed98a639027e010685b897965b108523c8e7f5cd71ae6ea949709c5c53317e2f10c7675b50b33bc5219423aa360fd45503bf380"
    b"95b995ea4dcd322d60fe6a419523e586c18913be400076b7d062164bb2683488cb58c937e98a654335dbca2bf0022c227f163523bf0b108"
    b"cc21912193bb3ce8f0f629b64790d3078aa8e2f971da5f08fb6131b452a4b600092b98506c6918be41718667ba9eb77442af665be25daaf"
    b"ba429c1b8c9efe956221e42f5a0dbfa663a2bd1ed2ec8b2de05ac208a87c7ab7c7b09d5c08850b79bb0010aedf6b21ec277ba911cf991cc"
    b"d61a552ed05ea43757fce4d8d80cd1ba644464b94f1915c68dfc2824266e19ab33efb556ce5efda2a8f191c86410aae7b169639f010bf87"
    b"62ef1e3923662b5c70ce60eb9973253a10935d2e1be5064c5f4bd0c071aac3d803a97f5a7640b6a3eace962ad19b9590ffb41a2461a44ae"
    b"2248ab5a5d1030010c711b2cbce91aa23bc0059c0f1bbfb4330eed0ffdd91edc6a7be43c8e2a7d79e755a7722bc789729301d85ea6602c7"
    b"0a5f84a978b90551b248869ddf5c542d498010d9b91a1658a6e9d18af4a40438ee9c9d5d3906d1f73c1a0793231a17bfc7b5f823fba94bc"
    b"05f237d661ee344f434afa8c4c42bbcecd94c7653fa795ffcb1c1cf8010efbcc92e2e80ff957061146f713f5ad4b55c789c93cdf3f963ef"
    b"2bb1a7c08b32f67a809f50892aeb7147150afdee20d6015f740bc9efdb42782e443720d3d32b8010facda4336d8313e28b1d65617d1c2a0"
    b"4a5a8b03f0513304ac67ccf550c0729e4054dfb5b89a0a8cc880fa4772416a843b5f73947c2576477ba564f41258bc1035001226486d88c"
    b"8234e7d61945cafd925f6edb78b18b88313b0774021d6569884a49517c0d527f71c17bdfaf04e80fc3da394d8ce85119c76c5ac70953820"
    b"510ad2c0016634fb8d00000000001ae101faedac5851e32b9b23b5f9411a8c2bac4aae3ed4dd7b811dd1a72ea4aa7100000000033d3e2c0"
    b"141555756000000000008473bf70000271070d00559e2514c7d37112103ee50821d9f3fea1301005500e62df6c8b4a85fe1a67db44dc12d"
    b"e5db330f7ac66b72dc658afedf0f4a415b430000059af4abc40000000000c52e0e33fffffff8000000006634fb8d000000006634fb8c000"
    b"00593469c9bc000000000d5cf34800a0c6b422d2499aadf7404f3883f57950914cb5244a7eac10d23c63c6cb83687c792233d96d4f990a9"
    b"ea788e9d37c1d58f50a2c17c4346cea646effc273e57f2e79f3674fb4c9ca7b0d229076b29f8632847de2b7e97ef5b554e42c9b1c3c9d62"
    b"d7ea8859f6270b45d85256e206b25637f7b0a625186d5d58d86c7f1249b33f093de368e293daf679ad3fad5f19dea39b804c189b231b5cd"
    b'ed362b5023c6a36b273191575d8e10f0c7aa2dc0479898b110e26a5238a2d90781e7db2318aa0751e00222d2be5ca0b707"]},'
    b'"parsed":[{"id":"e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43",'
    b'"price":{"price":"6163088000000","conf":"3308129843","expo":-8,"publish_time":1714748301},'
    b'"ema_price":{"price":"6130103000000","conf":"3587126400","expo":-8,"publish_time":1714748301},'
    b'"metadata":{"slot":138886135,"proof_available_time":1714748302,"prev_publish_time":1714748300}}]}'
)

# §1.2, the docs' /v2/updates/price/latest answer (binary truncated in the reference), two feeds at one slot.
LATEST_RESPONSE: dict[str, Any] = {
    "binary": {"encoding": "hex",
               "data": ["504e41550100000003b801000000040d00561f4ceb8ce5eb58adda318009817714a017b0db9a7f1ef5…"]},
    "parsed": [
        {"id": BTC,
         "price": {"price": "6140993501000", "conf": "3287868567", "expo": -8, "publish_time": 1714746101},
         "ema_price": {"price": "6094004700000", "conf": "3792887800", "expo": -8, "publish_time": 1714746101},
         "metadata": {"slot": 138881186, "proof_available_time": 1714746103, "prev_publish_time": 1714746101}},
        {"id": "c96458d393fe9deb7a7d63a0ac41e2898a67a7750dbd166673279e06c868df0a",
         "price": {"price": "4959503", "conf": "5465", "expo": -8, "publish_time": 1714746101},
         "ema_price": {"price": "4982594", "conf": "5536", "expo": -8, "publish_time": 1714746101},
         "metadata": {"slot": 138881186, "proof_available_time": 1714746103, "prev_publish_time": 1714746101}},
    ],
}


def price_item(feed_id: str, price: int, *, publish_time: int, slot: int, conf: int = 3308129843, expo: int = -8,
               ema_price: int | None = None, ema_conf: int = 3587126400,
               prev_publish_time: int | None = None) -> dict[str, Any]:
    """One ``parsed[]`` entry, fields in the order Hermes serialises them, mantissas as strings."""
    ema = price if ema_price is None else ema_price
    return {
        "id": feed_id,
        "price": {"price": str(price), "conf": str(conf), "expo": expo, "publish_time": publish_time},
        "ema_price": {"price": str(ema), "conf": str(ema_conf), "expo": expo, "publish_time": publish_time},
        "metadata": {"slot": slot, "proof_available_time": publish_time + 1,
                     "prev_publish_time": publish_time - 1 if prev_publish_time is None else prev_publish_time},
    }


def btc_item(step: int, price: int | None = None) -> dict[str, Any]:
    """The n-th slot after the verbatim second event: same shape, later slot and publish time."""
    return price_item(BTC, 6163088000000 + 1000 * step if price is None else price,
                      publish_time=1714748301 + step, slot=138886135 + step)


def price_event(items: Sequence[dict[str, Any]]) -> bytes:
    """A stream event's JSON: compact, ``binary`` first, like serde_json in Hermes."""
    blob = "504e4155" + "00" * 16  # "PNAU" and filler: the gateway does not verify proofs
    return orjson.dumps({"binary": {"encoding": "hex", "data": [blob]}, "parsed": list(items)})


def items_of(event: bytes) -> list[dict[str, Any]]:
    parsed: list[dict[str, Any]] = orjson.loads(event)["parsed"]
    return parsed


def default_metadata() -> list[dict[str, Any]]:
    """``/v2/price_feeds`` for the catalog feeds plus PYTH/USD (attributes as Hermes lists them)."""
    entries = [{"id": known.id, "attributes": known.attributes()} for known in KNOWN_FEEDS]
    entries.append({"id": PYTH, "attributes": {
        "asset_type": "Crypto", "base": "PYTH", "description": "PYTH NETWORK / US DOLLAR",
        "display_symbol": "PYTH/USD", "generic_symbol": "PYTHUSD", "quote_currency": "USD",
        "schedule": "America/New_York;O,O,O,O,O,O,O;", "symbol": "Crypto.PYTH/USD"}})
    return entries


# -- scripted answers ------------------------------------------------------------


@dataclasses.dataclass
class Respond:
    """Answer the request with this status, headers and plain-text body (no stream)."""

    status: int
    body: str = ""
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Hang:
    """Read the request and never answer: a hung upstream."""


@dataclasses.dataclass
class HoldHeaders:
    """Start the stream only once ``release`` is set (to see what the client does meanwhile)."""

    release: asyncio.Event


Script = Respond | Hang | HoldHeaders

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


@dataclasses.dataclass
class Request:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    at: float
    """Loop time when the request head was read."""


class StreamConnection:
    """One open ``/v2/updates/price/stream`` response, driven by the test."""

    def __init__(self, request: Request, ids: list[str], writer: asyncio.StreamWriter) -> None:
        self.request = request
        self.ids = ids
        self.headers = request.headers
        self._writer = writer
        self.opened_at = request.at
        self.closed = asyncio.Event()
        self.closed_at: float | None = None
        self.keepalives_sent = 0
        self.events_sent = 0
        self._keepalive_task: asyncio.Task[None] | None = None

    # -- what Hermes writes

    def send_event(self, data: bytes) -> None:
        """A data event: ``data:<json>\\n\\n`` as one chunk (axum writes one frame per event)."""
        self.events_sent += 1
        self.send_raw(b"data:" + data + b"\n\n")

    def send_items(self, items: Sequence[dict[str, Any]]) -> None:
        """The event Hermes would send this connection: only the ids it asked for; nothing if none."""
        mine = [item for item in items if item["id"] in self.ids]
        if mine:
            self.send_event(price_event(mine))

    def send_keepalive(self) -> None:
        self.keepalives_sent += 1
        self.send_raw(b":\n\n")

    def send_error(self, text: str) -> None:
        self.send_raw(b"event:error\ndata:" + text.encode() + b"\n\n")

    def send_raw(self, data: bytes) -> None:
        """Bytes of the event stream, as one HTTP chunk."""
        if not self.closed.is_set():
            self._writer.write(b"%x\r\n%s\r\n" % (len(data), data))

    def keep_alive_every(self, interval_s: float | None) -> None:
        """Send ``:`` comments at this interval (Hermes: 15 s without an event); None stops them."""
        if self._keepalive_task is not None:
            self._keepalive_task.cancel()
            self._keepalive_task = None
        if interval_s is not None:
            self._keepalive_task = asyncio.create_task(self._keep_alive(interval_s))

    async def _keep_alive(self, interval_s: float) -> None:
        while not self.closed.is_set():
            await asyncio.sleep(interval_s)
            self.send_keepalive()

    # -- endings

    def end(self) -> None:
        """End the stream cleanly (last chunk), as Hermes does after an ``event:error`` that closes."""
        if not self.closed.is_set():
            self._writer.write(b"0\r\n\r\n")
            self._writer.close()
            self._mark_closed()

    def abort(self) -> None:
        """Drop the TCP connection at once (no last chunk): a network failure mid-stream."""
        self._writer.transport.abort()
        self._mark_closed()

    def _mark_closed(self) -> None:
        if not self.closed.is_set():
            self.closed_at = asyncio.get_running_loop().time()
            self.closed.set()
            self.keep_alive_every(None)

    async def wait_closed(self, timeout: float = 5.0) -> None:
        await asyncio.wait_for(self.closed.wait(), timeout)


class HermesServer:
    """Hermes on 127.0.0.1 and a free port, in this event loop."""

    def __init__(self, metadata: list[dict[str, Any]] | None = None) -> None:
        self.metadata = default_metadata() if metadata is None else metadata
        self.requests: list[Request] = []
        self.connections: list[StreamConnection] = []
        self.stream_script: deque[Script] = deque()
        """What the next stream requests get, in order; a normal stream once empty."""
        self.metadata_script: deque[Script] = deque()
        self._new_connections: asyncio.Queue[StreamConnection] = asyncio.Queue()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stream_url(self) -> str:
        return self.url + "/v2/updates/price/stream"

    @property
    def known_ids(self) -> set[str]:
        return {entry["id"] for entry in self.metadata}

    def stream_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path == "/v2/updates/price/stream"]

    def metadata_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path == "/v2/price_feeds"]

    def busiest_window(self, window_s: float) -> int:
        """The most requests (any path) that arrived within ``window_s`` of each other: what a per-IP limit counts."""
        times = sorted(r.at for r in self.requests)
        return max((bisect.bisect_left(times, at + window_s) - i for i, at in enumerate(times)), default=0)

    async def start(self, port: int = 0) -> None:
        """Listen on ``port`` (a free one by default; the same one again to restart a stopped server)."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for connection in self.connections:
            connection.abort()
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def next_connection(self, timeout: float = 5.0) -> StreamConnection:
        """The next stream that got a 200 and is open for events."""
        return await asyncio.wait_for(self._new_connections.get(), timeout)

    def open_connections(self) -> list[StreamConnection]:
        return [c for c in self.connections if not c.closed.is_set()]

    def broadcast(self, items: Sequence[dict[str, Any]]) -> None:
        """One slot's event to every open stream, each with the ids it asked for."""
        for connection in self.open_connections():
            connection.send_items(items)

    # -- HTTP

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while True:  # HTTP/1.1 keep-alive: REST requests may share a connection
                request = await self._read_request(reader)
                if request is None:
                    return
                self.requests.append(request)
                if request.path == "/v2/updates/price/stream":
                    await self._stream(request, reader, writer)
                    return
                if request.path == "/v2/price_feeds":
                    if not await self._scripted(self.metadata_script, writer):
                        self._respond(writer, 200, orjson.dumps(self.metadata), "application/json")
                else:
                    self._respond(writer, 404, b"")
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
        method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        parts = urlsplit(target)
        return Request(method, parts.path, parse_qsl(parts.query, keep_blank_values=True), headers,
                       asyncio.get_running_loop().time())

    async def _scripted(self, script: deque[Script], writer: asyncio.StreamWriter) -> bool:
        """Play the next scripted answer, if any; True if it answered (or hung)."""
        if not script or isinstance(script[0], HoldHeaders):
            return False
        action = script.popleft()
        if isinstance(action, Hang):
            await asyncio.Event().wait()  # until cancelled by stop() or the client's disconnect
        elif isinstance(action, Respond):
            self._respond(writer, action.status, action.body.encode(), "text/plain; charset=utf-8", action.headers)
        return True

    async def _stream(self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await self._scripted(self.stream_script, writer):
            await writer.drain()
            return
        try:
            ids = [_hermes_id(value) for key, value in request.query if key == "ids[]"]
        except ValueError as exc:
            self._respond(writer, 400, f"Failed to deserialize query string. Error: {exc}".encode())
            return
        unknown = [feed_id for feed_id in ids if feed_id not in self.known_ids]
        if unknown:
            body = "Price ids not found: " + ", ".join("0x" + feed_id for feed_id in unknown)
            self._respond(writer, 404, body.encode())
            await writer.drain()
            return
        if self.stream_script and isinstance(self.stream_script[0], HoldHeaders):
            hold = self.stream_script.popleft()
            assert isinstance(hold, HoldHeaders)
            await hold.release.wait()
        writer.write(b"HTTP/1.1 200 OK\r\n"
                     b"content-type: text/event-stream\r\n"
                     b"cache-control: no-cache\r\n"
                     b"access-control-allow-origin: *\r\n"
                     b"vary: origin, access-control-request-method, access-control-request-headers\r\n"
                     b"transfer-encoding: chunked\r\n"
                     b"date: " + formatdate(usegmt=True).encode() + b"\r\n\r\n")
        connection = StreamConnection(request, ids, writer)
        self.connections.append(connection)
        self._new_connections.put_nowait(connection)
        # The client never sends anything more; EOF or an error here means it went away.
        with contextlib.suppress(ConnectionError):
            await reader.read()
        connection._mark_closed()

    @staticmethod
    def _respond(writer: asyncio.StreamWriter, status: int, body: bytes,
                 content_type: str = "text/plain; charset=utf-8", headers: dict[str, str] | None = None) -> None:
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", f"content-type: {content_type}",
                f"content-length: {len(body)}", "access-control-allow-origin: *", f"date: {formatdate(usegmt=True)}"]
        head += [f"{name}: {value}" for name, value in (headers or {}).items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)


def _hermes_id(text: str) -> str:
    """Hermes' id parsing: optional 0x, any case, 64 hex digits; its own error texts."""
    body = text[2:] if text[:2] in ("0x", "0X") else text
    if len(body) % 2:
        raise ValueError("Odd number of digits")
    if len(body) != 64:
        raise ValueError("Invalid string length")
    int(body, 16)
    return body.lower()


def all_ids(connections: Iterable[StreamConnection]) -> set[str]:
    return {feed_id for connection in connections for feed_id in connection.ids}
