"""Pieces every HTTP upstream shares: a request budget, ``Retry-After``, error bodies, URLs safe to log.

Public APIs limit requests per IP (Hermes: 10 per 10 s, then 429 for 60 s;
CoinGecko's keyless tier: 30 per minute). :class:`RequestBudget` keeps every
request of a source, reconnects and metadata refreshes alike, inside such a
window, and a 429 stops all of them until the upstream's ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from ..client.urls import redact_url
from ..resilience import describe_error

__all__ = ["OFFLINE_HINT", "RequestBudget", "describe_error", "describe_failure", "parse_retry_after",
           "read_error_body", "redact_url", "unreachable_hint"]

OFFLINE_HINT = "no network: try `--source sim`"
"""What to tell someone whose upstream's name does not resolve: the service runs offline on the simulated market."""


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


async def read_error_body(response: httpx.Response, limit: int = 4096) -> str:
    """The start of an error body; an upstream cannot make us read megabytes to log a line."""
    body = b""
    try:
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) >= limit:
                break
    except httpx.HTTPError:
        pass
    return body[:limit].decode("utf-8", "replace").strip()


def unreachable_hint(exc: BaseException) -> str | None:
    """A hint when ``exc`` means the upstream could not be reached at all (None for any other failure).

    A name that does not resolve, or no route to the network, is what running
    offline looks like; a refused or timed-out connect more likely a wrong URL.
    """
    for cause in _causes(exc):
        if isinstance(cause, socket.gaierror) or getattr(cause, "errno", None) in _NO_NETWORK:
            return OFFLINE_HINT
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return "cannot connect: check the upstream URL, or try `--source sim`"
    return None


def describe_failure(exc: BaseException) -> str:
    """:func:`describe_error`, with :func:`unreachable_hint`'s advice when there is some."""
    hint = unreachable_hint(exc)
    return describe_error(exc) if hint is None else f"{describe_error(exc)} ({hint})"


_NO_NETWORK = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN}


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it was raised from (httpx wraps httpcore, which wraps the socket's error)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


class RequestBudget:
    """At most ``requests`` per sliding ``window_s``, shared by every request a source makes.

    :meth:`acquire` waits for a free slot instead of failing, so a burst of
    reconnects is spread out rather than answered with 429; waiters go in the
    order they came. :meth:`cool_down` (on a 429; :meth:`penalize` reads the
    ``Retry-After``) blocks every request until the upstream says it may resume.
    """

    def __init__(self, requests: int, window_s: float, clock: Callable[[], float] = time.monotonic, *,
                 penalty_s: float = 60.0, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if requests < 1 or window_s <= 0:
            raise ValueError("a request budget needs at least one request per positive window")
        self.requests = requests
        self.window_s = window_s
        self.penalty_s = penalty_s
        """How long a 429 without ``Retry-After`` stops requests (public Hermes: 60 s)."""
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._blocked_until = 0.0
        self._queue = asyncio.Lock()  # FIFO: a request that waited is not overtaken by one that just came
        self.waits = 0
        """How many requests had to wait for the budget."""
        self.sent = 0
        """Requests let through so far."""
        self.rate_limited = 0
        """How many 429s the upstream answered."""

    def delay(self) -> float:
        """Seconds until a request may go (0 if now)."""
        now = self._clock()
        sent = self._sent
        while sent and sent[0] <= now - self.window_s:
            sent.popleft()
        wait = self._blocked_until - now
        if len(sent) >= self.requests:
            wait = max(wait, sent[0] + self.window_s - now)
        return max(0.0, wait)

    async def acquire(self) -> None:
        """Wait until a request fits the budget, then count it as sent."""
        waited = self._queue.locked()  # behind others that wait: this one waits too
        async with self._queue:
            while (wait := self.delay()) > 0:
                waited = True
                await self._sleep(wait)
            self.waits += waited
            self.sent += 1
            self._sent.append(self._clock())

    def cool_down(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (the upstream answered 429)."""
        self._blocked_until = max(self._blocked_until, self._clock() + seconds)

    def penalize(self, retry_after_s: float | None) -> float:
        """The upstream answered 429: cool down for its ``Retry-After``, or ``penalty_s`` without one; the wait."""
        self.rate_limited += 1
        wait = self.penalty_s if retry_after_s is None else retry_after_s
        self.cool_down(wait)
        return wait

    @property
    def cooling_down_s(self) -> float:
        """Seconds left of a 429's cool-down (0 if none)."""
        return max(0.0, self._blocked_until - self._clock())

    def status(self) -> dict[str, Any]:
        return {"requests_per_window": self.requests, "window_s": self.window_s, "sent": self.sent,
                "waits": self.waits, "rate_limited": self.rate_limited,
                "cooling_down_s": round(self.cooling_down_s, 3)}
