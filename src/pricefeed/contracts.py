"""The contracts between hub, faces and transports.

The hub fans topics out to ``Subscriber``s through ``Codec``s. Faces implement
a per-connection ``Session`` and codecs without importing any transport; every
transport (picows WebSockets, the API port's WebSockets and SSE) implements
``Peer`` the same way, with the same outbox, limits and close codes.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from .topics import Topic


class CloseCode(enum.IntEnum):
    """RFC 6455 close codes the transports use."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011


@dataclass(frozen=True, slots=True)
class Handshake:
    """What a client presented when it connected: path, query and headers (names lower-cased)."""

    path: str = "/"
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, target: str, headers: Mapping[str, str]) -> Handshake:
        """From a request target (``/path?query``) and its headers; a repeated query key keeps its last value."""
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        return cls(parts.path or "/", query, {k.lower(): v for k, v in headers.items()})


class Codec(Protocol):
    """A wire format; one instance is shared by every connection that speaks it, so a topic's message is
    encoded once per format, whatever the number of subscribers."""

    face: str
    """The face it belongs to (a metrics label)."""

    def encode(self, topic: Topic, item: object) -> bytes:
        """The bytes of ``item`` (a ``PriceUpdate`` on a price topic, a derived record otherwise)."""


class Subscriber(Protocol):
    """A connection (or any consumer), as the hub sees it."""

    codec: Codec

    def deliver(self, frames: dict[Topic, bytes]) -> None:
        """One pass's new frames for this subscriber, one per topic, in order; write them (or queue them,
        conflating per topic, while the connection cannot take them)."""


class Session(Protocol):
    """A face's protocol state for one connection, free of sockets."""

    def opened(self) -> None: ...

    def receive_text(self, text: str | bytes) -> None: ...

    def receive_binary(self, data: bytes) -> None: ...

    def closed(self) -> None: ...


class Peer(Subscriber, Protocol):
    """What a session needs from its connection (which the hub also sees as a subscriber)."""

    client_id: str
    remote: str
    handshake: Handshake

    def send(self, payload: bytes) -> None:
        """Queue a message that is never conflated (a reply, an error)."""

    def send_price(self, topic: Topic, payload: bytes) -> None:
        """Queue a topic's message, conflated with a pending one of the same topic."""

    def discard_price(self, topic: Topic) -> None:
        """Drop a pending message of a topic (e.g. just unsubscribed)."""

    def claim(self, feeds: Iterable[str]) -> str | None:
        """Before subscribing to ``feeds``: None if the connection's API key may (they count against its
        subscription limit until :meth:`unclaim`), else why not, for the face to send as its own error."""

    def unclaim(self, feeds: Iterable[str]) -> None:
        """After unsubscribing from ``feeds``."""

    def lane(self, codec: Codec) -> Subscriber:
        """A subscriber that delivers into this connection in another wire format (e.g. Hermes' verbose flag)."""

    def flush(self) -> None:
        """Write what is queued now (the transport also flushes after each inbound message)."""

    def close(self, code: int, reason: str) -> None:
        """Close the connection with a close code and a reason the client can read."""
