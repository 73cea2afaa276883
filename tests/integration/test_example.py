from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from ..service import ServiceProcess

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pyth_only_subscription.py"


async def test_the_example_client_prints_prices(service: ServiceProcess) -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, str(EXAMPLE), "--url", service.ws_url,
                                                "--count", "4", stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    lines = out.decode().splitlines()
    assert proc.returncode == 0
    assert lines[0].startswith("connected as ")
    assert "subscribed to BTC/USD" in lines and "subscribed to ETH/USD" in lines
    assert sum(1 for line in lines if "(trading)" in line) == 4
