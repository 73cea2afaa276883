"""Reconnection and de-duplication for redundant upstream connections (the seed-003 / Pyth Lazer pattern).

A source holds several connections that carry the same data. Each one is a
:class:`ReconnectingConnection`: it connects, runs until it fails, names the
failure, waits (:class:`Backoff`: exponential, jittered, capped, reset after a
stable connection; or the upstream's ``Retry-After``) and connects again. A
:class:`Handover` replaces a connection make-before-break, and a shared
:class:`FreshnessFilter` lets exactly one copy of each update through, in order.
Nothing here knows a protocol: the Hermes SSE streams, and the WebSocket and
HTTP-polling sources after them, fill in :meth:`ReconnectingConnection.connect_and_run`.
"""

from __future__ import annotations

import abc
import asyncio
import enum
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from datetime import UTC, datetime
from typing import Any, Generic, Self, TypeVar

K = TypeVar("K", bound=Hashable)


class Backoff:
    """Delays between reconnection attempts: ``initial x factor^n``, jittered, never above ``cap``.

    The defaults are those of the Pyth Lazer Rust client (the ``backoff`` crate):
    0.5 s, x1.5, +-50 % jitter, 60 s cap, retry forever. Jitter spreads the
    reconnections of many clients (and of our own redundant connections) after
    an upstream restart.
    """

    def __init__(self, initial_s: float = 0.5, factor: float = 1.5, cap_s: float = 60.0, jitter: float = 0.5,
                 stable_after_s: float = 10.0, rng: random.Random | None = None) -> None:
        if initial_s < 0 or factor < 1 or cap_s < initial_s or not 0 <= jitter < 1:
            raise ValueError("backoff needs 0 <= initial <= cap, factor >= 1 and 0 <= jitter < 1")
        self.initial_s = initial_s
        self.factor = factor
        self.cap_s = cap_s
        self.jitter = jitter
        self.stable_after_s = stable_after_s
        self._rng = rng or random.Random()
        self.attempts = 0
        """Delays handed out since the last reset."""
        self.last_delay_s: float | None = None

    @property
    def nominal_s(self) -> float:
        """The un-jittered delay the next attempt would get."""
        return min(self.cap_s, self.initial_s * self.factor**self.attempts)

    def bounds(self) -> tuple[float, float]:
        """The smallest and largest delay :meth:`next_delay` can return now."""
        nominal = self.nominal_s
        return nominal * (1 - self.jitter), min(self.cap_s, nominal * (1 + self.jitter))

    def next_delay(self) -> float:
        """The delay before the next attempt; each call grows the nominal delay by ``factor``."""
        low, high = self.bounds()
        delay = self._rng.uniform(low, high)
        self.attempts += 1
        self.last_delay_s = delay
        return delay

    def reset(self) -> None:
        self.attempts = 0

    def connection_ended(self, lived_s: float) -> None:
        """Start again from ``initial`` if the connection that just ended had been stable."""
        if lived_s >= self.stable_after_s:
            self.reset()


class Freshness(enum.Enum):
    FRESH = "fresh"
    DUPLICATE = "duplicate"
    """The same update as the newest one already let through (another connection's copy)."""
    STALE = "stale"
    """Older than the newest one already let through: delivering it would go back in time."""


class FreshnessFilter(Generic[K]):
    """Lets through, per key (a feed), only updates newer than the newest so far.

    Redundant connections deliver every update several times and, when one lags,
    late. Keeping the newest stamp per key drops both in O(1), with memory bounded
    by the number of feeds (unlike a TTL cache of message hashes). The last
    ``memory`` stamps let through are remembered too, so a lagging connection's
    copy of an update already delivered counts as a duplicate, not as out of order.
    """

    def __init__(self, memory: int = 32) -> None:
        self._recent: dict[K, deque[tuple[int, ...]]] = {}
        self._memory = memory

    def check(self, key: K, stamp: tuple[int, ...]) -> Freshness:
        """Classify an update by its ordering ``stamp``; a FRESH one becomes the newest."""
        recent = self._recent.get(key)
        if recent is None:
            self._recent[key] = deque((stamp,), maxlen=self._memory)
            return Freshness.FRESH
        newest = recent[-1]
        if stamp > newest:
            recent.append(stamp)  # stamps stay in ascending order
            return Freshness.FRESH
        if stamp == newest or stamp in recent:
            return Freshness.DUPLICATE
        return Freshness.STALE

    def newest(self, key: K) -> tuple[int, ...] | None:
        recent = self._recent.get(key)
        return None if recent is None else recent[-1]


# -- one connection, held until cancelled ----------------------------------------


