"""The CoinGecko source against a local CoinGecko (recorded answers, scripted 429s, 500s, hangs, bad bodies)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator
from email.utils import formatdate, parsedate_to_datetime
from typing import Any

import pytest

from pricefeed.coins import SEED_COINS, coin_feed_id, parse_coins
from pricefeed.model import PriceUpdate
from pricefeed.pipeline import local_pipeline
from pricefeed.sources.base import SourceState
from pricefeed.sources.coingecko import CoinGeckoSource

from ..coingecko_server import RATE_LIMIT_BODY, SEED_IDS, CoinGeckoServer, Hang, Respond


@pytest.fixture
async def coingecko() -> AsyncIterator[CoinGeckoServer]:
    server = await CoinGeckoServer().start()
    try:
        yield server
    finally:
        await server.stop()


class Run:
    """A hub and a CoinGecko source on it; ``batches`` receives each pass's accepted updates."""

    def __init__(self, server: CoinGeckoServer, **options: Any) -> None:
        pipeline = local_pipeline(stale_after_s=60)
        self.hub = pipeline.hub
        self.batches: asyncio.Queue[list[PriceUpdate]] = asyncio.Queue()
        self.hub.add_listener(self.batches.put_nowait)
        options = {"coins": SEED_COINS, "base_url": server.url, "interval_s": 0.05, "timeout_s": 2.0, **options}
        self.source = CoinGeckoSource(pipeline.ingest, **options)

    async def next_batch(self, timeout: float = 10.0) -> list[PriceUpdate]:
        return await asyncio.wait_for(self.batches.get(), timeout)


@pytest.fixture
async def run(coingecko: CoinGeckoServer, request: pytest.FixtureRequest) -> AsyncIterator[Run]:
    marker = request.node.get_closest_marker("source_options")
    started = Run(coingecko, **(marker.kwargs if marker else {}))
    await started.source.start()
    try:
        yield started
    finally:
        await started.source.stop()


def gaps(server: CoinGeckoServer) -> list[float]:
    times = [r.at for r in server.markets_requests()]
    return [b - a for a, b in itertools.pairwise(times)]


@pytest.mark.source_options(api_key="CG-demo-key")
async def test_one_batched_call_gives_every_coin_its_exact_price(run: Run, coingecko: CoinGeckoServer) -> None:
    batch = await run.next_batch()
    assert [u.feed_id for u in batch] == [coin_feed_id(i) for i in SEED_IDS]
    first = coingecko.markets_requests()[0]
    assert first.query == {"vs_currency": "usd", "ids": ",".join(SEED_IDS), "order": "market_cap_desc",
                           "per_page": "250", "page": "1", "sparkline": "false", "precision": "full"}
    assert first.headers["x-cg-demo-api-key"] == "CG-demo-key" and "x-cg-pro-api-key" not in first.headers
    btc = run.hub.latest[coin_feed_id("bitcoin")]
    assert (btc.price, btc.expo, btc.publish_time_us, btc.seq) == (7018700000000, -8, 1712508571736000, 1)
    assert run.hub.feeds[btc.feed_id].symbol == "CoinGecko.BTC/USD"
    eth = run.hub.latest[coin_feed_id("ethereum")]
    assert (eth.price, eth.expo, run.hub.feeds[eth.feed_id].expo) == (34529123675012364, -13, -13)
    assert run.source.state == SourceState.CONNECTED
    await coingecko.wait_answered(3)  # the same recording again: nothing new is accepted, the feeds stay fresh
    assert run.batches.empty() and run.hub.stale_count() == 0


@pytest.mark.source_options(api_key="CG-pro-key", plan="pro")
async def test_a_pro_key_goes_in_the_pro_header(run: Run, coingecko: CoinGeckoServer) -> None:
    await run.next_batch()
    headers = coingecko.markets_requests()[0].headers
    assert headers["x-cg-pro-api-key"] == "CG-pro-key" and "x-cg-demo-api-key" not in headers


@pytest.mark.source_options(calls_per_minute=3)
async def test_the_calls_per_minute_budget_is_never_exceeded(run: Run, coingecko: CoinGeckoServer) -> None:
    await coingecko.wait_answered(3)
    await asyncio.sleep(1.0)  # twenty intervals: an observation window, not a wait for data
    assert len(coingecko.markets_requests()) == 3
    assert run.source.budget.delay() > 55


async def test_429_with_retry_after_seconds_stops_every_call_that_long(coingecko: CoinGeckoServer) -> None:
    await _rate_limited(coingecko, "2", 2.0)


