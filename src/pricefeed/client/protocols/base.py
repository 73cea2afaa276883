"""What a protocol adapter is: the wire format of one face, as the resilient connections need it.

An adapter says how to reach an endpoint (URL, headers, subprotocols), what to
send to subscribe and unsubscribe, and how a frame decodes into typed messages
with their de-duplication keys. It does no I/O, so the same connection
machinery, reconnects and de-duplication serve every protocol; only the key
differs per protocol.
"""

from __future__ import annotations

import abc
from collections.abc import Hashable, Sequence
from typing import Literal

from ..messages import Message
from ..requests import Subscription

Transport = Literal["websocket", "sse"]


class ProtocolError(ValueError):
    """A frame the protocol cannot decode (the connection records it and goes on)."""


class ProtocolAdapter(abc.ABC):
    name: str = "protocol"
    transport: Transport = "websocket"

    def __init__(self, token: str | None = None) -> None:
        self.token = token

    def url(self, endpoint: str, subscriptions: Sequence[Subscription]) -> str:
        """The URL to open (an event stream names its feeds in it)."""
        return endpoint

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def subprotocols(self) -> list[str] | None:
        return None

    @abc.abstractmethod
    def subscribe_frames(self, subscription: Subscription) -> list[str]:
        """The frames that subscribe (none for an event stream, which subscribes by URL)."""

    @abc.abstractmethod
    def unsubscribe_frames(self, subscription: Subscription, remaining: Sequence[Subscription]) -> list[str]:
        """The frames that undo ``subscription`` without undoing what ``remaining`` subscriptions still ask for."""

    @abc.abstractmethod
    def decode(self, frame: str | bytes) -> list[Message]:
        """The typed messages of one frame (connection-level chatter such as a welcome yields none)."""

    def key(self, message: Message) -> Hashable:
        """The de-duplication key: by default the decoded message itself, which is hashable and holds only
        what every copy of it shares (see each adapter for why that is the right key)."""
        return message
