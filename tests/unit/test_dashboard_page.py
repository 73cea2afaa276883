"""The dashboard's page and its sparkline history, without a browser."""

from __future__ import annotations

import base64
import hashlib
import re

from pricefeed.faces.dashboard import dashboard_page, sparklines
from pricefeed.history import PriceHistory
from pricefeed.model import PriceUpdate

FEED, OTHER = "a" * 64, "b" * 64


def update(feed_id: str, price: int, publish_time_us: int) -> PriceUpdate:
    return PriceUpdate(feed_id=feed_id, price=price, conf=1, expo=-2, publish_time_us=publish_time_us,
                       ema_price=price, ema_conf=1)


def sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_the_page_is_one_document_whose_policy_allows_only_its_own_script_and_style() -> None:
    page, policy = dashboard_page()
    scripts = re.findall(r"<script>(.*?)</script>", page, re.S)
    styles = re.findall(r"<style>(.*?)</style>", page, re.S)
    assert len(scripts) == 1 and len(styles) == 1
    assert policy == (f"default-src 'none'; script-src {sha256(scripts[0])}; style-src {sha256(styles[0])}; "
                      "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'")
    assert re.findall(r"\b(?:src|href)=\"([^\"]*)\"", page) == ["data:,", "/docs"]  # nothing else to fetch


def test_history_since_a_time_is_every_kept_update_from_then_on() -> None:
    history = PriceHistory()
    history.add([update(FEED, 100 + s, s * 1_000_000) for s in range(1000, 1010)])
    assert [u.publish_time for u in history.since(FEED, 1007)] == [1007, 1008, 1009]
    assert [u.publish_time for u in history.since(FEED, 900)] == list(range(1000, 1010))
    assert history.since(FEED, 1010) == []
    assert history.since(OTHER, 0) == []


def test_sparklines_keep_the_first_price_of_each_step() -> None:
    history = PriceHistory()
    history.add([update(FEED, 100 + s, s * 1_000_000 + 5) for s in range(1000, 1012)])
    history.add([update(OTHER, 7, 1003_000_000)])
    lines = sparklines(history, [FEED, OTHER, "c" * 64], since_s=1002, step_s=5)
    assert lines == {FEED: [[1002, 11.02], [1005, 11.05], [1010, 11.10]], OTHER: [[1003, 0.07]], "c" * 64: []}
