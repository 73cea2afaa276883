"""One Hermes SSE stream: a shard of ids on one endpoint, held up by the shared reconnect loop.

:class:`~pricefeed.resilience.ReconnectingConnection` connects, waits and
reconnects; this module says what connecting means for Hermes (one request
inside the source's request budget, then a deadline on silence) and what each
of its answers means: 404 for unknown ids, 429 and its ``Retry-After``, 401 for
a missing API key, ``event:error`` texts that end a stream.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import httpx
from httpx_sse import SSEError, aconnect_sse

from ...model import FeedId
from ...resilience import Backoff, ConnectionState, Reconnect, ReconnectingConnection, Rejected
from ..http import RequestBudget, describe_failure, parse_retry_after, read_error_body
from .wire import DAILY_LIMIT_TEXT, SERVER_CLOSES, Endpoint, explain_status, parse_not_found_ids

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from httpx_sse import ServerSentEvent

log = logging.getLogger(__name__)

StreamState = ConnectionState
"""A stream's states are those of every reconnecting connection."""


class _WatchedStream(httpx.AsyncByteStream):
    """The response body, calling ``on_bytes`` for every chunk: keep-alive comments never reach the SSE parser."""

    def __init__(self, inner: httpx.AsyncByteStream, on_bytes: Callable[[], None]) -> None:
        self._inner = inner
        self._on_bytes = on_bytes

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            self._on_bytes()
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


EventHandler = Callable[["HermesStream", str], None]


class HermesStream(ReconnectingConnection):
    """One SSE connection for one shard of ids, reconnecting with backoff until stopped."""

    def __init__(self, *, endpoint: Endpoint, ids: frozenset[FeedId], replica: int, client: httpx.AsyncClient,
                 budget: RequestBudget, backoff: Backoff, silence_timeout_s: float, on_prices: EventHandler,
                 on_change: Callable[[HermesStream], None], on_alive: Callable[[], None],
                 rollover_after_s: float, has_api_key: bool = False) -> None:
        super().__init__(f"hermes stream {endpoint.display}#{replica}", backoff, on_change)
        self.endpoint = endpoint
        self.ids = ids
        self.replica = replica
        self.rollover_after_s = rollover_after_s
        self._client = client
        self._budget = budget
        self._silence_timeout_s = silence_timeout_s
        self._on_prices = on_prices
        self._on_alive = on_alive
        self._has_api_key = has_api_key
        self.last_event_at: float | None = None
        self.last_bytes_at: float | None = None
        self.events = 0
        self.duplicates = 0
        self.out_of_order = 0
        self.malformed = 0
        self.error_events = 0
        self.unknown_ids: set[FeedId] = set()
        """The ids Hermes answered 404 for, once the stream is REJECTED."""

    async def connect_and_run(self) -> str:
        # The budget first, outside the silence deadline: waiting for our own budget is not Hermes being silent.
        await self._budget.acquire()
        loop = asyncio.get_running_loop()
        params = [*self.endpoint.params, *(("ids[]", feed_id) for feed_id in sorted(self.ids)), ("parsed", "true")]
        # One deadline covers connecting, the response head and every gap between bytes: a hung connection
        # and a silent one are the same failure.
        async with asyncio.timeout(self._silence_timeout_s) as silence:

            def alive() -> None:
                silence.reschedule(loop.time() + self._silence_timeout_s)
                self.last_bytes_at = time.monotonic()
                self._on_alive()

            async with aconnect_sse(self._client, "GET", self.endpoint.stream_url, params=params) as source:
                response = source.response
                if response.status_code != 200:
                    await self._refused(response)
                content_type = response.headers.get("content-type", "")
                if not content_type.startswith("text/event-stream"):  # e.g. a proxy's HTML page
                    raise Reconnect(f"not an event stream: content-type {content_type!r}")
                assert isinstance(response.stream, httpx.AsyncByteStream)
                response.stream = _WatchedStream(response.stream, alive)
                alive()
                self.connected()
                async for event in source.aiter_sse():
                    self._on_event(event)
        return "stream ended by the server"

    def classify(self, exc: Exception) -> Reconnect:
        if isinstance(exc, TimeoutError):  # our silence deadline (before OSError: TimeoutError is one)
            return Reconnect(f"silent for {self._silence_timeout_s:g} s (no event, no keep-alive)")
        if isinstance(exc, httpx.HTTPError | SSEError | OSError):
            return Reconnect(describe_failure(exc))
        return super().classify(exc)

    async def _refused(self, response: httpx.Response) -> NoReturn:
        """Turn a non-200 answer into the right next step: drop unknown ids, wait as asked, or back off."""
        body = await read_error_body(response)
        status = response.status_code
        if status == 404:
            unknown = parse_not_found_ids(body) & self.ids
            if unknown:
                self.unknown_ids = unknown
                raise Rejected(f"HTTP 404: {body}")
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            wait = self._budget.penalize(retry_after)  # every request of the source waits, not only this stream's
            if retry_after is not None:
                raise Reconnect(f"HTTP 429 (Retry-After {retry_after:g} s)", wait)
            raise Reconnect(f"HTTP 429 without Retry-After (waiting {wait:g} s)", wait)
        raise Reconnect(explain_status(status, body, has_api_key=self._has_api_key))

    def _on_event(self, event: ServerSentEvent) -> None:
        self.last_event_at = time.monotonic()
        if event.event == "error":
            self.error_events += 1
            self.last_error = f"event:error {event.data}"
            if event.data.startswith(SERVER_CLOSES):
                # The 24 h limit is routine (we should have rolled over first): reopen at once, no backoff.
                immediate = event.data.startswith(DAILY_LIMIT_TEXT)
                raise Reconnect(f"Hermes closed the stream: {event.data}", 0.0 if immediate else None)
            log.warning("%s: %s", self.name, event.data)
            return
        if event.event not in ("", "message"):
            return
        self.events += 1
        self._on_prices(self, event.data)

    def status(self, now: float | None = None) -> dict[str, Any]:
        now = time.monotonic() if now is None else now
        return {
            "endpoint": self.endpoint.display,
            "replica": self.replica,
            "feeds": len(self.ids),
            **super().status(),
            "last_event_age_s": age_s(self.last_event_at, now),
            "last_message_age_s": age_s(self.last_bytes_at, now),
            "events": self.events,
            "duplicates_dropped": self.duplicates,
            "out_of_order_dropped": self.out_of_order,
            "malformed_events": self.malformed,
            "error_events": self.error_events,
        }


def age_s(at: float | None, now: float) -> float | None:
    """Seconds since a monotonic time, for ``/status`` (None if it never happened)."""
    return None if at is None else round(now - at, 3)
