"""Pyth's official Lazer SDK (npm ``@pythnetwork/pyth-lazer-sdk``), unchanged, against pricefeed's simulated prices."""

from __future__ import annotations

import asyncio
import json
import shutil
from itertools import pairwise
from pathlib import Path
from statistics import median

import pytest

from ..service import ServiceProcess

JS = Path(__file__).resolve().parents[1] / "js"
SECONDS = 4.0
PERIODS_US = {2: 50_000, 3: 200_000, 4: 1_000_000}

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (JS / "node_modules" / "@pythnetwork" / "pyth-lazer-sdk").is_dir(),
    reason="needs Node.js and `npm ci --prefix tests/js` (scripts/test does both when npm is present)")


async def test_the_lazer_sdk_gets_every_channel_at_its_rate(service: ServiceProcess) -> None:
    proc = await asyncio.create_subprocess_exec("node", str(JS / "lazer.mjs"), service.api_url, str(SECONDS),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    result = json.loads(out)
    assert result["errors"] == []
    assert result["symbols"] == [{"id": 1, "symbol": "Crypto.BTC/USD"}]
    assert result["responses"] == [{"type": "subscribed", "subscriptionId": n} for n in (1, 2, 3, 4)]
    updates = {int(k): v for k, v in result["updates"].items()}
    for subscription, messages in updates.items():
        stamps = [int(m["timestampUs"]) for m in messages]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps), f"{subscription}: repeated or unordered"
        for message in messages:
            feeds = message["feeds"]
            assert [f["id"] for f in feeds] in ([1, 2], [1], [2])  # in the requested order
            assert all(int(f["price"]) > 0 and f["exponent"] == -8 and f["t"] <= int(message["timestampUs"])
                       for f in feeds)
    # The simulated market moves every feed every 50 ms (--sim-interval 0.05 in the fixture).
    real_time = updates[1]
    assert len(real_time) >= SECONDS * 20 * 0.6
    for subscription, period in PERIODS_US.items():
        stamps = [int(m["timestampUs"]) for m in updates[subscription]]
        assert all(stamp % period == 0 for stamp in stamps), f"channel {subscription} is not aligned"
        gaps = [b - a for a, b in pairwise(stamps)]
        expected = SECONDS * 1_000_000 / period
        assert expected * 0.6 <= len(stamps) <= expected + 2, f"channel {subscription}: {len(stamps)} messages"
        # A 50 ms tick can find no change when the market's own 50 ms step lands just after it.
        assert median(gaps) == period if period >= 200_000 else median(gaps) <= 2 * period
        if period >= 200_000:  # every tick carries both feeds, which always changed within the period
            assert all(gap == period for gap in gaps)
            assert all([f["id"] for f in m["feeds"]] == [1, 2] for m in updates[subscription][1:])
