"""Pyth's official JavaScript clients, unchanged, against pricefeed (installed by scripts/test with npm ci)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from ..service import ServiceProcess
from ..wsclient import BTC, ETH

JS = Path(__file__).resolve().parents[1] / "js"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (JS / "node_modules" / "@pythnetwork").is_dir(),
    reason="needs Node.js and `npm ci --prefix tests/js` (scripts/test does both when npm is present)")


async def test_hermes_client_and_price_service_client(service: ServiceProcess) -> None:
    proc = await asyncio.create_subprocess_exec("node", str(JS / "clients.mjs"), service.api_url, BTC, "0x" + ETH,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    result = json.loads(out)
    assert result["priceFeeds"] == [{"id": BTC, "symbol": "Crypto.BTC/USD"}]
    assert [p["id"] for p in result["latest"]] == [BTC, ETH]
    assert all(int(p["price"]) > 0 and p["expo"] == -8 for p in result["latest"])
    for key in ("stream", "subscribed"):  # SSE with hermes-client, /ws with price-service-client
        updates = result[key]
        assert len(updates) >= 6 and {u["id"] for u in updates} == {BTC, ETH}
        for feed_id in (BTC, ETH):
            slots = [u["slot"] for u in updates if u["id"] == feed_id]
            assert slots == sorted(slots) and len(set(slots)) == len(slots)
    assert [f["id"] for f in result["legacyLatest"]] == [BTC, ETH]
