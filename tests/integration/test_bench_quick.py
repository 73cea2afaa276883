"""The bench harness runs end to end and writes results of the expected shape (it asserts no figure)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
STEP_KEYS = {"system", "clients", "rate_slots_per_s", "offered_deliveries_per_s", "deliveries_per_s", "p50_ms",
             "p99_ms", "p99_9_ms", "server_cpu", "saturated"}


def run_bench(tmp_path: Path, *args: str, timeout: float) -> dict[str, Any]:
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--profile", "smoke", "--json", str(out), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "== fanout" in done.stdout or "--scenario" in args
    results: dict[str, Any] = json.loads(out.read_text())
    return results


def check_systems(result: dict[str, Any]) -> None:
    assert set(result["baselines"]) == {"ceiling", "naive"}
    for run in (result["pricefeed"], *result["baselines"].values()):
        assert isinstance(run["figure"], dict)
    assert set(result["vs_ceiling"]) == set(result["vs_naive"])
    assert isinstance(result["target"]["met"], bool)


def test_fanout_smoke_writes_json_and_plot(tmp_path: Path) -> None:
    results = run_bench(tmp_path, "--scenario", "fanout", timeout=60)
    assert set(results) >= {"profile", "environment", "method", "scenarios", "duration_s"}
    assert list(results["scenarios"]) == ["fanout"]
    fanout = results["scenarios"]["fanout"]
    check_systems(fanout)
    for run in (fanout["pricefeed"], *fanout["baselines"].values()):
        assert run["steps"] and set(run["steps"][0]) >= STEP_KEYS
        assert run["figure"]["deliveries_per_s"] > 0
        assert run["figure"]["p99_ms"] is not None  # latency was sampled
    assert set(fanout["vs_ceiling"]) >= {"deliveries_per_s"}
    assert (tmp_path / "bench.png").stat().st_size > 0 or not _has_matplotlib()


@pytest.mark.slow
def test_every_scenario_smoke(tmp_path: Path) -> None:
    results = run_bench(tmp_path, timeout=120)
    scenarios = results["scenarios"]
    assert list(scenarios) == ["fanout", "latency", "idle", "slow", "socketio"]
    for name, result in scenarios.items():
        if name != "socketio":
            check_systems(result)
    socketio = scenarios["socketio"]
    assert set(socketio["baselines"]) == {"python-socketio"}
    for run in (socketio["pricefeed"], socketio["baselines"]["python-socketio"]):
        assert run["figure"]["connected"] == 50 and run["figure"]["p99_ms"] is not None
    assert scenarios["idle"]["pricefeed"]["figure"]["bytes_per_connection"] is not None
    assert {"p99_without_ms", "p99_with_ms", "server_rss_growth_bytes"} <= set(scenarios["slow"]["pricefeed"]["figure"])


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True
