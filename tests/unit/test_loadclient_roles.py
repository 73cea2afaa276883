from __future__ import annotations

from benchmarks.loadclient import my_clients


def test_the_sampler_and_the_counters_play_every_client_exactly_once() -> None:
    sampler = my_clients(1000, 10, "sampler", 0, 3)
    counters = [my_clients(1000, 10, "counter", part, 3) for part in range(3)]
    assert sampler == list(range(0, 1000, 10))
    played = sampler + [i for part in counters for i in part]
    assert sorted(played) == list(range(1000))
    assert max(map(len, counters)) - min(map(len, counters)) <= 1


def test_without_sampling_the_counters_play_every_client() -> None:
    assert my_clients(5, 0, "sampler", 0, 1) == []
    assert my_clients(5, 0, "counter", 0, 1) == [0, 1, 2, 3, 4]
