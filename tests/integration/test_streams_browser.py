"""Seed 004's pages in headless Chromium: the seed's JavaScript example for /ws/stream, unchanged, and /test.

The seed's example connects to ``ws://localhost:8081``; Chromium's host resolver maps that to the service's
free port, so the page runs as written. It is served by a local web server as ``http://localhost:3000``
(a frontend's development server), an origin the service's ``CORS_ORIGINS`` allows.
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import shutil
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from ..service import ServiceProcess
from ..wsclient import recv_until, send

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


async def _subscribed(service: ServiceProcess, endpoint: str) -> None:
    """Wait until the page's connection to ``endpoint`` has subscribed to RELIANCE."""
    base = service.streams_url.replace("ws://", "http://")
    async with httpx.AsyncClient(base_url=base) as http:
        for _ in range(100):
            rows = (await http.get("/connections")).json()["connections"]
            if [row["subscriptions"] for row in rows if row["endpoint"] == endpoint] == [["RELIANCE"]]:
                return
            await asyncio.sleep(0.1)
    raise AssertionError(f"the page did not subscribe on {endpoint}")


async def test_the_seeds_alerts_example_shows_its_owners_alert_once(service: ServiceProcess, browser: object) -> None:
    from playwright.async_api import Browser

    assert isinstance(browser, Browser)
    page = await browser.new_page()
    await page.goto(f"{FRONTEND}/seed_alerts.html")
    await _subscribed(service, "/ws/alerts")
    async with httpx.AsyncClient(base_url=service.streams_url.replace("ws://", "http://")) as http:
        for owner in ("someone-else", "browser-alice"):  # any price is above 0.01: the next tick fires both
            made = await http.post("/alerts", json={"owner": owner, "symbol": "RELIANCE",
                                                    "rule": {"type": "price_above", "level": 0.01}})
            assert made.status_code == 201
    await page.wait_for_function("window.notifications.length >= 1", timeout=15_000)
    await page.wait_for_function("window.messages.filter(m => m.type === 'data').length >= 2", timeout=5_000)
    async with connect(f"{service.streams_url}/ws/stream") as stream:  # five more ticks: no second notification
        await send(stream, {"type": "subscribe", "symbol": "RELIANCE"})
        for _ in range(6):
            await recv_until(stream, lambda m: m["type"] == "data", timeout=10)
    assert await page.evaluate("window.notifications") == ["Price alert: price_above"]
    data = [m for m in await page.evaluate("window.messages") if m["type"] == "data"]
    assert [m["data"]["owner"] for m in data] == ["browser-alice", "browser-alice"]  # the snapshot, the firing
    assert await page.evaluate("window.consoleLines") == ["Connected to alerts stream"]


async def test_the_seeds_portfolio_example_gets_value_and_pnl(service: ServiceProcess, browser: object) -> None:
    from playwright.async_api import Browser

    assert isinstance(browser, Browser)
    page = await browser.new_page()
    await page.goto(f"{FRONTEND}/seed_portfolio.html")
    await _subscribed(service, "/ws/portfolio")
    async with httpx.AsyncClient(base_url=service.streams_url.replace("ws://", "http://")) as http:
        made = await http.put("/portfolio", json={"owner": "browser-bob", "symbol": "RELIANCE", "quantity": "2",
                                                  "average_cost": "1000"})
        assert made.status_code == 200
    await page.wait_for_function("window.values.length >= 3", timeout=15_000)
    values, pnls = await page.evaluate("[window.values, window.pnls]")
    assert len(values) == len(pnls)
    for value, pnl in zip(values, pnls, strict=True):
        assert isinstance(value, float | int) and value > 0
        assert round(value - 2000, 2) == pnl  # value less the cost basis of 2 x 1000
    assert await page.evaluate("window.consoleLines") == ["Connected to portfolio stream"]
