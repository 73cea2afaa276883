"""A connection without a socket for the fuzz tests: records what a session sends, decoded, in order."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from pricefeed.contracts import Codec, Handshake
from pricefeed.topics import Topic


class Lane:
    """Delivers into the peer in another codec, as a connection's lane does."""

    def __init__(self, peer: RecordingPeer, codec: Codec) -> None:
        self.peer = peer
        self.codec = codec

    def deliver(self, frames: dict[Topic, bytes]) -> None:
        self.peer.deliver(frames)


class RecordingPeer:
    client_id = "client-1"
    remote = "127.0.0.1"

    def __init__(self, codec: Any = None, handshake: Handshake | None = None) -> None:
        self.codec = codec
        self.handshake = handshake or Handshake()
        self.sent: list[Any] = []
        self.closed_with: tuple[int, str] | None = None

    def send(self, payload: bytes) -> None:
        self.sent.append(orjson.loads(payload))

    def send_price(self, topic: Topic, payload: bytes) -> None:
        self.sent.append(orjson.loads(payload))

    def discard_price(self, topic: Topic) -> None:
        pass

    def deliver(self, frames: dict[Topic, bytes]) -> None:
        self.sent.extend(orjson.loads(frame) for frame in frames.values())

    def lane(self, codec: Codec) -> Lane:
        return Lane(self, codec)

    def flush(self) -> None:
        pass

    def claim(self, feeds: Iterable[str]) -> str | None:
        return None  # no API key: every feed may be subscribed

    def unclaim(self, feeds: Iterable[str]) -> None:
        pass

    def close(self, code: int, reason: str) -> None:
        self.closed_with = (code, reason)

    def take(self) -> list[Any]:
        sent, self.sent = self.sent, []
        return sent
