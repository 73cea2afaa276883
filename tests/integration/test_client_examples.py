"""The README's client examples, run as a user would, against pricefeed's faces."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

from ..service import ServiceProcess

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


async def run(*args: str) -> list[str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    return out.decode().splitlines()


async def test_the_lazer_example(service: ServiceProcess) -> None:
    lines = await run(str(EXAMPLES / "client_lazer.py"), "--url", f"ws://127.0.0.1:{service.api_port}/v1/stream",
                      "--count", "3")
    assert lines[0] == "Subscribed(subscription_id=1)"
    assert all(re.fullmatch(r"\d{16}: #1 \d+\.\d{8}, #2 \d+\.\d{8}", line) for line in lines[1:4]), lines
    assert len([line for line in lines if line.startswith("connection ")]) == 4


@pytest.mark.parametrize("protocol", ["seed000", "hermes_ws", "hermes_sse"])
async def test_the_feeds_example(service: ServiceProcess, protocol: str) -> None:
    api = f"ws://127.0.0.1:{service.api_port}"
    url = {"seed000": service.ws_url, "hermes_ws": api + "/ws", "hermes_sse": service.api_url}[protocol]
    lines = await run(str(EXAMPLES / "client_feeds.py"), protocol, url, "--count", "4")
    prices = [line for line in lines if re.fullmatch(r"(BTC|ETH)/USD \d+\.\d+ ± \d+\.\d+ at \d+ µs", line)]
    assert len(prices) == 4, lines
