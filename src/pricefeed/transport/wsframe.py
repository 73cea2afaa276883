"""Server-to-client WebSocket frames, built once: server frames are unmasked, so the same bytes suit every client."""

from __future__ import annotations

import struct

from ..contracts import Codec
from ..topics import Topic

TEXT = 0x1


def frame(payload: bytes, opcode: int = TEXT) -> bytes:
    """A complete, unmasked server-to-client WebSocket frame."""
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x80 | opcode, 126, n) + payload
    return struct.pack("!BBQ", 0x80 | opcode, 127, n) + payload


class FramedCodec:
    """Wraps a face's codec so the hub's one encoding per topic is a ready-to-write WebSocket frame."""

    __slots__ = ("face", "inner")

    def __init__(self, inner: Codec) -> None:
        self.inner = inner
        self.face = inner.face

    def encode(self, topic: Topic, item: object) -> bytes:
        return frame(self.inner.encode(topic, item))


def unsupported_version(headers: dict[str, str]) -> str | None:
    """Why a handshake's ``Sec-WebSocket-Version`` cannot be spoken (answer 426), or None if it is 13 or absent
    (an absent one is left to the handshake's own checks)."""
    version = headers.get("sec-websocket-version")
    if version is None or version.strip() == "13":
        return None
    return f"WebSocket version {version} is not supported: use 13"
