"""The dashboard (``GET /`` on the API port) in headless Chromium, against the real service: it loads without an
error and fetches nothing from another origin, shows exactly the feeds of ``/feeds`` with moving prices, its
search and asset-type filter leave exactly the matching rows, a source taken down turns its light red and back
green, divergences from ``/status`` are shown, and with API keys the page works from its ``?token=``."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, Route, expect

from ..chromium import chromium, watched_page
from ..coingecko_server import CoinGeckoServer
from ..service import ServiceProcess

TIMEOUT_MS = 15_000
STRESSED_MS = 60_000
"""The stress test's waits: 2000 feeds at 5000 updates a second share the machine with the browser."""
BTC = '#feed-rows .row[data-symbol="Crypto.BTC/USD"]'


pytestmark = pytest.mark.asyncio(loop_scope="module")  # one browser and one simulated market for the module


@contextlib.asynccontextmanager
async def simulated(db: Path, *args: str) -> AsyncIterator[ServiceProcess]:
    """The service on the simulated market, its NSE equities trading around the clock."""
    svc = await ServiceProcess(db, "--source", "sim", "--sim-interval", "0.2", "--sim-equities", "true",
                               "--sim-market-hours", "false", *args).start()
    try:
        yield svc
    finally:
        await svc.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServiceProcess]:
    async with simulated(tmp_path_factory.mktemp("market") / "db") as svc:
        yield svc


def visible_symbols(page: Page) -> Any:
    return page.locator("#feed-rows .row:not([hidden])").evaluate_all("rows => rows.map(r => r.dataset.symbol)")


async def wait_for_price_change(page: Page, row: str, timeout_ms: float = TIMEOUT_MS) -> None:
    """Wait until the row shows a price, then until it shows another one (in its cell's text, not only its value:
    two prices may round to the same text)."""
    await expect(page.locator(row)).to_have_attribute("data-price", re.compile(r"^-?\d"), timeout=timeout_ms)
    first = await page.locator(row).get_attribute("data-price")
    text = await page.locator(f"{row} .price").text_content()
    await page.wait_for_function("([row, text]) => document.querySelector(`${row} .price`).textContent !== text",
                                 arg=[row, text], timeout=timeout_ms)
    assert await page.locator(row).get_attribute("data-price") != first


async def test_the_page_loads_clean_and_shows_every_feed_with_moving_prices(service: ServiceProcess,
                                                                            browser: Browser) -> None:
    feeds = (await service.get("/feeds")).json()
    async with watched_page(browser) as watched:
        page = watched.page
        response = await page.goto(service.api_url + "/")
        assert response is not None and response.status == 200
        assert "connect-src 'self'" in response.headers["content-security-policy"]

        rows = page.locator("#feed-rows .row")
        await expect(rows).to_have_count(len(feeds), timeout=TIMEOUT_MS)
        assert await rows.evaluate_all("rows => rows.map(r => r.dataset.symbol)") == [f["symbol"] for f in feeds]
        assert len(feeds) == 24  # 13 Pyth feeds, 10 NSE equities and the rupee's rate to the dollar
        await expect(page.locator("#feed-count")).to_have_text("24")
        await expect(page.locator("#shown")).to_have_text("24 feeds")
        await wait_for_price_change(page, BTC)
        sparkline = page.locator(f"{BTC} polyline")
        await expect(sparkline).to_have_attribute("points", re.compile(r"^\S+ \S+"), timeout=TIMEOUT_MS)
        await expect(page.locator(f"{BTC} .badge")).to_have_text("trading")
        await expect(page.locator(f"{BTC} .sim")).to_have_text("sim")  # the simulated market is marked

        await expect(page.locator("#source-sim .light")).to_have_attribute("data-health", "green")
        await expect(page.locator("#source-sim td.state")).to_have_text("connected")
        await expect(page.locator("#source-sim td.latency")).to_have_text(re.compile(r"^\d+ ms$"))
        await expect(page.locator("#face-hermes_ws td.num")).to_have_text("1", timeout=TIMEOUT_MS)  # this page
        await expect(page.locator("#face-seed000 td.num")).to_have_text("0")
        await expect(page.locator("#deliveries-rate")).to_have_text(re.compile(r"^\d"), timeout=TIMEOUT_MS)
        await expect(page.locator("#divergences")).to_have_text("none")  # no "divergences" key in /status
        await expect(page.locator("#live")).to_have_attribute("data-state", "live")
    assert watched.errors == []
    assert watched.origins() == {f"127.0.0.1:{service.api_port}"}
    assert f"ws://127.0.0.1:{service.api_port}/ws" in watched.urls


