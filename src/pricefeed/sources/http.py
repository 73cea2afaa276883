"""Pieces every HTTP upstream shares: a request budget, ``Retry-After``, error bodies, URLs safe to log.

Public APIs limit requests per IP (Hermes: 10 per 10 s, then 429 for 60 s;
CoinGecko's keyless tier: 30 per minute). :class:`RequestBudget` keeps every
request of a source, reconnects and metadata refreshes alike, inside such a
window, and a 429 stops all of them until the upstream's ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from email.utils import parsedate_to_datetime

import httpx

from ..client.urls import redact_url

__all__ = ["RequestBudget", "describe_error", "parse_retry_after", "read_error_body", "redact_url"]


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


def describe_error(exc: BaseException) -> str:
    """One line naming an exception, for logs and a source's ``last_error``."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class RequestBudget:
    """At most ``requests`` per sliding ``window_s``, shared by every request a source makes.

    :meth:`acquire` waits for a free slot instead of failing, so a burst of
    reconnects is spread out rather than answered with 429. :meth:`cool_down`
    (on a 429) blocks every request until the upstream says it may resume.
    """

    def __init__(self, requests: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if requests < 1 or window_s <= 0:
            raise ValueError("a request budget needs at least one request per positive window")
        self.requests = requests
        self.window_s = window_s
        self._clock = clock
        self._sent: deque[float] = deque()
        self._blocked_until = 0.0
        self.waits = 0
        """How many requests had to wait for the budget."""

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
        waited = False
        while (wait := self.delay()) > 0:
            waited = True
            await asyncio.sleep(wait)
        self.waits += waited
        self._sent.append(self._clock())

    def cool_down(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (the upstream answered 429)."""
        self._blocked_until = max(self._blocked_until, self._clock() + seconds)