def describe_error(exc: BaseException) -> str:
    """One line naming an exception, for logs and a source's ``last_error``."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ConnectionState(enum.StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    BACKOFF = "backoff"
    REJECTED = "rejected"
    """The upstream refused for good (say, unknown ids): the loop has ended and its owner decides what next."""
    STOPPED = "stopped"


class Reconnect(Exception):
    """A connection failed in a way its code understands: ``reason`` for people, and how long to wait.

    ``delay_s`` None takes the backoff's next delay; a number overrides it: the
    upstream's ``Retry-After``, or 0 to reopen at once after a routine close.
    """

    def __init__(self, reason: str, delay_s: float | None = None) -> None:
        super().__init__(reason)
        self.delay_s = delay_s


class Rejected(Exception):
    """The upstream refused this connection for good: sending the same request again cannot help."""


class ReconnectingConnection(abc.ABC):
    """One upstream connection, held until cancelled: connect, run until it fails, classify the failure, wait, repeat.

    A subclass implements :meth:`connect_and_run` (calling :meth:`connected` once
    the upstream accepted) and may name its upstream's failures in
    :meth:`classify`. This class keeps the state, the timing and the counters,
    and reports every change of state to ``on_change``.
    """

    def __init__(self, name: str, backoff: Backoff, on_change: Callable[[Self], None] | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.name = name
        self.backoff = backoff
        self._log = logging.getLogger(type(self).__module__)  # under the upstream's module, not this one
        self._on_change = on_change
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None
        self.state = ConnectionState.CONNECTING
        self.connected_at: float | None = None
        """Monotonic time of the current connection; ``connected_since`` is the same for people (wall clock)."""
        self.connected_since: float | None = None
        self.reconnects = 0
        self.last_error: str | None = None

    @abc.abstractmethod
    async def connect_and_run(self) -> str:
        """Connect, call :meth:`connected`, and serve until the connection ends.

        Return why the upstream ended it cleanly; raise :class:`Reconnect` or
        :class:`Rejected` for a failure understood, anything else for one that is not.
        """

    def classify(self, exc: Exception) -> Reconnect:
        """What an exception other than :class:`Reconnect` means; override to name an upstream's errors."""
        self._log.exception("%s: unexpected error", self.name)  # a bug costs one connection a reconnect, not the feed
        return Reconnect(describe_error(exc))

    # -- lifecycle

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=self.name)

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._set_state(ConnectionState.STOPPED)

    async def wait_closed(self) -> None:
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    @property
    def done(self) -> bool:
        return self._task is not None and self._task.done()

    def connected_for(self, now: float | None = None) -> float:
        """Seconds the current connection has been up (0 when not connected)."""
        if self.state != ConnectionState.CONNECTED or self.connected_at is None:
            return 0.0
        return (time.monotonic() if now is None else now) - self.connected_at

    # -- the loop

    async def run(self) -> None:
        """Connect again and again until cancelled or :class:`Rejected`."""
        while True:
            self._set_state(ConnectionState.CONNECTING)
            try:
                failure = Reconnect(await self.connect_and_run())
            except Rejected as exc:
                self._ended(str(exc))
                self._set_state(ConnectionState.REJECTED)
                return
            except Reconnect as exc:
                failure = exc
            except Exception as exc:
                failure = self.classify(exc)
            self._ended(str(failure))
            backoff_delay = self.backoff.next_delay()  # advanced even when overridden, so repeats still slow down
            delay = backoff_delay if failure.delay_s is None else failure.delay_s
            self._log.info("%s: %s; trying again in %.2f s", self.name, failure, delay)
            self._set_state(ConnectionState.BACKOFF)
            await self._sleep(delay)
            self.reconnects += 1

    def connected(self) -> None:
        """The upstream accepted: from now on the connection counts as up."""
        self.connected_at = time.monotonic()
        self.connected_since = time.time()
        self._set_state(ConnectionState.CONNECTED)

    def _ended(self, reason: str) -> None:
        self.last_error = reason
        if self.connected_at is not None:
            self.backoff.connection_ended(time.monotonic() - self.connected_at)
        self.connected_at = self.connected_since = None

    def _set_state(self: Self, state: ConnectionState) -> None:
        if state != self.state:
            self.state = state
            if self._on_change is not None:
                self._on_change(self)

    def status(self) -> dict[str, Any]:
        since = None if self.connected_since is None else datetime.fromtimestamp(self.connected_since, UTC)
        return {
            "state": str(self.state),
            "connected_since": None if since is None else since.isoformat(timespec="milliseconds"),
            "reconnects": self.reconnects,
            "last_error": self.last_error,
        }


C = TypeVar("C", bound=ReconnectingConnection)


class Handover(Generic[C]):
    """Make before break: a replaced connection goes on serving until its successors are up, then closes.

    If a successor cannot connect, the old connection keeps delivering; one
    that is down itself closes at once, since it serves nobody.
    """

    def __init__(self) -> None:
        self.retiring: list[C] = []
        """Replaced, still serving until taken over."""
        self._closing: list[C] = []

    def retire(self, connection: C) -> None:
        self.retiring.append(connection)

    def settle(self, taken_over: Callable[[C], bool]) -> None:
        """Close each retiring connection that is down or whose work ``taken_over`` says connected successors do."""
        keep = []
        for connection in self.retiring:
            if connection.done or connection.state != ConnectionState.CONNECTED or taken_over(connection):
                connection.cancel()
                self._closing.append(connection)
            else:
                keep.append(connection)
        self.retiring = keep
        self._closing = [connection for connection in self._closing if not connection.done]

    async def close(self) -> None:
        """Cancel every retiring connection and wait until all are closed."""
        connections = [*self.retiring, *self._closing]
        for connection in connections:
            connection.cancel()
        await asyncio.gather(*(connection.wait_closed() for connection in connections))
        self.retiring.clear()
        self._closing.clear()
