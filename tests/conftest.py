from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from .redis_server import RedisServer, require_redis
from .service import ServiceProcess

# Fuzzing: a few examples per property in the default run; scripts/test-slow selects the long profile.
settings.register_profile("default", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("slow", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


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


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server on a free port (skips the test if redis-server is not installed)."""
    require_redis()
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()
