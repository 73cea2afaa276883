"""``pricefeed watch`` against each of pricefeed's faces: the table shows the prices and each connection's health."""

from __future__ import annotations

import asyncio
import os
import re
import sys

import pytest

from ..service import ServiceProcess


@pytest.mark.parametrize("protocol", ["seed000", "lazer", "hermes_ws", "hermes_sse"])
async def test_watch_shows_prices_and_connections(service: ServiceProcess, protocol: str) -> None:
    api_ws = f"ws://127.0.0.1:{service.api_port}"
    url = {"seed000": service.ws_url, "lazer": api_ws + "/v1/stream", "hermes_ws": api_ws + "/ws",
           "hermes_sse": service.api_url}[protocol]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pricefeed", "watch", url, "--duration", "2", "--connections", "2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ, "COLUMNS": "200"})
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert f"pricefeed watch · {protocol} ·" in text  # the protocol was told from the URL
    for symbol in ("BTC/USD", "ETH/USD", "SOL/USD"):
        row = next(line for line in text.splitlines() if symbol in line)
        assert re.search(r"│ +\d+\.\d{8} │", row), row  # an exact 8-decimal price
    health = [line for line in text.splitlines() if "│ connected │" in line]
    assert len(health) == 2
