"""Hermes' feed list (``GET /v2/price_feeds``), polled inside the source's request budget.

Polling runs on the same reconnect loop as the streams: a failed fetch backs
off, a 429 waits out its ``Retry-After`` (and holds back every other request of
the source), and a successful fetch counts as being up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence

import httpx
import orjson

from ...model import Feed, FeedId
from ...resilience import Backoff, Reconnect, ReconnectingConnection
from ..http import RequestBudget, describe_failure, parse_retry_after
from .wire import Endpoint, HermesProtocolError, explain_status, feeds_from_metadata


class MetadataPoller(ReconnectingConnection):
    """Fetches the feed list now and every ``every_s`` from the first endpoint that answers, until cancelled."""

    def __init__(self, *, client: httpx.AsyncClient, endpoints: Sequence[Endpoint], budget: RequestBudget,
                 backoff: Backoff, every_s: float, timeout_s: float, known: Callable[[], Mapping[FeedId, Feed]],
                 on_feeds: Callable[[list[Feed]], None], has_api_key: bool = False, source: str = "hermes") -> None:
        super().__init__(f"{source} metadata", backoff)
        self._client = client
        self._endpoints = endpoints
        self._budget = budget
        self._every_s = every_s
        self._timeout_s = timeout_s
        self._known = known
        self._on_feeds = on_feeds
        self._has_api_key = has_api_key
        self._source = source
        self.feeds = 0
        """How many feeds the last successful fetch listed."""
        self.refreshed_at: float | None = None

    async def connect_and_run(self) -> str:
        while True:
            feeds = await self.fetch()
            self.feeds = len(feeds)
            self.refreshed_at = time.monotonic()
            self.last_error = None
            self.connected()
            self._on_feeds(feeds)
            await asyncio.sleep(self._every_s)

    async def fetch(self) -> list[Feed]:
        """The feeds of the first endpoint that lists them; :class:`Reconnect` saying why if none did."""
        errors: list[str] = []
        for endpoint in self._endpoints:
            await self._budget.acquire()
            try:
                response = await self._client.get(endpoint.metadata_url, params=list(endpoint.params),
                                                  timeout=self._timeout_s)
            except httpx.HTTPError as exc:
                errors.append(f"{endpoint.display}: {describe_failure(exc)}")
                continue
            status = response.status_code
            if status == 429:  # the other endpoints would wait for the same cool-down: stop here
                wait = self._budget.penalize(parse_retry_after(response.headers.get("retry-after")))
                raise Reconnect(f"{endpoint.display}: HTTP 429 (waiting {wait:g} s)", wait)
            if status != 200:
                text = explain_status(status, response.text.strip(), has_api_key=self._has_api_key)
                errors.append(f"{endpoint.display}: {text}")
                continue
            try:
                return feeds_from_metadata(orjson.loads(response.content), self._known(), self._source)
            except (HermesProtocolError, orjson.JSONDecodeError) as exc:
                errors.append(f"{endpoint.display}: {exc}")
        raise Reconnect("; ".join(errors))
