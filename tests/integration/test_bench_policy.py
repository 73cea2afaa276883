"""The policy scenario of the bench runs end to end: the same face with the access policy off and on (no figure
is asserted: the machine is shared)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .test_bench_quick import STEP_KEYS, run_bench


@pytest.mark.slow
def test_policy_smoke_measures_the_face_with_the_policy_off_and_on(tmp_path: Path) -> None:
    results = run_bench(tmp_path, "--scenario", "policy", timeout=90)
    result = results["scenarios"]["policy"]
    assert set(result["steps"]) == {"pricefeed", "pricefeed-policy"}
    for system, steps in result["steps"].items():
        assert len(steps) == 1 and set(steps[0]) >= STEP_KEYS and steps[0]["system"] == system
        assert steps[0]["closed_connections"] == 0  # the key's limits are on, and never reached
    path, end_to_end = result["figure"]["path"], result["figure"]["end_to_end"]
    assert (path["rounds"], len(path["per_window"]["off"]), len(path["per_window"]["on"])) == (4, 4, 4)
    assert end_to_end["rounds"] == 1 and end_to_end["deliveries_per_cpu_s_off"] > 0
    assert isinstance(result["target"]["met"], bool)
