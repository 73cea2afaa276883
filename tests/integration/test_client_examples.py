"""The README's client examples and ``pricefeed watch``, run as a user would, against each of pricefeed's faces
(one service for the whole module)."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from ..service import ServiceProcess

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServiceProcess]:
    svc = ServiceProcess(tmp_path_factory.mktemp("client") / "pricefeed.db", "--source", "sim", "--seed", "7",
                         "--sim-interval", "0.05")
    await svc.start()
    await svc.wait_for_prices()
    try:
        yield svc
    finally:
        await svc.stop()


def url_of(service: ServiceProcess, protocol: str) -> str:
    api = f"ws://127.0.0.1:{service.api_port}"
    return {"seed000": service.ws_url, "lazer": api + "/v1/stream", "hermes_ws": api + "/ws",
            "hermes_sse": service.api_url}[protocol]


async def run(*args: str) -> list[str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, env={**os.environ, "COLUMNS": "200"})
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    return out.decode().splitlines()


async def test_the_lazer_example(service: ServiceProcess) -> None:
    lines = await run(str(EXAMPLES / "client_lazer.py"), "--url", url_of(service, "lazer"), "--count", "3")
    assert lines[0] == "Subscribed(subscription_id=1)"
    assert all(re.fullmatch(r"\d{16}: #1 \d+\.\d{8}, #2 \d+\.\d{8}", line) for line in lines[1:4]), lines
    assert len([line for line in lines if line.startswith("connection ")]) == 4


@pytest.mark.parametrize("protocol", ["seed000", "hermes_ws", "hermes_sse"])
async def test_the_feeds_example(service: ServiceProcess, protocol: str) -> None:
    lines = await run(str(EXAMPLES / "client_feeds.py"), protocol, url_of(service, protocol), "--count", "4")
    prices = [line for line in lines if re.fullmatch(r"(BTC|ETH)/USD \d+\.\d+ ± \d+\.\d+ at \d+ µs", line)]
    assert len(prices) == 4, lines


@pytest.mark.parametrize("protocol", ["seed000", "lazer", "hermes_ws", "hermes_sse"])
async def test_watch_shows_prices_and_connections(service: ServiceProcess, protocol: str) -> None:
    lines = await run("-m", "pricefeed", "watch", url_of(service, protocol), "--duration", "2", "--connections", "2")
    assert any(f"pricefeed watch · {protocol} ·" in line for line in lines)  # the protocol was told from the URL
    for symbol in ("BTC/USD", "ETH/USD", "SOL/USD"):
        row = next(line for line in lines if symbol in line)
        assert re.search(r"│ +\d+\.\d{8} │", row), row  # an exact 8-decimal price
    assert len([line for line in lines if "│ connected │" in line]) == 2
