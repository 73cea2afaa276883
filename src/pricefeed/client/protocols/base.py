"""What a protocol adapter is: the wire format of one face, as the resilient connections need it.

An adapter says how to reach an endpoint (URL, headers, subprotocols), what to
send to subscribe and unsubscribe, and how a frame decodes into typed messages
with their de-duplication keys. It does no I/O, so the same connection
machinery, reconnects and de-duplication serve every protocol; only the key
differs per protocol.
"""

from __future__ import annotations

import abc
from collections.abc import Hashable, Mapping, Sequence
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

    def resume_frames(self, subscription: Subscription, seqs: Mapping[str, int]) -> list[str]:
        """The frames that subscribe again after a reconnect, asking for what came after ``seqs`` (the last seq
        received per feed) where the protocol can (by default it cannot: the same as subscribing)."""
        return self.subscribe_frames(subscription)

    def resume_headers(self, subscriptions: Sequence[Subscription], seqs: Mapping[str, int]) -> dict[str, str]:
        """Headers that ask an event stream for what came after ``seqs`` (none by default)."""
        return {}

    def event_seqs(self, event_id: str, subscriptions: Sequence[Subscription]) -> dict[str, int]:
        """The seq per feed an event stream's event id says (none by default)."""
        return {}

    @abc.abstractmethod
    def decode(self, frame: str | bytes) -> list[Message]:
        """The typed messages of one frame (connection-level chatter such as a welcome yields none)."""

    def key(self, message: Message) -> Hashable:
        """The de-duplication key: by default the decoded message itself, which is hashable and holds only
        what every copy of it shares (see each adapter for why that is the right key)."""
        return message