async def test_search_and_asset_type_filter_leave_exactly_the_matching_rows(service: ServiceProcess,
                                                                          browser: Browser) -> None:
    feeds = (await service.get("/feeds")).json()

    def expected(needle: str = "", asset_type: str = "") -> list[str]:
        return [f["symbol"] for f in feeds
                if (not asset_type or f["asset_type"].lower() == asset_type)
                and needle in f"{f['symbol']} {f['display_symbol']} {f['attributes']['description']}".lower()]

    async with watched_page(browser) as watched:
        page = watched.page
        await page.goto(service.api_url + "/")
        await expect(page.locator("#feed-rows .row")).to_have_count(len(feeds), timeout=TIMEOUT_MS)
        assert await page.locator("#asset-type option").evaluate_all("os => os.map(o => o.value)") == \
            ["", "crypto", "equity", "fx"]

        async def narrowed(needle: str, asset_type: str, count: int) -> list[str]:
            await page.fill("#search", needle)
            await page.select_option("#asset-type", asset_type)
            await expect(page.locator("#feed-rows .row:not([hidden])")).to_have_count(count)
            shown: list[str] = await visible_symbols(page)
            return shown

        assert await narrowed("btc", "", 1) == expected("btc") == ["Crypto.BTC/USD"]
        assert await narrowed("", "fx", 2) == expected("", "fx")
        assert sorted(expected("", "fx")) == ["FX.EUR/USD", "FX.USD/INR"]
        equities = expected("", "equity")
        assert len(equities) == 11
        assert await narrowed("", "equity", 11) == equities
        await expect(page.locator("#shown")).to_have_text(f"11 of {len(feeds)} feeds")
        assert await narrowed("bank", "equity", 3) == expected("bank", "equity") == \
            ["Equity.NSE.HDFCBANK/INR", "Equity.NSE.ICICIBANK/INR", "Equity.NSE.SBIN/INR"]  # SBI by its name
        assert await narrowed("usd", "equity", 1) == expected("usd", "equity") == ["Equity.US.AAPL/USD"]
        assert await narrowed("usd", "crypto", 11) == expected("usd", "crypto")
        assert await narrowed("no such feed", "", 0) == []
        assert await narrowed("", "", len(feeds)) == [f["symbol"] for f in feeds]
        await wait_for_price_change(page, BTC)  # rows shown again are drawn again
    assert watched.errors == []


async def test_a_source_taken_down_turns_its_light_red_then_green_again(tmp_path: Path, browser: Browser) -> None:
    coingecko = await CoinGeckoServer().start()
    service = await ServiceProcess(tmp_path / "db", "--source", "sim", "--source", "coingecko", "--coingecko-url",
                                   coingecko.url, "--coingecko-interval", "0.5").start()
    try:
        async with watched_page(browser) as watched:
            page = watched.page
            await page.goto(service.api_url + "/")
            light = page.locator("#source-coingecko .light")
            await expect(light).to_have_attribute("data-health", "green", timeout=TIMEOUT_MS)
            await expect(page.locator("#source-coingecko td.error")).to_have_text("")

            await coingecko.stop()
            await expect(light).to_have_attribute("data-health", "red", timeout=TIMEOUT_MS)
            await expect(page.locator("#source-coingecko td.state")).to_have_text("reconnecting")
            await expect(page.locator("#source-coingecko td.error")).not_to_have_text("")
            await expect(page.locator("#source-sim .light")).to_have_attribute("data-health", "green")

            await coingecko.start(coingecko.port)
            await expect(light).to_have_attribute("data-health", "green", timeout=30_000)
            await expect(page.locator("#source-coingecko td.state")).to_have_text("connected")
        assert watched.errors == []
    finally:
        await service.stop()
        await coingecko.stop()


