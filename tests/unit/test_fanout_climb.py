"""The fan-out climb's decisions, on scripted measurements (no process is started)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from benchmarks import harness
from benchmarks.harness import Step, failed_step, fanout_sweep
from benchmarks.processes import Env
from benchmarks.profiles import Profile

CLIENTS = 100
SUBSCRIPTIONS = CLIENTS * 10


def measured(rate: float, p99_ms: float, *, delivered_share: float = 1.0, server_cpu: float = 0.5) -> Step:
    delivered = round(SUBSCRIPTIONS * rate * delivered_share)
    return Step(system="pricefeed", clients=CLIENTS, rate_slots_per_s=rate, offered_deliveries_per_s=SUBSCRIPTIONS
                * round(rate), deliveries_per_s=delivered, p50_ms=p99_ms / 2, p99_ms=p99_ms, p99_9_ms=p99_ms,
                max_ms=p99_ms, latency_samples=100, server_cpu=server_cpu,
                deliveries_per_cpu_s=round(delivered / server_cpu), client_cpu=0.5, server_core_busy=None,
                client_core_busy=None, server_rss_bytes=0, closed_connections=0,
                saturated=delivered_share < harness.SATURATED_BELOW)


def climb(monkeypatch: pytest.MonkeyPatch, script: dict[float, list[Step]], **profile: Any) -> tuple[dict[str, Any],
                                                                                                       list[float]]:
    """Run the sweep on ``script`` (each rate's measurements in turn); the result and the rates measured, in order."""
    asked: list[float] = []

    def fake_measure_step(system: str, env: Env, prof: Profile, clients: int, rate: float, label: str) -> Step:
        asked.append(rate)
        return script[rate].pop(0)

    monkeypatch.setattr(harness, "measure_step", fake_measure_step)
    env = Env(None, None, Path("."), lambda message: None)
    settings = {"fanout_clients": CLIENTS, "fanout_rates": tuple(r for r in script if r != 15), "refine": False,
                **profile}
    return fanout_sweep("pricefeed", env, Profile("test", **settings)), asked


def test_a_noisy_step_is_measured_again_and_the_climb_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    result, asked = climb(monkeypatch, {
        2: [measured(2, 5.0)],
        5: [measured(5, 45.0), measured(5, 9.0)],  # one noisy window, then a pass
        10: [measured(10, 12.0, server_cpu=0.8)],
        20: [measured(20, 80.0, delivered_share=0.6, server_cpu=1.0),
             measured(20, 85.0, delivered_share=0.5, server_cpu=1.0)],  # saturated twice: the end
    })
    assert asked == [2, 5, 5, 10, 20, 20]
    figure = result["figure"]
    assert (figure["rate_slots_per_s"], figure["deliveries_per_s"], figure["p99_target_met"]) == (10, 10_000, True)
    assert [s["rate_slots_per_s"] for s in result["steps"]] == [2, 5, 10, 20]
    assert [s["retried"] for s in result["steps"]] == [False, True, False, True]
    assert [(s["rate_slots_per_s"], s["p99_ms"]) for s in result["retried"]] == [(5, 45.0), (20, 80.0)]
    assert figure["retried_steps"] == 2
    assert result["steps"][-1]["deliveries_per_s"] == 10_000  # the retry decides...
    assert figure["peak_deliveries_per_s"] == 12_000  # ...but the peak is over every window measured
    assert (figure["peak_deliveries_per_cpu_s"], figure["peak_cpu_at_rate_slots_per_s"]) == (12_500, 10)


def test_a_confirmed_failure_is_the_limit_and_the_climb_goes_on_to_saturation(monkeypatch: pytest.MonkeyPatch) -> None:
    result, asked = climb(monkeypatch, {
        2: [measured(2, 5.0, server_cpu=0.1)],
        5: [measured(5, 30.0, server_cpu=0.2), measured(5, 28.0, server_cpu=0.2)],
        10: [measured(10, 40.0, server_cpu=0.3)],  # past the limit already: not measured again
        20: [measured(20, 60.0, server_cpu=0.5)],
        40: [measured(40, 90.0, delivered_share=0.7, server_cpu=1.0),
             measured(40, 95.0, delivered_share=0.7, server_cpu=1.0)],
        80: [],  # never reached
    })
    assert asked == [2, 5, 5, 10, 20, 40, 40]
    figure = result["figure"]
    assert (figure["rate_slots_per_s"], figure["p99_ms"], figure["p99_target_met"]) == (2, 5.0, True)
    assert figure["peak_deliveries_per_s"] == 28_000
    assert (figure["peak_deliveries_per_cpu_s"], figure["peak_cpu_at_rate_slots_per_s"]) == (40_000, 20)


def test_the_refinement_is_retried_before_it_is_taken_as_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    result, asked = climb(monkeypatch, {
        10: [measured(10, 8.0)],
        20: [measured(20, 30.0), measured(20, 31.0)],
        40: [measured(40, 60.0, delivered_share=0.5), measured(40, 60.0, delivered_share=0.5)],
        15: [measured(15, 25.0), measured(15, 15.0)],
    }, refine=True)
    assert asked == [10, 20, 20, 40, 40, 15, 15]
    assert (result["figure"]["rate_slots_per_s"], result["figure"]["p99_target_met"]) == (15, True)


def test_a_retry_that_cannot_be_set_up_leaves_the_first_measurement_standing(monkeypatch: pytest.MonkeyPatch) -> None:
    first = measured(10, 90.0, delivered_share=0.8)
    result, asked = climb(monkeypatch, {
        5: [measured(5, 50.0)],
        10: [first, failed_step("pricefeed", CLIENTS, 10, SUBSCRIPTIONS, "load client exited with 1")],
    })
    assert asked == [5, 10, 10]
    assert result["steps"][-1] == {**result["steps"][-1], "deliveries_per_s": 8_000, "retried": True, "error": None}
    assert [s["error"] for s in result["retried"]] == ["load client exited with 1"]
    assert result["figure"]["peak_deliveries_per_s"] == 8_000


def test_a_first_step_that_cannot_be_set_up_gets_a_second_try(monkeypatch: pytest.MonkeyPatch) -> None:
    result, asked = climb(monkeypatch, {
        2: [failed_step("naive", CLIENTS, 2, SUBSCRIPTIONS, "load client exited with 1"),
            measured(2, 90.0, delivered_share=0.8)],
        5: [],
    })
    assert asked == [2, 2]
    figure = result["figure"]
    assert (figure["deliveries_per_s"], figure["p99_target_met"], figure["retried"]) == (1_600, False, True)


def test_a_system_that_never_meets_the_limit_climbs_to_saturation_without_retries_until_then(
        monkeypatch: pytest.MonkeyPatch) -> None:
    result, asked = climb(monkeypatch, {
        2: [measured(2, 30.0)],
        5: [measured(5, 40.0)],
        10: [failed_step("naive", CLIENTS, 10, SUBSCRIPTIONS, "load client did not answer")],  # not retried
    })
    assert asked == [2, 5, 10]
    figure = result["figure"]
    assert (figure["rate_slots_per_s"], figure["p99_target_met"], figure["retried_steps"]) == (5, False, 0)


def test_without_retries_the_first_failure_ends_the_climb(monkeypatch: pytest.MonkeyPatch) -> None:
    result, asked = climb(monkeypatch, {
        2: [measured(2, 5.0)],
        5: [measured(5, 45.0)],
        10: [measured(10, 60.0, delivered_share=0.5)],
    }, retry=False)
    assert asked == [2, 5, 10]
    assert result["retried"] == [] and result["figure"]["rate_slots_per_s"] == 2
