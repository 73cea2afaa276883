"""Lossless resume in a browser: an EventSource on the Hermes SSE stream while the server restarts under it.

The page is Chromium's own EventSource: on the stream's end it reconnects by itself with ``Last-Event-ID``.
Each event's id holds the seq of every requested feed the page has seen, so the page reads each update's seq
from it; the sequence of each feed must have no gap and no repeat across the restart.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ..service import ServiceProcess

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BTC = "e62df6c8b4a85fe1a67db44dc12de5db330f7ac66b72dc658afedf0f4a415b43"
ETH = "ff61491a931112ddf1bd8147cd1b641375f79f5825126d665480874634fd0ace"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium)")

PAGE_SCRIPT = """([ids]) => {
  window.seqs = Object.fromEntries(ids.map((id) => [id, []]));
  window.opens = 0;
  window.events = 0;
  const query = ids.map((id) => "ids[]=" + id).join("&");
  const source = new EventSource("/v2/updates/price/stream?" + query);
  source.onopen = () => { window.opens += 1; };
  source.onmessage = (event) => {
    const seen = event.lastEventId.split(".").map(Number);
    for (const item of JSON.parse(event.data).parsed) {
      window.seqs[item.id].push(seen[ids.indexOf(item.id)]);
    }
    window.events += 1;
  };
}"""


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[ServiceProcess]:
    svc = ServiceProcess(tmp_path / "db", "--source", "sim", "--seed", "7", "--sim-interval", "0.1")
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


async def test_an_eventsource_sees_no_gap_across_a_server_restart(service: ServiceProcess) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            page = await chromium.new_page()
            await page.goto(service.api_url + "/health")  # the API's own origin: the stream needs no CORS
            await page.evaluate(PAGE_SCRIPT, [[BTC, ETH]])
            await page.wait_for_function("window.events >= 10", timeout=15_000)
            await service.restart()
            await page.wait_for_function("window.opens >= 2", timeout=20_000)
            before = await page.evaluate("window.events")
            await page.wait_for_function(f"window.events >= {before + 10}", timeout=15_000)
            seqs: dict[str, list[int]] = await page.evaluate("window.seqs")
        finally:
            await chromium.close()
    assert "resume log: " in service.log(), "the restarted service loaded the log the clean stop saved"
    for feed in (BTC, ETH):
        got = seqs[feed]
        assert len(got) >= 20
        assert got == list(range(got[0], got[0] + len(got))), f"{feed[:8]}: gap, repeat or reorder: {got}"
