"""The resilient client: redundant connections, one de-duplicated, bounded stream of typed messages.

The shape of Pyth's Rust Lazer client (seed 003): ``num_connections``
connections spread round-robin over the endpoints, each reconnecting on its
own with exponential backoff and replaying every subscription; every frame
goes through one de-duplication cache (100 000 keys for 10 s) into one
channel of ``channel_capacity`` messages. A full channel warns and makes the
connections wait (back-pressure, as the seed's ``send().await``), so nothing
is dropped and memory stays bounded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from types import TracebackType
from typing import Final

from ..resilience import Backoff
from .connection import ConnectionStats, ResilientConnection
from .dedup import TtlCache
from .messages import Message, PriceUpdate, ServerError, SubscriptionError
from .protocols.base import ProtocolAdapter, ProtocolError
from .requests import Subscription

log = logging.getLogger(__name__)

_CLOSED: Final = object()
FULL_WARNING_INTERVAL_S = 10.0


class Receiver:
    """The consumer's end of the channel: ``async for message in receiver`` or ``await receiver.recv()``."""

    def __init__(self, queue: asyncio.Queue[object]) -> None:
        self._queue = queue

    def __aiter__(self) -> AsyncIterator[Message]:
        return self

    async def __anext__(self) -> Message:
        message = await self.recv()
        if message is None:
            raise StopAsyncIteration
        return message

    async def recv(self) -> Message | None:
        """The next message, or None once the client is closed."""
        item = await self._queue.get()
        if item is _CLOSED:
            self._queue.put_nowait(_CLOSED)  # every other reader stops too
            return None
        return item  # type: ignore[return-value]

    def qsize(self) -> int:
        return self._queue.qsize()


class Client:
    """Build it with :class:`~pricefeed.client.builder.ClientBuilder`."""

    def __init__(self, endpoints: Sequence[str], protocol: ProtocolAdapter, num_connections: int,
                 backoff: Backoff, timeout_s: float, channel_capacity: int, dedup: TtlCache) -> None:
        self.endpoints = list(endpoints)
        self.protocol = protocol
        self.num_connections = num_connections
        self.timeout_s = timeout_s
        self.channel_capacity = channel_capacity
        self._backoff = backoff
        self._seen = dedup
        self._subscriptions: dict[int, Subscription] = {}
        self._newest: dict[str, PriceUpdate] = {}
        """The last price update delivered per feed: an older one is stale, an equal one a late copy."""
        self._queue: asyncio.Queue[object] = asyncio.Queue(maxsize=channel_capacity)
        self._receiver = Receiver(self._queue)
        self._put_lock = asyncio.Lock()
        self._waiting = 0
        self._full_warned_at = -FULL_WARNING_INTERVAL_S
        self.connections: list[ResilientConnection] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    # -- life cycle ---------------------------------------------------------------------------------------

    async def start(self) -> Receiver:
        """Open the connections (they keep reconnecting in the background); the de-duplicated messages."""
        if self._closed:
            raise RuntimeError("the client is closed")
        if not self._tasks:
            for index in range(self.num_connections):
                endpoint = self.endpoints[index % len(self.endpoints)]
                backoff = Backoff(self._backoff.initial_s, self._backoff.factor, self._backoff.cap_s,
                                  self._backoff.jitter, self._backoff.stable_after_s)
                connection = ResilientConnection(index, endpoint, self.protocol, backoff, self.timeout_s,
                                                 lambda: list(self._subscriptions.values()), self._on_frame)
                self.connections.append(connection)
                self._tasks.append(asyncio.create_task(connection.run(), name=f"pricefeed-client-{index}"))
        return self._receiver

    async def close(self) -> None:
        """Stop every connection; readers then see the end of the stream."""
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        while self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(_CLOSED)

    async def __aenter__(self) -> Client:
        await self.start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._receiver

    # -- subscriptions ---------------------------------------------------------------------------------------

    async def subscribe(self, request: Subscription) -> None:
        """Subscribe on every connection now, and on every connection that opens later."""
        if request.subscription_id in self._subscriptions:
            raise ValueError(f"subscription id {request.subscription_id} is already in use")
        frames = self.protocol.subscribe_frames(request)  # raises if the request does not suit the protocol
        self._subscriptions[request.subscription_id] = request
        await asyncio.gather(*(connection.send(frames) for connection in self.connections))

    async def unsubscribe(self, subscription_id: int) -> None:
        request = self._subscriptions.pop(subscription_id, None)
        if request is None:
            log.warning("unsubscribe: no subscription with id %d", subscription_id)
            return
        frames = self.protocol.unsubscribe_frames(request, list(self._subscriptions.values()))
        await asyncio.gather(*(connection.send(frames) for connection in self.connections))

    @property
    def subscriptions(self) -> list[Subscription]:
        return list(self._subscriptions.values())

    def stats(self) -> list[ConnectionStats]:
        """Per connection: state, endpoint, reconnects, messages, duplicates dropped, last error."""
        return [connection.stats() for connection in self.connections]

    # -- the hot path --------------------------------------------------------------------------------------------

    def _on_frame(self, connection: ResilientConnection, frame: str | bytes) -> Awaitable[None] | None:
        """De-duplicate a frame's messages and hand the new ones on; what to await only if the channel is full."""
        connection.messages += 1
        seen = self._seen.seen
        # Redundant servers send byte-identical copies: the frame's hash drops those before any parsing.
        if seen(hash(frame)):
            connection.duplicates += 1
            return None
        try:
            messages = connection.received(self.protocol.decode(frame))
        except ProtocolError as exc:
            connection.record_error(str(exc))
            return None
        fresh: list[Message] = []
        for message in messages:
            if seen(self.protocol.key(message)):
                connection.duplicates += 1
                continue
            if isinstance(message, PriceUpdate):
                newest = self._newest.get(message.feed_id)
                if newest is not None and (message.publish_time_us < newest.publish_time_us or message == newest):
                    connection.stale += 1
                    continue
                self._newest[message.feed_id] = message
            elif isinstance(message, SubscriptionError | ServerError):
                connection.record_error(f"server: {message.error}")
            fresh.append(message)
        queue = self._queue
        for index, message in enumerate(fresh):
            if self._waiting or queue.full():
                return self._emit_waiting(fresh[index:])
            queue.put_nowait(message)
        return None

    async def _emit_waiting(self, messages: list[Message]) -> None:
        """Back-pressure: warn (at most every 10 s), then wait for room, in arrival order across connections."""
        now = time.monotonic()
        if now - self._full_warned_at >= FULL_WARNING_INTERVAL_S:
            self._full_warned_at = now
            log.warning("the channel is full (%d messages): messages will be delayed", self.channel_capacity)
        self._waiting += 1
        try:
            async with self._put_lock:
                for message in messages:
                    await self._queue.put(message)
        finally:
            self._waiting -= 1
