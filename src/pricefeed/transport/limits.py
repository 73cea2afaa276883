"""Per-connection limits, shared by every socket face: message size and rate, queued bytes, slow clients."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_message_bytes: int = 64 * 1024
    """A larger inbound message closes the connection with 1009."""
    max_messages_per_second: float = 50.0
    message_burst: int = 100
    """A flood beyond ``max_messages_per_second`` (after this burst) closes with 1008."""
    outbox_limit_bytes: int = 1024 * 1024
    """Queued bytes (outbox and socket buffer) a connection may hold; over it while blocked closes with 1008."""
    slow_client_timeout_s: float = 10.0
    """A connection that cannot be written to for this long is closed with 1008."""
    idle_timeout_s: float = 10.0
    """A connection that has not completed its handshake (or request head) by then is dropped."""
    ping_interval_s: float = 30.0
    """A WebSocket on an API-style port is pinged this often (Hermes: 30 s)."""
    pong_timeout_s: float = 30.0
    """A WebSocket that has sent nothing, not even a pong, this long after a ping is closed (Hermes: by the next
    ping)."""


class TokenBucket:
    """A rate limit with a burst: ``take(cost)`` succeeds while tokens remain, refilled at ``rate`` per second.

    A message costs one token; a batch may cost one per request, so a client
    cannot buy a second's worth of work with one frame.
    """

    __slots__ = ("_at", "_clock", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()

    def spend(self, cost: float) -> bool:
        """Spend ``cost`` tokens as far as they go (down to none); False if not even one was left."""
        if not self.take(1.0):
            return False
        self._tokens = max(0.0, self._tokens - (cost - 1.0))
        return True

    def take(self, cost: float = 1.0) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < cost:
            return False
        self._tokens -= cost
        return True


class ByteBudget:
    """Bytes per second with a burst, for the write path: ``spend(n)`` is one subtraction while the balance lasts;
    the clock is read (and the balance refilled) only when it runs out, so a budget that is never reached costs
    next to nothing per write. Over any window from a refill it lets through at most ``burst + rate x window``."""

    __slots__ = ("_at", "_balance", "_clock", "burst", "rate")

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._balance = float(burst)
        self._at = clock()

    def spend(self, size: int) -> bool:
        """Take ``size`` bytes; False if the budget cannot cover them even after refilling (nothing is taken)."""
        self._balance -= size
        if self._balance >= 0:
            return True
        now = self._clock()
        self._balance = min(self.burst, self._balance + size + (now - self._at) * self.rate) - size
        self._at = now
        if self._balance >= 0:
            return True
        self._balance += size
        return False
