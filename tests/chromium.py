"""Debian's chromium, headless, driven by Playwright: a page that records what a test must check of it.

Every console error, uncaught exception, request and WebSocket the page makes
is kept, so a test can assert "no errors" and "nothing fetched from another
origin" exactly.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

CHROMIUM = os.environ.get("PRICEFEED_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
MISSING = "needs Debian's chromium (scripts/test installs it with apt-get when root)"


def require_chromium() -> None:
    """Skip without chromium, except in CI (where scripts/test installs it), where its absence is a failure."""
    if not Path(CHROMIUM).exists():
        pytest.fail(MISSING) if os.environ.get("CI") else pytest.skip(MISSING)


@dataclass
class WatchedPage:
    page: Page
    errors: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    """Every request's and WebSocket's URL, in order."""

    def origins(self) -> set[str]:
        return {urlsplit(url).netloc for url in self.urls}


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A headless chromium, closed on exit (one per test module: its start is the slow part)."""
    from playwright.async_api import async_playwright

    require_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            await browser.close()


@contextlib.asynccontextmanager
async def watched_page(browser: Browser, width: int = 1400, height: int = 1000) -> AsyncIterator[WatchedPage]:
    """A fresh page in its own browser context (no shared cache or storage), closed on exit."""
    context = await browser.new_context(viewport={"width": width, "height": height})
    try:
        page = await context.new_page()
        watched = WatchedPage(page)
        page.on("console", lambda m: watched.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: watched.errors.append(str(e)))
        page.on("request", lambda r: watched.urls.append(r.url))
        page.on("websocket", lambda ws: watched.urls.append(ws.url))
        yield watched
    finally:
        await context.close()