async def test_429_with_retry_after_as_an_http_date(coingecko: CoinGeckoServer) -> None:
    date = formatdate(time.time() + 3, usegmt=True)  # whole seconds: the source may call again at that second
    loop = asyncio.get_running_loop()
    not_before = loop.time() + parsedate_to_datetime(date).timestamp() - time.time()  # the date, in loop time
    await _rate_limited(coingecko, date, 1.0)
    assert coingecko.markets_requests()[1].at >= not_before - 0.02


async def _rate_limited(coingecko: CoinGeckoServer, retry_after: str, at_least_s: float) -> None:
    coingecko.script.append(Respond(429, RATE_LIMIT_BODY, {"retry-after": retry_after}))
    run = Run(coingecko)
    await run.source.start()
    try:
        batch = await run.next_batch()  # the first call was refused; this is the one after Retry-After
        assert len(batch) == 10 and len(coingecko.markets_requests()) == 2
        assert gaps(coingecko)[0] >= at_least_s - 0.02
        assert run.source.rate_limited == 1 and run.source.state == SourceState.CONNECTED
    finally:
        await run.source.stop()


async def test_429_without_retry_after_backs_off_with_jitter(coingecko: CoinGeckoServer) -> None:
    coingecko.script.extend([Respond(429, RATE_LIMIT_BODY), Respond(429, RATE_LIMIT_BODY)])
    run = Run(coingecko, interval_s=0.2)
    await run.source.start()
    try:
        await run.next_batch()
        assert len(coingecko.markets_requests()) == 3
        first, second = gaps(coingecko)
        assert 0.2 - 0.02 <= first <= 0.3 + 0.2 and 0.2 <= second <= 0.6 + 0.2  # 0.2 s x2^n, +-50 %, >= interval
        assert run.source.rate_limited == 2
    finally:
        await run.source.stop()


async def test_server_errors_timeouts_and_bad_bodies_back_off_and_recover(coingecko: CoinGeckoServer,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    coingecko.script.extend([Respond(500, b'{"error":"Internal Server Error"}'), Hang(),
                             Respond(200, b"<html>upstream timeout</html>", content_type="text/html"),
                             Respond(200, b'{"status":{"error_code":10002,"error_message":"Missing API Key"}}')])
    run = Run(coingecko, interval_s=0.1, timeout_s=0.3)
    await run.source.start()
    try:
        batch = await run.next_batch(timeout=20)
        assert len(batch) == 10 and len(coingecko.markets_requests()) == 5
        assert all(gap >= 0.1 - 0.02 for gap in gaps(coingecko))  # never a burst of retries
        assert run.source.failures == 4 and run.source.state == SourceState.CONNECTED
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert [w.split(";")[0] for w in warnings if "; next try in" in w] == [
            f"coingecko: HTTP 500 from {coingecko.url}/coins/markets: " + '{"error":"Internal Server Error"}',
            f"coingecko: {coingecko.url}/coins/markets timed out (ReadTimeout)",
            "coingecko: invalid JSON from /coins/markets: Expecting value: line 1 column 1 (char 0)",
            "coingecko: /coins/markets returned an object, not an array: Missing API Key"]
    finally:
        await run.source.stop()


async def test_a_bad_coin_is_skipped_with_one_warning(coingecko: CoinGeckoServer,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    body = coingecko.markets_body(list(SEED_IDS)).replace(b'"current_price":0.5887614329034852',
                                                          b'"current_price":"0.58"')
    coingecko.script.extend([Respond(200, body), Respond(200, body)])
    run = Run(coingecko)
    await run.source.start()
    try:
        batch = await run.next_batch()
        assert len(batch) == 9 and coin_feed_id("cardano") not in {u.feed_id for u in batch}
        await coingecko.wait_answered(3)
        cardano = await run.next_batch()  # the third call serves the recording: ADA is back
        assert [u.feed_id for u in cardano] == [coin_feed_id("cardano")]
        skipped = [r.getMessage() for r in caplog.records if "skipping" in r.getMessage()]
        assert skipped == ["coingecko: skipping ADA: 'cardano': current_price is a string, expected a number"]
    finally:
        await run.source.stop()


async def test_coins_beyond_one_page_take_one_call_per_page(coingecko: CoinGeckoServer) -> None:
    coins = parse_coins([f"C{i}=coin-{i}" for i in range(251)])
    run = Run(coingecko, coins=coins)
    await run.source.start()
    try:
        await coingecko.wait_answered(2)
        pages = [r.query["ids"].split(",") for r in coingecko.markets_requests()[:2]]
        assert [len(p) for p in pages] == [250, 1] and pages[1] == ["coin-250"]
    finally:
        await run.source.stop()
