"""Seed 004's pages in headless Chromium: the seed's JavaScript example for /ws/stream, unchanged, and /test.

The seed's example connects to ``ws://localhost:8081``; Chromium's host resolver maps that to the service's
free port, so the page runs as written. It is served by a local web server as ``http://localhost:3000``
(a frontend's development server), an origin the service's ``CORS_ORIGINS`` allows.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..service import ServiceProcess

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FRONTEND = "http://localhost:3000"
SEED_PAGE = Path(__file__).parent.parent / "browser" / "seed_stream.html"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium)")


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[ServiceProcess]:
    svc = ServiceProcess(tmp_path / "db", "--source", "sim", "--sim-interval", "0.2", "--sim-equities", "true",
                         "--sim-market-hours", "false",
                         env={"CORS_ORIGINS": FRONTEND})
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def frontend() -> Iterator[int]:
    """A web server for the frontend's pages (tests/browser), on a free port: its port."""
    handler = functools.partial(_Quiet, directory=str(SEED_PAGE.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def browser(service: ServiceProcess, frontend: int) -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    rules = f"MAP localhost:8081 127.0.0.1:{service.streams_port},MAP localhost:3000 127.0.0.1:{frontend}"
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=[f"--host-resolver-rules={rules}"])
        try:
            yield chromium
        finally:
            await chromium.close()


async def test_the_seeds_example_receives_data_for_reliance(service: ServiceProcess, browser: object) -> None:
    from playwright.async_api import Browser

    assert isinstance(browser, Browser)
    page = await browser.new_page()
    await page.goto(f"{FRONTEND}/{SEED_PAGE.name}")
    await page.wait_for_function("window.received.length >= 3", timeout=15_000)
    received = await page.evaluate("window.received")
    for data in received[:3]:
        assert set(data) == {"price", "volume", "change", "change_percent"}
        assert data["price"] > 0 and data["volume"] > 0
    assert await page.evaluate("window.consoleLines") == ["Connected to main data stream"]
    async with httpx.AsyncClient() as http:
        listing = (await http.get(service.streams_url.replace("ws://", "http://") + "/connections")).json()
    assert [row["subscriptions"] for row in listing["connections"]] == [["RELIANCE"]]


async def test_the_seeds_analysis_example_receives_indicators_and_patterns(service: ServiceProcess,
                                                                           browser: object) -> None:
    from playwright.async_api import Browser

    assert isinstance(browser, Browser)
    page = await browser.new_page()
    await page.goto(f"{FRONTEND}/seed_analysis.html")
    await page.wait_for_function("window.indicators.length >= 2", timeout=15_000)
    indicators, patterns = await page.evaluate("[window.indicators, window.patterns]")
    assert len(indicators) == len(patterns)
    for values in indicators:
        assert set(values) == {"sma", "ema", "rsi", "macd", "bollinger_bands", "atr", "stochastic", "adx", "obv",
                               "vwap"}
        assert set(values["macd"]) == {"macd", "signal", "histogram"}
        assert values["vwap"] is not None and values["vwap"] > 0  # VWAP is warm from a session's first bar
    assert all(isinstance(found, list) for found in patterns)
    assert await page.evaluate("window.consoleLines") == ["Connected to analysis stream"]


async def test_the_test_page_talks_to_all_four_endpoints(service: ServiceProcess, browser: object) -> None:
    from playwright.async_api import Browser

    assert isinstance(browser, Browser)
    page = await browser.new_page()
    await page.goto(service.streams_url.replace("ws://", "http://") + "/test")
    for name in ("stream", "analysis", "alerts", "portfolio"):
        await page.wait_for_function(f"document.getElementById('state-{name}').textContent === 'open'",
                                     timeout=10_000)
    await page.fill("#symbol", "tcs")
    await page.click("#subscribe")
    await page.wait_for_function("Number(document.getElementById('count-stream').textContent) >= 5",
                                 timeout=15_000)
    for name in ("analysis", "alerts", "portfolio"):
        await page.wait_for_function(
            f"document.getElementById('log-{name}').textContent.includes('\"status\":\"subscribed\"')",
            timeout=10_000)
    stream_log = await page.inner_text("#log-stream")
    assert '"type":"data","symbol":"TCS"' in stream_log
    await page.screenshot(path=str(Path(service.db).with_suffix(".test-page.png")))
