"""The scaling scenario of the bench runs end to end: one process, two workers, and the Redis bus, each
serving the same load (no figure is asserted: the machine is shared)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .test_bench_quick import STEP_KEYS, run_bench


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server (scripts/test installs it)")
def test_scaling_smoke_measures_one_process_two_workers_and_the_redis_bus(tmp_path: Path) -> None:
    results = run_bench(tmp_path, "--scenario", "scaling", timeout=120)
    result = results["scenarios"]["scaling"]
    systems = ("pricefeed", "pricefeed-workers2", "pricefeed-redis")
    assert tuple(result["steps"]) == systems
    for system, steps in result["steps"].items():
        assert len(steps) == 1 and set(steps[0]) >= STEP_KEYS and steps[0]["system"] == system
        assert steps[0]["error"] is None and steps[0]["closed_connections"] == 0
        assert steps[0]["deliveries_per_s"] > 0
    for system in systems[1:]:
        assert result["figure"][system]["vs_one_process"] > 0