async def test_divergences_in_status_are_listed_and_none_when_they_clear(service: ServiceProcess,
                                                                        browser: Browser) -> None:
    divergences: list[dict[str, Any]] = [{
        "asset": "BTC/USD", "spread_bps": 62.5, "since": "2026-12-03T12:00:00+00:00",
        "sources": {"hermes": {"price": 97000.5, "age_s": 0.4, "status": "trading"},
                    "coingecko": {"price": 96394.25, "age_s": 12.0, "status": "trading"}}}]

    async def with_divergences(route: Route) -> None:  # what the divergence watch adds to /status
        response = await route.fetch()
        await route.fulfill(response=response, json={**await response.json(), "divergences": divergences})

    async with watched_page(browser) as watched:
        page = watched.page
        await page.route("**/status", with_divergences)
        await page.goto(service.api_url + "/")
        row = page.locator('#divergences tr[data-asset="BTC/USD"]')
        await expect(row.locator("td")).to_have_text(
            ["BTC/USD", "62.5 bps", re.compile(r"\d"),
             "hermes 97000.5 (0.4 s, trading) · coingecko 96394.25 (12 s, trading)"],
            timeout=TIMEOUT_MS)
        divergences.clear()
        await expect(page.locator("#divergences")).to_have_text("none", timeout=TIMEOUT_MS)
    assert watched.errors == []


async def test_with_api_keys_the_page_works_from_its_token(tmp_path: Path, browser: Browser) -> None:
    async with simulated(tmp_path / "db", "--api-key", "dashboard-secret") as service:
        await _with_token(service, browser)


async def _with_token(service: ServiceProcess, browser: Browser) -> None:
    assert (await service.get("/")).status_code == 401
    assert (await service.get("/feeds")).status_code == 401
    feeds = (await service.get("/feeds", token="dashboard-secret")).json()
    async with watched_page(browser) as watched:
        page = watched.page
        await page.goto(service.api_url + "/?token=dashboard-secret")
        await expect(page.locator("#feed-rows .row")).to_have_count(len(feeds), timeout=TIMEOUT_MS)
        await wait_for_price_change(page, BTC)  # over /ws, with the key
        await expect(page.locator("#source-sim .light")).to_have_attribute("data-health", "green")
        await expect(page.locator("#face-hermes_ws td.num")).to_have_text("1", timeout=TIMEOUT_MS)
    assert watched.errors == []
    assert all("token=dashboard-secret" in url for url in watched.urls)


@pytest.mark.slow
async def test_with_two_thousand_feeds_every_row_is_there_and_rows_scrolled_to_are_live(
        tmp_path: Path, browser: Browser) -> None:
    async with simulated(tmp_path / "db", "--sim-feeds", "2000", "--sim-equities", "false") as service:
        feeds = (await service.get("/feeds")).json()
        assert len(feeds) == 2000
        async with watched_page(browser) as watched:
            page = watched.page
            await page.goto(service.api_url + "/")
            rows = page.locator("#feed-rows .row")
            await expect(rows).to_have_count(2000, timeout=60_000)
            assert await rows.evaluate_all("rows => rows.map(r => r.dataset.symbol)") == [f["symbol"] for f in feeds]
            await wait_for_price_change(page, BTC, STRESSED_MS)
            far = [f["symbol"] for f in feeds if f["symbol"].startswith("Crypto.SIM")][-1]  # a volatile one
            assert far == "Crypto.SIM999/USD"
            row = f'#feed-rows .row[data-symbol="{far}"]'
            await page.locator(row).scroll_into_view_if_needed()
            await wait_for_price_change(page, row, STRESSED_MS)  # drawn once on screen
            await page.fill("#search", "sim1999/")
            await expect(page.locator("#feed-rows .row:not([hidden])")).to_have_count(1, timeout=STRESSED_MS)
            assert await visible_symbols(page) == ["Crypto.SIM1999/USD"]
            await page.fill("#search", "")
            await expect(page.locator("#feed-rows .row:not([hidden])")).to_have_count(2000, timeout=STRESSED_MS)
        assert watched.errors == []
