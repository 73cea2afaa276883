"""The faces' targets in a fanout result: each a share of the seed-000 face's peak deliveries per server CPU-second."""

from __future__ import annotations

from typing import Any

from benchmarks.harness import assemble
from benchmarks.profiles import Profile


def run(peak_per_cpu_s: int) -> dict[str, Any]:
    return {"figure": {"deliveries_per_s": 100_000, "p99_ms": 10.0, "peak_deliveries_per_s": 120_000,
                       "peak_deliveries_per_cpu_s": peak_per_cpu_s, "p99_target_met": True}}


def fanout(**peaks: int) -> dict[str, Any]:
    return assemble("fanout", {name.replace("_", "-"): run(peak) for name, peak in peaks.items()}, Profile("test"))


def test_streams_has_its_own_target_of_four_fifths_beside_the_hermes_faces_half() -> None:
    result = fanout(pricefeed=400_000, hermes_ws=200_000, hermes_sse=300_000, streams=320_000)
    assert result["faces_target"] == {
        "met": True, "share": 0.5, "faces": {"hermes-ws": 0.5, "hermes-sse": 0.75},
        "text": "every Hermes face >= 0.5x the seed-000 face's peak deliveries per server CPU-second "
                "(got hermes-ws 0.5x, hermes-sse 0.75x)"}
    assert result["streams_target"] == {
        "met": True, "share": 0.8, "faces": {"streams": 0.8},
        "text": "/ws/stream (seed 004) >= 0.8x the seed-000 face's peak deliveries per server CPU-second "
                "(got streams 0.8x)"}
    assert list(result["faces"]) == ["hermes-ws", "hermes-sse", "streams"]
    assert result["faces"]["streams"]["vs_pricefeed"]["peak_deliveries_per_cpu_s"] == 0.8


def test_a_streams_face_under_four_fifths_misses_its_target_only() -> None:
    result = fanout(pricefeed=400_000, hermes_ws=200_000, streams=319_000)
    assert (result["streams_target"]["met"], result["streams_target"]["faces"]) == (False, {"streams": 0.797})
    assert result["faces_target"]["met"] is True


def test_a_target_is_given_only_when_its_faces_were_measured() -> None:
    result = fanout(pricefeed=400_000, streams=360_000)
    assert "faces_target" not in result and result["streams_target"]["met"] is True
    assert "streams_target" not in fanout(pricefeed=400_000, hermes_sse=100_000)
    assert "streams_target" not in fanout(streams=360_000)  # no seed-000 face to compare with
