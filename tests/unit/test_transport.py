"""The shared transport without sockets: a WebSocket on the API port driven byte for byte by a sans-I/O client.

The client side is ``websockets``' own ``ClientProtocol``, so what the server writes is parsed by an independent
RFC 6455 implementation, and what the client sends is exactly what a real client would.
"""

from __future__ import annotations

import time

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from pricefeed.contracts import CloseCode, Peer
from pricefeed.metrics import Metrics
from pricefeed.topics import Topic
from pricefeed.transport.limits import ConnectionLimits, TokenBucket
from pricefeed.transport.listener import Listener
from pricefeed.transport.sansio_ws import PING_INTERVAL_S, SansIoWebSocket, upgrade_protocol
from pricefeed.transport.wsframe import FramedCodec, frame

from ..fake_transport import FakeTransport

LIMITS = ConnectionLimits(max_message_bytes=1024, max_messages_per_second=10, message_burst=5,
                          outbox_limit_bytes=4096, slow_client_timeout_s=10.0)


class EchoCodec:
    face = "test"

    def encode(self, topic: Topic, item: object) -> bytes:
        return f"{topic}={item}".encode()


class Echo:
    """A session that answers every text message with ``echo:<text>``."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.received: list[bytes] = []

    def opened(self) -> None:
        self.peer.send(b"hello")

    def receive_text(self, text: str | bytes) -> None:
        self.received.append(bytes(text, "utf-8") if isinstance(text, str) else text)
        self.peer.send(b"echo:" + self.received[-1])

    def receive_binary(self, data: bytes) -> None:
        self.peer.send(b"binary")

    def closed(self) -> None:
        pass


class Client:
    """A real sans-I/O WebSocket client wired to the server through a fake transport."""

    def __init__(self, metrics: Metrics | None = None, path: str = "/ws", version: str = "13") -> None:
        self.metrics = metrics or Metrics()
        self.listener = Listener("test", EchoCodec(), Echo, LIMITS, self.metrics, wrap=FramedCodec)
        self.transport = FakeTransport()
        upgrade = upgrade_protocol({"/ws": self.listener})()
        upgrade.connection_made(self.transport)
        self.upgrade = upgrade
        self.client = ClientProtocol(parse_uri(f"ws://127.0.0.1{path}"))
        request = self.client.connect()
        del request.headers["Sec-WebSocket-Version"]
        request.headers["Sec-WebSocket-Version"] = version
        self.client.send_request(request)
        self.events: list[object] = []
        self._to_server()
        self._from_server()
        self.response = next((e for e in self.events if isinstance(e, Response)), None)

    @property
    def server(self) -> SansIoWebSocket:
        assert upgrade_connection(self.upgrade) is not None
        return upgrade_connection(self.upgrade)  # type: ignore[return-value]

    def _to_server(self) -> None:
        for data in self.client.data_to_send():
            if data:
                self.upgrade.data_received(data)

    def _from_server(self) -> None:
        self.client.receive_data(self.transport.take())
        self.events += self.client.events_received()

    def send_text(self, text: str) -> None:
        self.client.send_text(text.encode())
        self._to_server()

    def send_raw(self, frame_bytes: bytes) -> None:
        self.upgrade.data_received(frame_bytes)

    def messages(self) -> list[bytes]:
        """The data messages the server wrote since the last call, parsed by the client."""
        self._from_server()
        events, self.events = self.events, [e for e in self.events if not isinstance(e, Frame)]
        return [bytes(e.data) for e in events if isinstance(e, Frame) and e.opcode in (Opcode.TEXT, Opcode.BINARY)]

    def pings(self) -> int:
        self._from_server()
        return sum(1 for e in self.events if isinstance(e, Frame) and e.opcode is Opcode.PING)

    def close_code(self) -> int | None:
        """The code of the close frame the server sent, if it sent one."""
        self._from_server()
        received = self.client.close_rcvd
        return None if received is None else received.code

    def close_reason(self) -> str:
        received = self.client.close_rcvd
        return "" if received is None else received.reason


def upgrade_connection(upgrade: object) -> SansIoWebSocket | None:
    return getattr(upgrade, "connection", None)


def masked(opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False) -> bytes:
    """A client frame with a zero mask key (so the payload goes as it is)."""
    assert len(payload) < 126
    return bytes(((0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode, 0x80 | len(payload))) + b"\0\0\0\0" + payload


async def test_handshake_greeting_and_replies_go_through_the_session() -> None:
    c = Client()
    assert c.response is not None and c.response.status_code == 101
    assert c.messages() == [b"hello"]
    c.send_text("hi")
    assert c.messages() == [b"echo:hi"]
    assert c.metrics.total("pricefeed_connections", face="test") == 1


async def test_an_unknown_path_is_404_and_an_old_version_is_426() -> None:
    missing = Client(path="/nope")
    assert missing.response is not None and missing.response.status_code == 404
    assert missing.transport.closed
    old = Client(version="8")
    assert old.response is not None and old.response.status_code == 426
    assert old.response.headers["Sec-WebSocket-Version"] == "13"
    assert old.metrics.total("pricefeed_refusals_total", face="test", reason="version") == 1


async def test_a_flood_past_the_burst_is_closed_with_1008() -> None:
    c = Client()
    c.messages()
    for i in range(LIMITS.message_burst + 1):
        c.send_text(str(i))
    assert c.messages() == [f"echo:{i}".encode() for i in range(LIMITS.message_burst)]
    assert c.close_code() == CloseCode.POLICY_VIOLATION
    assert c.close_reason().startswith("message rate limit exceeded")


async def test_a_message_over_the_size_limit_is_closed_with_1009() -> None:
    c = Client()
    c.messages()
    c.send_text("x" * (LIMITS.max_message_bytes + 1))
    assert c.close_code() == CloseCode.MESSAGE_TOO_BIG


@pytest.mark.parametrize("frames", [
    [masked(0x1, b"x", rsv1=True)],  # no extension was negotiated
    [masked(0x1, b"a", fin=False), masked(0x1, b"b")],  # a new message inside a fragmented one
    [masked(0x0, b"a")],  # a continuation of nothing
])
async def test_framing_errors_are_closed_with_1002(frames: list[bytes]) -> None:
    c = Client()
    c.messages()
    for data in frames:
        c.send_raw(data)
    assert c.close_code() == CloseCode.PROTOCOL_ERROR


async def test_a_blocked_connection_keeps_the_newest_frame_per_topic_and_then_writes_once() -> None:
    c = Client()
    c.messages()
    server = c.server
    server.pause_writing()
    server.deliver({"a": frame(b"a=1"), "b": frame(b"b=1")})
    server.send(b"control")
    server.deliver({"a": frame(b"a=2")})
    assert c.transport.writes == []
    server.resume_writing()
    assert len(c.transport.writes) == 1  # one write for everything that waited
    assert c.messages() == [b"a=2", b"b=1", b"control"]  # in the order the topics first arrived


async def test_over_the_byte_bound_while_blocked_is_closed_at_once() -> None:
    metrics = Metrics()
    c = Client(metrics)
    c.messages()
    server = c.server
    server.pause_writing()
    c.transport.buffered = LIMITS.outbox_limit_bytes  # what the kernel still holds
    server.deliver({"a": frame(b"a=1")})
    assert c.transport.aborted
    assert metrics.total("pricefeed_slow_client_closes_total", face="test") == 1


async def test_blocked_past_the_timeout_is_closed_by_the_sweep() -> None:
    c = Client()
    server = c.server
    server.pause_writing()
    assert not server.check_slow()
    server._paused_since = time.monotonic() - LIMITS.slow_client_timeout_s - 0.1
    assert server.check_slow() and c.transport.aborted


async def test_a_ping_left_unanswered_closes_the_connection() -> None:
    c = Client()
    server = c.server
    assert c.pings() == 1  # Hermes pings at once on connect
    now = time.monotonic()
    server.ping(now + PING_INTERVAL_S)  # the first ping was never answered
    assert c.transport.aborted


async def test_an_answered_ping_keeps_the_connection() -> None:
    c = Client()
    server = c.server
    assert c.pings() == 1
    c._to_server()  # the client's automatic pong
    server.ping(time.monotonic() + PING_INTERVAL_S)
    assert not c.transport.closed


def test_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=2.0, burst=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] = 0.5  # one token back
    assert bucket.take() and not bucket.take()
    now[0] = 10.0
    assert bucket.take(3) and not bucket.take()  # a batch may cost several


async def test_nothing_is_written_after_the_peer_closed() -> None:
    c = Client()
    c.messages()
    c.client.send_close(1000, "bye")
    c._to_server()
    assert c.close_code() == 1000  # the server answered the close
    written = list(c.transport.writes)
    c.server.deliver({"a": frame(b"a=1")})  # a pass that comes after the close
    c.server.send(b"late reply")
    c.server.flush()
    assert c.transport.writes == written
