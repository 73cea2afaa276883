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
             "p99_ms", "p99_9_ms", "server_cpu", "deliveries_per_cpu_s", "saturated", "retried"}


def run_bench(tmp_path: Path, *args: str, timeout: float) -> dict[str, Any]:
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--profile", "smoke", "--json", str(out), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "== fanout" in done.stdout or "--scenario" in args
    results: dict[str, Any] = json.loads(out.read_text())
    return results


FANOUT_FACES = {"hermes-ws", "hermes-sse", "streams"}
"""The faces besides the seed-000 one, measured by the fanout scenario only."""


def check_systems(result: dict[str, Any], faces: set[str]) -> list[dict[str, Any]]:
    """Every system of the scenario has a figure, and each pricefeed face its ratios; the runs, in order."""
    assert set(result["baselines"]) == {"ceiling", "naive"}
    assert set(result.get("faces", {})) == faces
    runs = [result["pricefeed"], *(result["faces"][name] for name in sorted(faces)), *result["baselines"].values()]
    for run in runs:
        assert isinstance(run["figure"], dict)
    assert set(result["vs_ceiling"]) == set(result["vs_naive"])
    assert result["pricefeed"]["vs_ceiling"] == result["vs_ceiling"]
    for name in faces:
        face = result["faces"][name]
        assert set(face["vs_ceiling"]) == set(face["vs_naive"]) == set(face["vs_pricefeed"]) \
            == set(result["vs_ceiling"])
    assert isinstance(result["target"]["met"], bool)
    targets = {"faces_target": ({"hermes-ws", "hermes-sse"}, 0.5), "streams_target": ({"streams"}, 0.8)}
    for key, (measured, share) in targets.items():
        if measured & faces:
            target = result[key]
            assert isinstance(target["met"], bool)
            assert (target["share"], set(target["faces"])) == (share, measured & faces)
            assert target["faces"] == {name: result["faces"][name]["vs_pricefeed"]["peak_deliveries_per_cpu_s"]
                                       for name in measured & faces}
        else:
            assert key not in result
    return runs


def test_fanout_smoke_writes_json_and_plot(tmp_path: Path) -> None:
    results = run_bench(tmp_path, "--scenario", "fanout", timeout=90)
    assert set(results) >= {"profile", "environment", "method", "scenarios", "duration_s"}
    assert list(results["scenarios"]) == ["fanout"]
    fanout = results["scenarios"]["fanout"]
    for run in check_systems(fanout, FANOUT_FACES):
        assert run["steps"] and set(run["steps"][0]) >= STEP_KEYS
        assert run["figure"]["deliveries_per_s"] > 0
        assert run["figure"]["p99_ms"] is not None  # latency was sampled (and, on a Hermes face, dated)
        assert run["figure"]["peak_deliveries_per_cpu_s"] > 0
        assert isinstance(run["retried"], list)
    assert set(fanout["vs_ceiling"]) >= {"deliveries_per_s", "peak_deliveries_per_cpu_s"}
    assert (tmp_path / "bench.png").stat().st_size > 0 or not _has_matplotlib()


@pytest.mark.slow
def test_every_scenario_smoke(tmp_path: Path) -> None:
    results = run_bench(tmp_path, timeout=150)
    scenarios = results["scenarios"]
    assert list(scenarios) == ["fanout", "latency", "idle", "slow", "socketio", "analysis"]
    scenarios.pop("analysis")
    socketio = scenarios.pop("socketio")
    assert set(socketio["baselines"]) == {"python-socketio"}
    for run in (socketio["pricefeed"], socketio["baselines"]["python-socketio"]):
        assert run["figure"]["connected"] == 50 and run["figure"]["p99_ms"] is not None
    check_systems(scenarios.pop("fanout"), FANOUT_FACES)
    for result in scenarios.values():  # the other faces are measured by the fanout scenario only
        check_systems(result, set())
    assert scenarios["idle"]["pricefeed"]["figure"]["bytes_per_connection"] is not None
    assert {"p99_without_ms", "p99_with_ms", "server_rss_growth_bytes"} <= set(scenarios["slow"]["pricefeed"]["figure"])


@pytest.mark.slow  # about 20 s: a server, its clients and a measured window
def test_analysis_smoke_computes_once_per_symbol_not_per_client(tmp_path: Path) -> None:
    results = run_bench(tmp_path, "--scenario", "analysis", timeout=90)
    analysis = results["scenarios"]["analysis"]
    assert (analysis["clients"], analysis["symbols"], analysis["clients_per_symbol"]) == (8, 4, 2.0)
    assert analysis["ticks"] > 0 and analysis["server_cpu_us_per_tick"] > 0 and analysis["closed_bars"] > 0
    # Once per symbol: about one analysis per tick (plus one per close), where per client it would be two.
    assert 0.8 < analysis["analyses_per_tick"] < 1.5
    assert analysis["analyses_per_tick_if_per_client"] == pytest.approx(analysis["analyses_per_tick"] * 2, abs=0.002)
    assert 0.5 < analysis["risk_measures_per_closed_bar"] < 1.5


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True
