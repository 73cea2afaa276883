"""An asyncio transport without a socket, for testing the transport layer byte by byte."""

from __future__ import annotations

import asyncio
from typing import Any


class FakeTransport(asyncio.Transport):
    """Records writes; ``buffered`` stands in for what the kernel has not sent yet."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.buffered = 0
        self.closed = False
        self.aborted = False
        self.eof = False
        self.protocol: asyncio.BaseProtocol | None = None
        self.extra: dict[str, Any] = {"peername": ("127.0.0.1", 4242)}

    @property
    def data(self) -> bytes:
        return b"".join(self.writes)

    def take(self) -> bytes:
        data = self.data
        self.writes.clear()
        return data

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "write after close"
        self.writes.append(bytes(data))

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = self.aborted = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof = True

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self.protocol is not None
        return self.protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.extra.get(name, default)
