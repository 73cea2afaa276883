"""CoinGecko (``--source coingecko``): one batched ``/coins/markets`` call per interval for the whole coin set.

Every request goes through one :class:`~pricefeed.sources.http.RequestBudget`
(``--coingecko-calls-per-minute``, 30 by default: the keyless and demo limit),
whatever else happens. A 429 stops all requests for its ``Retry-After``
(seconds or an HTTP date) or, without one, for a jittered backoff; any other
failure waits a jittered backoff too, so an outage never turns into a burst of
retries. Meanwhile the last prices stay served, and the hub marks them stale.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from collections.abc import Sequence
from typing import Any, Literal

import httpx

from ..bus.base import Sink
from ..coins import Coin, parse_coins
from ..config import Settings
from ..model import PriceUpdate
from ..resilience import Backoff
from .base import Source, SourceState
from .coingecko_wire import (
    API_KEY_HEADERS,
    DEMO_MONTHLY_CALLS,
    PER_PAGE,
    PRO_URL,
    PUBLIC_URL,
    SOURCE,
    CoinGeckoError,
    coin_feed,
    markets_params,
    parse_markets,
)
from .http import RequestBudget, describe_error, parse_retry_after, read_error_body, redact_url

log = logging.getLogger(__name__)

Plan = Literal["demo", "pro"]
SECONDS_PER_MONTH = 30.44 * 86_400
MAX_BODY_BYTES = 8 * 1024 * 1024


class CoinGeckoSource(Source):
    name = SOURCE

    def __init__(self, sink: Sink, *, coins: Sequence[Coin], base_url: str | None = None,
                 api_key: str | None = None, plan: Plan = "demo", interval_s: float = 10.0,
                 calls_per_minute: int = 30, timeout_s: float = 10.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(sink)
        if not coins:
            raise ValueError("CoinGecko needs at least one coin")
        self.coins = list(coins)
        self.plan: Plan = "pro" if base_url is not None and "pro-api." in base_url else plan
        self.base_url = (base_url or (PRO_URL if self.plan == "pro" else PUBLIC_URL)).rstrip("/")
        self.interval_s = interval_s
        self.budget = RequestBudget(calls_per_minute, 60.0)
        # Back off from one interval up to twelve (two minutes at the default 10 s), jittered.
        self.backoff = Backoff(initial_s=interval_s, factor=2.0, cap_s=max(interval_s, min(120.0, 12 * interval_s)),
                               jitter=0.5, stable_after_s=0.0)
        headers = {"accept": "application/json", "user-agent": "pricefeed"}
        if api_key:
            headers[API_KEY_HEADERS[self.plan]] = api_key
        self._client = httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(timeout_s), transport=transport,
                                         follow_redirects=False)
        self._names: dict[str, str] = {}
        self._problems: dict[str, str] = {}
        self.calls = 0
        self.failures = 0
        self.rate_limited = 0
        self.last_success_at: float | None = None
        self.next_poll_at: float | None = None

    @classmethod
    def from_settings(cls, sink: Sink, settings: Settings) -> CoinGeckoSource:
        key = settings.coingecko_api_key.get_secret_value() if settings.coingecko_api_key else None
        return cls(sink, coins=parse_coins(settings.coingecko_coins), base_url=settings.coingecko_url, api_key=key,
                   plan=settings.coingecko_plan, interval_s=settings.coingecko_interval,
                   calls_per_minute=settings.coingecko_calls_per_minute, timeout_s=settings.coingecko_timeout)

    @property
    def batches(self) -> list[list[Coin]]:
        """The coins of each call: one call per :data:`PER_PAGE` coins."""
        return [self.coins[i:i + PER_PAGE] for i in range(0, len(self.coins), PER_PAGE)]

    async def start(self) -> None:
        feeds = []
        for coin in self.coins:
            # A feed restored from the store keeps its name and exponent, so its stored price is served as it was.
            known = self.sink.feeds.get(coin.feed_id)
            feed = coin_feed(coin, None if known is None else known.attributes.get("name"))
            feeds.append(feed if known is None else dataclasses.replace(feed, expo=known.expo))
        self.sink.add_feeds(feeds)
        self._log_monthly_cost()
        self.spawn(self._run(), "coingecko")

    async def stop(self) -> None:
        await super().stop()
        await self._client.aclose()

    def _log_monthly_cost(self) -> None:
        calls = math.ceil(len(self.batches) * SECONDS_PER_MONTH / self.interval_s)
        within = len(self.batches) * SECONDS_PER_MONTH / DEMO_MONTHLY_CALLS
        if calls <= DEMO_MONTHLY_CALLS:
            log.info("coingecko: one call every %gs is about %d calls a month, within the demo plan's %d",
                     self.interval_s, calls, DEMO_MONTHLY_CALLS)
        else:
            log.warning("coingecko: one call every %gs is about %d calls a month, %.0fx the demo plan's monthly %d "
                        "(keyless use has no monthly quota, only a per-IP rate limit); --coingecko-interval %d "
                        "or more stays within it", self.interval_s, calls, calls / DEMO_MONTHLY_CALLS,
                        DEMO_MONTHLY_CALLS, math.ceil(within))

    # -- polling

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            delay = await self.poll()
            wait = max(0.0, started + delay - loop.time())  # a steady cadence, whatever the call took
            self.next_poll_at = time.monotonic() + wait
            await asyncio.sleep(wait)

    async def poll(self) -> float:
        """Fetch every coin once; the seconds from this poll's start to the next one."""
        for batch in self.batches:
            try:
                await self._fetch(batch)
            except _Failure as failure:
                self.failures += 1
                delay = failure.retry_after if failure.retry_after is not None else self.backoff.next_delay()
                delay = max(delay, self.interval_s)
                if failure.rate_limited:
                    self.budget.cool_down(delay)  # nothing else may go before the upstream allows it
                log.warning("coingecko: %s; next try in %.1fs", failure.reason, delay)
                self.set_state(SourceState.RECONNECTING, failure.reason)
                return delay
        self.backoff.reset()
        self.last_success_at = time.monotonic()
        self.set_state(SourceState.CONNECTED)
        return self.interval_s

    async def _fetch(self, coins: list[Coin]) -> None:
        await self.budget.acquire()
        self.calls += 1
        url = self.base_url + "/coins/markets"
        try:
            async with self._client.stream("GET", url, params=markets_params(coins)) as response:
                if response.status_code == 429:
                    self.rate_limited += 1
                    retry_after = parse_retry_after(response.headers.get("retry-after"))
                    shown = "no Retry-After" if retry_after is None else f"Retry-After {retry_after:.0f}s"
                    raise _Failure(f"rate limited (HTTP 429, {shown}): {await read_error_body(response)}",
                                   retry_after=retry_after, rate_limited=True)
                if response.status_code != 200:
                    raise _Failure(f"HTTP {response.status_code} from {redact_url(url)}: "
                                   f"{await read_error_body(response)}")
                body = await _read_limited(response, MAX_BODY_BYTES)
        except httpx.TimeoutException as exc:
            raise _Failure(f"{redact_url(url)} timed out ({describe_error(exc)})") from None
        except httpx.HTTPError as exc:
            raise _Failure(f"{redact_url(url)}: {describe_error(exc)}") from None
        try:
            answer = parse_markets(body, coins)
        except CoinGeckoError as exc:
            raise _Failure(str(exc)) from None
        self._apply(coins, answer.updates, answer.names, answer.problems)

    def _apply(self, coins: list[Coin], updates: list[PriceUpdate], names: dict[str, str],
               problems: dict[str, str]) -> None:
        changed = {coin_id: name for coin_id, name in names.items() if self._names.get(coin_id) != name}
        self._names.update(changed)
        renamed = [coin_feed(c, changed[c.coingecko_id]) for c in coins if c.name is None and c.coingecko_id in changed]
        if renamed:
            self.sink.add_feeds(renamed)
        for coin in coins:
            problem = problems.get(coin.symbol)
            if problem is not None and self._problems.get(coin.symbol) != problem:
                log.warning("coingecko: skipping %s: %s", coin.symbol, problem)  # once, until it changes
            elif problem is None and coin.symbol in self._problems:
                log.info("coingecko: %s is back", coin.symbol)
            if problem is None:
                self._problems.pop(coin.symbol, None)
            else:
                self._problems[coin.symbol] = problem
        # A feed's exponent follows its latest price (CoinGecko's decimals vary), as faces that read
        # Feed.expo with the latest mantissa (pythd's price_exponent) expect.
        feeds = self.sink.feeds
        moved = [dataclasses.replace(feed, expo=u.expo) for u in updates
                 if (feed := feeds.get(u.feed_id)) is not None and feed.expo != u.expo]
        if moved:
            self.sink.add_feeds(moved)
        self.mark_message(len(updates))
        if updates:  # CoinGecko's last_updated: how old its prices are when we get them
            self.mark_published(max(u.publish_time_us for u in updates))
        self.sink.publish_many(updates)

    def status(self) -> dict[str, Any]:
        status = super().status()
        now = time.monotonic()
        status.update(
            url=redact_url(self.base_url), plan=self.plan, interval_s=self.interval_s, coins=len(self.coins),
            calls=self.calls, failures=self.failures, rate_limited=self.rate_limited,
            calls_per_minute_limit=self.budget.requests, budget_waits=self.budget.waits,
            last_success_age_s=None if self.last_success_at is None else round(now - self.last_success_at, 3),
            next_poll_in_s=None if self.next_poll_at is None else round(max(0.0, self.next_poll_at - now), 3),
            skipped_coins=dict(self._problems))
        return status


async def _read_limited(response: httpx.Response, limit: int) -> bytes:
    """The whole body, unless it grows past ``limit`` (a page of 250 coins is about 250 KB)."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            raise _Failure(f"/coins/markets answered more than {limit} bytes")
    return bytes(body)


class _Failure(Exception):
    def __init__(self, reason: str, retry_after: float | None = None, rate_limited: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.rate_limited = rate_limited
