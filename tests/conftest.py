from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .service import ServiceProcess


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[ServiceProcess]:
    """The real service with the simulated market, as a user starts it."""
    svc = ServiceProcess(tmp_path / "pricefeed.db", "--source", "sim", "--seed", "7", "--sim-interval", "0.05")
    await svc.start()
    await svc.wait_for_prices()
    try:
        yield svc
    finally:
        await svc.stop()
