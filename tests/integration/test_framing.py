"""RFC 6455 on the picows ports: what a server must refuse, it refuses with the right code."""

from __future__ import annotations

import asyncio
import base64
import os
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pricefeed.app import App

from ..service import in_process


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    async with in_process(tmp_path) as service:
        yield service


def client_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False) -> bytes:
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    return bytes(((0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode, 0x80 | len(payload))) + mask + masked


async def handshake(port: int, version: str = "13") -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: {version}\r\n\r\n").encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    return reader, writer, head


async def close_code(reader: asyncio.StreamReader) -> int:
    """Read server frames until a close frame; its code."""
    while True:
        first, second = await asyncio.wait_for(reader.readexactly(2), 5)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", await reader.readexactly(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", await reader.readexactly(8))[0]
        payload = await reader.readexactly(length)
        if first & 0x0F == 0x8:
            return int(struct.unpack("!H", payload[:2])[0])


@pytest.mark.parametrize("frames", [
    [client_frame(0x1, b'{"type":"get_available_feeds"}', rsv1=True)],
    [client_frame(0x1, b'{"type":', fin=False), client_frame(0x1, b'"x"}')],
    [client_frame(0x0, b"{}")],
], ids=["rsv1 set", "text frame inside a fragmented message", "continuation of nothing"])
async def test_protocol_errors_close_with_1002(app: App, frames: list[bytes]) -> None:
    reader, writer, head = await handshake(app.ws_port)
    assert head.startswith(b"HTTP/1.1 101")
    for data in frames:
        writer.write(data)
    assert await close_code(reader) == 1002
    writer.close()


async def test_an_unsupported_version_gets_426(app: App) -> None:
    _, writer, head = await handshake(app.ws_port, version="8")
    assert head.startswith(b"HTTP/1.1 426")
    assert b"sec-websocket-version: 13" in head.lower()
    writer.close()
