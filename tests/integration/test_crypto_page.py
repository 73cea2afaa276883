"""The seed's test page in headless Chromium (Debian's chromium driven by Playwright): the light goes green, the
ten coins appear with their exact prices, and the light turns yellow then green again when the service restarts.
Nothing is fetched from anywhere but pricefeed."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from ..coingecko_server import CoinGeckoServer
from ..crypto_client import expected_prices
from ..service import ServiceProcess

CHROMIUM = os.environ.get("PRICEFEED_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

HAVE_CHROMIUM = Path(CHROMIUM).exists()
MISSING = "needs Debian's chromium (scripts/test installs it with apt-get when root)"


@pytest.fixture
async def coingecko() -> AsyncIterator[CoinGeckoServer]:
    server = await CoinGeckoServer().start()
    try:
        yield server
    finally:
        await server.stop()


def javascript_text(value: Decimal | int) -> str:
    """String(Number(x)) in JavaScript: the shortest text of the nearest double."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


async def test_the_page_shows_live_prices_and_a_light_that_follows_the_connection(
        tmp_path: Path, coingecko: CoinGeckoServer) -> None:
    if not HAVE_CHROMIUM:  # in CI, where scripts/test installs it, its absence is a failure
        pytest.fail(MISSING) if os.environ.get("CI") else pytest.skip(MISSING)
    from playwright.async_api import async_playwright

    service = await ServiceProcess(tmp_path / "db", "--source", "coingecko", "--coingecko-url", coingecko.url,
                                   "--coingecko-interval", "0.5").start()
    requested: list[str] = []
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                page = await browser.new_page()
                page.on("request", lambda request: requested.append(request.url))
                await page.goto(service.crypto_url + "/test-websocket")
                light = page.locator("#light")
                await light.and_(page.locator("[data-state=connected]")).wait_for(timeout=15_000)
                rows = page.locator("#prices tr[data-stale=false]")
                await rows.nth(9).wait_for(timeout=15_000)
                shown = await rows.evaluate_all("rows => rows.map(r => [r.dataset.symbol, r.dataset.price])")
                assert shown == [[c["symbol"], javascript_text(c["price"])] for c in expected_prices()]
                assert await page.locator("#coin-MATIC td").nth(1).text_content() == "Polygon"
                await page.screenshot(path=str(tmp_path / "connected.png"))

                await service.stop()
                await light.and_(page.locator("[data-state=reconnecting]")).wait_for(timeout=15_000)
                await service.start()
                await light.and_(page.locator("[data-state=connected]")).wait_for(timeout=30_000)
                await rows.nth(9).wait_for(timeout=15_000)
            finally:
                await browser.close()
    finally:
        await service.stop()
    assert {url.split("/", 3)[2] for url in requested} == {f"127.0.0.1:{service.crypto_port}"}
